//! Generates include/ccr.h with cbindgen (committed; CI fails when it is stale)
//! and gives libccr.so its soname.

use std::path::PathBuf;

fn main() {
    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("manifest dir"));
    let header = crate_dir.join("../include/ccr.h");
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    // ABI version 1: bump on any incompatible change of include/ccr.h.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libccr.so.1");
    let cfg = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let out = cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(cfg)
        .generate()
        .expect("cbindgen over ffi/src/lib.rs");
    let mut text = Vec::new();
    out.write(&mut text);
    // Write only on change so the header's mtime (and the tree) stay still.
    if std::fs::read(&header).ok().as_deref() != Some(text.as_slice()) {
        std::fs::write(&header, text).expect("writing include/ccr.h");
    }
}
