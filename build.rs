//! Release binaries put the functions the console runs (start-up, typing,
//! the in-process sandbox) next to each other, listed in
//! `link/console-hot.txt`: code pages are mapped 64 KiB around each one
//! touched, so scattered hot code kept most of the binary resident. Needs
//! lld, the linker Rust uses on x86_64 Linux; `link/hot-symbols.sh` makes
//! the list anew.

fn main() {
    println!("cargo:rerun-if-changed=link/console-hot.txt");
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let target = std::env::var("TARGET").unwrap_or_default();
    if release && target == "x86_64-unknown-linux-gnu" {
        let list = concat!(env!("CARGO_MANIFEST_DIR"), "/link/console-hot.txt");
        println!("cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={list}");
        // Names no longer in the binary (code changed since the list was made) are fine.
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}
