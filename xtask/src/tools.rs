//! What the test command provides for itself on a fresh machine: ptxas, from the PyPI
//! wheel nvidia-cuda-nvcc-cu12, installed under `.tools/` unless one is found.

use crate::cmd;
use anyhow::{Result, ensure};
use ptx_builder::ptxas;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The PyPI release ptxas comes from: 12.9 assembles the PTX ISA 8.1 we write for sm_90.
const NVCC_WHEEL: &str = "nvidia-cuda-nvcc-cu12==12.9.86";

/// ptxas: found where it already is, or installed from the wheel into `.tools/nvcc`.
pub fn ensure_ptxas(workspace: &Path) -> Result<PathBuf> {
    if let Some(found) = ptxas::find_ptxas(workspace) {
        return Ok(found);
    }
    let tools = workspace.join(ptx_builder::TOOLS_DIR);
    let partial = tools.join("nvcc.partial");
    let _ = fs::remove_dir_all(&partial);
    fs::create_dir_all(&tools)?;
    eprintln!(
        "installing ptxas from {NVCC_WHEEL} into {}",
        tools.display()
    );
    cmd::run(
        Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(["--no-deps", "--no-compile", "--target"])
            .arg(&partial)
            .arg(NVCC_WHEEL),
    )?;
    fs::rename(&partial, tools.join("nvcc"))?;
    let installed = ptxas::installed_ptxas(workspace);
    ensure!(
        installed.is_file(),
        "{NVCC_WHEEL} did not provide {}",
        installed.display()
    );
    Ok(installed)
}
