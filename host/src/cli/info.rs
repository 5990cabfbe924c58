//! `host info`: the GPU and the kernels it loaded.

use crate::cuda::{Gpu, KERNELS_PTX, ptx_entries, ptx_isa_version, ptx_target_arch};
use anyhow::Result;

/// Opens the GPU (which checks it can run the PTX) and lists what was loaded.
pub fn info(device: u32) -> Result<()> {
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
        "driver      CUDA {}.{}",
        info.driver_cuda.0, info.driver_cuda.1
    );
    let isa = ptx_isa_version(KERNELS_PTX)
        .map_or("?".to_owned(), |(major, minor)| format!("{major}.{minor}"));
    println!(
        "kernels     {} for {}, PTX ISA {isa} (loaded)",
        ptx_entries(KERNELS_PTX).len(),
        ptx_target_arch(KERNELS_PTX).unwrap_or("?")
    );
    for (name, _) in ptx_entries(KERNELS_PTX) {
        println!("  {name}");
    }
    Ok(())
}
