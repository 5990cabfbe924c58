//! Fills a buffer with uniform random fp16 values from a counter-based hash, so that large
//! random inputs (benchmark weights) are made on the GPU instead of crossing PCIe.

use crate::abi::{FillUniformParams, splitmix64};
use crate::abi::{Half, HalfFloat};
use crate::primitives::{global_thread_index, grid_thread_count};

/// See [`FillUniformParams`].
///
/// # Safety
/// `out` holds `len` halves.
#[unsafe(no_mangle)]
pub unsafe extern "ptx-kernel" fn fill_uniform(p: FillUniformParams) {
    crate::primitives::start_after_previous_kernels();
    let mut i = global_thread_index();
    while i < p.len as usize {
        // 24 random bits -> [0, 1) -> (-scale, scale).
        let unit = (splitmix64(p.seed.wrapping_add(i as u64)) >> 40) as f32 / (1u32 << 24) as f32;
        // SAFETY: i < len.
        unsafe { *p.out.add(i) = Half::from_f32((2.0 * unit - 1.0) * p.scale) };
        i += grid_thread_count();
    }
}
