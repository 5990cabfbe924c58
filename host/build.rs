//! Builds the kernels to PTX with the same code as `cargo xtask build-ptx` and hands the
//! two modules (fp16 and bf16) to `host/src/cuda/kernels.rs`, which embeds them, so a
//! build never sees stale PTX.

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
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    for half in ptx_builder::HalfType::ALL {
        let ptx = ptx_builder::build_ptx(workspace, ptx_builder::DEFAULT_ARCH, half)?;
        std::fs::copy(&ptx, out_dir.join(half.ptx_file()))?;
    }
    Ok(())
}
