//! Decode attention over the KV cache, split along the context (flash-decoding).
//!
//! Bytes: per sequence and head, len * HEAD_DIM * 2 * 2 (K and V) - the KV cache is the
//! whole cost; partials add splits * (HEAD_DIM + 2) * 4 * 2. FLOPs: 4 * len * HEAD_DIM.
//!
//! First pass, one warp per (sequence, head, split of 32 positions): lane t scores
//! position t of the split against q (its own K row, 8 16-byte loads), the warp takes the
//! split's max and sum of exp, then accumulates `sum_t p_t v_t` with lane l owning
//! dimensions 2l and 2l+1, reading each V row as one coalesced 128-byte access. Second
//! pass: one block per (head, sequence) rescales and sums the splits.

use crate::abi::{AttentionParams, AttentionReduceParams, HEAD_DIM};
use crate::device::{
    LOG2_E, WARP, block_index, exp2, lane, load8, shuffle, thread_index, trap, warp_in_block,
    warp_max, warp_sum,
};
use core::f32::math::mul_add;

const HD: usize = HEAD_DIM as usize;
const SPLIT: usize = AttentionParams::SPLIT as usize;

/// See [`AttentionParams`].
///
/// # Safety
/// The pointers hold the shapes [`AttentionParams`] documents and pass its `check`.
#[unsafe(no_mangle)]
pub unsafe extern "ptx-kernel" fn attention_split_f16(p: AttentionParams) {
    let (block, head, b) = block_index();
    let split = block * AttentionParams::WARPS_PER_BLOCK as usize + warp_in_block();
    let splits = AttentionParams::splits(p.context_bucket) as usize;
    if split >= splits {
        return;
    }
    // SAFETY: b < batch (the grid's z); the length is checked before it indexes anything.
    let len = unsafe { *p.lengths.add(b) } as usize;
    if len == 0 || len > p.context_bucket as usize {
        trap();
    }
    let start = split * SPLIT;
    if start >= len {
        return;
    }
    let n_head = p.n_head as usize;
    let lane = lane();
    let t = start + lane;
    let valid = t < len;
    let head_offset = (b * n_head + head) * p.capacity as usize * HD;

    // SAFETY: b < batch, head < n_head, positions < len <= context_bucket <= capacity.
    unsafe {
        // Scores in log2 units: q is scaled by scale * log2(e) once, so p = 2^(s - max).
        let q_row = p.q.add((b * n_head + head) * HD);
        let q_scale = p.scale * LOG2_E;
        let mut q = [0.0f32; HD];
        for i in 0..HD / 8 {
            let v = load8(q_row, i).to_f32();
            for k in 0..8 {
                q[i * 8 + k] = v[k] * q_scale;
            }
        }
        let mut score = f32::NEG_INFINITY;
        if valid {
            let k_row = p.k.add(head_offset + t * HD);
            let mut dot = 0.0;
            for i in 0..HD / 8 {
                let k = load8(k_row, i).to_f32();
                for j in 0..8 {
                    dot = mul_add(q[i * 8 + j], k[j], dot);
                }
            }
            score = dot;
        }
        let max = warp_max(score);
        let weight = if valid { exp2(score - max) } else { 0.0 };
        let sum = warp_sum(weight);

        // sum_t p_t v_t for this lane's two dimensions.
        let count = (len - start).min(SPLIT);
        let v_pair = p.v.add(head_offset + start * HD + 2 * lane) as *const [f16; 2];
        let (mut acc0, mut acc1) = (0.0f32, 0.0f32);
        for j in 0..SPLIT {
            if j < count {
                let pj = shuffle(weight, j as u32);
                let v = *v_pair.add(j * HD / 2);
                acc0 = mul_add(pj, v[0] as f32, acc0);
                acc1 = mul_add(pj, v[1] as f32, acc1);
            }
        }
        let slot = (b * n_head + head) * splits + split;
        let out = p.partial_out.add(slot * HD + 2 * lane);
        *out = acc0;
        *out.add(1) = acc1;
        if lane == 0 {
            *p.partial_stats.add(slot * 2) = max;
            *p.partial_stats.add(slot * 2 + 1) = sum;
        }
    }
}

/// See [`AttentionReduceParams`]. One block per (head, sequence), thread d = dimension d.
///
/// # Safety
/// The pointers hold the shapes [`AttentionReduceParams`] documents, written by the first
/// pass with the same lengths.
#[unsafe(no_mangle)]
pub unsafe extern "ptx-kernel" fn attention_reduce_f16(p: AttentionReduceParams) {
    let (head, b, _) = block_index();
    let d = thread_index();
    let n_head = p.n_head as usize;
    let splits = AttentionParams::splits(p.context_bucket) as usize;
    // SAFETY: b < batch; the first pass trapped on lengths outside 1..=context_bucket, so
    // `used <= splits`.
    unsafe {
        let len = *p.lengths.add(b) as usize;
        let used = len.div_ceil(SPLIT).min(splits);
        let base = (b * n_head + head) * splits;
        let mut max = f32::NEG_INFINITY;
        for s in 0..used {
            max = max.max(*p.partial_stats.add((base + s) * 2));
        }
        let (mut sum, mut acc) = (0.0f32, 0.0f32);
        for s in 0..used {
            let rescale = exp2(*p.partial_stats.add((base + s) * 2) - max);
            sum = mul_add(*p.partial_stats.add((base + s) * 2 + 1), rescale, sum);
            acc = mul_add(*p.partial_out.add((base + s) * HD + d), rescale, acc);
        }
        *p.out.add((b * n_head + head) * HD + d) = (acc / sum) as f16;
    }
}

const _: () = assert!(SPLIT == WARP, "one score per lane");
