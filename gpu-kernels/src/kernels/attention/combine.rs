//! The combine of decode attention's splits: their partial outputs rescaled to a common
//! maximum and summed, by one warp (in a block, or through memory) or by the four warps
//! of a cluster's first block.

use super::{HD, WARPS_PER_BLOCK};
use crate::primitives::{WARP, exp2, load_l2_pair, shuffle, shuffle_xor, warp_max, warp_sum};
use core::f32::math::mul_add;

/// `out = sum_s 2^(m_s - M) acc_s / sum_s 2^(m_s - M) l_s` over `used` splits whose
/// (max, sum) pairs start at `stats` and partial outputs (HD each) at `outs`, written to
/// `out_row`, this (sequence, head)'s output; lane l owns dimensions 2l and 2l+1.
/// `THROUGH_L2`: the partials are in global memory, written by other SMs, and read
/// with `ld.global.cg`; else they are in this block's shared memory.
///
/// # Safety
/// The partials of completed splits, ordered before this call (fence or block barrier).
#[inline(always)]
pub(super) unsafe fn combine<const THROUGH_L2: bool>(
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

/// [`combine()`] for the cluster path, spread over the first block's
/// [`WARPS_PER_BLOCK`] warps: warp w writes dimensions `16 w..16 w + 16`, and lane
/// `8 q + i` of it adds dimension pair i of splits `8 q..8 q + 8`, then the four lanes of
/// a pair add their sums (a fixed tree: the same bits every launch). One warp alone would
/// make the combine a chain of 32 dependent steps, about 1.2 us of an attention launch at
/// context 1024.
///
/// # Safety
/// As [`combine()`], with the partials in this block's shared memory, `used <= 32`, and
/// every lane of the block's first [`WARPS_PER_BLOCK`] warps calling it.
#[inline(always)]
pub(super) unsafe fn combine_over_warps(
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
