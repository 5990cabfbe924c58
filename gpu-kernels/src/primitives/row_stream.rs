//! A warp's weight rows as one stream through shared memory: the batch-tile LM head's
//! loop (see [`stream_rows`]).

use crate::abi::Half;
use crate::primitives::async_copy::{
    RING_SLOTS, RING_WARPS, commit_copies, copy8_async, read_slot, ring_slot, wait_for_copies,
};
use crate::primitives::{Half8, WARP, lane, load8, wait_for_previous_kernels, warp_sum};
use core::f32::math::mul_add;

/// Dot products of weight rows `first, first + stride, ...` (below `end`) with every
/// batch row of `x`, one warp, summed over the warp: `row_done(row, sums)` gets each
/// row's `B` sums in every lane (entries past `batch` are 0). The LM head's loop: a warp
/// with many rows keeps its memory busy across their boundaries.
///
/// The warp's rows are one stream of 512-byte chunks (16 bytes a lane) copied
/// asynchronously into the lane's [`RING_SLOTS`] slots of `ring`: as soon as a chunk is
/// used, its slot is refilled with the chunk [`RING_SLOTS`] further on, the next row's
/// too, so every lane keeps that many loads in flight without holding them in registers
/// (with registers, 4 in flight took 46 of them and 8 cost occupancy). The products are
/// added chunk by chunk in the same order as the batch-1 GEMV's (`crate::kernels::gemv`'s
/// `RowDot`), so both give the same sums. With `wait_after_first_loads`, waits for the
/// previous kernel (programmatic dependent launch) once the first chunks are requested
/// and before reading x.
///
/// # Safety
/// Rows `first, first + stride, ...` below `end` of `w` hold `in_features` halves each
/// and `x` holds `(batch, in_features)`, 16-byte aligned, with `in_features` a multiple
/// of 8 and `batch <= B`; `ring` is the block's [`crate::primitives::async_copy::weight_ring`] and
/// `warp < RING_WARPS` is this warp's index in the block.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub unsafe fn stream_rows<const B: usize>(
    ring: u32,
    warp: usize,
    x: *const Half,
    w: *const Half,
    in_features: usize,
    batch: usize,
    (first, stride, end): (usize, usize, usize),
    wait_after_first_loads: bool,
    mut row_done: impl FnMut(usize, [f32; B]),
) {
    let vectors = in_features / 8;
    let chunks = vectors.div_ceil(WARP);
    let lane = lane();
    // The next chunk to request: (row, chunk of the row).
    let (mut ahead_row, mut ahead_chunk) = (first, 0);
    // SAFETY: copies are issued only for rows < end and vectors < in_features / 8, into
    // this lane's own slots; a slot is refilled only after its chunk has been read.
    unsafe {
        let mut request_into = |slot: usize| {
            let v = ahead_chunk * WARP + lane;
            if ahead_row < end && v < vectors {
                copy8_async(
                    ring_slot(ring, warp, lane, slot),
                    w.add(ahead_row * in_features),
                    v,
                );
            }
            commit_copies();
            ahead_chunk += 1;
            if ahead_chunk == chunks {
                ahead_chunk = 0;
                ahead_row += stride;
            }
        };
        for slot in 0..RING_SLOTS {
            request_into(slot);
        }
        if wait_after_first_loads {
            // The first weights are on their way while the previous kernel finishes
            // writing x.
            wait_for_previous_kernels();
        }
        let (mut row, mut chunk, mut slot) = (first, 0, 0);
        let mut acc = [0.0f32; B];
        while row < end {
            let v = chunk * WARP + lane;
            // x first: its (L1) latency overlaps the wait for the weights, which orders
            // every memory access after it.
            let xs = if v < vectors {
                x_vectors::<B>(x, v, in_features, batch)
            } else {
                [Half8::ZERO; B]
            };
            wait_for_copies();
            if v < vectors {
                let weights = read_slot(ring_slot(ring, warp, lane, slot));
                multiply_add(&mut acc, weights, xs, batch);
            }
            request_into(slot);
            slot = (slot + 1) % RING_SLOTS;
            chunk += 1;
            if chunk == chunks {
                for b in 0..B {
                    acc[b] = warp_sum(acc[b]);
                }
                row_done(row, acc);
                acc = [0.0; B];
                chunk = 0;
                row += stride;
            }
        }
    }
}

const _: () = assert!(
    crate::abi::LmHeadParams::WARPS_PER_BLOCK as usize <= RING_WARPS,
    "every warp of a streaming block has its slots"
);

/// `x[b][8v..8v+8]` for every batch row (zeros past `batch`).
///
/// # Safety
/// As [`stream_rows`], with `v < in_features / 8`.
#[inline(always)]
unsafe fn x_vectors<const B: usize>(
    x: *const Half,
    v: usize,
    in_features: usize,
    batch: usize,
) -> [Half8; B] {
    let mut xs = [Half8::ZERO; B];
    for b in 0..B {
        if b < batch {
            // SAFETY: b < batch and v < in_features / 8.
            xs[b] = unsafe { load8(x.add(b * in_features), v) };
        }
    }
    xs
}

/// `acc[b] += w . xs[b]` for every batch row: the products in the order the GEMV's
/// `accumulate` adds them.
#[inline(always)]
fn multiply_add<const B: usize>(acc: &mut [f32; B], w: Half8, xs: [Half8; B], batch: usize) {
    let w = w.to_f32();
    for b in 0..B {
        if b < batch {
            let xb = xs[b].to_f32();
            for k in 0..8 {
                acc[b] = mul_add(w[k], xb[k], acc[b]);
            }
        }
    }
}
