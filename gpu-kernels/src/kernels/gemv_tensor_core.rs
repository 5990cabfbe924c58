//! Skinny GEMM on the tensor cores, for every batch from 2 (tiles of 8 to 32 sequences):
//! `y[b] = x[b] W^T + bias` with the epilogues of [`crate::kernels::gemv`].
//!
//! Bytes: as the CUDA-core GEMV (W once, whatever the batch). FLOPs: 2 * batch * out * in,
//! which at batch 32 is more than CUDA cores issue at the rate HBM delivers weights
//! (32 FMAs per weight half, 256 per 16-byte load): `mma.sync.m16n8k16` does 4096 per
//! instruction.
//!
//! The product is `W (16 rows x k) * x^T (k x 8 sequences)` per mma. One block of
//! [`MMA_WARPS_PER_BLOCK`] warps owns 16 output rows; its warps take interleaved 32-wide
//! chunks of the reduction and add their partial tiles through shared memory in a fixed
//! order (bit-identical results run to run, so graphs match eager launches). Outputs too
//! narrow to give each SM a block split each tile's reduction over a cluster of 4 blocks,
//! which add their sums in the first block's shared memory
//! ([`crate::abi::MMA_CLUSTER_BELOW_TILES`]). Up to batch 8 the QKV and fc GEMVs also
//! take the moments of x for the layernorm folded into their weights (`gemv_tensor`).
//!
//! Loading: the mma's A fragment wants a lane's halves of a row at k = 2t, 2t + 1,
//! 2t + 8, 2t + 9 (t = lane % 4), four bytes apart from its neighbours'. A dot product
//! does not care in which order k is summed as long as W and x agree, so each lane
//! instead loads 16 contiguous bytes of its two rows (k = 8t..8t + 8 of a 32-wide
//! chunk) and of x, and feeds halves 0-3 to one mma and halves 4-7 to a second: every
//! load is a full 16-byte access, no shuffles or shared-memory staging.

use crate::abi::Half;
use crate::abi::{FoldedNormGemvParams, GemvParams, MMA_ROWS, MMA_WARPS_PER_BLOCK};
use crate::kernels::epilogue::{EpilogueInput, bias, store_loaded};
use crate::kernels::gemv_folded_norm::normalize_folded;
use crate::primitives::cluster::{
    FirstBlockArrivals, cluster_arrive_relaxed, cluster_rank, cluster_wait,
};
use crate::primitives::{
    Half8, WARP, block_index, block_shared_array, block_shared_f32, lane, load8, load8_stream,
    mma_m16n8k16, release_dependents, shuffle_xor, sync_threads, thread_index,
    wait_for_previous_kernels, warp_in_block,
};
use core::f32::math::mul_add;

/// Warps per block, each taking every `WARPS`-th chunk of the reduction.
pub const WARPS: usize = MMA_WARPS_PER_BLOCK as usize;
/// Reduction columns per chunk: 32 lanes' 16-byte loads of 16 rows, two mmas.
const CHUNK: usize = 32;
/// Chunks whose weight loads a GEMV warp issues before using any (bytes in flight):
/// fewer for 4 batch tiles, whose x fragments and accumulators take the registers (more
/// chunks there cost blocks per SM). 3, not 4, for 1 and 2 tiles: with 4 they take 86
/// and 100 registers, two blocks per SM; with 3 they run three under launch bounds
/// (`abi::launch_bounds`), the faster over a whole step.
pub const fn gemv_chunks_in_flight(batch_tiles: usize) -> usize {
    if batch_tiles >= 4 { 2 } else { 3 }
}
/// Chunks in flight of the entries that run four blocks per SM (`abi::MMA_ENTRIES`), at
/// most 64 registers: 55-64 with two chunks at the tiles of 8 and 16 (three spilled
/// 16-56 bytes), 63-64 with one at 32 (two spilled 84-96).
const fn four_per_sm_chunks_in_flight(batch_tiles: usize) -> usize {
    if batch_tiles >= 4 { 1 } else { 2 }
}
/// The most chunks in flight [`tile_partial`] takes.
pub const MAX_CHUNKS_IN_FLIGHT: usize = 4;
/// Values of one warp's partial tile per batch tile: 16 x 8, four per lane.
pub const TILE_VALUES: usize = MMA_ROWS as usize * 8;
/// Shared-memory stride between warps' partial tiles: room for four batch tiles.
const WARP_STRIDE: usize = 4 * TILE_VALUES;

const _: () = assert!(WARPS * WARP_STRIDE <= crate::primitives::BLOCK_SHARED_F32);

/// One warp's partial `W[row0..row0 + 16] x^T` over the chunks `first_chunk`,
/// `first_chunk + warps`, ... (`(first_chunk, warps)`: this warp's index among the warps
/// that share the reduction, and their number): `NT` batch tiles of mma accumulators,
/// `in_flight` chunks of weight loads in flight (a constant at the call, at most
/// [`MAX_CHUNKS_IN_FLIGHT`]);
/// with `MOMENTS`, also per batch tile the sum and sum of squares of the x values this
/// lane loaded (sequence 8 j + lane / 4, its share of the chunks). Rows at or past
/// `n_out` and sequences at or past `batch` read as zeros. Waits for the previous kernel
/// (programmatic launch) after issuing its first weight loads if `wait` is set.
///
/// # Safety
/// `w` holds `(n_out, n_in)` and `x` `(batch, n_in)` halves, 16-byte aligned, with `n_in`
/// a multiple of 8 and `batch <= 8 * NT`. The whole warp calls it together.
#[inline(always)]
pub unsafe fn tile_partial<const NT: usize, const MOMENTS: bool, const X_AHEAD: bool>(
    x: *const Half,
    w: *const Half,
    row0: usize,
    (n_out, n_in, batch): (usize, usize, usize),
    (first_chunk, warps): (usize, usize),
    in_flight: usize,
    wait: bool,
) -> ([[f32; 4]; NT], [[f32; 2]; NT]) {
    let lane = lane();
    let (g, t) = (lane / 4, lane % 4);
    let (row_lo, row_hi) = (row0 + g, row0 + g + 8);
    let chunks = n_in.div_ceil(CHUNK);
    let mut acc = [[0.0f32; 4]; NT];
    let mut moments = [[0.0f32; 2]; NT];
    let mut waited = !wait;
    let mut chunk = first_chunk;
    // SAFETY: rows are read only below n_out, vectors only below n_in / 8, sequences only
    // below batch.
    unsafe {
        while chunk < chunks {
            let mut lo = [Half8::ZERO; MAX_CHUNKS_IN_FLIGHT];
            let mut hi = [Half8::ZERO; MAX_CHUNKS_IN_FLIGHT];
            for i in 0..MAX_CHUNKS_IN_FLIGHT {
                let k = (chunk + i * warps) * CHUNK + 8 * t;
                if i < in_flight && k < n_in {
                    if row_lo < n_out {
                        lo[i] = load8_stream(w.add(row_lo * n_in), k / 8);
                    }
                    if row_hi < n_out {
                        hi[i] = load8_stream(w.add(row_hi * n_in), k / 8);
                    }
                }
            }
            if !waited {
                // The first weights are on their way while the previous kernel finishes.
                wait_for_previous_kernels();
                waited = true;
            }
            // With X_AHEAD every x fragment of the round is requested before the first
            // mma: one L2 round trip a round instead of one a chunk (x does not stay in
            // L1 at batch 32: 100 KiB at gpt2-xl's width), for the registers they take.
            let mut xs = [[Half8::ZERO; NT]; MAX_CHUNKS_IN_FLIGHT];
            if X_AHEAD {
                for i in 0..MAX_CHUNKS_IN_FLIGHT {
                    let k = (chunk + i * warps) * CHUNK + 8 * t;
                    if i < in_flight && chunk + i * warps < chunks {
                        for j in 0..NT {
                            let sequence = 8 * j + g;
                            if k < n_in && sequence < batch {
                                xs[i][j] = load8(x.add(sequence * n_in), k / 8);
                            }
                        }
                    }
                }
            }
            for i in 0..MAX_CHUNKS_IN_FLIGHT {
                // Warp-uniform: the mmas below run on all lanes or none.
                if i >= in_flight || chunk + i * warps >= chunks {
                    break;
                }
                let k = (chunk + i * warps) * CHUNK + 8 * t;
                let a = core::mem::transmute::<Half8, [u32; 4]>(lo[i]);
                let b = core::mem::transmute::<Half8, [u32; 4]>(hi[i]);
                for j in 0..NT {
                    let sequence = 8 * j + g;
                    let xv = if X_AHEAD {
                        xs[i][j]
                    } else if k < n_in && sequence < batch {
                        load8(x.add(sequence * n_in), k / 8)
                    } else {
                        Half8::ZERO
                    };
                    if MOMENTS {
                        let values = xv.to_f32();
                        for e in 0..8 {
                            moments[j][0] += values[e];
                            moments[j][1] = mul_add(values[e], values[e], moments[j][1]);
                        }
                    }
                    let xv = core::mem::transmute::<Half8, [u32; 4]>(xv);
                    mma_m16n8k16(&mut acc[j], [a[0], b[0], a[1], b[1]], [xv[0], xv[1]]);
                    mma_m16n8k16(&mut acc[j], [a[2], b[2], a[3], b[3]], [xv[2], xv[3]]);
                }
            }
            chunk += in_flight * warps;
        }
    }
    if !waited {
        // A warp with no chunk (a reduction shorter than the block's warps) still
        // waits before anything after it reads x or writes outputs.
        wait_for_previous_kernels();
    }
    (acc, moments)
}

/// Adds the block's warps' partial tiles (written to `scratch` by [`share_partial`])
/// for value `v` of the tile, in warp order.
///
/// # Safety
/// `scratch` is the block's scratch after a barrier that follows every warp's
/// [`share_partial`]; `v < NT * TILE_VALUES`.
#[inline(always)]
pub unsafe fn block_total(scratch: *const f32, v: usize) -> f32 {
    let mut y = 0.0;
    for warp in 0..WARPS {
        // SAFETY: inside the scratch (the assertion above).
        y += unsafe { *scratch.add(warp * WARP_STRIDE + v) };
    }
    y
}

/// Writes this warp's accumulators to its slot of `scratch`: value
/// `(j * 4 + r) * 32 + lane` is register r of batch tile j (see [`value_position`]).
///
/// # Safety
/// `scratch` is the block's [`block_shared_f32`] scratch, not being read.
#[inline(always)]
pub unsafe fn share_partial<const NT: usize>(scratch: *mut f32, acc: &[[f32; 4]; NT]) {
    let base = warp_in_block() * WARP_STRIDE + lane();
    for j in 0..NT {
        for r in 0..4 {
            // SAFETY: inside the scratch.
            unsafe { *scratch.add(base + (j * 4 + r) * WARP) = acc[j][r] };
        }
    }
}

/// The (row offset in the tile, sequence) of tile value `v`, from the mma's D layout:
/// register r of lane (g, t) in batch tile j is row g + 8 (r / 2), column 2t + r % 2.
#[inline(always)]
pub fn value_position(v: usize) -> (usize, usize) {
    let (lane, r, j) = (v % WARP, (v / WARP) % 4, v / TILE_VALUES);
    let (g, t) = (lane / 4, lane % 4);
    (g + 8 * (r / 2), 8 * j + 2 * t + r % 2)
}

/// The layernorm folded into the weights ([`crate::abi::FoldedNormGemvParams`]): each row's sum of
/// the folded weights and epsilon. Null row sums: a plain GEMV.
#[derive(Clone, Copy)]
struct Fold {
    row_sums: *const f32,
    eps: f32,
    /// An RMSNorm folded in (no mean subtracted; `row_sums` null).
    rms: bool,
}

/// The tensor-core GEMV: one block of [`WARPS`] warps per 16-row tile, or with `C > 1` a
/// cluster of `C` blocks (consecutive along x) per tile: warp w of block r takes chunks
/// `8 r + w`, `8 r + w + 8 C`, ...; each block adds its warps' tiles in warp order and
/// sends the sum into the shared memory of the cluster's first block
/// ([`FirstBlockArrivals`]; the others are then done); the first block, once every byte
/// is in, adds the blocks' sums in rank order and stores (no cluster barrier holds every
/// block until all have written: that would cost a step at batch 8 some 2.5 %). Clusters
/// give outputs too narrow to fill the GPU one block per tile more SMs and more bytes in
/// flight ([`crate::abi::MMA_CLUSTER_BELOW_TILES`]). With `FOLD`, x is the raw input of a
/// layernorm folded into the weights: the warps also sum x and x^2 from the fragments
/// they load (added like the tiles: lanes, warps, blocks, in fixed orders) and each
/// output is normalized as the batch-1 folded GEMV does. Each warp keeps `IN_FLIGHT`
/// chunks of weight loads in flight (at most [`MAX_CHUNKS_IN_FLIGHT`]); the sums do not
/// depend on it. Deterministic throughout.
///
/// # Safety
/// The pointers hold the shapes [`GemvParams`] documents and pass its `check` (with
/// `FOLD`, `fold.row_sums` holds out_features sums); the launch has
/// [`crate::abi::LaunchDims`] from `GemvParams::launch_dims` and, with `C > 1`, runs as
/// clusters of `C` blocks (the entry's `.reqnctapercluster`), `C * NT * TILE_VALUES <=
/// CLUSTER_SUMS`.
#[inline(always)]
unsafe fn gemv_tensor<
    const NT: usize,
    const C: usize,
    const FOLD: bool,
    const X_AHEAD: bool,
    const IN_FLIGHT: usize,
>(
    p: &GemvParams,
    fold: Fold,
) {
    let scratch = block_shared_f32();
    let (sums, moments) = (cluster_sums(), moment_sums());
    let arrivals = FirstBlockArrivals::declare();
    if C > 1 {
        if cluster_rank() == 0 && thread_index() == 0 {
            arrivals.init();
        }
        // Phase one of the cluster barrier ends once every block has started: only then
        // may the others write into the first block's shared memory.
        cluster_arrive_relaxed();
    }
    release_dependents();
    let rank = if C > 1 { cluster_rank() } else { 0 };
    let row0 = block_index().0 / C * MMA_ROWS as usize;
    let shape = (
        p.out_features as usize,
        p.in_features as usize,
        p.batch as usize,
    );
    let values = NT * TILE_VALUES;
    let (tid, lane) = (thread_index(), lane());
    // SAFETY: the caller's promise; every thread of every block (of the cluster) runs
    // every barrier below; the first block's shared memory is written only between the
    // barrier that says it started and the arrivals it waits for before it reads it.
    unsafe {
        let warp = rank * WARPS + warp_in_block();
        let (acc, lane_moments) = tile_partial::<NT, FOLD, X_AHEAD>(
            p.x,
            p.w,
            row0,
            shape,
            (warp, C * WARPS),
            IN_FLIGHT,
            true,
        );
        // What the epilogue of this thread's outputs reads besides their sums, requested
        // now (after the programmatic wait, inside tile_partial) so that it arrives
        // during the barriers below instead of after them.
        let mut early = [OutputInputs::NONE; OUTPUTS_PER_THREAD];
        if rank == 0 {
            for (k, inputs) in early.iter_mut().enumerate() {
                let v = tid + k * WARPS * WARP;
                if v < values {
                    *inputs = OutputInputs::load(p, fold, row0, shape, v);
                }
            }
        }
        share_partial(scratch, &acc);
        if FOLD {
            // Lanes 4g..4g+3 hold sequence 8j+g's sums over their k slices.
            for j in 0..NT {
                let mut m = lane_moments[j];
                for k in 0..2 {
                    m[k] += shuffle_xor(m[k], 1);
                    m[k] += shuffle_xor(m[k], 2);
                }
                if lane % 4 == 0 {
                    let at = moments.add((warp_in_block() * MAX_SEQUENCES + 8 * j + lane / 4) * 2);
                    *at = m[0];
                    *at.add(1) = m[1];
                }
            }
        }
        sync_threads();
        // This block's sums of sequence s's moments, over its warps in order.
        let block_moments = |s: usize| {
            let mut m = [0.0f32; 2];
            for w in 0..WARPS {
                let at = moments.add((w * MAX_SEQUENCES + s) * 2);
                m[0] += *at;
                m[1] += *at.add(1);
            }
            m
        };
        if C > 1 {
            cluster_wait();
            // The first block writes its sums into its shared memory, the others send
            // theirs there and are done.
            let mut v = tid;
            while v < values {
                let at = sums.add(rank * values + v);
                let total = block_total(scratch, v);
                if rank == 0 {
                    *at = total;
                } else {
                    arrivals.send(at, total);
                }
                v += WARPS * WARP;
            }
            if FOLD && tid < 8 * NT {
                let m = block_moments(tid);
                let at = moments.add(cluster_moment(rank, tid));
                if rank == 0 {
                    *at = m[0];
                    *at.add(1) = m[1];
                } else {
                    arrivals.send_pair(at, m);
                }
            }
            if rank != 0 {
                return;
            }
            // Its own sums by its barrier, the others' by their bytes.
            sync_threads();
            if tid == 0 {
                let moment_bytes = if FOLD { 8 * NT as u32 * 8 } else { 0 };
                arrivals.expect_and_arrive((C as u32 - 1) * (values as u32 * 4 + moment_bytes));
            }
            arrivals.wait();
        }
        for (k, inputs) in early.iter().enumerate() {
            let v = tid + k * WARPS * WARP;
            let (row, sequence) = value_position(v);
            let row = row0 + row;
            if v < values && row < shape.0 && sequence < shape.2 {
                let (mut y, mut m) = (0.0, [0.0f32; 2]);
                if C > 1 {
                    for r in 0..C {
                        y += *sums.add(r * values + v);
                        if FOLD {
                            let at = moments.add(cluster_moment(r, sequence));
                            m[0] += *at;
                            m[1] += *at.add(1);
                        }
                    }
                } else {
                    y = block_total(scratch, v);
                    if FOLD {
                        m = block_moments(sequence);
                    }
                }
                if FOLD {
                    y = normalize_folded(y, m, inputs.row_sum, shape.1, fold.eps, fold.rms);
                }
                store_loaded(p, sequence, row, y + inputs.bias, inputs.epilogue);
            }
        }
    }
}

/// Outputs a thread of a block stores at most: 4 batch tiles' values over 256 threads.
const OUTPUTS_PER_THREAD: usize = 4 * TILE_VALUES / (WARPS * WARP);

/// What the epilogue of one output reads besides its sum: the folded row sum (0 unless
/// folded), the bias and the epilogue's input ([`EpilogueInput`]).
#[derive(Clone, Copy)]
struct OutputInputs {
    row_sum: f32,
    bias: f32,
    epilogue: EpilogueInput,
}

impl OutputInputs {
    const NONE: Self = OutputInputs {
        row_sum: 0.0,
        bias: 0.0,
        epilogue: EpilogueInput::NONE,
    };

    /// The inputs of value `v` of the tile at `row0` (none past the rows or the batch).
    ///
    /// # Safety
    /// As `gemv_tensor`, after the programmatic wait.
    #[inline(always)]
    unsafe fn load(
        p: &GemvParams,
        fold: Fold,
        row0: usize,
        (rows, _, batch): (usize, usize, usize),
        v: usize,
    ) -> Self {
        let (row, sequence) = value_position(v);
        let row = row0 + row;
        if row >= rows || sequence >= batch {
            return Self::NONE;
        }
        // SAFETY: row < out_features, sequence < batch.
        unsafe {
            OutputInputs {
                row_sum: if fold.row_sums.is_null() {
                    0.0
                } else {
                    *fold.row_sums.add(row)
                },
                bias: bias(p, row),
                epilogue: EpilogueInput::load(p, sequence, row),
            }
        }
    }
}

/// Sequences a block's moment sums have room for (4 batch tiles of 8).
const MAX_SEQUENCES: usize = 32;

/// Where block `rank`'s moments of sequence `s` go in the first block's [`moment_sums`],
/// after every warp's: f32 offset.
fn cluster_moment(rank: usize, s: usize) -> usize {
    (WARPS * MAX_SEQUENCES + rank * MAX_SEQUENCES + s) * 2
}

block_shared_array!(
    /// The block's shared array for the folded layernorm's moments: every warp's (sum,
    /// sum of squares) per sequence, then (in the cluster's first block) every block's.
    /// 3 KiB.
    fn moment_sums = "gemv_moment_sums"[(WARPS + 4) * MAX_SEQUENCES * 2]
);

/// f32 values of [`cluster_sums`]: the blocks' sums of one cluster (at most 4 blocks of
/// 4 batch tiles).
const CLUSTER_SUMS: usize = 16 * TILE_VALUES;

block_shared_array!(
    /// The block's shared array for its cluster's block sums (8 KiB; the first block's is
    /// used).
    fn cluster_sums = "gemv_cluster_sums"[CLUSTER_SUMS]
);

/// The tensor-core entries: name = (batch tiles, blocks per cluster, x fragments of a
/// round requested together, chunks in flight), plain or with the layernorm folded in.
macro_rules! tensor_entries {
    (plain: $(
        $name:ident = ($tiles:literal, $blocks:literal, $ahead:literal, $flight:expr)
    ),* $(,)?) => {$(
        const _: () = assert!($tiles * TILE_VALUES * $blocks <= CLUSTER_SUMS);
        /// The tensor-core GEMV of this many batch tiles and blocks per tile; see
        /// `gemv_tensor`.
        ///
        /// # Safety
        /// See `gemv_tensor`.
        #[unsafe(no_mangle)]
        pub unsafe extern "ptx-kernel" fn $name(p: GemvParams) {
            let plain = Fold { row_sums: core::ptr::null(), eps: 0.0, rms: false };
            unsafe { gemv_tensor::<$tiles, $blocks, false, $ahead, { $flight }>(&p, plain) }
        }
    )*};
    (folded: $($name:ident = ($tiles:literal, $blocks:literal, $flight:expr)),* $(,)?) => {$(
        const _: () = assert!($tiles * TILE_VALUES * $blocks <= CLUSTER_SUMS);
        /// The tensor-core GEMV with the layernorm before it folded in
        /// ([`crate::abi::FoldedNormGemvParams`]); see `gemv_tensor`.
        ///
        /// # Safety
        /// See `gemv_tensor`.
        #[unsafe(no_mangle)]
        pub unsafe extern "ptx-kernel" fn $name(p: FoldedNormGemvParams) {
            let fold = Fold { row_sums: p.row_sums, eps: p.eps, rms: p.row_sums.is_null() };
            unsafe { gemv_tensor::<$tiles, $blocks, true, false, { $flight }>(&p.gemv, fold) }
        }
    )*};
}

// Named by the batch they hold (8 sequences a tensor-core tile). x a round at a time
// (`abi::MMA_X_AHEAD_TILE`), but in the cluster of 16 (whose launch bounds leave no
// registers for it) and with the layernorm folded in (its moments take the registers:
// the fragments would spill, or cost chunks in flight). The `x_per_chunk` and
// `four_per_sm` entries fit more blocks on an SM, for outputs that need them to run in
// one wave (`abi::MMA_ENTRIES`).
tensor_entries!(
    plain: gemv_b8 = (1, 1, true, gemv_chunks_in_flight(1)),
    gemv_b16 = (2, 1, true, gemv_chunks_in_flight(2)),
    gemv_b32 = (4, 1, true, gemv_chunks_in_flight(4)),
    gemv_b8_cluster4 = (1, 4, true, gemv_chunks_in_flight(1)),
    gemv_b16_cluster4 = (2, 4, false, gemv_chunks_in_flight(2)),
    gemv_b32_cluster4 = (4, 4, true, gemv_chunks_in_flight(4)),
    gemv_b32_x_per_chunk = (4, 1, false, gemv_chunks_in_flight(4)),
    gemv_b8_four_per_sm = (1, 1, true, four_per_sm_chunks_in_flight(1)),
    gemv_b8_cluster4_four_per_sm = (1, 4, true, four_per_sm_chunks_in_flight(1)),
    gemv_b16_x_per_chunk = (2, 1, false, gemv_chunks_in_flight(2)),
    gemv_b16_four_per_sm = (2, 1, false, four_per_sm_chunks_in_flight(2)),
    gemv_b16_cluster4_four_per_sm = (2, 4, false, four_per_sm_chunks_in_flight(2)),
    gemv_b32_cluster4_x_per_chunk = (4, 4, false, gemv_chunks_in_flight(4)),
    gemv_b32_four_per_sm = (4, 1, false, four_per_sm_chunks_in_flight(4)),
    gemv_b32_cluster4_four_per_sm = (4, 4, false, four_per_sm_chunks_in_flight(4)),
);
// The tile of 8 only: at 32 the moments cost more than the layernorm kernels they save
// (`FoldedNormGemvParams::supports_batch`).
tensor_entries!(
    folded: gemv_folded_norm_b8 = (1, 1, gemv_chunks_in_flight(1)),
    gemv_folded_norm_b8_cluster4 = (1, 4, gemv_chunks_in_flight(1)),
    gemv_folded_norm_b8_four_per_sm = (1, 1, four_per_sm_chunks_in_flight(1)),
    gemv_folded_norm_b8_cluster4_four_per_sm = (1, 4, four_per_sm_chunks_in_flight(1)),
);
