//! `cargo xtask bench SUITE`: runs `host bench SUITE` in release on this machine's GPU
//! and writes `target/bench/SUITE.json`; for `compare`, then renders the report (see
//! [`mod@crate::report`]). Without Rust on the GPU machine, run `target/gpu-bundle/host
//! bench SUITE --json FILE` from the bundle and `cargo xtask bench report FILE` here.

use crate::{cmd, report};
use anyhow::Result;
use std::path::{Path, PathBuf};

/// What `cargo xtask bench` does.
#[derive(clap::Subcommand)]
pub enum Suite {
    /// Every decode kernel against the copy bandwidth.
    Kernels,
    /// The whole engine, eager and with CUDA graphs.
    Decode,
    /// Ours beside the PyTorch peers on the same weights (needs python3 with torch and
    /// transformers), then the report.
    Compare,
    /// Render `host bench compare` JSON files (later ones win where values repeat) into
    /// README.md, docs/bench-compare.json and docs/bench-compare.png.
    Report {
        /// The JSON files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// Builds and runs the suite.
pub fn run(workspace: &Path, suite: Suite) -> Result<()> {
    let name = match suite {
        Suite::Kernels => "kernels",
        Suite::Decode => "decode",
        Suite::Compare => "compare",
        Suite::Report { files } => return report::run(workspace, &files),
    };
    let out_dir = workspace.join("target").join("bench");
    std::fs::create_dir_all(&out_dir)?;
    let json = out_dir.join(format!("{name}.json"));
    let mut cargo = cmd::cargo();
    cargo
        .current_dir(workspace)
        .args([
            "run",
            "--release",
            "--package",
            "host",
            "--",
            "bench",
            name,
            "--json",
        ])
        .arg(&json);
    cmd::run(&mut cargo)?;
    if name == "compare" {
        report::run(workspace, &[json])?;
    }
    Ok(())
}
