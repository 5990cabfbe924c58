//! Bulk asynchronous copies from global to block-shared memory (`cp.async.bulk`, the
//! Hopper tensor memory accelerator): one instruction of one lane moves a whole piece of
//! a weight row (up to [`PIECE_BYTES`]) and reports the bytes it delivered to an
//! mbarrier, so a warp keeps kilobytes in flight with no register held for them (with
//! 16-byte loads in registers, four per lane: 2 KiB a warp). The rows are read once per
//! step, so their L2 lines go first ([`evict_first`]).
//!
//! Each warp owns its slots and its mbarriers: lane 0 requests, all lanes wait on the
//! piece's barrier and read, and no block barrier is ever needed. Pieces take the slots
//! in turn, and barriers in turn from a set of [`PIECE_BARRIERS`], so that every piece
//! of a GPT-2 row has a barrier of its own that completes one phase.

use crate::abi::GemvParams;
use crate::abi::Half;
use crate::primitives::{Half8, WARP, evict_first, load_v4};
use core::arch::asm;

/// 512-byte warp chunks (16 bytes a lane) per piece: a 1600-wide row (200 vectors) is
/// one piece, a 6400-wide one four.
pub const PIECE_CHUNKS: usize = GemvParams::STAGED_PIECE_CHUNKS as usize;
/// 16-byte vectors per piece.
pub const PIECE_VECTORS: usize = PIECE_CHUNKS * WARP;
/// Bytes per piece (and per slot).
pub const PIECE_BYTES: usize = PIECE_VECTORS * 16;
/// Warps per block a [`WarpStage`] has room for.
pub const STAGE_WARPS: usize = GemvParams::WARPS_PER_BLOCK as usize;
/// mbarriers per warp of the static stages: piece p completes phase p / 8 of barrier
/// p % 8 (a 6400-wide row, four pieces, uses four barriers once each; compute-sanitizer's
/// racecheck flagged the second phase of a barrier shared by the pieces of one slot,
/// though the GPU tests passed).
pub const PIECE_BARRIERS: usize = 8;

// The widest stage (two slots a warp) is static shared memory, which ptxas caps at 48 KiB
// a block.
const _: () = assert!(STAGE_WARPS * 2 * PIECE_BYTES <= 48 * 1024);

/// One warp's `SLOTS` piece slots in block-shared memory and its [`PIECE_BARRIERS`]
/// mbarriers, as shared-window addresses.
#[derive(Clone, Copy)]
pub struct WarpStage<const SLOTS: usize> {
    slots: u32,
    barriers: u32,
}

/// Declares the block's slots and barriers (`SLOTS` and [`PIECE_BARRIERS`] a warp) in
/// inline asm, like [`crate::primitives::block_shared_f32`], and returns `warp`'s share. Call
/// it once per kernel, at its top: every inlined copy declares another array.
macro_rules! declare_stage {
    ($slots:literal, $warp:expr) => {{
        let (slots, barriers): (u32, u32);
        // SAFETY: declares block-shared memory and takes its shared-window addresses.
        unsafe {
            core::arch::asm!(
                "{{ .shared .align 128 .b8 stage_slots[{bytes}]; .shared .align 8 .b64 stage_barriers[{n}]; mov.u32 {s}, stage_slots; mov.u32 {b}, stage_barriers; }}",
                bytes = const STAGE_WARPS * $slots * PIECE_BYTES,
                n = const STAGE_WARPS * PIECE_BARRIERS,
                s = out(reg32) slots,
                b = out(reg32) barriers,
                options(pure, nomem, nostack, preserves_flags),
            );
        }
        WarpStage::<$slots> {
            slots: slots + ($warp * $slots * PIECE_BYTES) as u32,
            barriers: barriers + ($warp * PIECE_BARRIERS * 8) as u32,
        }
    }};
}

// The block's dynamic shared memory, sized per launch by the host: the nvptx backend
// emits module-scope asm as is, and PTX declares no `.extern .shared` inside a function.
core::arch::global_asm!(".extern .shared .align 128 .b8 dynamic_shared[];");

// The static stage is what the host counts on when it picks the sized one.
const _: () = assert!(
    PIECE_BARRIERS == GemvParams::STAGED_PIECE_BARRIERS as usize
        && STAGE_WARPS * (PIECE_BYTES + PIECE_BARRIERS * 8)
            == GemvParams::STATIC_STAGE_BYTES as usize
);

/// This warp's stage in a block of [`GemvParams::SIZED_WARPS`] warps whose dynamic shared
/// memory holds one mbarrier a warp and then one slot of `slot_bytes` a warp (see
/// [`GemvParams::sized_stage_bytes`]), for rows of one piece: the piece completes the
/// barrier's first phase, the only one it needs.
#[inline(always)]
pub fn warp_stage_sized(warp: usize, slot_bytes: usize) -> WarpStage<1> {
    let base: u32;
    // SAFETY: takes the shared-window address of the dynamic shared memory.
    unsafe {
        asm!(
            "mov.u32 {s}, dynamic_shared;",
            s = out(reg32) base,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    WarpStage::<1> {
        slots: base + GemvParams::SIZED_BARRIER_BYTES + (warp * slot_bytes) as u32,
        barriers: base + (warp * 8) as u32,
    }
}

/// This warp's stage of one slot (rows of up to [`PIECE_VECTORS`] vectors in flight
/// whole).
#[inline(always)]
pub fn warp_stage_1(warp: usize) -> WarpStage<1> {
    declare_stage!(1, warp)
}

/// This warp's stage of two slots (a wide row's next piece lands while one is used).
#[inline(always)]
pub fn warp_stage_2(warp: usize) -> WarpStage<2> {
    declare_stage!(2, warp)
}

impl<const SLOTS: usize> WarpStage<SLOTS> {
    /// The slot piece `piece` lands in.
    fn slot(&self, piece: usize) -> u32 {
        self.slots + ((piece % SLOTS) * PIECE_BYTES) as u32
    }

    /// The barrier piece `piece` completes.
    fn barrier(&self, piece: usize) -> u32 {
        self.barriers + ((piece % PIECE_BARRIERS) * 8) as u32
    }

    /// Initializes the barriers a row of `pieces` pieces uses (one arrival each: the
    /// requesting lane's). Lane 0 only, before [`crate::primitives::sync_warp`] and any request.
    pub fn init(&self, pieces: usize) {
        for b in 0..pieces.min(PIECE_BARRIERS) {
            // SAFETY: the barrier is this warp's, not in use yet.
            unsafe {
                asm!(
                    "mbarrier.init.shared::cta.b64 [{b}], 1;",
                    b = in(reg32) self.barrier(b),
                    options(nostack, preserves_flags),
                )
            };
        }
        // SAFETY: no operands; makes the initialized barriers visible to the copy engine.
        unsafe {
            asm!(
                "fence.mbarrier_init.release.cluster;",
                options(nostack, preserves_flags)
            )
        };
    }

    /// Requests piece `piece`, `vectors` [`Half8`] from `src`, into its slot (lane 0
    /// only). The piece `SLOTS` before it, which used the slot, must have been read by
    /// every lane (a [`crate::primitives::sync_warp`] since).
    ///
    /// # Safety
    /// `src` is 16-byte aligned global memory holding `vectors <= PIECE_VECTORS` vectors
    /// that no kernel writes during this one.
    #[inline(always)]
    pub unsafe fn request(&self, piece: usize, src: *const Half, vectors: usize) {
        // SAFETY: the caller's promise. The proxy fence orders the lanes' earlier reads
        // of the slot (generic proxy) before the copy engine's writes into it.
        unsafe {
            asm!(
                "{{ .reg .u64 g; .reg .b64 state; cvta.to.global.u64 g, {p}; fence.proxy.async.shared::cta; mbarrier.arrive.expect_tx.shared::cta.b64 state, [{b}], {n}; cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint [{d}], [g], {n}, [{b}], {policy}; }}",
                p = in(reg64) src,
                policy = in(reg64) evict_first(),
                b = in(reg32) self.barrier(piece),
                d = in(reg32) self.slot(piece),
                n = in(reg32) (vectors * 16) as u32,
                options(nostack, preserves_flags),
            )
        };
    }

    /// Waits until piece `piece` has landed; it is then visible to this lane.
    #[inline(always)]
    pub fn wait(&self, piece: usize) {
        let parity = ((piece / PIECE_BARRIERS) & 1) as u32;
        loop {
            let done: u32;
            // SAFETY: the barrier is this warp's and initialized; try_wait acquires the
            // copy's writes (no `nomem`: later reads must stay after it).
            unsafe {
                asm!(
                    "{{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [{b}], {parity}; selp.u32 {done}, 1, 0, p; }}",
                    b = in(reg32) self.barrier(piece),
                    parity = in(reg32) parity,
                    done = out(reg32) done,
                    options(nostack, preserves_flags),
                )
            };
            if done != 0 {
                break;
            }
        }
    }

    /// Vector `i` of piece `piece`.
    ///
    /// # Safety
    /// The piece has been waited for, holds more than `i` vectors, and its slot has not
    /// been requested again since.
    #[inline(always)]
    pub unsafe fn read(&self, piece: usize, i: usize) -> Half8 {
        // SAFETY: the caller's promise. Not `pure`: it must stay between the wait before
        // it and the request that refills the slot after it.
        unsafe {
            load_v4!(
                "ld.shared.v4.b32 {{{a}, {b}, {c}, {d}}}, [{s}];",
                s = in(reg32) self.slot(piece) + (i * 16) as u32,
                options(readonly, nostack, preserves_flags),
            )
        }
    }
}
