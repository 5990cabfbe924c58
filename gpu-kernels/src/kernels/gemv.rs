//! Skinny GEMM for decode: `y[b] = x[b] W^T + bias` with fused epilogues, on CUDA cores
//! at batch 1 (from batch 2 on, [`crate::kernels::gemv_tensor_core`] uses the tensor cores).
//!
//! Bytes: out * in * 2 (W, read once whatever the batch) + batch * (in + out) * 2.
//! FLOPs: 2 * batch * out * in. Memory bound up to batch ~32 on an H100.
//! One warp per output row, which it multiplies with x (small, it stays in L1/L2), then
//! the warp reduces its sums with shuffles. Lane 0 requests the row in 3.5 KiB pieces
//! with bulk copies into block-shared memory ([`crate::primitives::bulk_copy`]), the
//! whole row (up to 1792 wide) or two pieces before the programmatic wait, and the lanes
//! read it from there: kilobytes in flight a warp, no register held for them. Other ways
//! of keeping bytes in flight (four warps a row, more loads in registers, a persistent
//! grid, a `cp.async` ring as the LM head's) are slower here (PERF.md, "GEMV at batch 1").
//!
//! Where only that holds the output in one wave of blocks, `gemv_sized_b1` runs blocks
//! of 8 warps whose slots fit the row (dynamic shared memory) instead of 4 of 3.5 KiB.
//!
//! After the programmatic wait x is new to every SM, so each of its vectors a lane
//! needs is an L2 round trip: they are requested together, before any is used
//! ([`x_vectors_from`]), not one by one next to their products.
//!
//! The same GEMV with the layernorm before it folded into its weights is in
//! [`super::gemv_folded_norm`].

use crate::abi::GemvParams;
use crate::abi::Half;
use crate::kernels::epilogue::{EpilogueInput, bias, store_loaded};
use crate::primitives::bulk_copy::{
    PIECE_CHUNKS, PIECE_VECTORS, WarpStage, warp_stage_1, warp_stage_2, warp_stage_sized,
};
use crate::primitives::{
    Half8, WARP, block_index, lane, load8, release_dependents, sync_warp,
    wait_for_previous_kernels, warp_in_block, warp_sum,
};
use core::f32::math::mul_add;

/// What a warp sums over one weight row: the dot product with x and, for a layernorm
/// folded into the GEMV, the sum and the sum of squares of x (zero unless asked for).
#[derive(Clone, Copy)]
pub(super) struct RowSums {
    /// `w . x`.
    pub(super) dot: f32,
    /// `sum_k x[k]`.
    pub(super) sum: f32,
    /// `sum_k x[k]^2`.
    pub(super) squares: f32,
}

impl RowSums {
    const ZERO: Self = RowSums {
        dot: 0.0,
        sum: 0.0,
        squares: 0.0,
    };

    /// The sums of every lane's share, in every lane (the moments with `moments`).
    #[inline(always)]
    fn over_warp(mut self, moments: bool) -> Self {
        self.dot = warp_sum(self.dot);
        if moments {
            self.sum = warp_sum(self.sum);
            self.squares = warp_sum(self.squares);
        }
        self
    }
}

/// `acc.dot += w . x` over one vector of 8 (and with `moments` the sum and squares of
/// those 8 values of x), in the order every batch-1 path adds them.
#[inline(always)]
fn add_products(acc: &mut RowSums, w: Half8, x: Half8, moments: bool) {
    let (w, x) = (w.to_f32(), x.to_f32());
    for k in 0..8 {
        acc.dot = mul_add(w[k], x[k], acc.dot);
    }
    if moments {
        for k in 0..8 {
            acc.sum += x[k];
            acc.squares = mul_add(x[k], x[k], acc.squares);
        }
    }
}

/// x's vectors `first, first + 32, ...`, `N` of them (past the last, the last again, for
/// the caller to leave unused), requested together before any is used. After the
/// programmatic wait x is new to every SM: requested one by one next to the products,
/// each would cost an L2 round trip on the kernel's critical path (7 for a 1600-wide
/// row).
///
/// # Safety
/// `x` holds `vectors >= 1` vectors of 8 halves, 16-byte aligned.
#[inline(always)]
unsafe fn x_vectors_from<const N: usize>(
    x: *const Half,
    first: usize,
    vectors: usize,
) -> [Half8; N] {
    let mut xs = [Half8::ZERO; N];
    for (c, slot) in xs.iter_mut().enumerate() {
        // SAFETY: the index is clamped below `vectors`.
        *slot = unsafe { load8(x, (first + c * WARP).min(vectors - 1)) };
    }
    xs
}

/// How a batch-1 warp gets its row's sums: the dot product of its weight row with x
/// (with `MOMENTS`, also the sum and the sum of squares of x), summed over the warp, in
/// every lane. Lane l adds the products of its vectors l, l + 32, ... in that order (8 per
/// vector into one fp32 accumulator), then the warp sums the lanes: the same order
/// whichever way the row arrives ([`Staged`], [`InRegisters`]).
pub(super) trait RowDot: Copy {
    /// The row's sums and what `after_wait` returned. `after_wait` runs right after the
    /// programmatic wait, before x's loads (the epilogue's inputs that earlier kernels
    /// wrote).
    ///
    /// # Safety
    /// `w_row` holds `in_features` halves and `x` holds `in_features`, both 16-byte
    /// aligned, with `in_features` a multiple of 8 (and within the implementation's
    /// limit); `self` is this warp's, unused so far, and all 32 lanes call this.
    unsafe fn row_sums<const MOMENTS: bool, T>(
        self,
        x: *const Half,
        w_row: *const Half,
        in_features: usize,
        after_wait: impl FnOnce() -> T,
    ) -> (RowSums, T);
}

/// The row staged through this warp's slots in block-shared memory by bulk copies (see
/// [`crate::primitives::bulk_copy`]): lane 0 requests it in pieces of [`PIECE_VECTORS`] vectors,
/// `SLOTS` pieces at a time, the first ones before the programmatic wait.
///
/// `X_AHEAD`: each piece's vectors of x are requested together, before the piece is
/// waited for ([`x_vectors_from`]; 50-64 registers instead of 28-32). Without it each
/// vector is loaded next to its products, an L2 round trip apiece after the
/// programmatic wait, which only the sized stage accepts: its blocks fit one wave only
/// with few registers, and one wave is worth more there.
#[derive(Clone, Copy)]
pub(super) struct Staged<const SLOTS: usize, const X_AHEAD: bool>(pub(super) WarpStage<SLOTS>);

impl<const SLOTS: usize, const X_AHEAD: bool> RowDot for Staged<SLOTS, X_AHEAD> {
    #[inline(always)]
    unsafe fn row_sums<const MOMENTS: bool, T>(
        self,
        x: *const Half,
        w_row: *const Half,
        in_features: usize,
        after_wait: impl FnOnce() -> T,
    ) -> (RowSums, T) {
        let stage = self.0;
        let vectors = in_features / 8;
        let pieces = vectors.div_ceil(PIECE_VECTORS);
        let lane = lane();
        let request = |piece: usize| {
            if lane == 0 && piece < pieces {
                let first = piece * PIECE_VECTORS;
                // SAFETY: the piece's vectors lie inside the row.
                unsafe {
                    stage.request(
                        piece,
                        w_row.add(first * 8),
                        (vectors - first).min(PIECE_VECTORS),
                    )
                };
            }
        };
        if lane == 0 {
            stage.init(pieces);
        }
        sync_warp();
        for piece in 0..SLOTS {
            request(piece);
        }
        // The row is on its way while the previous kernel finishes writing x.
        wait_for_previous_kernels();
        let waited = after_wait();
        let mut acc = RowSums::ZERO;
        for piece in 0..pieces {
            let xs = if X_AHEAD {
                // SAFETY: x holds `vectors` vectors.
                unsafe { x_vectors_from::<PIECE_CHUNKS>(x, piece * PIECE_VECTORS + lane, vectors) }
            } else {
                [Half8::ZERO; PIECE_CHUNKS]
            };
            stage.wait(piece);
            for c in 0..PIECE_CHUNKS {
                let i = c * WARP + lane;
                let v = piece * PIECE_VECTORS + i;
                if v < vectors {
                    // SAFETY: the piece has landed and holds vector i; v < vectors.
                    let w = unsafe { stage.read(piece, i) };
                    let xv = if X_AHEAD {
                        xs[c]
                    } else {
                        unsafe { load8(x, v) }
                    };
                    add_products(&mut acc, w, xv, MOMENTS);
                }
            }
            if piece + SLOTS < pieces {
                // Every lane has read the slot before it is refilled.
                sync_warp();
                request(piece + SLOTS);
            }
        }
        (acc.over_warp(MOMENTS), waited)
    }
}

/// The row in registers: every lane requests its `LOADS` vectors of it before the
/// programmatic wait (rows of at most `LOADS * 256` inputs).
#[derive(Clone, Copy)]
pub(super) struct InRegisters<const LOADS: usize>;

impl<const LOADS: usize> RowDot for InRegisters<LOADS> {
    #[inline(always)]
    unsafe fn row_sums<const MOMENTS: bool, T>(
        self,
        x: *const Half,
        w_row: *const Half,
        in_features: usize,
        after_wait: impl FnOnce() -> T,
    ) -> (RowSums, T) {
        let vectors = in_features / 8;
        let lane = lane();
        let mut w = [Half8::ZERO; LOADS];
        for i in 0..LOADS {
            let v = i * WARP + lane;
            if v < vectors {
                // SAFETY: v < in_features / 8.
                w[i] = unsafe { crate::primitives::load8_weight(w_row, v) };
            }
        }
        wait_for_previous_kernels();
        let waited = after_wait();
        // SAFETY: x holds `vectors` vectors.
        let xs = unsafe { x_vectors_from::<LOADS>(x, lane, vectors) };
        let mut acc = RowSums::ZERO;
        for i in 0..LOADS {
            if i * WARP + lane < vectors {
                add_products(&mut acc, w[i], xs[i], MOMENTS);
            }
        }
        (acc.over_warp(MOMENTS), waited)
    }
}

/// The batch-1 GEMV, one warp per output row in blocks of `warps_per_block`, its sums by
/// `rows` ([`store_row_b1`]).
///
/// # Safety
/// The pointers hold the shapes [`GemvParams`] documents and pass its `check`; `rows`
/// is this warp's; the launch has blocks of `warps_per_block` warps.
#[inline(always)]
unsafe fn gemv_one_sequence<R: RowDot>(p: &GemvParams, rows: R, warps_per_block: u32) {
    let Some((row, _, _)) = this_warps_row(p, warps_per_block) else {
        return;
    };
    // SAFETY: row < out_features, batch 1.
    unsafe { store_row_b1::<R, false>(p, rows, row, |sums| sums.dot) };
}

/// Output `row` of a batch-1 GEMV: its sums by `rows`, `output(sums)` before the bias,
/// then the epilogue, stored by lane 0. The bias is requested before the programmatic
/// wait and the epilogue's other input right after it ([`crate::kernels::epilogue`]):
/// after the sums they would be two more dependent round trips.
///
/// # Safety
/// row < out_features of a checked [`GemvParams`] of batch 1; `rows` is this warp's.
#[inline(always)]
pub(super) unsafe fn store_row_b1<R: RowDot, const MOMENTS: bool>(
    p: &GemvParams,
    rows: R,
    row: usize,
    output: impl FnOnce(RowSums) -> f32,
) {
    let n_in = p.in_features as usize;
    // SAFETY: the caller's promise.
    unsafe {
        let w_row = p.w.add(row * n_in);
        let bias = bias(p, row);
        let (sums, input) =
            rows.row_sums::<MOMENTS, _>(p.x, w_row, n_in, || EpilogueInput::load(p, 0, row));
        let y = output(sums) + bias;
        if lane() == 0 {
            store_loaded(p, 0, row, y, input);
        }
    }
}

/// Batch 1, rows of up to [`GemvParams::STAGED_ROW_HALVES`] inputs (one piece each).
///
/// # Safety
/// The pointers hold the shapes [`GemvParams`] documents and pass its `check`.
#[unsafe(no_mangle)]
pub unsafe extern "ptx-kernel" fn gemv_b1(p: GemvParams) {
    let stage = warp_stage_1(warp_in_block());
    // SAFETY: the caller's promise.
    unsafe { gemv_one_sequence(&p, Staged::<1, true>(stage), GemvParams::WARPS_PER_BLOCK) }
}

/// [`gemv_b1`] in blocks of [`GemvParams::SIZED_WARPS`] warps, each row's slot sized
/// to it in dynamic shared memory, for outputs that this holds in one wave of blocks
/// and the static stage does not ([`GemvParams::takes_sized_stage`]).
///
/// # Safety
/// As [`gemv_b1`], launched with [`GemvParams::sized_stage_bytes`] of dynamic shared
/// memory.
#[unsafe(no_mangle)]
pub unsafe extern "ptx-kernel" fn gemv_sized_b1(p: GemvParams) {
    let slot = GemvParams::sized_slot_bytes(p.in_features) as usize;
    let stage = warp_stage_sized(warp_in_block(), slot);
    // SAFETY: the caller's promise.
    unsafe { gemv_one_sequence(&p, Staged::<1, false>(stage), GemvParams::SIZED_WARPS) }
}

/// Batch 1, wider rows: two pieces of each in flight (a third would take half again the
/// shared memory and is slower).
///
/// # Safety
/// The pointers hold the shapes [`GemvParams`] documents and pass its `check`.
#[unsafe(no_mangle)]
pub unsafe extern "ptx-kernel" fn gemv_wide_b1(p: GemvParams) {
    let stage = warp_stage_2(warp_in_block());
    // SAFETY: the caller's promise.
    unsafe { gemv_one_sequence(&p, Staged::<2, true>(stage), GemvParams::WARPS_PER_BLOCK) }
}

/// Lets the next kernel launch, then gives this warp's output row (one warp per row, in
/// blocks of `warps_per_block`), with in_features and batch, or `None` for a warp past
/// the last row.
#[inline(always)]
pub(super) fn this_warps_row(
    p: &GemvParams,
    warps_per_block: u32,
) -> Option<(usize, usize, usize)> {
    let row = block_index().0 * warps_per_block as usize + warp_in_block();
    release_dependents();
    (row < p.out_features as usize).then_some((row, p.in_features as usize, p.batch as usize))
}
