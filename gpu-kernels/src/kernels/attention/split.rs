//! One split of decode attention: a warp's 32 cache positions of one (sequence, head),
//! scored against q and summed into a partial output, with the loads that come before the
//! programmatic wait.

use super::{HD, SPLIT};
use crate::abi::AttentionParams;
use crate::primitives::{
    Half8, LOG2_E, WARP, exp2, lane, load8, load8_stream, shuffle, warp_max, warp_sum,
};
use core::f32::math::mul_add;

const _: () = assert!(SPLIT == WARP, "one score per lane");

/// One split's share of the attention: this lane's two output dimensions' `sum_t p_t v_t`
/// and the split's max score (log2 units) and `sum_t p_t`.
pub(super) struct Partial {
    pub(super) acc: [f32; 2],
    pub(super) max: f32,
    pub(super) sum: f32,
}

/// Split `split` of (sequence `b`, head `head`) of length `len`.
///
/// # Safety
/// As [`super::attention_f16`], with `b < batch`, `head < n_head`, `split < len.div_ceil(SPLIT)`
/// and `len` checked against the bucket; with `EARLY`, `early` holds this split's rows
/// below `early.rows` (else it is unused: a separate instance, so that a launch without
/// settled rows, batch 32's, keeps the loads in the order that is fastest there).
#[inline(always)]
pub(super) unsafe fn split_partial<const EARLY: bool>(
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
pub(super) fn split_rows(
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
pub(super) unsafe fn load_k_row(k_row: *const f16, valid: bool) -> [Half8; HD / 8] {
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
pub(super) unsafe fn load_v_rows(
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
pub(super) struct EarlyLoads {
    pub(super) len: usize,
    pub(super) rows: usize,
    k: [Half8; HD / 8],
    v: [u32; SPLIT],
}

impl EarlyLoads {
    /// Nothing loaded early: launches without settled rows and the buckets past 1024
    /// positions.
    pub(super) const NONE: Self = EarlyLoads {
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
pub(super) unsafe fn early_loads(
    p: &AttentionParams,
    b: usize,
    head: usize,
    split: usize,
) -> EarlyLoads {
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
pub(super) fn shuffle_half8(v: Half8, src: usize) -> Half8 {
    // SAFETY: Half8 is 16 plain bytes either way.
    let words: [u32; 4] = unsafe { core::mem::transmute(v) };
    let words = words.map(|w| shuffle(f32::from_bits(w), src as u32).to_bits());
    // SAFETY: as above.
    unsafe { core::mem::transmute::<[u32; 4], Half8>(words) }
}

/// The two fp16 values packed in `bits` (low half first, as they lie in memory), widened.
#[inline(always)]
pub(super) fn unpack_pair(bits: u32) -> [f32; 2] {
    [
        f16::from_bits(bits as u16) as f32,
        f16::from_bits((bits >> 16) as u16) as f32,
    ]
}
