//! Thread block clusters (sm_90): the blocks of a cluster run at once on one GPU
//! processing cluster, can wait for each other with a hardware barrier, and can read and
//! write each other's shared memory (distributed shared memory). A kernel gets its
//! cluster shape from `.reqnctapercluster` in its PTX entry ([`crate::abi::CLUSTER_DIMS`],
//! written by the PTX builder), so every launch path, captured or node-built graphs
//! included, runs it as clusters without a launch attribute.

use core::arch::asm;

/// This block's rank in its cluster (`%cluster_ctarank`).
#[inline(always)]
pub fn cluster_rank() -> usize {
    let rank: u32;
    // SAFETY: reads a special register.
    unsafe {
        asm!(
            "mov.u32 {r}, %cluster_ctarank;",
            r = out(reg32) rank,
            options(pure, nomem, nostack, preserves_flags)
        )
    };
    rank as usize
}

/// Arrives at the cluster barrier without ordering memory (`barrier.cluster.arrive.relaxed`):
/// at a kernel's top, so that a later [`cluster_wait`] returns once every block of the
/// cluster has started, after which their shared memory may be written.
#[inline(always)]
pub fn cluster_arrive_relaxed() {
    // SAFETY: no operands; every thread of every block of the cluster arrives once per
    // phase (callers keep it out of divergent code).
    unsafe {
        asm!(
            "barrier.cluster.arrive.relaxed;",
            options(nostack, preserves_flags)
        )
    };
}

/// Arrives at the cluster barrier, releasing this thread's earlier writes (shared memory
/// of any block of the cluster included) to the threads that wait on this phase.
#[inline(always)]
pub fn cluster_arrive() {
    // SAFETY: as `cluster_arrive_relaxed`.
    unsafe {
        asm!(
            "barrier.cluster.arrive.release;",
            options(nostack, preserves_flags)
        )
    };
}

/// Waits until every thread of the cluster has arrived at the current phase; what they
/// released before arriving is visible after it.
#[inline(always)]
pub fn cluster_wait() {
    // SAFETY: as `cluster_arrive_relaxed`.
    unsafe {
        asm!(
            "barrier.cluster.wait.acquire;",
            options(nostack, preserves_flags)
        )
    };
}

/// The generic address of the same shared-memory location in block `rank` of the
/// cluster (`mapa`): ordinary loads and stores through it reach that block's shared
/// memory.
///
/// # Safety
/// `local` is a generic address of this block's shared memory and `rank` is below the
/// cluster's size; the result is used only while block `rank` runs (between the barrier
/// after its start and the one before it exits).
#[inline(always)]
pub unsafe fn in_cluster_block(local: *mut f32, rank: usize) -> *mut f32 {
    let remote: u64;
    // SAFETY: the caller's promise; mapa only computes an address.
    unsafe {
        asm!(
            "mapa.u64 {d}, {a}, {r};",
            d = out(reg64) remote,
            a = in(reg64) local as u64,
            r = in(reg32) rank as u32,
            options(pure, nomem, nostack, preserves_flags),
        )
    };
    remote as *mut f32
}
