//! The combine of decode attention's splits: their partial outputs rescaled to a common
//! maximum and summed, by one warp (in a block, or through memory) or by the four warps
//! of a cluster's first block.

use super::WARPS_PER_BLOCK;
use super::split::MAX_DIMS_PER_LANE;
use crate::abi::{Half, HalfFloat};
use crate::primitives::{WARP, exp2, load_l2_pair, shuffle, shuffle_xor, warp_max, warp_sum};
use core::f32::math::mul_add;

/// `out = sum_s 2^(m_s - M) acc_s / sum_s 2^(m_s - M) l_s` over `used` splits whose
/// (max, sum) pairs start at `stats` and partial outputs (HD each) at `outs`, written to
/// `out_row`, this (sequence, head)'s output; lane l owns the HD / 32 dimensions from
/// HD / 32 * l.
/// `THROUGH_L2`: the partials are in global memory, written by other SMs, and read
/// with `ld.global.cg`; else they are in this block's shared memory.
///
/// # Safety
/// The partials of completed splits, ordered before this call (fence or block barrier).
#[inline(always)]
pub(super) unsafe fn combine<const HD: usize, const THROUGH_L2: bool>(
    stats: *const f32,
    outs: *const f32,
    used: usize,
    lane: usize,
    out_row: *mut Half,
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
    let dims = HD / WARP;
    let mut sum = 0.0f32;
    let mut acc = [0.0f32; MAX_DIMS_PER_LANE];
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
        let mut pairs = [[[0.0f32; 2]; MAX_DIMS_PER_LANE / 2]; WARP];
        for j in 0..WARP {
            if j < round {
                for w in 0..dims / 2 {
                    let at = (first + j) * HD + dims * lane + 2 * w;
                    pairs[j][w] = pair(outs.wrapping_add(at));
                }
            }
        }
        for j in 0..WARP {
            let r = shuffle(rescale, j as u32);
            if j < round {
                for w in 0..dims / 2 {
                    acc[2 * w] = mul_add(pairs[j][w][0], r, acc[2 * w]);
                    acc[2 * w + 1] = mul_add(pairs[j][w][1], r, acc[2 * w + 1]);
                }
            }
        }
        first += WARP;
    }
    let inv_sum = 1.0 / warp_sum(sum);
    // SAFETY: the caller's promise: out_row holds HD halves.
    unsafe {
        let out = out_row.add(dims * lane);
        for d in 0..dims {
            *out.add(d) = Half::from_f32(acc[d] * inv_sum);
        }
    }
}

/// [`combine()`] for the cluster path, spread over the first block's
/// [`WARPS_PER_BLOCK`] warps: warp w writes dimensions `HD / 4 * w..HD / 4 * (w + 1)`,
/// and lane `8 q + i` of it adds the i-th HD / 32 of them of splits `8 q..8 q + 8`, then
/// the four lanes of those dimensions add their sums (a fixed tree: the same bits every launch). One warp alone would
/// make the combine a chain of 32 dependent steps, about 1.2 us of an attention launch at
/// context 1024.
///
/// # Safety
/// As [`combine()`], with the partials in this block's shared memory, `used <= 32`, and
/// every lane of the block's first [`WARPS_PER_BLOCK`] warps calling it.
#[inline(always)]
pub(super) unsafe fn combine_over_warps<const HD: usize>(
    stats: *const f32,
    outs: *const f32,
    used: usize,
    (warp, lane): (usize, usize),
    out_row: *mut Half,
) {
    const GROUP: usize = WARP / 4;
    const _: () = assert!(GROUP * 4 == WARP && WARPS_PER_BLOCK == 4);
    let dims = HD / WARP;
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
        let (quarter, group_lane) = (lane / GROUP, lane % GROUP);
        let dim = HD / WARPS_PER_BLOCK * warp + dims * group_lane;
        let mut acc = [0.0f32; MAX_DIMS_PER_LANE];
        for i in 0..GROUP {
            let split = quarter * GROUP + i;
            let r = shuffle(rescale, split as u32);
            if split < used {
                for d in 0..dims {
                    acc[d] = mul_add(*outs.add(split * HD + dim + d), r, acc[d]);
                }
            }
        }
        let mut mask = GROUP as u32;
        while mask < WARP as u32 {
            for d in 0..dims {
                acc[d] += shuffle_xor(acc[d], mask);
            }
            mask *= 2;
        }
        if quarter == 0 {
            let inv = 1.0 / total;
            for d in 0..dims {
                *out_row.add(dim + d) = Half::from_f32(acc[d] * inv);
            }
        }
    }
}
