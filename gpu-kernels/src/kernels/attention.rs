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

use crate::abi::{AttentionParams, HEAD_DIM};
use crate::primitives::cluster::{
    FirstBlockArrivals, cluster_arrive_relaxed, cluster_rank, cluster_wait,
};
use crate::primitives::{
    Half8, LOG2_E, WARP, block_index, block_shared_f32, exp2, fence_gpu, lane, load_l2_pair, load8,
    load8_stream, release_dependents, shuffle, shuffle_xor, sync_threads, thread_index, trap,
    wait_for_previous_kernels, warp_in_block, warp_max, warp_sum,
};
use core::f32::math::mul_add;
use core::sync::atomic::{AtomicU32, Ordering};

const HD: usize = HEAD_DIM as usize;
const SPLIT: usize = AttentionParams::SPLIT as usize;
const WARPS_PER_BLOCK: usize = AttentionParams::WARPS_PER_BLOCK as usize;

const _: () = assert!(
    WARPS_PER_BLOCK * (HD + 2) <= crate::primitives::BLOCK_SHARED_F32,
    "a block's partials fit its shared scratch"
);

/// See [`AttentionParams`].
///
/// # Safety
/// The pointers hold the shapes [`AttentionParams`] documents and pass its `check`;
/// `counters` are zero (every launch leaves them so).
#[unsafe(no_mangle)]
pub unsafe extern "ptx-kernel" fn attention_f16(p: AttentionParams) {
    // Declared at the top, once per kernel (see block_shared_f32).
    let scratch = block_shared_f32();
    release_dependents();
    let (block, head, b) = block_index();
    let warp = warp_in_block();
    // SAFETY: b < batch and head < n_head (the grid's z and y).
    unsafe {
        if AttentionParams::splits(p.context_bucket) as usize <= WARPS_PER_BLOCK {
            // One block holds every split of a (sequence, head): combine them here.
            if p.settled.is_null() {
                wait_for_previous_kernels();
                attend_in_block::<false>(&p, b, head, warp, scratch, EarlyLoads::NONE);
            } else {
                let early = early_loads(&p, b, head, warp);
                wait_for_previous_kernels();
                attend_in_block::<true>(&p, b, head, warp, scratch, early);
            }
        } else {
            // Buckets past 1024 positions (past every GPT-2's context): no early rows,
            // which spilled here (16 bytes) with the combine through memory.
            wait_for_previous_kernels();
            attend_through_memory(&p, b, head, block * WARPS_PER_BLOCK + warp);
        }
    }
}

/// [`attention_f16`] when one block holds all splits of a (sequence, head) (context
/// buckets up to 128 positions): warp w computes split w, the partials meet in block
/// shared memory, and warp 0 combines them after a block barrier, instead of the
/// global-memory partials, fence, atomic counter and L2 round trips of the general
/// path. The same sums in the same order: the results are identical.
///
/// # Safety
/// As [`attention_f16`], with `b < batch`, `head < n_head`, the launch's splits at most
/// WARPS_PER_BLOCK, `scratch` the block's shared scratch and `early` split `warp`'s.
/// Every thread of the block calls it.
#[inline(always)]
unsafe fn attend_in_block<const EARLY: bool>(
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
            let part = split_partial::<EARLY>(p, b, head, warp, len, early);
            store_partial(&part, scratch, stats, warp, lane);
        }
        sync_threads();
        if warp == 0 {
            let row = b * p.n_head as usize + head;
            combine::<false>(stats, scratch, used, lane, p.out.add(row * HD));
        }
    }
}

const _: () = assert!(
    AttentionParams::MAX_CLUSTER_BLOCKS as usize * WARPS_PER_BLOCK * (HD + 2)
        <= crate::primitives::BLOCK_SHARED_F32,
    "the largest cluster's partials fit its first block's shared scratch"
);

/// [`attention_f16`] for context buckets of 129..=1024 positions, launched as clusters of
/// `CB` blocks along x (one cluster per sequence and head; the grid's x is one cluster):
/// warp w of block r computes split 4 r + w; the first block's warps write their
/// partials into its shared memory, the other blocks send theirs there
/// ([`FirstBlockArrivals::send_pair`]) and are done, and the first block, once every
/// byte is in, combines the partials over its four warps ([`combine_over_warps`]). No
/// global partials, fence, atomic counter or L2 round trips, as [`attend_in_block`] for
/// one block. Deterministic; the combine adds in another order than the other paths'
/// (so the results agree with theirs to rounding).
///
/// Measured (H100, PERF.md versions 22 and 24): with one warp combining after a second
/// cluster barrier, attention at context 1024 took 5.6 us at batch 1 and 26.5 / 91 us at
/// batch 8 / 32; the four-warp combine made batch 1 4.9 us, arrivals instead of that
/// barrier batch 8 and 32 24.0 and 84 us, and the sends instead of remote stores and a
/// release arrival 4.1 / 21.8 / 79.6 us.
///
/// # Safety
/// As [`attention_f16`], launched as clusters of `CB` blocks (the entry's
/// `.reqnctapercluster`, [`crate::abi::cluster_dims`]) for a bucket of at most
/// `CB * 4 * 32` positions; `scratch` is the block's shared scratch and `arrivals` its
/// arrival barrier, both declared once at the entry's top; `EARLY` requests the settled
/// rows before the programmatic wait (`settled` is not null).
#[inline(always)]
unsafe fn attend_in_cluster<const CB: usize, const EARLY: bool>(
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
            early_loads(p, b, head, split)
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
            Some(split_partial::<EARLY>(p, b, head, split, len, early))
        } else {
            None
        };
        cluster_wait();
        match part {
            Some(part) if first => store_partial(&part, scratch, stats, split, lane),
            Some(part) => {
                arrivals.send_pair(scratch.add(split * HD + 2 * lane), part.acc);
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
            arrivals.expect_and_arrive(sent * PARTIAL_BYTES);
        }
        arrivals.wait();
        let row = b * p.n_head as usize + head;
        combine_over_warps(stats, scratch, used, (warp, lane), p.out.add(row * HD));
    }
}

/// The bytes of one split's partial: its HD outputs and its (max, sum) pair.
const PARTIAL_BYTES: u32 = (HD as u32 + 2) * 4;

/// [`combine`] for the cluster path, spread over the first block's
/// [`WARPS_PER_BLOCK`] warps: warp w writes dimensions `16 w..16 w + 16`, and lane
/// `8 q + i` of it adds dimension pair i of splits `8 q..8 q + 8`, then the four lanes of
/// a pair add their sums (a fixed tree: the same bits every launch). One warp alone made
/// the combine a chain of 32 dependent steps, ~1.2 us of an attention launch at context
/// 1024 (H100, PERF.md version 22).
///
/// # Safety
/// As [`combine`], with the partials in this block's shared memory, `used <= 32`, and
/// every lane of the block's first [`WARPS_PER_BLOCK`] warps calling it.
#[inline(always)]
unsafe fn combine_over_warps(
    stats: *const f32,
    outs: *const f32,
    used: usize,
    (warp, lane): (usize, usize),
    out_row: *mut f16,
) {
    const GROUP: usize = WARP / 4;
    const _: () = assert!(HD == 16 * WARPS_PER_BLOCK && GROUP * 4 == WARP);
    // SAFETY: the caller's promise: only the stats and partials of used splits are read.
    unsafe {
        // Lane s holds split s's statistics; every warp takes the same max and total.
        let [m, l] = if lane < used {
            *(stats.add(lane * 2) as *const [f32; 2])
        } else {
            [f32::NEG_INFINITY, 0.0]
        };
        let max = warp_max(m);
        let rescale = if lane < used { exp2(m - max) } else { 0.0 };
        let total = warp_sum(l * rescale);
        let (quarter, pair) = (lane / GROUP, lane % GROUP);
        let dim = 16 * warp + 2 * pair;
        let (mut acc0, mut acc1) = (0.0f32, 0.0f32);
        for i in 0..GROUP {
            let split = quarter * GROUP + i;
            let r = shuffle(rescale, split as u32);
            if split < used {
                let [v0, v1] = *(outs.add(split * HD + dim) as *const [f32; 2]);
                acc0 = mul_add(v0, r, acc0);
                acc1 = mul_add(v1, r, acc1);
            }
        }
        let mut mask = GROUP as u32;
        while mask < WARP as u32 {
            acc0 += shuffle_xor(acc0, mask);
            acc1 += shuffle_xor(acc1, mask);
            mask *= 2;
        }
        if quarter == 0 {
            let inv = 1.0 / total;
            *out_row.add(dim) = (acc0 * inv) as f16;
            *out_row.add(dim + 1) = (acc1 * inv) as f16;
        }
    }
}

/// The cluster entries, by blocks per cluster (`AttentionParams::CLUSTER_ENTRIES`).
macro_rules! cluster_entries {
    ($($name:ident = $blocks:literal),*) => {$(
        /// [`attention_f16`] combining in a cluster of this many blocks.
        ///
        /// # Safety
        /// See `attend_in_cluster`.
        #[unsafe(no_mangle)]
        pub unsafe extern "ptx-kernel" fn $name(p: AttentionParams) {
            // Declared once, outside the two instances (see block_shared_f32).
            let scratch = block_shared_f32();
            let arrivals = FirstBlockArrivals::declare();
            unsafe {
                if p.settled.is_null() {
                    attend_in_cluster::<$blocks, false>(&p, scratch, arrivals)
                } else {
                    attend_in_cluster::<$blocks, true>(&p, scratch, arrivals)
                }
            }
        }
    )*};
}

cluster_entries!(
    attention_cluster2_f16 = 2,
    attention_cluster4_f16 = 4,
    attention_cluster8_f16 = 8
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

/// Writes a split's partial as [`combine`] reads it: this lane's two outputs of slot
/// `slot` of `outs` (HD each), and lane 0 the (max, sum) pair of slot `slot` of `stats`.
///
/// # Safety
/// `outs` and `stats` are shared memory (this block's or a cluster peer's) with room for
/// slot `slot`.
#[inline(always)]
unsafe fn store_partial(part: &Partial, outs: *mut f32, stats: *mut f32, slot: usize, lane: usize) {
    // SAFETY: the caller's promise.
    unsafe {
        let out = outs.add(slot * HD + 2 * lane);
        *out = part.acc[0];
        *out.add(1) = part.acc[1];
        if lane == 0 {
            *stats.add(slot * 2) = part.max;
            *stats.add(slot * 2 + 1) = part.sum;
        }
    }
}

/// One warp's share of [`attention_f16`] where no cluster holds every split of a
/// (sequence, head) (context buckets past 1024 positions): split `split` of (sequence `b`,
/// head `head`) into the global partial buffers, and the combine if it is the last of
/// them to finish. Splits past the sequence's length return at once.
///
/// # Safety
/// As [`attention_f16`], with `b < batch` and `head < n_head`. All 32 lanes call it
/// together.
#[inline(always)]
unsafe fn attend_through_memory(p: &AttentionParams, b: usize, head: usize, split: usize) {
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
        let part = split_partial::<false>(p, b, head, split, len, EarlyLoads::NONE);
        let partial = p.partial_out.add(slot * HD + 2 * lane);
        *partial = part.acc[0];
        *partial.add(1) = part.acc[1];
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
        combine::<true>(
            p.partial_stats.add(first_slot * 2),
            p.partial_out.add(first_slot * HD),
            used,
            lane,
            p.out.add((b * n_head + head) * HD),
        );
    }
}

/// One split's share of the attention: this lane's two output dimensions' `sum_t p_t v_t`
/// and the split's max score (log2 units) and `sum_t p_t`.
struct Partial {
    acc: [f32; 2],
    max: f32,
    sum: f32,
}

/// Split `split` of (sequence `b`, head `head`) of length `len`.
///
/// # Safety
/// As [`attention_f16`], with `b < batch`, `head < n_head`, `split < len.div_ceil(SPLIT)`
/// and `len` checked against the bucket; with `EARLY`, `early` holds this split's rows
/// below `early.rows` (else it is unused: a separate instance, so that a launch without
/// settled rows, batch 32's, keeps the loads in the order that is fastest there).
#[inline(always)]
unsafe fn split_partial<const EARLY: bool>(
    p: &AttentionParams,
    b: usize,
    head: usize,
    split: usize,
    len: usize,
    early: EarlyLoads,
) -> Partial {
    let start = split * SPLIT;
    let count = (len - start).min(SPLIT);
    let n_head = p.n_head as usize;
    let lane = lane();
    let (k_row, v_pairs) = split_rows(p, b, head, split);

    // SAFETY: b < batch, head < n_head, positions < len <= context_bucket <= capacity.
    unsafe {
        // The loads of the split are issued before any is used: this lane's K row and
        // the V rows' pairs of this lane's dimensions, but for the rows `early` already
        // holds. Rows past the length are 0.
        let valid = lane < count;
        let mut k = early.k;
        if !EARLY || lane >= early.rows {
            k = load_k_row(k_row, valid);
        }
        let v = if EARLY {
            load_v_rows(early.v, v_pairs, early.rows, count)
        } else {
            load_v_rows([0; SPLIT], v_pairs, 0, count)
        };

        // With EARLY, q is what the split waits for after the programmatic wait: one
        // 16-byte load a lane (lane l holds vector l % 8), passed round by shuffles, one
        // L2 round trip instead of a few. Without EARLY (batch 32) the shuffles are
        // slower than eight loads a lane.
        let q_row = p.q.add((b * n_head + head) * HD);
        let q_own = if EARLY {
            load8(q_row, lane % (HD / 8))
        } else {
            Half8([0.0; 8])
        };
        // Four chains of products instead of one chain of 64 dependent ones.
        let mut dots = [0.0f32; 4];
        for i in 0..HD / 8 {
            let q = if EARLY {
                shuffle_half8(q_own, i)
            } else {
                load8(q_row, i)
            }
            .to_f32();
            let k = k[i].to_f32();
            for j in 0..8 {
                dots[i % 4] = mul_add(q[j], k[j], dots[i % 4]);
            }
        }
        // Scores in log2 units (scaled by scale * log2(e)), so p = 2^(s - max).
        let dot = ((dots[0] + dots[1]) + (dots[2] + dots[3])) * (p.scale * LOG2_E);
        let score = if valid { dot } else { f32::NEG_INFINITY };
        let max = warp_max(score);
        let weight = if valid { exp2(score - max) } else { 0.0 };
        let sum = warp_sum(weight);
        // Even and odd rows in separate chains, halving the dependent steps.
        let mut acc = [[0.0f32; 2]; 2];
        for j in 0..SPLIT {
            let pj = shuffle(weight, j as u32);
            let [v0, v1] = unpack_pair(v[j]);
            let chain = &mut acc[j % 2];
            chain[0] = mul_add(pj, v0, chain[0]);
            chain[1] = mul_add(pj, v1, chain[1]);
        }
        Partial {
            acc: [acc[0][0] + acc[1][0], acc[0][1] + acc[1][1]],
            max,
            sum,
        }
    }
}

/// Split `split` of (sequence `b`, head `head`) in the cache: this lane's K row (its
/// position in the split) and the split's first V row at this lane's dimension pair.
/// Addresses only; rows past a length are never read through them.
#[inline(always)]
fn split_rows(
    p: &AttentionParams,
    b: usize,
    head: usize,
    split: usize,
) -> (*const f16, *const u32) {
    let head_offset = (b * p.n_head as usize + head) * p.capacity as usize * HD;
    let start = split * SPLIT;
    (
        p.k.wrapping_add(head_offset + (start + lane()) * HD),
        p.v.wrapping_add(head_offset + start * HD + 2 * lane()) as *const u32,
    )
}

/// A K row (zeros unless `valid`), requested through the read-only path.
///
/// # Safety
/// `k_row` holds HD halves, 16-byte aligned, when `valid`.
#[inline(always)]
unsafe fn load_k_row(k_row: *const f16, valid: bool) -> [Half8; HD / 8] {
    let mut k = [Half8([0.0; 8]); HD / 8];
    if valid {
        for i in 0..HD / 8 {
            // SAFETY: the caller's promise.
            k[i] = unsafe { load8_stream(k_row, i) };
        }
    }
    k
}

/// A split's V pairs: `v` with the rows from `from` on loaded and those past `count` 0
/// (rows below `from` keep what `v` holds: loaded earlier). A pair stays packed in one
/// 32-bit register until it is used: as two f16 values it would take two.
///
/// # Safety
/// `v_pairs` points at the split's first row's pair of this lane; rows below `count`
/// are readable, `HD / 2` pairs apart.
#[inline(always)]
unsafe fn load_v_rows(
    mut v: [u32; SPLIT],
    v_pairs: *const u32,
    from: usize,
    count: usize,
) -> [u32; SPLIT] {
    // SAFETY: only rows below count are read.
    unsafe {
        for row in 0..SPLIT {
            if row >= count {
                v[row] = 0;
            } else if row >= from {
                v[row] = *v_pairs.add(row * HD / 2);
            }
        }
    }
    v
}

/// What one split knows and loads before the programmatic wait: its sequence's length
/// (settled + fresh rows, [`AttentionParams::settled`]), its settled rows (`rows` of
/// them), this lane's K row if it is one of them and their V pairs of this lane's
/// dimensions.
struct EarlyLoads {
    len: usize,
    rows: usize,
    k: [Half8; HD / 8],
    v: [u32; SPLIT],
}

impl EarlyLoads {
    /// Nothing loaded early: launches without settled rows and the buckets past 1024
    /// positions.
    const NONE: Self = EarlyLoads {
        len: 0,
        rows: 0,
        k: [Half8([0.0; 8]); HD / 8],
        v: [0; SPLIT],
    };
}

/// Split `split`'s early share of (sequence `b`, head `head`): the length, and the
/// settled rows requested: data no kernel of the step writes, so this may run before
/// the programmatic wait.
///
/// # Safety
/// `b < batch`, `head < n_head`; `settled` is not null and as [`AttentionParams`]
/// documents it.
#[inline(always)]
unsafe fn early_loads(p: &AttentionParams, b: usize, head: usize, split: usize) -> EarlyLoads {
    // SAFETY: b < batch; rows below the bucket lie inside the cache (a count of 0 loads
    // nothing).
    unsafe {
        let settled = (*p.settled.add(b) as usize).min(p.context_bucket as usize);
        let rows = settled.saturating_sub(split * SPLIT).min(SPLIT);
        let (k_row, v_pairs) = split_rows(p, b, head, split);
        EarlyLoads {
            len: settled + p.fresh_rows as usize,
            rows,
            k: load_k_row(k_row, lane() < rows),
            v: load_v_rows([0; SPLIT], v_pairs, 0, rows),
        }
    }
}

/// Lane `src`'s eight values of `v`, in every lane (four 32-bit shuffles).
#[inline(always)]
fn shuffle_half8(v: Half8, src: usize) -> Half8 {
    // SAFETY: Half8 is 16 plain bytes either way.
    let words: [u32; 4] = unsafe { core::mem::transmute(v) };
    let words = words.map(|w| shuffle(f32::from_bits(w), src as u32).to_bits());
    // SAFETY: as above.
    unsafe { core::mem::transmute::<[u32; 4], Half8>(words) }
}

/// The two fp16 values packed in `bits` (low half first, as they lie in memory), widened.
#[inline(always)]
fn unpack_pair(bits: u32) -> [f32; 2] {
    [
        f16::from_bits(bits as u16) as f32,
        f16::from_bits((bits >> 16) as u16) as f32,
    ]
}

/// `out = sum_s 2^(m_s - M) acc_s / sum_s 2^(m_s - M) l_s` over `used` splits whose
/// (max, sum) pairs start at `stats` and partial outputs (HD each) at `outs`, written to
/// `out_row`, this (sequence, head)'s output; lane l owns dimensions 2l and 2l+1.
/// `THROUGH_L2`: the partials are in global memory, written by other SMs, and read
/// with `ld.global.cg`; else they are in this block's shared memory.
///
/// # Safety
/// The partials of completed splits, ordered before this call (fence or block barrier).
#[inline(always)]
unsafe fn combine<const THROUGH_L2: bool>(
    stats: *const f32,
    outs: *const f32,
    used: usize,
    lane: usize,
    out_row: *mut f16,
) {
    let pair = |ptr: *const f32| {
        // SAFETY: the caller's promise: ptr is one of the partials' pairs.
        unsafe {
            if THROUGH_L2 {
                load_l2_pair(ptr)
            } else {
                *(ptr as *const [f32; 2])
            }
        }
    };
    // Lane s owns the statistics of splits s, s + 32, ... (one round for contexts up
    // to 1024): the overall max, then each split's rescale factor and the total.
    let mut max = f32::NEG_INFINITY;
    let mut s = lane;
    while s < used {
        max = max.max(pair(stats.wrapping_add(s * 2))[0]);
        s += WARP;
    }
    let max = warp_max(max);
    let (mut sum, mut acc0, mut acc1) = (0.0f32, 0.0f32, 0.0f32);
    let mut first = 0;
    while first < used {
        let round = (used - first).min(WARP);
        let rescale = if lane < round {
            let [m, l] = pair(stats.wrapping_add((first + lane) * 2));
            let r = exp2(m - max);
            sum = mul_add(l, r, sum);
            r
        } else {
            0.0
        };
        // The round's partial outputs are requested before any of them is used.
        let mut pairs = [[0.0f32; 2]; WARP];
        for j in 0..WARP {
            if j < round {
                pairs[j] = pair(outs.wrapping_add((first + j) * HD + 2 * lane));
            }
        }
        for j in 0..WARP {
            let r = shuffle(rescale, j as u32);
            if j < round {
                acc0 = mul_add(pairs[j][0], r, acc0);
                acc1 = mul_add(pairs[j][1], r, acc1);
            }
        }
        first += WARP;
    }
    let inv_sum = 1.0 / warp_sum(sum);
    // SAFETY: the caller's promise: out_row holds HD halves.
    unsafe {
        let out = out_row.add(2 * lane);
        *out = (acc0 * inv_sum) as f16;
        *out.add(1) = (acc1 * inv_sum) as f16;
    }
}

const _: () = assert!(SPLIT == WARP, "one score per lane");
