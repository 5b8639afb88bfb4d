//! Compiles `silo.proto` with protox (pure Rust), so building Silo needs no system protoc.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=silo.proto");
    let fds = protox::compile(["silo.proto"], ["."])?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}
