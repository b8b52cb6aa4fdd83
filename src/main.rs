fn main() {
    println!("asudf {}", env!("CARGO_PKG_VERSION"));
}
