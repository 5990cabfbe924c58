//! Builds the kernels to PTX with the same code as `cargo xtask build-ptx` and hands the
//! file to `host/src/cuda/kernels.rs`, which embeds it, so a build never sees stale PTX.

use std::path::{Path, PathBuf};

fn main() {
    // rustc calls this very executable back as the nvptx linker.
    ptx_builder::act_as_linker_if_asked();

    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest_dir.parent().unwrap();
    for source in ptx_builder::kernel_sources(workspace) {
        println!("cargo:rerun-if-changed={}", source.display());
    }
    if let Err(e) = embed_ptx(workspace) {
        eprintln!("error: building the kernels to PTX failed: {e:#}");
        std::process::exit(1);
    }
}

fn embed_ptx(workspace: &Path) -> anyhow::Result<()> {
    let ptx = ptx_builder::build_ptx(workspace, ptx_builder::DEFAULT_ARCH)?;
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    std::fs::copy(&ptx, out_dir.join("kernels.ptx"))?;
    Ok(())
}
