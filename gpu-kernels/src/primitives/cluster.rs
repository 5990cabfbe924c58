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

/// Values sent into the cluster's first block (an mbarrier in its shared memory counting
/// bytes): the other blocks write their partials there with asynchronous remote stores
/// (`st.async`), each of which counts its bytes at that barrier once it has landed, and
/// may exit at once; only the first block waits, for the bytes it expects. No fence: a
/// release arrival after ordinary remote stores would take a GPU-wide memory barrier per
/// block, on every cluster's critical path.
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

    /// Makes the barrier, expecting the first block's one arrival
    /// ([`Self::expect_and_arrive`]). One thread of the first block, before its
    /// [`cluster_arrive_relaxed`]: the other blocks send only after the [`cluster_wait`]
    /// that follows it, which the init fence orders it before.
    #[inline(always)]
    pub fn init(&self) {
        // SAFETY: this block's barrier, not in use yet.
        unsafe {
            asm!(
                "mbarrier.init.shared::cta.b64 [{b}], 1; fence.mbarrier_init.release.cluster;",
                b = in(reg32) self.local,
                options(nostack, preserves_flags),
            )
        };
    }

    /// The first block's one arrival (one thread), expecting `bytes` from the other
    /// blocks' sends: the barrier's phase ends once both are in, in either order.
    #[inline(always)]
    pub fn expect_and_arrive(&self, bytes: u32) {
        // SAFETY: this block's initialized barrier.
        unsafe {
            asm!(
                "mbarrier.arrive.expect_tx.shared::cta.b64 _, [{b}], {n};",
                b = in(reg32) self.local,
                n = in(reg32) bytes,
                options(nostack, preserves_flags),
            )
        };
    }

    /// Writes `value` into the first block's shared memory, at the place `local` has in
    /// this block's, counting its 4 bytes at the first block's barrier.
    ///
    /// # Safety
    /// The first block has initialized the barrier, this thread has waited for the
    /// cluster barrier phase after that, and the first block expects these bytes;
    /// `local` is a generic address of this block's shared memory, 4-byte aligned.
    #[inline(always)]
    pub unsafe fn send(&self, local: *mut f32, value: f32) {
        let (at, barrier) = self.in_first_block(local);
        // SAFETY: the caller's promise.
        unsafe {
            asm!(
                "st.async.shared::cluster.mbarrier::complete_tx::bytes.b32 [{a}], {x}, [{m}];",
                a = in(reg32) at,
                m = in(reg32) barrier,
                x = in(reg32) value,
                options(nostack, preserves_flags),
            )
        };
    }

    /// [`Self::send`] for two values (8 bytes, `local` 8-byte aligned).
    ///
    /// # Safety
    /// As [`Self::send`].
    #[inline(always)]
    pub unsafe fn send_pair(&self, local: *mut f32, pair: [f32; 2]) {
        let (at, barrier) = self.in_first_block(local);
        // SAFETY: the caller's promise.
        unsafe {
            asm!(
                "st.async.shared::cluster.mbarrier::complete_tx::bytes.v2.f32 [{a}], {{{x}, {y}}}, [{m}];",
                a = in(reg32) at,
                m = in(reg32) barrier,
                x = in(reg32) pair[0],
                y = in(reg32) pair[1],
                options(nostack, preserves_flags),
            )
        };
    }

    /// The cluster-window addresses, in the first block, of the place `local` (a generic
    /// address of this block's shared memory) has in this block and of the barrier.
    #[inline(always)]
    fn in_first_block(&self, local: *mut f32) -> (u32, u32) {
        let (at, barrier): (u32, u32);
        // SAFETY: address arithmetic only (`mapa` computes, it does not access).
        unsafe {
            asm!(
                "{{ .reg .u64 g; .reg .b32 s; cvta.to.shared.u64 g, {p}; cvt.u32.u64 s, g; mapa.shared::cluster.u32 {a}, s, 0; mapa.shared::cluster.u32 {m}, {b}, 0; }}",
                p = in(reg64) local as u64,
                b = in(reg32) self.local,
                a = out(reg32) at,
                m = out(reg32) barrier,
                options(pure, nomem, nostack, preserves_flags),
            )
        };
        (at, barrier)
    }

    /// Waits, in the first block, for its arrival and every byte it expects (the
    /// barrier's first phase); the sent values are visible after it.
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
