//! Thread and block indices, block and warp barriers, and the two halves of programmatic
//! dependent launch: what every kernel uses to find its work and order it.

use super::warp::WARP;
use core::arch::{asm, nvptx};

/// This thread's index in its block (1-D blocks).
#[inline(always)]
pub fn thread_index() -> usize {
    // SAFETY: reading special registers has no preconditions.
    unsafe { nvptx::_thread_idx_x() as usize }
}

/// Block index along x, y, z.
#[inline(always)]
pub fn block_index() -> (usize, usize, usize) {
    // SAFETY: reading special registers has no preconditions.
    unsafe {
        (
            nvptx::_block_idx_x() as usize,
            nvptx::_block_idx_y() as usize,
            nvptx::_block_idx_z() as usize,
        )
    }
}

/// Threads per block (1-D blocks).
#[inline(always)]
pub fn block_size() -> usize {
    // SAFETY: reading special registers has no preconditions.
    unsafe { nvptx::_block_dim_x() as usize }
}

/// Index of this thread across the whole 1-D grid.
#[inline(always)]
pub fn global_thread_index() -> usize {
    block_index().0 * block_size() + thread_index()
}

/// Blocks in the grid along x: the stride of a block-level grid-stride loop.
#[inline(always)]
pub fn grid_blocks() -> usize {
    // SAFETY: reading special registers has no preconditions.
    unsafe { nvptx::_grid_dim_x() as usize }
}

/// Threads in the whole 1-D grid: the stride of a grid-stride loop.
#[inline(always)]
pub fn grid_thread_count() -> usize {
    // SAFETY: reading special registers has no preconditions.
    unsafe { nvptx::_grid_dim_x() as usize * block_size() }
}

/// This thread's lane in its warp.
#[inline(always)]
pub fn lane() -> usize {
    thread_index() % WARP
}

/// This warp's index in its block.
#[inline(always)]
pub fn warp_in_block() -> usize {
    thread_index() / WARP
}

/// Waits until every thread of the block reaches this point; memory written before it
/// by any of them (shared or global) is visible to all after it (`bar.sync 0`).
#[inline(always)]
pub fn sync_threads() {
    // SAFETY: every thread of the block executes this the same number of times (callers
    // keep the barrier out of divergent code).
    unsafe { nvptx::_syncthreads() }
}

/// Orders the warp: every lane's earlier shared-memory accesses happen before any lane's
/// later ones (`bar.warp.sync`).
#[inline(always)]
pub fn sync_warp() {
    // SAFETY: all 32 lanes execute it (callers keep the warp converged).
    unsafe {
        asm!(
            "bar.warp.sync 0xffffffff;",
            options(nostack, preserves_flags)
        )
    };
}

/// Programmatic dependent launch, part one: lets the next kernel on the stream start
/// launching now, while this one runs (`griddepcontrol.launch_dependents`). Safe at any
/// point: the next kernel still waits for this one to finish before touching its data.
#[inline(always)]
pub fn release_dependents() {
    // SAFETY: no operands; a no-op when the next launch is not programmatic.
    unsafe {
        asm!(
            "griddepcontrol.launch_dependents;",
            options(nostack, preserves_flags)
        )
    };
}

/// Programmatic dependent launch, part two: waits until the previous kernel on the
/// stream has finished and its writes are visible (`griddepcontrol.wait`). Every kernel
/// calls it before reading anything an earlier kernel wrote and before writing anything;
/// only reads of data no kernel writes (weights) may come before it. A no-op when this
/// launch was not programmatic.
#[inline(always)]
pub fn wait_for_previous_kernels() {
    // SAFETY: no operands; orders the memory accesses after it (asm without `nomem`).
    unsafe { asm!("griddepcontrol.wait;", options(nostack, preserves_flags)) };
}

/// Both parts at the top of a kernel that has nothing to prefetch.
#[inline(always)]
pub fn start_after_previous_kernels() {
    release_dependents();
    wait_for_previous_kernels();
}

/// Stops the kernel: the launch fails with an illegal-instruction error at the next sync.
/// For inputs the host promised to validate (token ids, lengths) but that would
/// otherwise read out of bounds.
#[inline(always)]
pub fn trap() -> ! {
    // SAFETY: `trap` only aborts the kernel.
    unsafe { nvptx::trap() }
}
