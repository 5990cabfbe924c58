//! Warp-wide exchanges: shuffles, and sums and maxima over the 32 lanes.

use core::arch::asm;

/// Threads in a warp.
pub const WARP: usize = 32;

/// `v` from lane `lane ^ mask` (all 32 lanes take part).
#[inline(always)]
pub fn shuffle_xor(v: f32, mask: u32) -> f32 {
    let out: f32;
    // SAFETY: every lane of the warp executes this (callers keep warps converged), as
    // the full member mask promises.
    unsafe {
        asm!(
            "shfl.sync.bfly.b32 {out}, {v}, {mask}, 0x1f, 0xffffffff;",
            out = out(reg32) out,
            v = in(reg32) v,
            mask = in(reg32) mask,
        );
    }
    out
}

/// `v` from lane `src` (all 32 lanes take part).
#[inline(always)]
pub fn shuffle(v: f32, src: u32) -> f32 {
    let out: f32;
    // SAFETY: as for `shuffle_xor`.
    unsafe {
        asm!(
            "shfl.sync.idx.b32 {out}, {v}, {src}, 0x1f, 0xffffffff;",
            out = out(reg32) out,
            v = in(reg32) v,
            src = in(reg32) src,
        );
    }
    out
}

/// Sum over the warp, returned to every lane.
#[inline(always)]
pub fn warp_sum(mut v: f32) -> f32 {
    let mut mask = WARP as u32 / 2;
    while mask > 0 {
        v += shuffle_xor(v, mask);
        mask /= 2;
    }
    v
}

/// Maximum over the warp, returned to every lane.
#[inline(always)]
pub fn warp_max(mut v: f32) -> f32 {
    let mut mask = WARP as u32 / 2;
    while mask > 0 {
        v = v.max(shuffle_xor(v, mask));
        mask /= 2;
    }
    v
}

/// Maximum of a u64 over the lanes `lane ^ m` for the masks in `masks` (a butterfly over
/// those lane bits), returned to each of them; all 32 lanes take part.
#[inline(always)]
pub fn lanes_max_u64(mut v: u64, masks: &[u32]) -> u64 {
    for &mask in masks {
        // The two halves travel as f32 bit patterns: shuffles move bits, never values.
        let lo = shuffle_xor(f32::from_bits(v as u32), mask).to_bits();
        let hi = shuffle_xor(f32::from_bits((v >> 32) as u32), mask).to_bits();
        v = v.max((u64::from(hi) << 32) | u64::from(lo));
    }
    v
}
