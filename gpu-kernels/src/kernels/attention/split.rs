//! One split of decode attention: a warp's 32 cache positions of one (sequence, head),
//! scored against q and summed into a partial output, with the loads that come before the
//! programmatic wait.

use super::{MAX_HD, SPLIT};
use crate::abi::AttentionParams;
use crate::abi::{Half, HalfFloat};
use crate::primitives::{
    Half8, LOG2_E, WARP, exp2, lane, load8, load8_stream, shuffle, warp_max, warp_sum,
};
use core::f32::math::mul_add;

const _: () = assert!(SPLIT == WARP, "one score per lane");

/// Output dimensions a lane owns at most: HD / 32 (2 for heads of 64, 4 for 128).
pub(super) const MAX_DIMS_PER_LANE: usize = MAX_HD / WARP;

/// 32-bit words of a lane's share of one V row: its HD / 32 dimensions, two a word.
const MAX_V_WORDS: usize = MAX_DIMS_PER_LANE / 2;

/// One split's share of the attention: this lane's output dimensions' `sum_t p_t v_t`
/// (the first HD / 32 of `acc`) and the split's max score (log2 units) and `sum_t p_t`.
pub(super) struct Partial {
    pub(super) acc: [f32; MAX_DIMS_PER_LANE],
    pub(super) max: f32,
    pub(super) sum: f32,
}

/// Split `split` of (sequence `b`, head `head`) of length `len`.
///
/// # Safety
/// As [`super::decode_attention`], with `b < batch`, `head < n_head`, `split < len.div_ceil(SPLIT)`
/// and `len` checked against the bucket; with `EARLY`, `early` holds this split's rows
/// below `early.rows` (else it is unused: a separate instance, so that a launch without
/// settled rows, batch 32's, keeps the loads in the order that is fastest there).
#[inline(always)]
pub(super) unsafe fn split_partial<const HD: usize, const EARLY: bool>(
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
    let (k_row, v_words) = split_rows::<HD>(p, b, head, split);

    // SAFETY: b < batch, head < n_head, positions < len <= context_bucket <= capacity.
    unsafe {
        // The loads of the split are issued before any is used: this lane's K row and
        // the V rows' pairs of this lane's dimensions, but for the rows `early` already
        // holds. Rows past the length are 0.
        let valid = lane < count;
        let mut k = early.k;
        if !EARLY || lane >= early.rows {
            k = load_k_row::<HD>(k_row, valid);
        }
        let v = if EARLY {
            load_v_rows::<HD>(early.v, v_words, early.rows, count)
        } else {
            load_v_rows::<HD>([[0; MAX_V_WORDS]; SPLIT], v_words, 0, count)
        };

        // With EARLY, q is what the split waits for after the programmatic wait: one
        // 16-byte load a lane (lane l holds vector l % 8), passed round by shuffles, one
        // L2 round trip instead of a few. Without EARLY (batch 32) the shuffles are
        // slower than eight loads a lane.
        let q_row = p.q.add((b * n_head + head) * HD);
        let q_own = if EARLY {
            load8(q_row, lane % (HD / 8))
        } else {
            Half8::ZERO
        };
        // Four chains of products instead of one chain of HD dependent ones.
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
        let mut acc = [[0.0f32; MAX_DIMS_PER_LANE]; 2];
        for j in 0..SPLIT {
            let pj = shuffle(weight, j as u32);
            for w in 0..HD / 64 {
                let [v0, v1] = unpack_pair(v[j][w]);
                let chain = &mut acc[j % 2];
                chain[2 * w] = mul_add(pj, v0, chain[2 * w]);
                chain[2 * w + 1] = mul_add(pj, v1, chain[2 * w + 1]);
            }
        }
        let mut total = [0.0f32; MAX_DIMS_PER_LANE];
        for d in 0..HD / WARP {
            total[d] = acc[0][d] + acc[1][d];
        }
        Partial {
            acc: total,
            max,
            sum,
        }
    }
}

/// Split `split` of (sequence `b`, query head `head`) in the cache of its KV head (query
/// heads share a KV head in groups of `n_head / n_kv_head`): this lane's K row (its
/// position in the split) and the split's first V row at this lane's dimensions
/// (`HD / 32` of them from `HD / 32 * lane`, as 32-bit words). Addresses only; rows past
/// a length are never read through them.
#[inline(always)]
pub(super) fn split_rows<const HD: usize>(
    p: &AttentionParams,
    b: usize,
    head: usize,
    split: usize,
) -> (*const Half, *const u32) {
    let kv_head = head / (p.n_head / p.n_kv_head) as usize;
    let head_offset = (b * p.n_kv_head as usize + kv_head) * p.capacity as usize * HD;
    let start = split * SPLIT;
    (
        p.k.wrapping_add(head_offset + (start + lane()) * HD),
        p.v.wrapping_add(head_offset + start * HD + HD / WARP * lane()) as *const u32,
    )
}

/// The K row of a lane: HD / 8 vectors of the longest head's room.
pub(super) type KRow = [Half8; MAX_HD / 8];

/// A K row (zeros unless `valid`), requested through the read-only path.
///
/// # Safety
/// `k_row` holds HD halves, 16-byte aligned, when `valid`.
#[inline(always)]
pub(super) unsafe fn load_k_row<const HD: usize>(k_row: *const Half, valid: bool) -> KRow {
    let mut k = [Half8::ZERO; MAX_HD / 8];
    if valid {
        for i in 0..HD / 8 {
            // SAFETY: the caller's promise.
            k[i] = unsafe { load8_stream(k_row, i) };
        }
    }
    k
}

/// A lane's words of the V rows of a split: HD / 64 words of two halves a row.
pub(super) type VWords = [[u32; MAX_V_WORDS]; SPLIT];

/// A split's V words: `v` with the rows from `from` on loaded and those past `count` 0
/// (rows below `from` keep what `v` holds: loaded earlier). Two halves stay packed in
/// one 32-bit register until they are used: as two values they would take two.
///
/// # Safety
/// `v_words` points at the split's first row's words of this lane; rows below `count`
/// are readable, `HD / 2` words apart.
#[inline(always)]
pub(super) unsafe fn load_v_rows<const HD: usize>(
    mut v: VWords,
    v_words: *const u32,
    from: usize,
    count: usize,
) -> VWords {
    // SAFETY: only rows below count are read.
    unsafe {
        for row in 0..SPLIT {
            for w in 0..HD / 64 {
                if row >= count {
                    v[row][w] = 0;
                } else if row >= from {
                    v[row][w] = *v_words.add(row * HD / 2 + w);
                }
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
    k: KRow,
    v: VWords,
}

impl EarlyLoads {
    /// Nothing loaded early: launches without settled rows and the buckets past 1024
    /// positions.
    pub(super) const NONE: Self = EarlyLoads {
        len: 0,
        rows: 0,
        k: [Half8::ZERO; MAX_HD / 8],
        v: [[0; MAX_V_WORDS]; SPLIT],
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
pub(super) unsafe fn early_loads<const HD: usize>(
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
        let (k_row, v_words) = split_rows::<HD>(p, b, head, split);
        EarlyLoads {
            len: settled + p.fresh_rows as usize,
            rows,
            k: load_k_row::<HD>(k_row, lane() < rows),
            v: load_v_rows::<HD>([[0; MAX_V_WORDS]; SPLIT], v_words, 0, rows),
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

/// The two halves packed in `bits` (low half first, as they lie in memory), widened.
#[inline(always)]
pub(super) fn unpack_pair(bits: u32) -> [f32; 2] {
    [
        Half::from_bits(bits as u16).to_f32(),
        Half::from_bits((bits >> 16) as u16).to_f32(),
    ]
}
