//! LM head over the tied embedding fused with greedy sampling:
//! `logits[b] = x[b] wte^T`, `token[b] = argmax(logits[b])` (ties -> lowest index).
//!
//! Bytes: vocab * d_model * 2 (wte, read once for the whole batch). FLOPs:
//! 2 * batch * vocab * d_model. Warps (batch 1, CUDA cores, their rows one stream of
//! asynchronous copies through shared memory: [`stream_rows`]) or blocks of 16 rows (from
//! batch 2, tensor cores, padded to 8, 16 or 32) loop over the vocabulary keeping each
//! sequence's best (logit, index) in registers, then fold it into one packed u64 per
//! sequence with an atomic max: no logits round-trip through memory unless asked for.

use crate::abi::{ArgmaxFinalizeParams, LmHeadParams, MMA_ROWS, pack_argmax, unpack_argmax_index};
use crate::kernels::gemv_tensor_core;
use crate::primitives::async_copy::weight_ring;
use crate::primitives::row_stream::stream_rows;
use crate::primitives::{
    WARP, block_index, block_shared_f32, block_size, grid_blocks, lane, lanes_max_u64,
    release_dependents, sync_threads, thread_index, warp_in_block,
};
use core::sync::atomic::{AtomicU64, Ordering};

/// # Safety
/// The pointers hold the shapes [`LmHeadParams`] documents and pass its `check`.
#[inline(always)]
unsafe fn lm_head<const B: usize>(p: &LmHeadParams) {
    let ring = weight_ring();
    release_dependents();
    let warps_per_block = LmHeadParams::WARPS_PER_BLOCK as usize;
    let first_row = block_index().0 * warps_per_block + warp_in_block();
    let stride = grid_blocks() * warps_per_block;
    let (d, vocab, batch) = (p.d_model as usize, p.vocab as usize, p.batch as usize);
    let lane = lane();

    // Lane b tracks sequence b; rows are visited in increasing order, so a strictly
    // greater logit is needed to replace the best: ties keep the lower index.
    let mut best_logit = f32::NEG_INFINITY;
    let mut best_row = u32::MAX;
    // SAFETY: rows < vocab of wte (vocab, d); the logits store is at lane < batch.
    unsafe {
        stream_rows::<B>(
            ring,
            warp_in_block(),
            p.x,
            p.wte,
            d,
            batch,
            (first_row, stride, vocab),
            true,
            |row, sums| {
                let mut mine = f32::NEG_INFINITY;
                for b in 0..B {
                    if b == lane {
                        mine = sums[b];
                    }
                }
                if lane < batch {
                    if !p.logits.is_null() {
                        *p.logits.add(lane * vocab + row) = mine;
                    }
                    if mine > best_logit || best_row == u32::MAX {
                        best_logit = mine;
                        best_row = row as u32;
                    }
                }
            },
        );
    }
    if lane < batch && best_row != u32::MAX {
        // SAFETY: lane < batch; `best` is device memory of (batch) u64, 8-byte aligned.
        let best = unsafe { AtomicU64::from_ptr(p.best.add(lane)) };
        best.fetch_max(pack_argmax(best_logit, best_row), Ordering::Relaxed);
    }
}

crate::kernels::batch_tile_entries!(LmHeadParams, lm_head, [lm_head_argmax_b1 = 1,]);

/// Tile values each thread of a tensor-core block owns: a block has 256 threads and a
/// 16-row tile of 4 batch tiles has 512 values.
const SLOTS: usize = 2;

const _: () = assert!(
    SLOTS * gemv_tensor_core::WARPS * WARP >= 4 * gemv_tensor_core::TILE_VALUES,
    "every value of the widest tile has an owner"
);

/// The LM head on the tensor cores (batch 2 and more, tiles of 8, 16 and 32): blocks loop
/// over 16-row tiles of the vocabulary ([`crate::kernels::gemv_tensor_core`] computes each, with the most chunks in
/// flight: one block per SM at batch 32 either way, and 4 chunks took batch 32 from 107
/// to 84 us); thread `tid` owns tile
/// values `tid + 256 s`, the same sequence in every tile, and keeps its best packed
/// (logit, row) per slot; at the end each warp folds the lanes that share a sequence and
/// four lanes per slot do the atomic max.
///
/// # Safety
/// As [`lm_head`].
#[inline(always)]
unsafe fn lm_head_mma<const NT: usize>(p: &LmHeadParams) {
    let scratch = block_shared_f32();
    release_dependents();
    let (d, vocab, batch) = (p.d_model as usize, p.vocab as usize, p.batch as usize);
    let block_threads = gemv_tensor_core::WARPS * WARP;
    let tid = thread_index();
    let mut best = [0u64; SLOTS];
    let mut tile = block_index().0;
    let mut first = true;
    // SAFETY: the caller's promise; the tile loop is uniform over the block, so every
    // thread meets every barrier.
    unsafe {
        while tile * (MMA_ROWS as usize) < vocab {
            let row0 = tile * MMA_ROWS as usize;
            let (x, w, shape) = (p.x, p.wte, (vocab, d, batch));
            let (warps, chunks) = (
                (warp_in_block(), gemv_tensor_core::WARPS),
                gemv_tensor_core::MAX_CHUNKS_IN_FLIGHT,
            );
            // x a round at a time (`abi::MMA_X_AHEAD_TILE`), but at the tile of 16, where
            // its registers cost more than the round trips they save.
            let (acc, _) = if NT != 2 {
                gemv_tensor_core::tile_partial::<NT, false, true>(
                    x, w, row0, shape, warps, chunks, first,
                )
            } else {
                gemv_tensor_core::tile_partial::<NT, false, false>(
                    x, w, row0, shape, warps, chunks, first,
                )
            };
            first = false;
            // The previous tile's sums have all been read.
            sync_threads();
            gemv_tensor_core::share_partial(scratch, &acc);
            sync_threads();
            for s in 0..SLOTS {
                let v = tid + s * block_threads;
                if v >= NT * gemv_tensor_core::TILE_VALUES {
                    continue;
                }
                let (offset, sequence) = gemv_tensor_core::value_position(v);
                let row = row0 + offset;
                if row < vocab && sequence < batch {
                    let logit = gemv_tensor_core::block_total(scratch, v);
                    if !p.logits.is_null() {
                        *p.logits.add(sequence * vocab + row) = logit;
                    }
                    best[s] = best[s].max(pack_argmax(logit, row as u32));
                }
            }
            tile += grid_blocks();
        }
    }
    for s in 0..SLOTS {
        let v = tid + s * block_threads;
        // Lanes with the same lane % 4 hold the same sequence: fold over lane / 4.
        let folded = lanes_max_u64(best[s], &[4, 8, 16]);
        if v < NT * gemv_tensor_core::TILE_VALUES && lane() < 4 && folded != 0 {
            let (_, sequence) = gemv_tensor_core::value_position(v);
            // SAFETY: sequence < batch (folded != 0 only from such values); `best` is
            // device memory of (batch) u64, 8-byte aligned.
            let best = unsafe { AtomicU64::from_ptr(p.best.add(sequence)) };
            best.fetch_max(folded, Ordering::Relaxed);
        }
    }
}

// Named by batch tile like the CUDA-core entries; the number is the tensor-core batch
// tiles of 8 sequences each.
crate::kernels::batch_tile_entries!(
    LmHeadParams,
    lm_head_mma,
    [
        lm_head_argmax_b8 = 1,
        lm_head_argmax_b16 = 2,
        lm_head_argmax_b32 = 4,
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
    crate::primitives::start_after_previous_kernels();
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
