//! SwiGLU: `silu(gate) * up` ([`SwigluParams`]).
//!
//! Bytes: batch * intermediate * 2 * 3 (gate and up in, the product out). One thread per
//! 16-byte vector of outputs.

use crate::abi::SwigluParams;
use crate::primitives::{
    Half8, block_index, load8, silu, start_after_previous_kernels, store8, thread_index,
};

/// See [`SwigluParams`]. Grid: (vectors / 256, batch).
///
/// # Safety
/// The pointers hold the shapes [`SwigluParams`] documents and pass its `check`.
#[unsafe(no_mangle)]
pub unsafe extern "ptx-kernel" fn swiglu(p: SwigluParams) {
    start_after_previous_kernels();
    let (block, b, _) = block_index();
    let i = block * SwigluParams::BLOCK as usize + thread_index();
    let width = p.intermediate as usize;
    if i >= width / 8 || b >= p.batch as usize {
        return;
    }
    // SAFETY: b < batch and i < intermediate / 8 index the row's vectors.
    unsafe {
        let row = p.gate_up.add(b * 2 * width);
        let gate = load8(row, i).to_f32();
        let up = load8(row.add(width), i).to_f32();
        let mut y = [0.0; 8];
        for k in 0..8 {
            y[k] = silu(gate[k]) * up[k];
        }
        store8(p.out.add(b * width), i, Half8::from_f32(y));
    }
}
