//! GPU kernels of the decode engine, written in Rust and built to PTX.
//!
//! On `nvptx64-nvidia-cuda` this crate is a cdylib whose exported `ptx-kernel` functions
//! become PTX entries. On the host only [`abi`] is compiled: the parameter structs and
//! launch geometry that both sides must agree on.
#![no_std]
#![feature(f16)]
#![cfg_attr(
    target_arch = "nvptx64",
    feature(abi_ptx, stdarch_nvptx, asm_experimental_arch, core_float_math)
)]
// Kernels index small arrays in counted loops on purpose: with constant bounds LLVM
// unrolls them and keeps the arrays in registers, where iterator chains over arrays were
// seen to leave them in local memory (ptxas stack frames).
#![allow(clippy::needless_range_loop)]

pub mod abi;

#[cfg(target_arch = "nvptx64")]
mod kernels;
#[cfg(target_arch = "nvptx64")]
mod primitives;

/// A kernel that panics (an out-of-bounds index, say) traps: the launch fails with
/// CUDA_ERROR_ILLEGAL_INSTRUCTION and the host reports which kernel it was.
#[cfg(target_arch = "nvptx64")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    // SAFETY: `trap` only aborts the kernel; it has no preconditions.
    unsafe { core::arch::nvptx::trap() }
}
