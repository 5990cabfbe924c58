//! LM head over the tied embedding fused with greedy sampling:
//! `logits[b] = x[b] wte^T`, `token[b] = argmax(logits[b])` (ties -> lowest index).
//!
//! Bytes: vocab * d_model * 2 (wte, read once for the whole batch). FLOPs:
//! 2 * batch * vocab * d_model. Warps loop over the vocabulary keeping each sequence's
//! best (logit, index) in registers, then fold it into one packed u64 per sequence with
//! an atomic max: no logits round-trip through memory unless asked for.

use crate::abi::{ArgmaxFinalizeParams, LmHeadParams, pack_argmax, unpack_argmax_index};
use crate::device::{
    WARP, block_index, block_size, grid_blocks, lane, thread_index, warp_in_block,
};
use crate::gemv::row_dot;
use core::sync::atomic::{AtomicU64, Ordering};

/// # Safety
/// The pointers hold the shapes [`LmHeadParams`] documents and pass its `check`.
#[inline(always)]
unsafe fn lm_head<const B: usize>(p: &LmHeadParams) {
    crate::device::start_after_previous_kernels();
    let warps_per_block = LmHeadParams::WARPS_PER_BLOCK as usize;
    let first_row = block_index().0 * warps_per_block + warp_in_block();
    let stride = grid_blocks() * warps_per_block;
    let (d, vocab, batch) = (p.d_model as usize, p.vocab as usize, p.batch as usize);
    let lane = lane();

    // Lane b tracks sequence b; rows are visited in increasing order, so a strictly
    // greater logit is needed to replace the best: ties keep the lower index.
    let mut best_logit = f32::NEG_INFINITY;
    let mut best_row = u32::MAX;
    let mut row = first_row;
    while row < vocab {
        // SAFETY: row < vocab.
        let sums = unsafe { row_dot::<B>(p.x, p.wte.add(row * d), d, batch, false) };
        let mut mine = f32::NEG_INFINITY;
        for b in 0..B {
            if b == lane {
                mine = sums[b];
            }
        }
        if lane < batch {
            if !p.logits.is_null() {
                // SAFETY: lane < batch, row < vocab.
                unsafe { *p.logits.add(lane * vocab + row) = mine };
            }
            if mine > best_logit || best_row == u32::MAX {
                best_logit = mine;
                best_row = row as u32;
            }
        }
        row += stride;
    }
    if lane < batch && best_row != u32::MAX {
        // SAFETY: lane < batch; `best` is device memory of (batch) u64, 8-byte aligned.
        let best = unsafe { AtomicU64::from_ptr(p.best.add(lane)) };
        best.fetch_max(pack_argmax(best_logit, best_row), Ordering::Relaxed);
    }
}

crate::batch_tile_entries!(
    LmHeadParams,
    lm_head,
    [
        lm_head_argmax_f16_b1 = 1,
        lm_head_argmax_f16_b2 = 2,
        lm_head_argmax_f16_b4 = 4,
        lm_head_argmax_f16_b8 = 8,
        lm_head_argmax_f16_b16 = 16,
        lm_head_argmax_f16_b32 = 32,
    ]
);

/// See [`ArgmaxFinalizeParams`]: one thread per sequence.
///
/// # Safety
/// `best` and `tokens` hold `batch` elements, and so do the feedback buffers unless
/// `feedback.tokens` is null; the LM head launch before it has finished (stream order),
/// and no kernel of the step still reads the feedback buffers (all ran before it).
#[unsafe(no_mangle)]
pub unsafe extern "ptx-kernel" fn argmax_finalize(p: ArgmaxFinalizeParams) {
    crate::device::start_after_previous_kernels();
    let mut b = thread_index();
    while b < p.batch as usize {
        // SAFETY: b < batch.
        unsafe {
            let next = unpack_argmax_index(*p.best.add(b));
            *p.tokens.add(b) = next;
            *p.best.add(b) = 0;
            let f = p.feedback;
            if !f.tokens.is_null() {
                *f.tokens.add(b) = next;
                *f.positions.add(b) += 1;
                *f.lengths.add(b) += 1;
            }
        }
        b += block_size();
    }
}

const _: () = assert!(LmHeadParams::WARPS_PER_BLOCK as usize * WARP <= 1024);
