//! `cargo xtask bench <suite>`: runs `host bench <suite>` in release on this machine's GPU
//! and writes target/bench/<suite>.json. Without Rust on the GPU machine, run
//! `target/gpu-bundle/host bench <suite> --json FILE` from the bundle instead.

use crate::{cmd, tools};
use anyhow::Result;
use std::path::Path;

/// Benchmark suites `host bench` knows.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Suite {
    /// Every decode kernel against the copy bandwidth.
    Kernels,
    /// The whole engine, eager and with CUDA graphs.
    Decode,
}

/// Builds and runs the suite.
pub fn run(workspace: &Path, suite: Suite) -> Result<()> {
    let name = match suite {
        Suite::Kernels => "kernels",
        Suite::Decode => "decode",
    };
    let out_dir = workspace.join("target").join("bench");
    std::fs::create_dir_all(&out_dir)?;
    let libcuda = tools::ensure_libcuda(workspace)?;
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
        .arg(out_dir.join(format!("{name}.json")));
    libcuda.apply(&mut cargo);
    cmd::run(&mut cargo)
}
