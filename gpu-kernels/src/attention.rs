//! Decode attention over the KV cache, split along the context (flash-decoding).
//!
//! Bytes: per sequence and head, len * HEAD_DIM * 2 * 2 (K and V) - the KV cache is the
//! whole cost; partials add splits * (HEAD_DIM + 2) * 4 * 2. FLOPs: 4 * len * HEAD_DIM.
//!
//! One warp per (sequence, head, split of 32 positions): lane t scores position t of the
//! split against q (its own K row, 8 16-byte loads), the warp takes the split's max and
//! sum of exp, then accumulates `sum_t p_t v_t` with lane l owning dimensions 2l and 2l+1
//! (each V row one coalesced 128-byte access). All K and V loads of a split are issued
//! before the first is used. The last split of a (sequence, head) to finish, found with an
//! atomic counter, rescales and sums all the splits: one launch, no second pass.

use crate::abi::{AttentionParams, HEAD_DIM};
use crate::device::{
    Half8, LOG2_E, WARP, block_index, exp2, fence_gpu, lane, load_l2_pair, load8, load8_l2,
    load8_stream, shuffle, trap, warp_in_block, warp_max, warp_sum,
};
use core::f32::math::mul_add;
use core::sync::atomic::{AtomicU32, Ordering};

const HD: usize = HEAD_DIM as usize;
const SPLIT: usize = AttentionParams::SPLIT as usize;

/// See [`AttentionParams`].
///
/// # Safety
/// The pointers hold the shapes [`AttentionParams`] documents and pass its `check`;
/// `counters` are zero (every launch leaves them so).
#[unsafe(no_mangle)]
pub unsafe extern "ptx-kernel" fn attention_f16(p: AttentionParams) {
    crate::device::start_after_previous_kernels();
    let (block, head, b) = block_index();
    let split = block * AttentionParams::WARPS_PER_BLOCK as usize + warp_in_block();
    // SAFETY: b < batch and head < n_head (the grid's z and y).
    unsafe { attend_split::<false, SPLIT>(&p, b, head, split) };
}

/// One warp's share of [`attention_f16`]: split `split` of (sequence `b`, head `head`),
/// and the combine if it is the last of them to finish. Splits past the sequence's
/// length return at once. `CACHE_JUST_WRITTEN`: the K rows are read through L2 instead of
/// the read-only path, which is only right for data no kernel writes while it runs (the
/// fused layer kernel writes the new K row earlier in the same launch); same values.
/// `ROUND` (dividing 32): V rows, and in the combine partial outputs, loaded at a time;
/// fewer registers for smaller rounds, the same sums in the same order whatever it is.
///
/// # Safety
/// As [`attention_f16`], with `b < batch` and `head < n_head`. All 32 lanes call it
/// together.
#[inline(always)]
pub unsafe fn attend_split<const CACHE_JUST_WRITTEN: bool, const ROUND: usize>(
    p: &AttentionParams,
    b: usize,
    head: usize,
    split: usize,
) {
    // SAFETY: b < batch; the length is checked before it indexes anything.
    let len = unsafe { *p.lengths.add(b) } as usize;
    if len == 0 || len > p.context_bucket as usize {
        trap();
    }
    let used = len.div_ceil(SPLIT);
    if split >= used {
        return;
    }
    let start = split * SPLIT;
    let count = (len - start).min(SPLIT);
    let n_head = p.n_head as usize;
    let lane = lane();
    let splits = AttentionParams::splits(p.context_bucket) as usize;
    let head_offset = (b * n_head + head) * p.capacity as usize * HD;
    let slot = (b * n_head + head) * splits + split;

    // SAFETY: b < batch, head < n_head, positions < len <= context_bucket <= capacity,
    // split < used <= splits.
    unsafe {
        // The loads of the split are issued before any is used: this lane's K row and
        // the first ROUND V rows' pairs of this lane's dimensions (all of them in the
        // attention kernel; with ROUND < 32, the K row goes in two halves).
        let valid = lane < count;
        let k_row = p.k.add(head_offset + (start + lane) * HD);
        let k_round = if ROUND == SPLIT { HD / 8 } else { HD / 16 };
        let mut k = load_k_round::<CACHE_JUST_WRITTEN>(k_row, 0, k_round, valid);
        // This lane's dimension pairs of the V rows, in rounds of ROUND rows; the first
        // round goes out with K.
        let v_pairs = p.v.add(head_offset + start * HD + 2 * lane) as *const u32;
        let mut v = load_v_round::<ROUND>(v_pairs, 0, count);

        // Scores in log2 units: q is scaled by scale * log2(e) once, so p = 2^(s - max).
        let q_row = p.q.add((b * n_head + head) * HD);
        let q_scale = p.scale * LOG2_E;
        let mut dot = 0.0;
        for i in 0..HD / 8 {
            if i > 0 && i % k_round == 0 {
                k = load_k_round::<CACHE_JUST_WRITTEN>(k_row, i, k_round, valid);
            }
            let q = load8(q_row, i).to_f32();
            let k = k[i % k_round].to_f32();
            for j in 0..8 {
                dot = mul_add(q[j] * q_scale, k[j], dot);
            }
        }
        let score = if valid { dot } else { f32::NEG_INFINITY };
        let max = warp_max(score);
        let weight = if valid { exp2(score - max) } else { 0.0 };
        let sum = warp_sum(weight);
        let (mut acc0, mut acc1) = (0.0f32, 0.0f32);
        for round in 0..SPLIT / ROUND {
            let first = round * ROUND;
            if round > 0 {
                v = load_v_round::<ROUND>(v_pairs, first, count);
            }
            for j in 0..ROUND {
                let pj = shuffle(weight, (first + j) as u32);
                let [v0, v1] = unpack_pair(v[j]);
                acc0 = mul_add(pj, v0, acc0);
                acc1 = mul_add(pj, v1, acc1);
            }
        }

        let partial = p.partial_out.add(slot * HD + 2 * lane);
        *partial = acc0;
        *partial.add(1) = acc1;
        if lane == 0 {
            *p.partial_stats.add(slot * 2) = max;
            *p.partial_stats.add(slot * 2 + 1) = sum;
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
        combine_splits::<ROUND>(p, (b * n_head + head) * splits, used, lane);
    }
}

/// Vectors `first..first + count` of a K row (the rest of the array 0; none unless
/// `valid`).
///
/// # Safety
/// `k_row` holds HD halves, 16-byte aligned, when `valid`; `first + count <= HD / 8`.
#[inline(always)]
unsafe fn load_k_round<const CACHE_JUST_WRITTEN: bool>(
    k_row: *const f16,
    first: usize,
    count: usize,
    valid: bool,
) -> [Half8; HD / 8] {
    let mut k = [Half8([0.0; 8]); HD / 8];
    if valid {
        for i in 0..HD / 8 {
            if i < count {
                // SAFETY: the caller's promise.
                k[i] = unsafe {
                    if CACHE_JUST_WRITTEN {
                        load8_l2(k_row, first + i)
                    } else {
                        load8_stream(k_row, first + i)
                    }
                };
            }
        }
    }
    k
}

/// Rows `first..first + R` of a split's V pairs (rows past `count` are 0). A pair stays
/// packed in one 32-bit register until it is used: as two f16 values it would take two.
///
/// # Safety
/// `v_pairs` points at the split's first row's pair of this lane; rows below `count`
/// are readable, `HD / 2` pairs apart.
#[inline(always)]
unsafe fn load_v_round<const R: usize>(
    v_pairs: *const u32,
    first: usize,
    count: usize,
) -> [u32; R] {
    let mut v = [0u32; R];
    // SAFETY: only rows below count are read.
    unsafe {
        if first + R <= count {
            for j in 0..R {
                v[j] = *v_pairs.add((first + j) * HD / 2);
            }
        } else {
            for j in 0..R {
                if first + j < count {
                    v[j] = *v_pairs.add((first + j) * HD / 2);
                }
            }
        }
    }
    v
}

/// The two fp16 values packed in `bits` (low half first, as they lie in memory), widened.
#[inline(always)]
fn unpack_pair(bits: u32) -> [f32; 2] {
    [
        f16::from_bits(bits as u16) as f32,
        f16::from_bits((bits >> 16) as u16) as f32,
    ]
}

/// `out = sum_s 2^(m_s - M) acc_s / sum_s 2^(m_s - M) l_s` over the `used` splits at
/// `first_slot`, written to this (sequence, head)'s output; lane l owns dimensions 2l
/// and 2l+1. Partials are read through L2 (`ld.global.cg`): other SMs wrote them.
///
/// # Safety
/// The slots hold partials of completed splits, ordered before this call by a fence.
#[inline(always)]
unsafe fn combine_splits<const R: usize>(
    p: &AttentionParams,
    first_slot: usize,
    used: usize,
    lane: usize,
) {
    // SAFETY: slots first_slot..first_slot + used exist; out has this head's row.
    unsafe {
        // Lane s owns the statistics of splits s, s + 32, ... (one round for contexts up
        // to 1024): the overall max, then each split's rescale factor and the total.
        let mut max = f32::NEG_INFINITY;
        let mut s = lane;
        while s < used {
            max = max.max(load_l2_pair(p.partial_stats.add((first_slot + s) * 2))[0]);
            s += WARP;
        }
        let max = warp_max(max);
        let (mut sum, mut acc0, mut acc1) = (0.0f32, 0.0f32, 0.0f32);
        let mut first = 0;
        while first < used {
            let round = (used - first).min(WARP);
            let rescale = if lane < round {
                let [m, l] = load_l2_pair(p.partial_stats.add((first_slot + first + lane) * 2));
                let r = exp2(m - max);
                sum = mul_add(l, r, sum);
                r
            } else {
                0.0
            };
            // The partial outputs are requested R at a time (all 32 in the attention
            // kernel) before any of them is used.
            for sub in 0..WARP / R {
                let mut pairs = [[0.0f32; 2]; R];
                for jj in 0..R {
                    let j = sub * R + jj;
                    if j < round {
                        let at = (first_slot + first + j) * HD + 2 * lane;
                        pairs[jj] = load_l2_pair(p.partial_out.add(at));
                    }
                }
                for jj in 0..R {
                    let j = sub * R + jj;
                    let r = shuffle(rescale, j as u32);
                    if j < round {
                        acc0 = mul_add(pairs[jj][0], r, acc0);
                        acc1 = mul_add(pairs[jj][1], r, acc1);
                    }
                }
            }
            first += WARP;
        }
        let inv_sum = 1.0 / warp_sum(sum);
        let row = first_slot / AttentionParams::splits(p.context_bucket) as usize;
        let out = p.out.add(row * HD + 2 * lane);
        *out = (acc0 * inv_sum) as f16;
        *out.add(1) = (acc1 * inv_sum) as f16;
    }
}

const _: () = assert!(SPLIT == WARP, "one score per lane");
