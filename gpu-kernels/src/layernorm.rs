//! LayerNorm over each row: `(x - mean) / sqrt(var + eps) * gamma + beta`.
//!
//! Bytes: batch * d * 2 * 2 + d * 2 * 2 (rows in and out, gamma and beta). FLOPs: ~8 per
//! element. One warp per row keeps the row in registers: one read from memory, exact
//! two-pass statistics.

use crate::abi::LayerNormParams;
use crate::device::{Half8, WARP, block_index, lane, load8, store8, warp_in_block, warp_sum};
use core::f32::math::sqrt;

const VECTORS_PER_LANE: usize = LayerNormParams::VECTORS_PER_LANE as usize;

/// See [`LayerNormParams`].
///
/// # Safety
/// The pointers hold the shapes [`LayerNormParams`] documents; `d_model` is a multiple of
/// 8 and at most `MAX_D_MODEL`.
#[unsafe(no_mangle)]
pub unsafe extern "ptx-kernel" fn layernorm_f16(p: LayerNormParams) {
    crate::device::start_after_previous_kernels();
    let row = block_index().0 * LayerNormParams::WARPS_PER_BLOCK as usize + warp_in_block();
    if row >= p.batch as usize {
        return;
    }
    let d = p.d_model as usize;
    let vectors = d / 8;
    let lane = lane();
    // SAFETY: row < batch; vector indices below are < d / 8 (checked) within the row.
    unsafe {
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
                let v = values[j];
                let gamma = load8(p.gamma, i).to_f32();
                let beta = load8(p.beta, i).to_f32();
                let mut y = [0.0; 8];
                for k in 0..8 {
                    y[k] = (v[k] - mean) * inv_std * gamma[k] + beta[k];
                }
                store8(out_row, i, Half8::from_f32(y));
            }
        }
    }
}
