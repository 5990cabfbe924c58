//! `cargo xtask`: the project's tasks, in Rust so they run wherever cargo does.

mod bench;
mod build_ptx;
mod bundle;
mod cmd;
mod readme;
mod report;
mod test;
mod tools;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(about = "Tasks of the Rust-native decode engine")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Build gpu-kernels to PTX (target/ptx/kernels.ptx) and check it with ptxas.
    BuildPtx(build_ptx::Args),
    /// Build the host binary and every test binary in release into target/gpu-bundle/,
    /// with run.sh to run them all on a GPU machine.
    GpuBundle,
    /// Run a benchmark suite on this machine's GPU (see `host bench`), or render the
    /// comparison report.
    Bench {
        #[command(subcommand)]
        suite: bench::Suite,
    },
    /// The test command: set up ptxas if missing, then fmt, clippy, docs, build-ptx, every
    /// test (GPU tests are listed as ignored) and the README's main command.
    Test,
}

fn main() -> ExitCode {
    // rustc calls this executable back as the nvptx linker while build-ptx runs.
    ptx_builder::act_as_linker_if_asked();

    let cli = Cli::parse();
    let workspace = workspace_root();
    let result = match cli.task {
        Task::BuildPtx(args) => build_ptx::run(&workspace, &args),
        Task::GpuBundle => bundle::run(&workspace),
        Task::Test => test::run(&workspace),
        Task::Bench { suite } => bench::run(&workspace, suite),
    };
    report(result)
}

fn report(result: Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace root")
        .to_path_buf()
}
