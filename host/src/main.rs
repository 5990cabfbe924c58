//! `host`: the decode engine's command line.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use host::cuda::{Gpu, KERNELS_PTX, ptx_entries, ptx_target_arch};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(version, about = "Rust-native GPT-2 decode on CUDA graphs")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show the GPU, check it can run the embedded kernels, and list them.
    Info {
        /// CUDA device ordinal.
        #[arg(long, default_value_t = 0)]
        device: u32,
    },
    /// Benchmarks on the GPU; each prints a table and can write JSON.
    Bench {
        #[command(subcommand)]
        suite: BenchSuite,
        /// Write the results as JSON to this file too.
        #[arg(long, global = true)]
        json: Option<PathBuf>,
        /// CUDA device ordinal.
        #[arg(long, default_value_t = 0, global = true)]
        device: u32,
    },
}

#[derive(Subcommand)]
enum BenchSuite {
    /// Every decode kernel at gpt2-xl shapes, batch 1, 8 and 32, against copy bandwidth.
    Kernels,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Info { device } => info(device),
        Command::Bench {
            suite: BenchSuite::Kernels,
            json,
            device,
        } => {
            let results = host::bench::kernels::run(&Gpu::open(device)?)?;
            if let Some(path) = json {
                let text = serde_json::to_string_pretty(&results)?;
                std::fs::write(&path, text)
                    .with_context(|| format!("writing {}", path.display()))?;
                println!("wrote {}", path.display());
            }
            Ok(())
        }
    }
}

fn info(device: u32) -> Result<()> {
    let gpu = Gpu::open(device)?;
    let info = gpu.info();
    println!("device      {} {}", info.ordinal, info.name);
    println!(
        "capability  {}.{}, {} SMs, {:.1} GiB, L2 {} MiB",
        info.compute_capability.0,
        info.compute_capability.1,
        info.multiprocessors,
        info.total_memory as f64 / (1u64 << 30) as f64,
        info.l2_bytes >> 20
    );
    println!(
        "kernels     {} for {} (loaded)",
        ptx_entries(KERNELS_PTX).len(),
        ptx_target_arch(KERNELS_PTX).unwrap_or("?")
    );
    for (name, _) in ptx_entries(KERNELS_PTX) {
        println!("  {name}");
    }
    Ok(())
}
