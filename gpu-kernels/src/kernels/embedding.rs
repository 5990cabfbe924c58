//! Token + position embedding: `out[b] = wte[tokens[b]] + wpe[positions[b]]` (GPT-2), or the
//! token's row alone (models with rotary positions: `wpe` null).
//!
//! Bytes: batch * d_model * 2 * 3 (two rows read, one written). FLOPs: batch * d_model.

use crate::abi::EmbeddingParams;
use crate::primitives::{Half8, block_index, block_size, load8, store8, thread_index, trap};

/// See [`EmbeddingParams`]. One block per sequence.
///
/// # Safety
/// The pointers hold the shapes [`EmbeddingParams`] documents.
#[unsafe(no_mangle)]
pub unsafe extern "ptx-kernel" fn embedding(p: EmbeddingParams) {
    crate::primitives::start_after_previous_kernels();
    let b = block_index().0;
    if b >= p.batch as usize {
        return;
    }
    // SAFETY: b < batch.
    let (token, position) = unsafe { (*p.tokens.add(b), *p.positions.add(b)) };
    let positional = !p.wpe.is_null();
    if token >= p.vocab || (positional && position >= p.n_positions) {
        trap();
    }
    let d = p.d_model as usize;
    // SAFETY: token < vocab and position < n_positions index rows of the tables; b < batch
    // a row of out; every row is d halves with d a multiple of 8, so rows are 16-byte
    // aligned and `i < d / 8` stays inside them.
    unsafe {
        let token_row = p.wte.add(token as usize * d);
        let position_row = p.wpe.wrapping_add(position as usize * d);
        let out_row = p.out.add(b * d);
        let mut i = thread_index();
        while i < d / 8 {
            let mut sum = load8(token_row, i).to_f32();
            if positional {
                let q = load8(position_row, i).to_f32();
                for k in 0..8 {
                    sum[k] += q[k];
                }
            }
            store8(out_row, i, Half8::from_f32(sum));
            i += block_size();
        }
    }
}
