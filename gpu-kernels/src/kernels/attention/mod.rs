//! Decode attention over the KV cache, split along the context (flash-decoding).
//!
//! Bytes: per sequence and head, len * HEAD_DIM * 2 * 2 (K and V) - the KV cache is the
//! whole cost; partials add splits * (HEAD_DIM + 2) * 4 * 2. FLOPs: 4 * len * HEAD_DIM.
//!
//! One warp per (sequence, head, split of 32 positions): lane t scores position t of the
//! split against q (its own K row, 8 16-byte loads), the warp takes the split's max and
//! sum of exp, then accumulates `sum_t p_t v_t` with lane l owning dimensions 2l and 2l+1
//! (each V row one coalesced 128-byte access). All K and V loads of a split are issued
//! before the first is used, those of rows that were complete before the step
//! ([`AttentionParams::settled`]) before the programmatic wait. The last split of a
//! (sequence, head) to finish, found with an atomic counter, rescales and sums all the
//! splits: one launch, no second pass. Where one
//! block holds all splits of a (sequence, head) (context buckets up to 128 positions), the
//! splits meet in shared memory instead and the block's first warp combines them; where
//! one cluster of 2, 4 or 8 blocks does (up to 1024), they meet in the shared memory of
//! the cluster's first block, whose four warps combine them.

mod combine;
mod split;

use crate::abi::AttentionParams;
use crate::primitives::cluster::{
    FirstBlockArrivals, cluster_arrive_relaxed, cluster_rank, cluster_wait,
};
use crate::primitives::{
    WARP, block_index, block_shared_array, fence_gpu, lane, release_dependents, shuffle,
    sync_threads, thread_index, trap, wait_for_previous_kernels, warp_in_block,
};
use combine::{combine, combine_over_warps};
use core::sync::atomic::{AtomicU32, Ordering};
use split::{EarlyLoads, Partial, early_loads, split_partial};

/// The longest head the kernels take (`AttentionParams::HEAD_DIMS`): arrays sized by it
/// hold a shorter head's values in their front.
const MAX_HD: usize = 128;

const SPLIT: usize = AttentionParams::SPLIT as usize;

const WARPS_PER_BLOCK: usize = AttentionParams::WARPS_PER_BLOCK as usize;

/// f32 of a block's shared scratch: the partials of the largest cluster's splits, HD
/// outputs and a (max, sum) pair each.
const fn scratch_f32(hd: usize) -> usize {
    AttentionParams::MAX_CLUSTER_BLOCKS as usize * WARPS_PER_BLOCK * (hd + 2)
}

block_shared_array!(
    /// The shared scratch of the entries of heads of 64 (16.5 KiB).
    fn scratch_64 = "attention_scratch_64"[scratch_f32(64)]
);

block_shared_array!(
    /// The shared scratch of the entries of heads of 128 (32.5 KiB).
    fn scratch_128 = "attention_scratch_128"[scratch_f32(128)]
);

/// The block's shared scratch for heads of `HD`; call once, at the entry's top.
#[inline(always)]
fn scratch<const HD: usize>() -> *mut f32 {
    if HD == 64 {
        scratch_64()
    } else {
        scratch_128()
    }
}

/// See [`AttentionParams`]: heads of 64.
///
/// # Safety
/// The pointers hold the shapes [`AttentionParams`] documents and pass its `check`;
/// `counters` are zero (every launch leaves them so).
#[unsafe(no_mangle)]
pub unsafe extern "ptx-kernel" fn decode_attention(p: AttentionParams) {
    // SAFETY: the caller's promise.
    unsafe { attend::<64>(&p) }
}

/// [`decode_attention`] for heads of 128.
///
/// # Safety
/// As [`decode_attention`].
#[unsafe(no_mangle)]
pub unsafe extern "ptx-kernel" fn decode_attention_hd128(p: AttentionParams) {
    // SAFETY: the caller's promise.
    unsafe { attend::<128>(&p) }
}

/// [`decode_attention`] for heads of `HD`.
///
/// # Safety
/// As [`decode_attention`], with `head_dim == HD`.
#[inline(always)]
unsafe fn attend<const HD: usize>(p: &AttentionParams) {
    // Declared at the top, once per kernel (see block_shared_array).
    let scratch = scratch::<HD>();
    let p = *p;
    release_dependents();
    let (block, head, b) = block_index();
    let warp = warp_in_block();
    // SAFETY: b < batch and head < n_head (the grid's z and y).
    unsafe {
        if AttentionParams::splits(p.context_bucket) as usize <= WARPS_PER_BLOCK {
            // One block holds every split of a (sequence, head): combine them here.
            if p.settled.is_null() {
                wait_for_previous_kernels();
                attend_in_block::<HD, false>(&p, b, head, warp, scratch, EarlyLoads::NONE);
            } else {
                let early = early_loads::<HD>(&p, b, head, warp);
                wait_for_previous_kernels();
                attend_in_block::<HD, true>(&p, b, head, warp, scratch, early);
            }
        } else {
            // Buckets past 1024 positions (past every GPT-2's context): no early rows,
            // which spilled here (16 bytes) with the combine through memory.
            wait_for_previous_kernels();
            attend_through_memory::<HD>(&p, b, head, block * WARPS_PER_BLOCK + warp);
        }
    }
}

/// [`decode_attention`] when one block holds all splits of a (sequence, head) (context
/// buckets up to 128 positions): warp w computes split w, the partials meet in block
/// shared memory, and warp 0 combines them after a block barrier, instead of the
/// global-memory partials, fence, atomic counter and L2 round trips of the general
/// path. The same sums in the same order: the results are identical.
///
/// # Safety
/// As [`decode_attention`], with `b < batch`, `head < n_head`, the launch's splits at most
/// WARPS_PER_BLOCK, `scratch` the block's shared scratch and `early` split `warp`'s.
/// Every thread of the block calls it.
#[inline(always)]
unsafe fn attend_in_block<const HD: usize, const EARLY: bool>(
    p: &AttentionParams,
    b: usize,
    head: usize,
    warp: usize,
    scratch: *mut f32,
    early: EarlyLoads,
) {
    // Scratch layout: WARPS_PER_BLOCK partial outputs of HD, then their (max, sum) pairs.
    let stats = scratch.wrapping_add(WARPS_PER_BLOCK * HD);
    let lane = lane();
    // SAFETY: b < batch; the length is checked before it indexes anything; warp < used
    // <= splits <= WARPS_PER_BLOCK slots of scratch.
    unsafe {
        let (len, used) = if EARLY {
            checked(p, early.len)
        } else {
            checked_length(p, b)
        };
        if warp < used {
            let part = split_partial::<HD, EARLY>(p, b, head, warp, len, early);
            store_partial::<HD>(&part, scratch, stats, warp, lane);
        }
        sync_threads();
        if warp == 0 {
            let row = b * p.n_head as usize + head;
            combine::<HD, false>(stats, scratch, used, lane, p.out.add(row * HD));
        }
    }
}

/// [`decode_attention`] for context buckets of 129..=1024 positions, launched as clusters of
/// `CB` blocks along x (one cluster per sequence and head; the grid's x is one cluster):
/// warp w of block r computes split 4 r + w; the first block's warps write their
/// partials into its shared memory, the other blocks send theirs there
/// ([`FirstBlockArrivals::send_pair`]) and are done, and the first block, once every
/// byte is in, combines the partials over its four warps ([`combine_over_warps`]). No
/// global partials, fence, atomic counter or L2 round trips, as [`attend_in_block`] for
/// one block. Deterministic; the combine adds in another order than the other paths'
/// (so the results agree with theirs to rounding). Neither a second cluster barrier nor a
/// release fence stands between the sends and the combine (PERF.md, "Attention").
///
/// # Safety
/// As [`decode_attention`], launched as clusters of `CB` blocks (the entry's
/// `.reqnctapercluster`, [`crate::abi::cluster_dims`]) for a bucket of at most
/// `CB * 4 * 32` positions; `scratch` is the block's shared scratch and `arrivals` its
/// arrival barrier, both declared once at the entry's top; `EARLY` requests the settled
/// rows before the programmatic wait (`settled` is not null).
#[inline(always)]
unsafe fn attend_in_cluster<const HD: usize, const CB: usize, const EARLY: bool>(
    p: &AttentionParams,
    scratch: *mut f32,
    arrivals: FirstBlockArrivals,
) {
    let first = cluster_rank() == 0;
    if first && thread_index() == 0 {
        arrivals.init();
    }
    // Phase one of the cluster barrier ends once every block has started (and the first
    // has initialized its arrival barrier): only then may the others write into the
    // first block's shared memory. Arrived at now, waited for after the loads, so it
    // costs nothing on the critical path.
    cluster_arrive_relaxed();
    release_dependents();
    let (block, head, b) = block_index();
    let (warp, lane) = (warp_in_block(), lane());
    let split = block * WARPS_PER_BLOCK + warp;
    let stats = scratch.wrapping_add(CB * WARPS_PER_BLOCK * HD);
    // SAFETY: b < batch and head < n_head (the grid's z and y); the length is checked
    // before it indexes anything; split < used <= CB * WARPS_PER_BLOCK slots of the
    // first block's scratch, which runs until every byte sent has landed.
    unsafe {
        let early = if EARLY {
            early_loads::<HD>(p, b, head, split)
        } else {
            EarlyLoads::NONE
        };
        wait_for_previous_kernels();
        let (len, used) = if EARLY {
            checked(p, early.len)
        } else {
            checked_length(p, b)
        };
        let part = if split < used {
            Some(split_partial::<HD, EARLY>(p, b, head, split, len, early))
        } else {
            None
        };
        cluster_wait();
        match part {
            Some(part) if first => store_partial::<HD>(&part, scratch, stats, split, lane),
            Some(part) => {
                for pair in 0..HD / 64 {
                    let at = scratch.add(split * HD + HD / WARP * lane + 2 * pair);
                    arrivals.send_pair(at, [part.acc[2 * pair], part.acc[2 * pair + 1]]);
                }
                if lane == 0 {
                    arrivals.send_pair(stats.add(split * 2), [part.max, part.sum]);
                }
            }
            None => {}
        }
        if !first {
            return;
        }
        // The first block's own partials, by its barrier; the others', by their bytes.
        sync_threads();
        if thread_index() == 0 {
            let sent = used.saturating_sub(WARPS_PER_BLOCK) as u32;
            arrivals.expect_and_arrive(sent * partial_bytes(HD));
        }
        arrivals.wait();
        let row = b * p.n_head as usize + head;
        combine_over_warps::<HD>(stats, scratch, used, (warp, lane), p.out.add(row * HD));
    }
}

/// The bytes of one split's partial: its `hd` outputs and its (max, sum) pair.
const fn partial_bytes(hd: usize) -> u32 {
    (hd as u32 + 2) * 4
}

/// The cluster entries, by blocks per cluster (`AttentionParams::CLUSTER_ENTRIES`).
macro_rules! cluster_entries {
    ($($name:ident = ($hd:literal, $blocks:literal)),*) => {$(
        /// [`decode_attention`] combining in a cluster of this many blocks.
        ///
        /// # Safety
        /// See `attend_in_cluster`.
        #[unsafe(no_mangle)]
        pub unsafe extern "ptx-kernel" fn $name(p: AttentionParams) {
            // Declared once, outside the two instances (see block_shared_array).
            let scratch = scratch::<$hd>();
            let arrivals = FirstBlockArrivals::declare();
            unsafe {
                if p.settled.is_null() {
                    attend_in_cluster::<$hd, $blocks, false>(&p, scratch, arrivals)
                } else {
                    attend_in_cluster::<$hd, $blocks, true>(&p, scratch, arrivals)
                }
            }
        }
    )*};
}

cluster_entries!(
    decode_attention_cluster2 = (64, 2),
    decode_attention_cluster4 = (64, 4),
    decode_attention_cluster8 = (64, 8),
    decode_attention_hd128_cluster2 = (128, 2),
    decode_attention_hd128_cluster4 = (128, 4),
    decode_attention_hd128_cluster8 = (128, 8)
);

/// Sequence `b`'s length and the splits it uses; a length of 0 or over the bucket stops
/// the kernel (the host validates lengths; this keeps a bad one from reading out of
/// bounds).
///
/// # Safety
/// `b < batch`.
#[inline(always)]
unsafe fn checked_length(p: &AttentionParams, b: usize) -> (usize, usize) {
    // SAFETY: the caller's promise.
    checked(p, unsafe { *p.lengths.add(b) } as usize)
}

/// `len` and the splits it uses; a length of 0 or over the bucket stops the kernel.
#[inline(always)]
fn checked(p: &AttentionParams, len: usize) -> (usize, usize) {
    if len == 0 || len > p.context_bucket as usize {
        trap();
    }
    (len, len.div_ceil(SPLIT))
}

/// Writes a split's partial as [`combine()`] reads it: this lane's two outputs of slot
/// `slot` of `outs` (HD each), and lane 0 the (max, sum) pair of slot `slot` of `stats`.
///
/// # Safety
/// `outs` and `stats` are shared memory (this block's or a cluster peer's) with room for
/// slot `slot`.
#[inline(always)]
unsafe fn store_partial<const HD: usize>(
    part: &Partial,
    outs: *mut f32,
    stats: *mut f32,
    slot: usize,
    lane: usize,
) {
    // SAFETY: the caller's promise.
    unsafe {
        let out = outs.add(slot * HD + HD / WARP * lane);
        for d in 0..HD / WARP {
            *out.add(d) = part.acc[d];
        }
        if lane == 0 {
            *stats.add(slot * 2) = part.max;
            *stats.add(slot * 2 + 1) = part.sum;
        }
    }
}

/// One warp's share of [`decode_attention`] where no cluster holds every split of a
/// (sequence, head) (context buckets past 1024 positions): split `split` of (sequence `b`,
/// head `head`) into the global partial buffers, and the combine if it is the last of
/// them to finish. Splits past the sequence's length return at once.
///
/// # Safety
/// As [`decode_attention`], with `b < batch` and `head < n_head`. All 32 lanes call it
/// together.
#[inline(always)]
unsafe fn attend_through_memory<const HD: usize>(
    p: &AttentionParams,
    b: usize,
    head: usize,
    split: usize,
) {
    // SAFETY: b < batch.
    let (len, used) = unsafe { checked_length(p, b) };
    if split >= used {
        return;
    }
    let n_head = p.n_head as usize;
    let lane = lane();
    let splits = AttentionParams::splits(p.context_bucket) as usize;
    let slot = (b * n_head + head) * splits + split;
    // SAFETY: b < batch, head < n_head, split < used <= splits slots of the partials.
    unsafe {
        let part = split_partial::<HD, false>(p, b, head, split, len, EarlyLoads::NONE);
        let partial = p.partial_out.add(slot * HD + HD / WARP * lane);
        for d in 0..HD / WARP {
            *partial.add(d) = part.acc[d];
        }
        if lane == 0 {
            *p.partial_stats.add(slot * 2) = part.max;
            *p.partial_stats.add(slot * 2 + 1) = part.sum;
        }

        // The last split of a (sequence, head) to finish combines them all: every lane
        // fences its writes before lane 0 counts the split in, and the last one fences
        // again before reading the others' (the classic threadfence reduction).
        fence_gpu();
        let counter = p.counters.add(b * n_head + head);
        let arrived = if lane == 0 {
            AtomicU32::from_ptr(counter).fetch_add(1, Ordering::Relaxed)
        } else {
            0
        };
        let arrived = shuffle(f32::from_bits(arrived), 0).to_bits() as usize;
        if arrived + 1 != used {
            return;
        }
        fence_gpu();
        if lane == 0 {
            // Ready for the next launch, which is stream-ordered after this one.
            *counter = 0;
        }
        let first_slot = (b * n_head + head) * splits;
        combine::<HD, true>(
            p.partial_stats.add(first_slot * 2),
            p.partial_out.add(first_slot * HD),
            used,
            lane,
            p.out.add((b * n_head + head) * HD),
        );
    }
}
