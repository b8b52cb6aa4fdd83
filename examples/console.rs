//! Runs the console against an in-memory sandbox (or a file given as the
//! first argument): `cargo run --example console [file.lua]`.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let file = std::env::args_os().nth(1).map(std::path::PathBuf::from);
    let target = asudf::client::Target::Sandbox {
        dir: None,
        config: asudf::sandbox::SandboxConfig::default(),
    };
    asudf::tui::run(target, file).await
}
