//! LayerNorm over each row: `(x - mean) / sqrt(var + eps) * gamma + beta`.
//!
//! Bytes: batch * d * 2 * 2 + d * 2 * 2 (rows in and out, gamma and beta). FLOPs: ~8 per
//! element. One warp per row keeps the row in registers: one read from memory, exact
//! two-pass statistics.

use crate::abi::LayerNormParams;
use crate::primitives::{
    Half8, WARP, block_index, lane, load8, release_dependents, store8, wait_for_previous_kernels,
    warp_in_block, warp_sum,
};
use core::f32::math::sqrt;

const VECTORS_PER_LANE: usize = LayerNormParams::VECTORS_PER_LANE as usize;

/// See [`LayerNormParams`].
///
/// # Safety
/// The pointers hold the shapes [`LayerNormParams`] documents; `d_model` is a multiple of
/// 8 and at most `MAX_D_MODEL`.
#[unsafe(no_mangle)]
pub unsafe extern "ptx-kernel" fn layernorm(p: LayerNormParams) {
    release_dependents();
    let row = block_index().0 * LayerNormParams::WARPS_PER_BLOCK as usize + warp_in_block();
    if row >= p.batch as usize {
        return;
    }
    let d = p.d_model as usize;
    let vectors = d / 8;
    let lane = lane();
    // SAFETY: row < batch; vector indices below are < d / 8 (checked) within the row.
    unsafe {
        // gamma and beta are weights: requested before the programmatic wait, they are
        // not a dependent memory round trip after the statistics.
        let mut gamma = [Half8::ZERO; VECTORS_PER_LANE];
        let mut beta = [Half8::ZERO; VECTORS_PER_LANE];
        for j in 0..VECTORS_PER_LANE {
            let i = lane + j * WARP;
            if i < vectors {
                gamma[j] = load8(p.gamma, i);
                beta[j] = load8(p.beta, i);
            }
        }
        wait_for_previous_kernels();
        let x_row = p.x.add(row * d);
        let mut values = [[0.0f32; 8]; VECTORS_PER_LANE];
        let mut sum = 0.0;
        for j in 0..VECTORS_PER_LANE {
            let i = lane + j * WARP;
            if i < vectors {
                values[j] = load8(x_row, i).to_f32();
                for k in 0..8 {
                    sum += values[j][k];
                }
            }
        }
        let mean = warp_sum(sum) / d as f32;
        let mut squares = 0.0;
        for j in 0..VECTORS_PER_LANE {
            if lane + j * WARP < vectors {
                for k in 0..8 {
                    let centered = values[j][k] - mean;
                    squares += centered * centered;
                }
            }
        }
        let inv_std = 1.0 / sqrt(warp_sum(squares) / d as f32 + p.eps);
        let out_row = p.out.add(row * d);
        for j in 0..VECTORS_PER_LANE {
            let i = lane + j * WARP;
            if i < vectors {
                store8(
                    out_row,
                    i,
                    normalize8(values[j], mean, inv_std, gamma[j], beta[j]),
                );
            }
        }
    }
}

/// `(v - mean) * inv_std * gamma + beta` for 8 values of a row.
#[inline(always)]
fn normalize8(v: [f32; 8], mean: f32, inv_std: f32, gamma: Half8, beta: Half8) -> Half8 {
    let (gamma, beta) = (gamma.to_f32(), beta.to_f32());
    let mut y = [0.0; 8];
    for k in 0..8 {
        y[k] = (v[k] - mean) * inv_std * gamma[k] + beta[k];
    }
    Half8::from_f32(y)
}
