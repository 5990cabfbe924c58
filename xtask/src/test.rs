//! `cargo xtask test`: the project's test command, and what CI runs.

use crate::{build_ptx, cmd, tools};
use anyhow::{Result, ensure};
use std::path::Path;

/// Sets up ptxas and libcuda when missing, then fmt, clippy (host and kernels), a parse
/// check of the Python peers, build-ptx with ptxas required and no spills, and every test.
pub fn run(workspace: &Path) -> Result<()> {
    let ptxas = tools::ensure_ptxas(workspace)?;
    let libcuda = tools::ensure_libcuda(workspace)?;
    let cargo = || {
        let mut c = cmd::cargo();
        c.current_dir(workspace).env("PTXAS", &ptxas);
        libcuda.apply(&mut c);
        c
    };

    cmd::run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    cmd::run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    // On the host only abi.rs of gpu-kernels compiles; lint the kernels for their target.
    cmd::run(
        cargo()
            .args([
                "clippy",
                "--package",
                "gpu-kernels",
                "--target",
                ptx_builder::TARGET,
            ])
            .args(["-Zbuild-std=core", "--target-dir", "target/ptx/clippy"])
            .args(["--", "-D", "warnings"]),
    )?;
    // The PyTorch peers only run on a GPU machine; here they must at least parse.
    let peers: Vec<_> = std::fs::read_dir(workspace.join("xtask").join("peers"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "py"))
        .collect();
    // Parsed, not byte-compiled: nothing is written next to them.
    let parse = "import ast, sys\nfor f in sys.argv[1:]: ast.parse(open(f).read(), f)";
    cmd::run(
        std::process::Command::new("python3")
            .args(["-c", parse])
            .args(&peers),
    )?;
    build_ptx::run(
        workspace,
        &build_ptx::Args {
            arch: ptx_builder::DEFAULT_ARCH.into(),
            ptxas: Some(ptxas.clone()),
            require_ptxas: true,
            deny_spills: true,
        },
    )?;
    let summary = cmd::run_tests(cargo().args(["test", "--workspace"]))?;
    // One closing line for whoever reads the log: ignored tests are the GPU ones.
    println!(
        "tests: {} passed, {} failed, {} skipped",
        summary.passed, summary.failed, summary.ignored
    );
    ensure!(summary.failed == 0, "{} tests failed", summary.failed);
    Ok(())
}
