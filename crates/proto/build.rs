//! Compiles every pronet `.proto` into Rust and one encoded descriptor set (imports included, so
//! reflection can answer for the well-known types too). protoc comes from the
//! `protoc-bin-vendored` crate, so a fresh machine needs no system protoc.

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "pronet/profile/v1/profile.proto",
    "pronet/post/v1/post.proto",
    "pronet/engagement/v1/engagement.proto",
    "pronet/feed/v1/feed.proto",
    "pronet/feed/v1/index_snapshot.proto",
    "pronet/events/v1/events.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let files: Vec<PathBuf> = PROTOS.iter().map(|p| root.join(p)).collect();
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    let includes = [root, protoc_bin_vendored::include_path()?];
    tonic_prost_build::configure()
        // Undecodable requests are INVALID_ARGUMENT, not INTERNAL (see src/codec.rs).
        .codec_path("crate::codec::ProtoCodec")
        .file_descriptor_set_path(out_dir.join("pronet_descriptor.bin"))
        .compile_with_config(config, &files, &includes)?;
    Ok(())
}
