//! Device-side building blocks: thread indexing and vector types.

use core::arch::nvptx;

/// Eight fp16 values loaded or stored as one 16-byte access (`ld.global.v4.b32`).
#[repr(C, align(16))]
#[derive(Clone, Copy)]
pub struct Half8(pub [f16; 8]);

/// Index of this thread across the whole 1-D grid.
#[inline(always)]
pub fn global_thread_index() -> usize {
    // SAFETY: reading special registers has no preconditions.
    unsafe {
        (nvptx::_block_idx_x() as usize) * (nvptx::_block_dim_x() as usize)
            + nvptx::_thread_idx_x() as usize
    }
}

/// Threads in the whole 1-D grid: the stride of a grid-stride loop.
#[inline(always)]
pub fn grid_thread_count() -> usize {
    // SAFETY: reading special registers has no preconditions.
    unsafe { (nvptx::_grid_dim_x() as usize) * (nvptx::_block_dim_x() as usize) }
}

/// Whether `ptr` may be read or written as [`Half8`].
#[inline(always)]
pub fn is_vector_aligned<T>(ptr: *const T) -> bool {
    (ptr as usize).is_multiple_of(core::mem::align_of::<Half8>())
}
