//! `cargo xtask build-ptx`: PTX for the kernels, then ptxas's verdict and resource table.

use anyhow::{Result, bail};
use ptx_builder::HalfType;
use ptx_builder::ptxas::{self, KernelResources};
use std::path::{Path, PathBuf};

/// Options of `build-ptx`.
#[derive(clap::Args)]
pub struct Args {
    /// GPU architecture to write PTX for and to assemble it for.
    #[arg(long, default_value = ptx_builder::DEFAULT_ARCH)]
    pub arch: String,
    /// The ptxas to use instead of searching $PTXAS, .tools/, PATH and /usr/local/cuda.
    #[arg(long)]
    pub ptxas: Option<PathBuf>,
    /// Fail when ptxas is not found instead of skipping the check.
    #[arg(long)]
    pub require_ptxas: bool,
    /// Fail when any kernel spills registers to local memory.
    #[arg(long)]
    pub deny_spills: bool,
}

/// Builds both modules (fp16 and bf16), prints their paths and, with ptxas, one row per
/// kernel of each.
pub fn run(workspace: &Path, args: &Args) -> Result<()> {
    for half in HalfType::ALL {
        build_one(workspace, args, half)?;
    }
    Ok(())
}

fn build_one(workspace: &Path, args: &Args, half: HalfType) -> Result<PathBuf> {
    let ptx = ptx_builder::build_ptx(workspace, &args.arch, half)?;
    println!("PTX: {}", ptx.display());

    let Some(ptxas) = args.ptxas.clone().or_else(|| ptxas::find_ptxas(workspace)) else {
        if args.require_ptxas {
            bail!(
                "ptxas not found (set PTXAS, put it on PATH, or run `cargo xtask test` once to install it)"
            );
        }
        println!("ptxas not found: PTX not assembled (cargo xtask test installs it into .tools/)");
        return Ok(ptx);
    };
    let cubin = ptx.with_extension(format!("{}.cubin", args.arch));
    let kernels = ptxas::assemble(&ptxas, &ptx, &args.arch, &cubin)?;
    println!("ptxas {} accepted it for {}:", ptxas.display(), args.arch);
    print_table(&kernels);

    let spilling: Vec<&str> = kernels
        .iter()
        .filter(|k| k.spill_bytes > 0)
        .map(|k| k.name.as_str())
        .collect();
    if args.deny_spills && !spilling.is_empty() {
        bail!("kernels spill registers: {}", spilling.join(", "));
    }
    Ok(ptx)
}

fn print_table(kernels: &[KernelResources]) {
    let width = kernels
        .iter()
        .map(|k| k.name.len())
        .max()
        .unwrap_or(6)
        .max(6);
    println!(
        "  {:<width$} | registers | spill bytes | stack bytes | shared bytes",
        "kernel"
    );
    for k in kernels {
        println!(
            "  {:<width$} | {:>9} | {:>11} | {:>11} | {:>12}",
            k.name, k.registers, k.spill_bytes, k.stack_bytes, k.shared_bytes
        );
    }
}
