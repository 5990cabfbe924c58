//! RMSNorm over each row: `x / sqrt(mean(x^2) + eps) * gamma`.
//!
//! Bytes: batch * d * 2 * 2 + d * 2 (rows in and out, gamma). FLOPs: ~4 per element.
//! One warp per row: the mean square from one pass over the row, the output from a
//! second (the row is then in L1), so any width fits.

use crate::abi::RmsNormParams;
use crate::primitives::{
    Half8, WARP, block_index, lane, load8, release_dependents, store8, wait_for_previous_kernels,
    warp_in_block, warp_sum,
};
use core::f32::math::sqrt;

/// See [`RmsNormParams`].
///
/// # Safety
/// The pointers hold the shapes [`RmsNormParams`] documents; `d_model` is a multiple of 8.
#[unsafe(no_mangle)]
pub unsafe extern "ptx-kernel" fn rmsnorm(p: RmsNormParams) {
    release_dependents();
    let row = block_index().0 * RmsNormParams::WARPS_PER_BLOCK as usize + warp_in_block();
    if row >= p.batch as usize {
        return;
    }
    let d = p.d_model as usize;
    let vectors = d / 8;
    let lane = lane();
    wait_for_previous_kernels();
    // SAFETY: row < batch; vector indices stay below d / 8 within the row.
    unsafe {
        let x_row = p.x.add(row * d);
        let mut squares = 0.0f32;
        let mut i = lane;
        while i < vectors {
            let v = load8(x_row, i).to_f32();
            for k in 0..8 {
                squares += v[k] * v[k];
            }
            i += WARP;
        }
        let inv_rms = 1.0 / sqrt(warp_sum(squares) / d as f32 + p.eps);
        let out_row = p.out.add(row * d);
        let mut i = lane;
        while i < vectors {
            let v = load8(x_row, i).to_f32();
            let gamma = if p.gamma.is_null() {
                [1.0; 8]
            } else {
                load8(p.gamma, i).to_f32()
            };
            let mut y = [0.0; 8];
            for k in 0..8 {
                y[k] = v[k] * inv_rms * gamma[k];
            }
            store8(out_row, i, Half8::from_f32(y));
            i += WARP;
        }
    }
}
