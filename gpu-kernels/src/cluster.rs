//! Thread block clusters (sm_90): the blocks of a cluster run at once on one GPU
//! processing cluster, can wait for each other with a hardware barrier, and can read and
//! write each other's shared memory (distributed shared memory). A kernel gets its
//! cluster shape from `.reqnctapercluster` in its PTX entry ([`crate::abi::cluster_dims`],
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

/// Waits until every thread of the cluster has arrived at the current phase (what they
/// released before arriving is visible after it): after [`cluster_arrive_relaxed`], every
/// block of the cluster has started.
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

/// Arrivals counted in the cluster's first block (an mbarrier in its shared memory): the
/// other blocks say "my writes into your shared memory are done" and may exit, and only
/// the first block waits, where a cluster barrier makes every block wait for all.
#[derive(Clone, Copy)]
pub struct FirstBlockArrivals {
    /// This block's barrier, shared-window address (the first block's is the one used).
    local: u32,
}

impl FirstBlockArrivals {
    /// Declares the barrier: call once per kernel, at its top (every inlined copy of the
    /// asm declares another).
    #[inline(always)]
    pub fn declare() -> Self {
        let local: u32;
        // SAFETY: declares 8 bytes of block-shared memory and takes their address.
        unsafe {
            asm!(
                "{{ .shared .align 8 .b64 first_block_arrivals; mov.u32 {a}, first_block_arrivals; }}",
                a = out(reg32) local,
                options(pure, nomem, nostack, preserves_flags),
            )
        };
        FirstBlockArrivals { local }
    }

    /// Expects `count` arrivals. One thread of the first block, before its
    /// [`cluster_arrive_relaxed`]: the other blocks arrive only after the
    /// [`cluster_wait`] that follows it, which the init fence orders it before.
    #[inline(always)]
    pub fn init(&self, count: u32) {
        // SAFETY: this block's barrier, not in use yet.
        unsafe {
            asm!(
                "mbarrier.init.shared::cta.b64 [{b}], {n}; fence.mbarrier_init.release.cluster;",
                b = in(reg32) self.local,
                n = in(reg32) count,
                options(nostack, preserves_flags),
            )
        };
    }

    /// Arrives once at the first block's barrier, releasing this thread's earlier writes
    /// (into the first block's shared memory too) at cluster scope.
    ///
    /// # Safety
    /// The first block has initialized the barrier and this thread has waited for the
    /// cluster barrier phase after that; the first block waits for the arrivals before
    /// it exits.
    #[inline(always)]
    pub unsafe fn arrive(&self) {
        // SAFETY: the caller's promise; mapa gives the first block's barrier.
        unsafe {
            asm!(
                "{{ .reg .b32 r; mapa.shared::cluster.u32 r, {b}, 0; mbarrier.arrive.release.cluster.shared::cluster.b64 _, [r]; }}",
                b = in(reg32) self.local,
                options(nostack, preserves_flags),
            )
        };
    }

    /// Waits, in the first block, for every arrival (the barrier's first phase); the
    /// arriving threads' released writes are visible after it.
    #[inline(always)]
    pub fn wait(&self) {
        loop {
            let done: u32;
            // SAFETY: this block's initialized barrier; acquire at cluster scope (no
            // `nomem`: later reads stay after it).
            unsafe {
                asm!(
                    "{{ .reg .pred p; mbarrier.try_wait.parity.acquire.cluster.shared::cta.b64 p, [{b}], 0; selp.u32 {d}, 1, 0, p; }}",
                    b = in(reg32) self.local,
                    d = out(reg32) done,
                    options(nostack, preserves_flags),
                )
            };
            if done != 0 {
                break;
            }
        }
    }
}
