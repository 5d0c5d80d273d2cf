//! Compiles the protos without a system `protoc`: protox parses them into a descriptor set,
//! which is written to OUT_DIR (for gRPC reflection and the JSON transcoder) and handed to
//! tonic-prost-build for code generation.

use std::path::PathBuf;

const PROTO_ROOT: &str = "proto";
const ENTRY_POINTS: &[&str] = &[
    "userdir/user/v1/user_service.proto",
    "userdir/user/v1/directory_service.proto",
    "userdir/user/v1/token_service.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={PROTO_ROOT}");

    let mut compiler = protox::Compiler::new([PROTO_ROOT])?;
    compiler.include_imports(true).include_source_info(true);
    for file in ENTRY_POINTS {
        compiler.open_file(file)?;
    }

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("userdir_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}
