//! The GEMV's parameters and epilogues: `y = x W^T + bias` for a batch of rows, then GELU,
//! a residual add, or K and V into the cache; which entry a shape takes (CUDA cores at
//! batch 1, staged or sized; the tensor-core tables from batch 2).

use super::Kernel;
use super::half::Half;
use super::launch::{
    HALVES_PER_VECTOR, HEAD_DIM, LaunchDims, MAX_WARPS_PER_SM, RESERVED_SHARED_BYTES_PER_BLOCK,
    SHARED_BYTES_PER_SM, TUNED_SMS, WARP, check_batch, check_vector_width,
};
use super::tiles::{
    BATCH_TILES, MMA_ENTRIES, batch_tile_index, mma_cluster_blocks, mma_entry, tensor_core_dims,
    uses_tensor_cores,
};

/// What a GEMV does with `y = x W^T + bias` before storing it.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Epilogue {
    /// `out = y`.
    Store = 0,
    /// `out = gelu_tanh(y)` (the MLP's c_fc).
    Gelu = 1,
    /// `out = y + residual` (attention and MLP output projections; `residual` may be
    /// `out`, for an in-place `x += proj`).
    Residual = 2,
    /// The QKV projection: columns `[0, d)` go to `out` as q, columns `[d, 2d)` and
    /// `[2d, 3d)` are K and V, written straight into the KV cache at each sequence's
    /// position.
    QkvToCache = 3,
}

/// Where the QKV projection writes K and V: one layer of the KV cache.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KvCacheLayer {
    /// (batch, n_head, capacity, HEAD_DIM) keys.
    pub k: *mut Half,
    /// (batch, n_head, capacity, HEAD_DIM) values.
    pub v: *mut Half,
    /// (batch) the position each sequence's new token is written at.
    pub positions: *const u32,
    /// Positions each sequence's cache holds (the stride between sequences' heads).
    pub capacity: u32,
}

impl KvCacheLayer {
    /// No cache: for epilogues other than [`Epilogue::QkvToCache`].
    pub const NONE: KvCacheLayer = KvCacheLayer {
        k: core::ptr::null_mut(),
        v: core::ptr::null_mut(),
        positions: core::ptr::null(),
        capacity: 0,
    };
}

/// `y[b] = x[b] W^T + bias`, then the [`Epilogue`]; fp32 accumulation, fp16 out.
///
/// Every weight is read once per launch, whatever the batch. Batch 1 (the tile below
/// [`TENSOR_CORE_MIN_TILE`](super::TENSOR_CORE_MIN_TILE)): one warp per output row, CUDA-core FMAs, the row through
/// block-shared memory in bulk copies of [`Self::STAGED_PIECE_CHUNKS`] 512-byte chunks
/// (in blocks of 4 warps, or of 8 with slots sized to the row where only that holds the
/// output in one wave: [`Self::takes_sized_stage`]).
/// From batch 2 on: one block of [`MMA_WARPS_PER_BLOCK`](super::MMA_WARPS_PER_BLOCK) warps per [`MMA_ROWS`](super::MMA_ROWS) rows on
/// the tensor cores, or a cluster of [`MMA_CLUSTER_BLOCKS`](super::MMA_CLUSTER_BLOCKS) blocks for outputs narrower
/// than [`MMA_CLUSTER_BELOW_TILES`](super::MMA_CLUSTER_BELOW_TILES) tiles.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct GemvParams {
    /// (batch, in_features) input.
    pub x: *const Half,
    /// (out_features, in_features) weight, rows contiguous (Conv1D weights transposed
    /// at load).
    pub w: *const Half,
    /// (out_features) bias, or null for none.
    pub bias: *const Half,
    /// (batch, out_features) output; with [`Epilogue::QkvToCache`], (batch, d) for q.
    pub out: *mut Half,
    /// (batch, out_features) added by [`Epilogue::Residual`]; may be `out`.
    pub residual: *const Half,
    /// The cache, for [`Epilogue::QkvToCache`].
    pub cache: KvCacheLayer,
    /// Columns of x and W, a multiple of 8.
    pub in_features: u32,
    /// Rows of W.
    pub out_features: u32,
    /// Sequences, 1..=32.
    pub batch: u32,
    /// An [`Epilogue`] as u32.
    pub epilogue: u32,
}

impl GemvParams {
    /// Warps (output rows) per block.
    pub const WARPS_PER_BLOCK: u32 = 4;
    /// Batch 1 stages each warp's row through block-shared memory with bulk copies, in
    /// pieces of this many 512-byte warp chunks (3.5 KiB: a 1600-wide row is one piece).
    pub const STAGED_PIECE_CHUNKS: u32 = 7;
    /// The widest row one piece holds: wider rows at batch 1 launch the entry with two
    /// pieces in flight per warp (`gemv_wide_b1`).
    pub const STAGED_ROW_HALVES: u32 = Self::STAGED_PIECE_CHUNKS * WARP * HALVES_PER_VECTOR;
    /// mbarriers per warp of the static stage (`gpu_kernels::bulk_copy`'s
    /// `PIECE_BARRIERS`).
    pub const STAGED_PIECE_BARRIERS: u32 = 8;
    /// Static shared memory of a batch-1 block of one-piece rows (`gemv_b1`): a
    /// 3.5 KiB slot and the mbarriers for each of its warps.
    pub const STATIC_STAGE_BYTES: u32 = Self::WARPS_PER_BLOCK
        * (Self::STAGED_PIECE_CHUNKS * WARP * 16 + Self::STAGED_PIECE_BARRIERS * 8);
    /// Warps (rows) per block of the sized stage ([`Self::takes_sized_stage`]).
    pub const SIZED_WARPS: u32 = 8;
    /// The sized stage's mbarriers, one a warp, at the front of its dynamic shared
    /// memory, padded to the slots' 128-byte alignment.
    pub const SIZED_BARRIER_BYTES: u32 = (Self::SIZED_WARPS * 8).next_multiple_of(128);

    /// A sized stage's slot for rows of `in_features` (at most [`Self::STAGED_ROW_HALVES`]):
    /// the row's bytes, rounded up to 128.
    pub const fn sized_slot_bytes(in_features: u32) -> u32 {
        (in_features * 2).next_multiple_of(128)
    }

    /// Dynamic shared memory of a sized-stage block: its mbarriers, then a slot a warp.
    pub const fn sized_stage_bytes(in_features: u32) -> u32 {
        Self::SIZED_BARRIER_BYTES + Self::SIZED_WARPS * Self::sized_slot_bytes(in_features)
    }

    /// Whether batch 1 stages the rows in [`Self::SIZED_WARPS`]-warp blocks whose slots
    /// fit the row exactly (in dynamic shared memory) instead of 4-warp blocks of 3.5 KiB
    /// slots: where that holds every row in one wave of blocks on [`TUNED_SMS`] SMs and
    /// the static stage does not. A block of a second wave starts only when one of the
    /// first has finished, after the programmatic wait, so its rows are requested a
    /// whole kernel late (gpt2-large's fc GEMV, 5120 rows of 1280, is the case).
    ///
    /// Not for the QKV projection: in one wave its blocks take the SMs' shared memory
    /// whole, where attention's blocks would start beside them, and the step loses what
    /// the GEMV gains (PERF.md, "GEMV at batch 1").
    pub fn takes_sized_stage(&self) -> bool {
        if uses_tensor_cores(self.batch)
            || self.in_features > Self::STAGED_ROW_HALVES
            || self.epilogue == Epilogue::QkvToCache as u32
        {
            return false;
        }
        let rows_in_one_wave = |block_bytes: u32, warps: u32| {
            let blocks = SHARED_BYTES_PER_SM / (block_bytes + RESERVED_SHARED_BYTES_PER_BLOCK);
            blocks.min(MAX_WARPS_PER_SM / warps) * warps * TUNED_SMS
        };
        let static_rows = rows_in_one_wave(Self::STATIC_STAGE_BYTES, Self::WARPS_PER_BLOCK);
        let sized_rows =
            rows_in_one_wave(Self::sized_stage_bytes(self.in_features), Self::SIZED_WARPS);
        static_rows < self.out_features && self.out_features <= sized_rows
    }
}

impl Kernel for GemvParams {
    const ENTRIES: &'static [&'static str] = &[
        "gemv_b1",
        "gemv_b8",
        "gemv_b16",
        "gemv_b32",
        "gemv_wide_b1",
        "gemv_b8_cluster4",
        "gemv_b16_cluster4",
        "gemv_b32_cluster4",
        "gemv_b32_x_per_chunk",
        "gemv_sized_b1",
        "gemv_b8_four_per_sm",
        "gemv_b8_cluster4_four_per_sm",
        "gemv_b16_x_per_chunk",
        "gemv_b16_four_per_sm",
        "gemv_b16_cluster4_four_per_sm",
        "gemv_b32_cluster4_x_per_chunk",
        "gemv_b32_four_per_sm",
        "gemv_b32_cluster4_four_per_sm",
    ];

    fn entry(&self) -> &'static str {
        let tile = batch_tile_index(self.batch);
        if tile == 0 && self.in_features > Self::STAGED_ROW_HALVES {
            return "gemv_wide_b1";
        }
        if self.takes_sized_stage() {
            return "gemv_sized_b1";
        }
        if uses_tensor_cores(self.batch) {
            let size = BATCH_TILES[tile];
            let cluster = mma_cluster_blocks(self.out_features, self.in_features, size);
            return mma_entry(MMA_ENTRIES, self.out_features, cluster, size);
        }
        Self::ENTRIES[tile]
    }

    fn check(&self) -> Result<(), &'static str> {
        check_batch(self.batch)?;
        check_vector_width(self.in_features)?;
        if self.epilogue > Epilogue::QkvToCache as u32 {
            return Err("unknown epilogue");
        }
        if self.epilogue == Epilogue::QkvToCache as u32 {
            let d = self.out_features / 3;
            if !self.out_features.is_multiple_of(3) || !d.is_multiple_of(HEAD_DIM) {
                return Err("QKV rows must be 3 x n_head x 64");
            }
            if self.cache.k.is_null() || self.cache.v.is_null() || self.cache.positions.is_null() {
                return Err("QKV projection without a KV cache");
            }
        }
        if self.epilogue == Epilogue::Residual as u32 && self.residual.is_null() {
            return Err("residual epilogue without a residual");
        }
        Ok(())
    }

    fn launch_dims(&self) -> LaunchDims {
        if uses_tensor_cores(self.batch) {
            let tile = BATCH_TILES[batch_tile_index(self.batch)];
            let cluster = mma_cluster_blocks(self.out_features, self.in_features, tile);
            return tensor_core_dims(self.out_features, cluster);
        }
        if self.takes_sized_stage() {
            return LaunchDims {
                shared_bytes: Self::sized_stage_bytes(self.in_features),
                ..LaunchDims::linear(
                    self.out_features.div_ceil(Self::SIZED_WARPS),
                    Self::SIZED_WARPS * WARP,
                )
            };
        }
        LaunchDims::linear(
            self.out_features.div_ceil(Self::WARPS_PER_BLOCK),
            Self::WARPS_PER_BLOCK * WARP,
        )
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::abi::{FoldedNormGemvParams, MMA_ROWS, cluster_dims};

    /// gpt2-xl's QKV shape at batch 1, pointers null: for the host-side checks.
    pub(crate) fn unlaunched_gemv() -> GemvParams {
        GemvParams {
            x: core::ptr::null(),
            w: core::ptr::null(),
            bias: core::ptr::null(),
            out: core::ptr::null_mut(),
            residual: core::ptr::null(),
            cache: KvCacheLayer::NONE,
            in_features: 1600,
            out_features: 4800,
            batch: 1,
            epilogue: Epilogue::Store as u32,
        }
    }

    /// Batch 1 takes the sized stage where only it holds the output in one wave on 132
    /// SMs: gpt2-large's fc (5120 rows of 1280), folded or not; not gpt2-medium's (the
    /// static stage holds 4224 rows), gpt2-xl's (neither holds 6400), the QKV projection,
    /// rows of two pieces or the tensor-core batches.
    #[test]
    fn sized_stage_where_only_it_holds_the_output_in_one_wave() {
        let at = |in_features, out_features, epilogue: Epilogue| GemvParams {
            in_features,
            out_features,
            epilogue: epilogue as u32,
            ..unlaunched_gemv()
        };
        let large_fc = at(1280, 5120, Epilogue::Gelu);
        assert_eq!(large_fc.entry(), "gemv_sized_b1");
        let dims = large_fc.launch_dims();
        assert_eq!((dims.grid[0], dims.block[0]), (640, 256));
        assert_eq!(dims.shared_bytes, 128 + 8 * 2560);
        let folded = FoldedNormGemvParams {
            gemv: large_fc,
            row_sums: core::ptr::null(),
            eps: 1e-5,
        };
        assert_eq!(folded.entry(), "gemv_folded_norm_sized_b1");
        assert_eq!(folded.launch_dims().shared_bytes, dims.shared_bytes);
        for sized in [
            at(1600, 4800, Epilogue::Store),
            at(1280, 5121, Epilogue::Store),
        ] {
            assert!(sized.takes_sized_stage(), "{sized:?}");
        }
        for static_stage in [
            at(1024, 4096, Epilogue::Gelu),
            at(1600, 6400, Epilogue::Gelu),
            at(1600, 4800, Epilogue::QkvToCache),
            at(1280, 1280, Epilogue::Residual),
        ] {
            assert!(!static_stage.takes_sized_stage(), "{static_stage:?}");
            assert_eq!(static_stage.launch_dims().shared_bytes, 0);
        }
        assert!(!at(1800, 5120, Epilogue::Gelu).takes_sized_stage());
        assert!(
            !GemvParams {
                batch: 2,
                ..large_fc
            }
            .takes_sized_stage()
        );
    }

    /// Batch-1 rows wider than one staged piece take the entry with two pieces in flight;
    /// 1792 (seven 512-byte chunks) is the widest one piece holds.
    #[test]
    fn wide_batch_1_rows_take_the_two_piece_entry() {
        let picks = [
            (1, 768, "gemv_b1"),
            (1, 1600, "gemv_b1"),
            (1, 1792, "gemv_b1"),
            (1, 1800, "gemv_wide_b1"),
            (1, 6400, "gemv_wide_b1"),
            (2, 6400, "gemv_b8"),
            (8, 6400, "gemv_b8"),
        ];
        for (batch, in_features, entry) in picks {
            let gemv = GemvParams {
                batch,
                in_features,
                // At batch 1 an output the static stage holds in one wave.
                out_features: if batch == 1 { 1600 } else { 4800 },
                ..unlaunched_gemv()
            };
            assert_eq!(gemv.entry(), entry, "batch {batch}, {in_features} wide");
        }
    }

    /// On the tensor cores (batch 2 and up) the outputs of fewer than 132 tiles of 16 rows
    /// with longer rows than outputs (the MLP projection), or square with rows of 1536 or
    /// more (gpt2-xl's attention projection), split each tile's reduction over a cluster
    /// of 4 blocks; wider outputs, shorter square and wide GEMVs never do. At
    /// batch 32, outputs of 265 to 396 tiles take the entry that requests x chunk by
    /// chunk (one wave at three blocks per SM).
    #[test]
    fn narrow_tensor_core_outputs_take_a_cluster_per_tile() {
        let picks = [
            (32, 1600, 4800, "gemv_b32_x_per_chunk", 1),
            (32, 1280, 5120, "gemv_b32_x_per_chunk", 1),
            (32, 1600, 6400, "gemv_b32_four_per_sm", 1),
            (32, 768, 2304, "gemv_b32", 1),
            (16, 1600, 4800, "gemv_b16_x_per_chunk", 1),
            (32, 6400, 6400, "gemv_b32_four_per_sm", 1),
            (32, 9216, 2304, "gemv_b32", 1),
            (32, 8448, 2112, "gemv_b32", 1),
            (32, 8384, 2096, "gemv_b32_cluster4_four_per_sm", 4),
            (32, 6400, 1600, "gemv_b32_cluster4_four_per_sm", 4),
            (32, 1600, 1600, "gemv_b32_cluster4_four_per_sm", 4),
            (8, 1280, 1280, "gemv_b8", 1),
            (32, 3072, 768, "gemv_b32_cluster4", 4),
            (17, 6400, 1600, "gemv_b32_cluster4_four_per_sm", 4),
            (16, 3072, 768, "gemv_b16_cluster4", 4),
            (16, 768, 768, "gemv_b16", 1),
            (9, 1600, 4800, "gemv_b16_x_per_chunk", 1),
            (8, 6400, 1600, "gemv_b8_cluster4_four_per_sm", 4),
            (8, 5120, 1280, "gemv_b8_cluster4", 4),
            (8, 1600, 6400, "gemv_b8_four_per_sm", 1),
            (3, 1600, 4800, "gemv_b8", 1),
            (2, 5120, 1280, "gemv_b8_cluster4", 4),
            (1, 6400, 1600, "gemv_wide_b1", 1),
        ];
        for (batch, in_features, out_features, entry, cluster) in picks {
            let gemv = GemvParams {
                batch,
                in_features,
                out_features,
                ..unlaunched_gemv()
            };
            assert_eq!(
                gemv.entry(),
                entry,
                "batch {batch}, {in_features} -> {out_features}"
            );
            if batch > 1 {
                let blocks = out_features.div_ceil(MMA_ROWS) * cluster;
                assert_eq!(gemv.launch_dims().grid, [blocks, 1, 1], "{entry}");
            }
            let declared = cluster_dims().find(|c| c.entry == entry);
            assert_eq!(declared.map_or(1, |c| c.blocks), cluster, "{entry}");
        }
    }

    #[test]
    fn shape_checks_name_the_problem() {
        let gemv = GemvParams {
            batch: 33,
            ..unlaunched_gemv()
        };
        assert_eq!(gemv.check(), Err("batch must be 1..=32"));
        let odd = GemvParams {
            batch: 3,
            in_features: 1601,
            ..gemv
        };
        assert!(odd.check().unwrap_err().contains("multiples of 8"));
        let qkv = GemvParams {
            batch: 3,
            epilogue: Epilogue::QkvToCache as u32,
            ..gemv
        };
        assert_eq!(qkv.check(), Err("QKV projection without a KV cache"));
        assert_eq!(GemvParams { batch: 3, ..gemv }.entry(), "gemv_b8");
    }
}
