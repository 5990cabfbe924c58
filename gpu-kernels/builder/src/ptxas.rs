//! ptxas: find it, assemble the PTX for an architecture, read its resource report.

use anyhow::{Context, Result, ensure};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the test command installs ptxas from the PyPI wheel nvidia-cuda-nvcc-cu12,
/// relative to the workspace root.
pub fn installed_ptxas(workspace: &Path) -> PathBuf {
    workspace
        .join(crate::TOOLS_DIR)
        .join("nvcc/nvidia/cuda_nvcc/bin/ptxas")
}

/// `$PTXAS`, the project's own copy, `ptxas` on PATH, or the CUDA toolkit's, in that order.
pub fn find_ptxas(workspace: &Path) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("ptxas"))
            .find(|p| p.is_file())
    });
    std::env::var_os("PTXAS")
        .map(PathBuf::from)
        .into_iter()
        .chain([installed_ptxas(workspace)])
        .chain(on_path)
        .chain([PathBuf::from("/usr/local/cuda/bin/ptxas")])
        .find(|p| p.is_file())
}

/// What ptxas reports for one kernel.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KernelResources {
    /// PTX entry name.
    pub name: String,
    /// Registers per thread.
    pub registers: u32,
    /// Bytes spilled to local memory (stores plus loads).
    pub spill_bytes: u32,
    /// Stack frame per thread, bytes.
    pub stack_bytes: u32,
    /// Static shared memory per block, bytes.
    pub shared_bytes: u32,
}

/// Assembles `ptx` for `arch` into `cubin` and returns each kernel's resources.
/// Fails, with ptxas's own message, when ptxas rejects the PTX.
pub fn assemble(
    ptxas: &Path,
    ptx: &Path,
    arch: &str,
    cubin: &Path,
) -> Result<Vec<KernelResources>> {
    let out = Command::new(ptxas)
        .arg(format!("-arch={arch}"))
        .arg("-v")
        .arg(ptx)
        .arg("-o")
        .arg(cubin)
        .output()
        .with_context(|| format!("running {}", ptxas.display()))?;
    let report = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.success(),
        "ptxas rejected {} for {arch}:\n{report}",
        ptx.display()
    );
    let kernels = parse_report(&report);
    ensure!(!kernels.is_empty(), "ptxas reported no kernels:\n{report}");
    Ok(kernels)
}

/// Reads `ptxas -v` output: a "Compiling entry function 'name'" line opens each kernel,
/// then "N bytes stack frame, N bytes spill stores, N bytes spill loads" and
/// "Used N registers, ..., N bytes smem, ...".
pub fn parse_report(report: &str) -> Vec<KernelResources> {
    let mut kernels: Vec<KernelResources> = Vec::new();
    for line in report.lines() {
        if let Some(rest) = line.split("Compiling entry function '").nth(1) {
            let name = rest.split('\'').next().unwrap_or_default();
            kernels.push(KernelResources {
                name: name.to_owned(),
                ..Default::default()
            });
            continue;
        }
        let Some(kernel) = kernels.last_mut() else {
            continue;
        };
        for part in line.split(',') {
            let words: Vec<&str> = part.split_whitespace().collect();
            let number = |i: usize| words.get(i).and_then(|w| w.parse::<u32>().ok());
            match words.as_slice() {
                [.., "Used", _, "registers"] => {
                    kernel.registers = number(words.len() - 2).unwrap_or(0)
                }
                [_, "bytes", "stack", "frame"] => kernel.stack_bytes = number(0).unwrap_or(0),
                [_, "bytes", "spill", _] => kernel.spill_bytes += number(0).unwrap_or(0),
                [_, "bytes", "smem"] => kernel.shared_bytes = number(0).unwrap_or(0),
                _ => {}
            }
        }
    }
    kernels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_registers_spills_and_shared_memory() {
        let report = "\
ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function 'embedding' for 'sm_90'
ptxas info    : Function properties for embedding
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 12 registers, used 0 barriers
ptxas info    : Compiling entry function 'attention' for 'sm_90'
ptxas info    : Function properties for attention
    16 bytes stack frame, 8 bytes spill stores, 4 bytes spill loads
ptxas info    : Used 40 registers, used 1 barriers, 4096 bytes smem, 400 bytes cmem[0]
";
        let kernels = parse_report(report);
        assert_eq!(
            kernels,
            [
                KernelResources {
                    name: "embedding".into(),
                    registers: 12,
                    ..Default::default()
                },
                KernelResources {
                    name: "attention".into(),
                    registers: 40,
                    spill_bytes: 12,
                    stack_bytes: 16,
                    shared_bytes: 4096,
                },
            ]
        );
    }
}
