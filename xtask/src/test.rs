//! `cargo xtask test`: the project's test command, and what CI runs.

use crate::{build_ptx, cmd, readme, tools};
use anyhow::{Context, Result, bail, ensure};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

/// Sets up ptxas and the tokenizer fixtures when missing, then fmt, clippy (host and kernels), the docs, a parse
/// check of the Python peers, build-ptx with ptxas required and no spills, every test
/// (GPU tests are listed as ignored), and the README's main command as a user types it.
pub fn run(workspace: &Path) -> Result<()> {
    let ptxas = tools::ensure_ptxas(workspace)?;
    tools::ensure_tokenizer_fixtures(workspace)?;
    let cargo = || {
        let mut c = cmd::cargo();
        c.current_dir(workspace).env("PTXAS", &ptxas);
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
    // On the host only the abi of gpu-kernels compiles; lint the kernels for their target.
    cmd::run(
        kernel_target(cargo().args(["clippy", "--package", "gpu-kernels"])).args([
            "--target-dir",
            "target/ptx/clippy",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    docs(workspace, &cargo)?;
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
    ensure!(summary.failed == 0, "{} tests failed", summary.failed);
    main_command(workspace)?;
    // One closing line for whoever reads the log: ignored tests are the GPU ones.
    println!(
        "tests: {} passed, {} failed, {} skipped",
        summary.passed, summary.failed, summary.ignored
    );
    Ok(())
}

/// `cmd` for the kernels' own target: nvptx64, with `core` built from source.
fn kernel_target(cmd: &mut Command) -> &mut Command {
    cmd.args(["--target", ptx_builder::TARGET, "-Zbuild-std=core"])
}

/// Builds the documentation of the workspace and of the kernels (private items too, so
/// that every intra-doc link is checked): broken links are errors, missing docs on public
/// items warnings (errors in CI, where `CI` is set).
fn docs(workspace: &Path, cargo: &dyn Fn() -> Command) -> Result<()> {
    let missing = if std::env::var_os("CI").is_some() {
        "-D"
    } else {
        "-W"
    };
    let flags = format!("-D rustdoc::broken_intra_doc_links {missing} missing_docs");
    let doc = |cmd: &mut Command| {
        cmd.args(["doc", "--no-deps", "--document-private-items"])
            .env("RUSTDOCFLAGS", &flags);
    };
    let mut host = cargo();
    doc(&mut host);
    cmd::run(host.arg("--workspace"))?;
    let mut kernels = cargo();
    doc(&mut kernels);
    cmd::run(
        kernel_target(kernels.args(["--package", "gpu-kernels"])).args([
            "--target-dir",
            workspace
                .join("target/ptx/doc")
                .to_str()
                .context("a UTF-8 path")?,
        ]),
    )
}

/// Runs the README's main command exactly as written, as a user would type it first on
/// this machine: it must build and either run (a GPU is here) or end with one line
/// saying which part of the GPU is missing, exit code 1. Then the CPU-only commands of
/// the binary it built: `--help` and `export`.
fn main_command(workspace: &Path) -> Result<()> {
    let command = readme::main_command(workspace)?;
    eprintln!("$ {command}");
    let mut child = Command::new("sh")
        .args(["-c", &command])
        .current_dir(workspace)
        .stderr(Stdio::piped())
        .spawn()
        .context("starting sh")?;
    // The program's own lines: those after cargo's `Running` line.
    let mut program_lines = Vec::new();
    let mut running = false;
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line?;
        eprintln!("{line}");
        if running {
            program_lines.push(line);
        } else {
            running = line.trim_start().starts_with("Running `");
        }
    }
    let status = child.wait()?;
    match (status.code(), program_lines.as_slice()) {
        (Some(0), _) => eprintln!("the main command ran on this machine's GPU"),
        (Some(1), [line]) if names_a_missing_gpu(line) => {
            eprintln!("the main command built and ended with its one-line no-GPU message")
        }
        _ => bail!(
            "the README's main command ended with {status} and stderr {program_lines:?}: \
             expected success, or exit code 1 with one line saying what GPU part is missing"
        ),
    }
    let host = workspace.join("target/release/host");
    cmd::run(Command::new(&host).arg("--help").stdout(Stdio::null()))?;
    let out = workspace.join("target/ci/export");
    let _ = std::fs::remove_dir_all(&out);
    // `host export` writes into an existing directory only, as it must for a user.
    std::fs::create_dir_all(workspace.join("target/ci"))?;
    cmd::run(
        Command::new(&host)
            .args(["export", "--random", "1", "--preset", "gpt2", "--out"])
            .arg(&out),
    )?;
    for file in ["config.json", "model.safetensors"] {
        ensure!(out.join(file).is_file(), "host export wrote no {file}");
    }
    std::fs::remove_dir_all(&out)?;
    Ok(())
}

/// Whether `line` is the one line a GPU command ends with when the machine lacks a
/// driver, a GPU, a new enough GPU or a new enough driver.
fn names_a_missing_gpu(line: &str) -> bool {
    ["error: no CUDA driver: ", "error: no usable CUDA GPU: "]
        .iter()
        .any(|start| line.starts_with(start))
        || (line.starts_with("error: GPU ") && line.contains("compute capability"))
        || line.starts_with("error: the CUDA driver supports CUDA ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_no_gpu_lines_are_recognized() {
        assert!(names_a_missing_gpu(
            "error: no CUDA driver: libcuda.so.1: cannot open shared object file"
        ));
        assert!(names_a_missing_gpu(
            "error: no usable CUDA GPU: cuInit failed: \"no CUDA-capable device is detected\""
        ));
        assert!(names_a_missing_gpu(
            "error: GPU 0 (NVIDIA A100) has compute capability 8.0; the kernels are built for sm_90 and need compute capability 9.0 or newer"
        ));
        assert!(!names_a_missing_gpu(
            "thread 'main' panicked at src/main.rs"
        ));
    }
}
