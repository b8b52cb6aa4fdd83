//! Runs the sandbox server with a few `asudf serve` flags, for peer tests:
//! `sandbox_serve [--port P] [--bind IP] [--cluster-name N] [--lua-libs default|all|hardened]
//! [--max-udf-ms MS] [--memory | --dir DIR]`.

use asudf::sandbox::LuaLibs;
use asudf::sandbox::local::{ServeOptions, Storage, serve};

fn parse(args: &[String]) -> Result<ServeOptions, String> {
    let mut opts = ServeOptions::default();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => opts.port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--bind" => opts.bind = value()?.parse().map_err(|e| format!("--bind: {e}"))?,
            "--cluster-name" => opts.cluster_name = value()?,
            "--max-udf-ms" => {
                opts.max_udf_ms = Some(value()?.parse().map_err(|e| format!("--max-udf-ms: {e}"))?)
            }
            "--lua-libs" => {
                opts.lua_libs = match value()?.as_str() {
                    "default" => LuaLibs::Default,
                    "all" => LuaLibs::All,
                    "hardened" => LuaLibs::Hardened,
                    other => return Err(format!("--lua-libs: unknown mode {other}")),
                }
            }
            "--memory" => opts.storage = Storage::Memory,
            "--dir" => opts.storage = Storage::Directory(value()?.into()),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(opts)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("sandbox_serve: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = serve(opts).await {
        eprintln!("sandbox_serve: {e:#}");
        std::process::exit(1);
    }
}
