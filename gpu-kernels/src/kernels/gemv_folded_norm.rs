//! The GEMV with the layernorm before it folded into its weights
//! ([`FoldedNormGemvParams`]): `y = LN(x) W^T + bias` as
//! `inv_std * (x W'^T - mean * row_sums) + bias'`, the mean and variance of x taken from
//! the same loads of x as the dot products, so that no layernorm kernel runs before it.
//! Here: the batch-1 entries (the CUDA-core GEMV of [`super::gemv`] with moments) and
//! the normalization every folded entry ends with. The entries of batches 2 to 8 are
//! instances of the tensor-core GEMV with moments and live in its table, in
//! [`super::gemv_tensor_core`].

use super::gemv::{InRegisters, RowDot, Staged, store_row_b1, this_warps_row};
use crate::abi::{FoldedNormGemvParams, GemvParams};
use crate::primitives::WARP;
use crate::primitives::bulk_copy::{warp_stage_1, warp_stage_2, warp_stage_sized};
use crate::primitives::warp_in_block;
use core::f32::math::sqrt;

/// See [`FoldedNormGemvParams`]: the batch-1 GEMV over the folded weights and the
/// raw input, each warp normalizing its dot products with the moments of x it took from
/// the same loads.
///
/// # Safety
/// The pointers hold the shapes [`FoldedNormGemvParams`] documents and pass its `check`;
/// `rows` is this warp's; the launch has blocks of `warps_per_block` warps.
#[inline(always)]
unsafe fn gemv_folded_norm<R: RowDot>(p: &FoldedNormGemvParams, rows: R, warps_per_block: u32) {
    let g = &p.gemv;
    let Some((row, n_in, _)) = this_warps_row(g, warps_per_block) else {
        return;
    };
    // SAFETY: row < out_features, batch 1.
    unsafe {
        // A weight, requested before the programmatic wait inside the row's sums.
        let rms = p.row_sums.is_null();
        let row_sum = if rms { 0.0 } else { *p.row_sums.add(row) };
        store_row_b1::<R, true>(g, rows, row, |sums| {
            let moments = [sums.sum, sums.squares];
            normalize_folded(sums.dot, moments, row_sum, n_in, p.eps, rms)
        });
    }
}

/// `inv_std * (dot - mean * row_sum)` from the dot product of a raw input row with a
/// folded weight row and the input row's `[sum, sum of squares]`: a folded layernorm's
/// output before its bias ([`FoldedNormGemvParams`]), at every batch. With `rms` (an
/// RMSNorm folded in) the mean is not subtracted: `dot / sqrt(mean(x^2) + eps)`.
#[inline(always)]
pub fn normalize_folded(
    dot: f32,
    [sum, squares]: [f32; 2],
    row_sum: f32,
    n_in: usize,
    eps: f32,
    rms: bool,
) -> f32 {
    // One-pass moments in fp32: exact enough for residual streams whose mean is small
    // against their spread (GPT-2's; the GPU tests use such rows, outliers included).
    let mean = if rms { 0.0 } else { sum / n_in as f32 };
    let variance = (squares / n_in as f32 - mean * mean).max(0.0);
    let inv_std = 1.0 / sqrt(variance + eps);
    inv_std * (dot - mean * row_sum)
}

/// See [`FoldedNormGemvParams`].
///
/// # Safety
/// The pointers hold the shapes [`FoldedNormGemvParams`] documents and pass its `check`.
#[unsafe(no_mangle)]
pub unsafe extern "ptx-kernel" fn gemv_folded_norm_b1(p: FoldedNormGemvParams) {
    let stage = warp_stage_1(warp_in_block());
    // SAFETY: the caller's promise; the rows are this warp's to stage.
    unsafe { gemv_folded_norm(&p, Staged::<1, true>(stage), GemvParams::WARPS_PER_BLOCK) }
}

/// [`gemv_folded_norm_b1`] for rows wider than one staged piece (Llama 3.2 1B's 2048,
/// the 8B's 4096): two pieces of each in flight, as `gemv_wide_b1`.
///
/// # Safety
/// As [`gemv_folded_norm_b1`].
#[unsafe(no_mangle)]
pub unsafe extern "ptx-kernel" fn gemv_folded_norm_wide_b1(p: FoldedNormGemvParams) {
    let stage = warp_stage_2(warp_in_block());
    // SAFETY: the caller's promise; the rows are this warp's to stage.
    unsafe { gemv_folded_norm(&p, Staged::<2, true>(stage), GemvParams::WARPS_PER_BLOCK) }
}

/// [`gemv_folded_norm_b1`] with `gemv_sized_b1`'s blocks and slots.
///
/// # Safety
/// As [`gemv_folded_norm_b1`], launched with [`GemvParams::sized_stage_bytes`] of
/// dynamic shared memory.
#[unsafe(no_mangle)]
pub unsafe extern "ptx-kernel" fn gemv_folded_norm_sized_b1(p: FoldedNormGemvParams) {
    let slot = GemvParams::sized_slot_bytes(p.gemv.in_features) as usize;
    let stage = warp_stage_sized(warp_in_block(), slot);
    // SAFETY: the caller's promise; the rows are this warp's to stage.
    unsafe { gemv_folded_norm(&p, Staged::<1, false>(stage), GemvParams::SIZED_WARPS) }
}

/// [`gemv_folded_norm_b1`] with the row held in registers, for rows of up to
/// [`FoldedNormGemvParams::REGISTER_ROW_HALVES`] (gpt2's 768: 3 loads a lane, 47
/// registers, so that x and the epilogue's inputs fit beside them).
///
/// # Safety
/// The pointers hold the shapes [`FoldedNormGemvParams`] documents and pass its `check`;
/// rows of up to [`FoldedNormGemvParams::REGISTER_ROW_HALVES`] (the entry
/// `FoldedNormGemvParams::entry` picks for them alone).
#[unsafe(no_mangle)]
pub unsafe extern "ptx-kernel" fn gemv_folded_norm_regs_b1(p: FoldedNormGemvParams) {
    const LOADS: usize = FoldedNormGemvParams::REGISTER_ROW_HALVES as usize / (8 * WARP);
    // SAFETY: the caller's promise: rows of at most LOADS * 256 inputs.
    unsafe { gemv_folded_norm(&p, InRegisters::<LOADS>, GemvParams::WARPS_PER_BLOCK) }
}
