//! One GPT-2 block per launch at batch 1: the seven kernels of a block as
//! phases of one persistent kernel, separated by grid-wide barriers (see
//! [`DecoderLayerParams`]).
//!
//! Why: at batch 1 a block's weights take ~21 us to stream (gpt2-xl) but seven dependent
//! kernels each pay a launch, a ramp-up and a drain; the idea is that a grid barrier
//! costs less than a kernel boundary, and two of the seven (the layernorms) disappear:
//! every block normalizes the few rows it needs itself, into shared memory.
//!
//! Measured (H100, gpu-kernels/PERF.md version 12): bit-identical to the seven kernels
//! it replaced at batch tiles 1, 2 and 4, but slower (gpt2-xl batch 1 graph 3.02 against
//! 2.40 ms per token), so it is opt-in (`Engine::set_fuse_layers`). Since then the
//! engine's batch-1 path folds the layernorms into the GEMVs (version 15: the same to
//! rounding) and larger batches run on the tensor cores (version 20): it runs batch 1.
//! A barrier costs ~1.2 us, no less than a programmatic kernel boundary, and with
//! attention's registers in the same kernel the GEMV phases get 16 warps per SM where the
//! GEMV kernels get up to 40.
//!
//! Phases (barriers marked |): ln_1 + QKV into the cache | attention | projection +
//! residual | ln_2 + fc + GELU | projection + residual. Work inside a phase goes to warps
//! grid-stride: GEMV rows one warp each, attention one warp per 32-position split.

use crate::abi::{AttentionParams, DecoderLayerParams, GemvParams, LayerNormParams};
use crate::attention::attend_split;
use crate::device::{
    BLOCK_SHARED_F32, block_index, block_shared_f32, grid_barrier, grid_blocks, release_dependents,
    sync_threads, wait_for_previous_kernels, warp_in_block,
};
use crate::gemv::gemv_rows_streamed;
use crate::layernorm::normalize_row_in_place;

/// V rows (and partial outputs) the attention phase loads at a time: fewer than the
/// attention kernel's 32, so that its registers do not cap the GEMV phases' occupancy.
const ROUND: usize = 16;

/// Weight loads in flight per lane in the GEMV phases: twice the GEMV kernel's, as the
/// attention phase's registers leave this kernel fewer warps per SM (16 instead of up to
/// 40) and the registers are there anyway.
const LOADS: usize = 8;

const WARPS_PER_BLOCK: usize = DecoderLayerParams::WARPS_PER_BLOCK as usize;

const _: () = assert!(
    DecoderLayerParams::SHARED_HALVES as usize * 2 <= BLOCK_SHARED_F32 * 4,
    "the normalized rows of the largest batch tile fit the block's shared memory"
);
const _: () = assert!(
    WARPS_PER_BLOCK >= 4,
    "one warp per sequence of the largest batch tile normalizes its row"
);

/// # Safety
/// The pointers hold the shapes [`DecoderLayerParams`] documents and pass its `check`;
/// every block of the grid is resident at once (the host caps the grid to one wave).
#[inline(always)]
unsafe fn decoder_layer<const B: usize>(p: &DecoderLayerParams) {
    // (batch, d_model) normalized rows, this block's own copy.
    let normalized = block_shared_f32() as *mut f16;
    // The next launch may start once every block of this grid has passed here, so all of
    // them are resident by then: its blocks (which wait for this grid to finish) cannot
    // take an SM this grid's barriers need.
    release_dependents();
    let warp = block_index().0 * WARPS_PER_BLOCK + warp_in_block();
    let warps = grid_blocks() * WARPS_PER_BLOCK;
    // SAFETY: the caller's promise, phase by phase; each GEMV phase requests its first
    // weights, then passes its gate (the barrier that orders the phase before it, and
    // the layernorm), and only then reads activations or writes.
    unsafe {
        let qkv = reading(&p.qkv, normalized);
        gemv_rows_streamed::<B, LOADS>(&qkv, warp, warps, || {
            wait_for_previous_kernels();
            normalize_rows(&p.ln_1, normalized);
        });
        grid_barrier(p.barrier);

        attend(&p.attention, warp, warps);

        gemv_rows_streamed::<B, LOADS>(&p.attn_proj, warp, warps, || grid_barrier(p.barrier));

        let fc = reading(&p.fc, normalized);
        gemv_rows_streamed::<B, LOADS>(&fc, warp, warps, || {
            grid_barrier(p.barrier);
            normalize_rows(&p.ln_2, normalized);
        });

        gemv_rows_streamed::<B, LOADS>(&p.mlp_proj, warp, warps, || grid_barrier(p.barrier));
    }
}

/// The first `batch` warps of the block normalize one row each into `out` (shared
/// memory), then the block waits for them.
///
/// # Safety
/// `p` passes its `check`; `out` holds (batch, d_model) halves. Every thread of the
/// block calls it.
#[inline(always)]
unsafe fn normalize_rows(p: &LayerNormParams, out: *mut f16) {
    let row = warp_in_block();
    let d = p.d_model as usize;
    if row < p.batch as usize {
        // SAFETY: row < batch.
        unsafe { normalize_row_in_place(p, p.x.add(row * d), out.add(row * d)) };
    }
    sync_threads();
}

/// `p` with its input taken from `x` (this block's normalized rows).
#[inline(always)]
fn reading(p: &GemvParams, x: *const f16) -> GemvParams {
    GemvParams { x, ..*p }
}

/// Every (sequence, head, split) of the attention phase, one warp each in turn.
///
/// # Safety
/// As [`crate::attention::attention_f16`]; the QKV phase's writes are visible.
#[inline(always)]
unsafe fn attend(p: &AttentionParams, first: usize, stride: usize) {
    let splits = AttentionParams::splits(p.context_bucket) as usize;
    let n_head = p.n_head as usize;
    let items = p.batch as usize * n_head * splits;
    let mut item = first;
    while item < items {
        let (b, head, split) = (
            item / (n_head * splits),
            item / splits % n_head,
            item % splits,
        );
        // SAFETY: b < batch, head < n_head.
        unsafe { attend_split::<true, ROUND>(p, b, head, split) };
        item += stride;
    }
}

// Batch 1 only since larger batches run on the tensor cores (PERF.md version 20); the
// body stays generic over the tile it was built and measured for (1, 2 and 4).
crate::batch_tile_entries!(
    DecoderLayerParams,
    decoder_layer,
    [decoder_layer_f16_b1 = 1]
);
