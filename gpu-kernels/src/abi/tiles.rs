//! Batch tiles (which kernels a batch runs on: CUDA cores at 1, the tensor cores padded to
//! 8, 16 or 32) and the tensor-core GEMV entry tables: per tile, cluster and occupancy,
//! the entry a GEMV of a given shape takes.

use super::launch::{LaunchDims, TUNED_SMS, WARP};

/// Batch tiles the GEMV and LM head kernels are specialized for: a launch uses the
/// smallest tile that holds its batch, so every weight is read once per launch while the
/// per-row accumulators stay in registers. Batch 1 runs on CUDA cores, every larger batch
/// on the tensor cores padded to 8, 16 or 32: at batches 2 to 4 the tile of 8 on the
/// tensor cores beats CUDA-core tiles of 2 and 4 (PERF.md, "Tensor-core GEMV").
pub const BATCH_TILES: [u32; 4] = [1, 8, 16, 32];

/// Index into [`BATCH_TILES`] of the smallest tile holding `batch`.
pub fn batch_tile_index(batch: u32) -> usize {
    BATCH_TILES
        .iter()
        .position(|&tile| batch <= tile)
        .unwrap_or(BATCH_TILES.len() - 1)
}

/// The smallest batch tile the GEMV and LM head compute on the tensor cores
/// (`mma.sync.m16n8k16`, the batch as the product's 8 columns); the tile of 1 uses CUDA
/// cores (with the layernorm folded in, and its rows staged by bulk copies).
pub const TENSOR_CORE_MIN_TILE: u32 = 8;

/// Whether a launch for `batch` sequences runs on the tensor cores.
pub fn uses_tensor_cores(batch: u32) -> bool {
    BATCH_TILES[batch_tile_index(batch)] >= TENSOR_CORE_MIN_TILE
}

/// Output rows of one tensor-core tile (the product's 16 rows).
pub const MMA_ROWS: u32 = 16;

/// Warps of one tensor-core block: they split one 16-row tile's reduction between them
/// (so that a 1600-row output still has 800 warps loading weights) and add their
/// partial sums through shared memory.
pub const MMA_WARPS_PER_BLOCK: u32 = 8;

/// Launch geometry of a tensor-core GEMV over `rows` outputs: one block per 16 rows, or
/// one cluster of `cluster` blocks (consecutive along x) per 16 rows.
pub(crate) fn tensor_core_dims(rows: u32, cluster: u32) -> LaunchDims {
    LaunchDims::linear(
        rows.div_ceil(MMA_ROWS) * cluster,
        MMA_WARPS_PER_BLOCK * WARP,
    )
}

/// On the tensor cores, an output of fewer 16-row tiles than this (one per SM of an H100)
/// whose rows are longer than the output is wide (the MLP projection: 4d inputs, d
/// outputs) splits each tile's reduction over a cluster of [`MMA_CLUSTER_BLOCKS`] blocks:
/// narrow outputs (gpt2-xl's 1600 rows: 100 tiles; gpt2's 768: 48) otherwise leave SMs
/// idle and the rest with few bytes in flight. Wider outputs fill the SMs already, and
/// the cluster's extra pass would cost them (PERF.md, "Tensor-core GEMV"). A square output
/// (the attention projection) splits too from [`MMA_CLUSTER_SQUARE_MIN_INPUTS`] inputs.
pub const MMA_CLUSTER_BELOW_TILES: u32 = 132;

/// The shortest rows of a square tensor-core output that split over a cluster: 48 chunks
/// of 32, one and a half a warp of the cluster. gpt2-xl's attention projection (1600) gains
/// from the split (its 400 blocks in clusters run in one wave at four a SM:
/// [`MMA_ENTRIES`]); on shorter rows the cluster's extra pass costs what the idle SMs give
/// (PERF.md, "Tensor-core GEMV").
pub const MMA_CLUSTER_SQUARE_MIN_INPUTS: u32 = 1536;

/// Blocks per cluster of a narrow tensor-core GEMV: 48 to 131 tiles become 192 to 524
/// blocks.
pub const MMA_CLUSTER_BLOCKS: u32 = 4;

/// The batch tile from which the tensor-core GEMV requests every x fragment of a round of
/// chunks before the round's first mma, instead of one chunk's after another (the LM head
/// too, but at 16; the folded GEMVs, whose moments take the registers, keep the
/// chunk-by-chunk loads). At batch 32 x (100 KiB at gpt2-xl's width) does not stay in
/// L1, and right after the programmatic wait it is new to every SM at any batch: loaded
/// chunk by chunk, each chunk's x is one more L2 round trip on the warp's critical path.
/// The fragments cost registers (at 32, two blocks of 8 warps per SM instead of three), so
/// the cluster entry of 16, bounded to three blocks, keeps the chunk-by-chunk loads
/// (PERF.md, "Tensor-core GEMV").
pub const MMA_X_AHEAD_TILE: u32 = 8;

/// One tensor-core GEMV entry: its batch tile, blocks per cluster (1: none) and how many
/// of its blocks an SM holds at once (from three on, its launch bounds in
/// [`LAUNCH_BOUNDS`](super::LAUNCH_BOUNDS); two, unbounded, by its registers).
#[derive(Clone, Copy, Debug)]
pub struct MmaEntry {
    /// The PTX entry.
    pub entry: &'static str,
    /// Sequences per tensor-core tile (8, 16 or 32).
    pub tile: u32,
    /// Blocks per 16-row tile, as a cluster.
    pub cluster: u32,
    /// Resident blocks per SM.
    pub blocks_per_sm: u32,
}

impl MmaEntry {
    const fn new(entry: &'static str, tile: u32, cluster: u32, blocks_per_sm: u32) -> Self {
        MmaEntry {
            entry,
            tile,
            cluster,
            blocks_per_sm,
        }
    }
}

/// The plain tensor-core GEMV entries, per tile and cluster the default first, then
/// leaner ones that fit more blocks on an SM for fewer bytes in flight (at the tiles of
/// 16 and 32 x requested chunk by chunk instead of a round ahead, [`MMA_X_AHEAD_TILE`];
/// two chunks of weights in flight instead of three). A GEMV takes the first whose
/// blocks all fit one wave on [`TUNED_SMS`] SMs ([`mma_entry`]): a block of a second wave
/// starts only when one of the first has finished, after the programmatic wait, a kernel
/// late. Where the default holds the output in one wave it stays: its bytes in flight win
/// there (PERF.md, "Tensor-core GEMV").
pub const MMA_ENTRIES: &[MmaEntry] = &[
    MmaEntry::new("gemv_b8", 8, 1, 3),
    MmaEntry::new("gemv_b8_four_per_sm", 8, 1, 4),
    MmaEntry::new("gemv_b8_cluster4", 8, MMA_CLUSTER_BLOCKS, 3),
    MmaEntry::new("gemv_b8_cluster4_four_per_sm", 8, MMA_CLUSTER_BLOCKS, 4),
    MmaEntry::new("gemv_b16", 16, 1, 2),
    MmaEntry::new("gemv_b16_x_per_chunk", 16, 1, 3),
    MmaEntry::new("gemv_b16_four_per_sm", 16, 1, 4),
    MmaEntry::new("gemv_b16_cluster4", 16, MMA_CLUSTER_BLOCKS, 3),
    MmaEntry::new("gemv_b16_cluster4_four_per_sm", 16, MMA_CLUSTER_BLOCKS, 4),
    MmaEntry::new("gemv_b32", 32, 1, 2),
    MmaEntry::new("gemv_b32_x_per_chunk", 32, 1, 3),
    MmaEntry::new("gemv_b32_cluster4", 32, MMA_CLUSTER_BLOCKS, 2),
    MmaEntry::new("gemv_b32_cluster4_x_per_chunk", 32, MMA_CLUSTER_BLOCKS, 3),
    MmaEntry::new("gemv_b32_four_per_sm", 32, 1, 4),
    MmaEntry::new("gemv_b32_cluster4_four_per_sm", 32, MMA_CLUSTER_BLOCKS, 4),
];

/// [`MMA_ENTRIES`] for the GEMV with a folded layernorm (the tile of 8 only).
pub const FOLDED_MMA_ENTRIES: &[MmaEntry] = &[
    MmaEntry::new("gemv_folded_norm_b8", 8, 1, 3),
    MmaEntry::new("gemv_folded_norm_b8_four_per_sm", 8, 1, 4),
    MmaEntry::new("gemv_folded_norm_b8_cluster4", 8, MMA_CLUSTER_BLOCKS, 3),
    MmaEntry::new(
        "gemv_folded_norm_b8_cluster4_four_per_sm",
        8,
        MMA_CLUSTER_BLOCKS,
        4,
    ),
];

/// The entry of `entries` for `rows` outputs at batch tile `tile` in clusters of
/// `cluster`: the first of that tile and cluster whose blocks per SM hold every block in
/// one wave, else the first of them (see [`MMA_ENTRIES`]).
pub fn mma_entry(entries: &[MmaEntry], rows: u32, cluster: u32, tile: u32) -> &'static str {
    let blocks = rows.div_ceil(MMA_ROWS) * cluster;
    let mut candidates = entries
        .iter()
        .filter(|e| e.tile == tile && e.cluster == cluster);
    let default = candidates.clone().next().map_or("", |e| e.entry);
    candidates
        .find(|e| blocks <= e.blocks_per_sm * TUNED_SMS)
        .map_or(default, |e| e.entry)
}

/// Blocks per cluster of a tensor-core GEMV of `rows` outputs of `inputs` each at batch
/// tile `tile` (1: no cluster): see [`MMA_CLUSTER_BELOW_TILES`].
pub fn mma_cluster_blocks(rows: u32, inputs: u32, tile: u32) -> u32 {
    let narrow = rows.div_ceil(MMA_ROWS) < MMA_CLUSTER_BELOW_TILES;
    let long = inputs > rows || (inputs == rows && inputs >= MMA_CLUSTER_SQUARE_MIN_INPUTS);
    if tile >= TENSOR_CORE_MIN_TILE && narrow && long {
        MMA_CLUSTER_BLOCKS
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::gemv::tests::unlaunched_gemv;
    use crate::abi::{FoldedNormGemvParams, GemvParams, Kernel, cluster_dims, launch_bounds};

    #[test]
    fn batch_tiles_pick_the_smallest_that_fits() {
        let picks: [(u32, u32); 8] = [
            (1, 1),
            (2, 8),
            (3, 8),
            (5, 8),
            (8, 8),
            (9, 16),
            (17, 32),
            (32, 32),
        ];
        for (batch, tile) in picks {
            assert_eq!(BATCH_TILES[batch_tile_index(batch)], tile, "batch {batch}");
        }
    }

    /// A tensor-core GEMV takes the entry with the fewest blocks per SM that holds its
    /// blocks in one wave on 132 SMs, else the default: gpt2-xl's (QKV 300 tiles, fc 400,
    /// MLP projection 100 in clusters of 4) and gpt2-large's (fc 320, MLP projection 80
    /// in clusters).
    #[test]
    fn tensor_core_entries_hold_the_output_in_one_wave_where_they_can() {
        let at = |batch, in_features, out_features| GemvParams {
            batch,
            in_features,
            out_features,
            ..unlaunched_gemv()
        };
        let folded = |gemv| FoldedNormGemvParams {
            gemv,
            row_sums: core::ptr::null(),
            eps: 1e-5,
        };
        let picks = [
            (8, 1600, 4800, "gemv_b8"),
            (8, 1600, 6400, "gemv_b8_four_per_sm"),
            (2, 6400, 1600, "gemv_b8_cluster4_four_per_sm"),
            (8, 5120, 1280, "gemv_b8_cluster4"),
            (16, 1024, 4096, "gemv_b16"),
            (16, 1600, 4800, "gemv_b16_x_per_chunk"),
            (16, 1280, 5120, "gemv_b16_x_per_chunk"),
            (16, 1600, 6400, "gemv_b16_four_per_sm"),
            (16, 6400, 1600, "gemv_b16_cluster4_four_per_sm"),
            (16, 5120, 1280, "gemv_b16_cluster4"),
            (32, 1024, 4096, "gemv_b32"),
            (32, 1600, 4800, "gemv_b32_x_per_chunk"),
            (32, 1600, 6400, "gemv_b32_four_per_sm"),
            (32, 5120, 1280, "gemv_b32_cluster4_x_per_chunk"),
            (32, 6400, 1600, "gemv_b32_cluster4_four_per_sm"),
        ];
        for (batch, in_features, out_features, entry) in picks {
            let gemv = at(batch, in_features, out_features);
            assert_eq!(
                gemv.entry(),
                entry,
                "batch {batch}, {in_features} -> {out_features}"
            );
        }
        assert_eq!(
            folded(at(8, 1600, 6400)).entry(),
            "gemv_folded_norm_b8_four_per_sm"
        );
        assert_eq!(
            folded(at(8, 6400, 1600)).entry(),
            "gemv_folded_norm_b8_cluster4_four_per_sm"
        );
        assert_eq!(folded(at(8, 1600, 4800)).entry(), "gemv_folded_norm_b8");
    }

    /// Every tensor-core entry is an entry of its family, a cluster one declares its
    /// cluster, and one of three or four blocks per SM has launch bounds saying so.
    #[test]
    fn tensor_core_entries_agree_with_their_declarations() {
        for (family, entries) in [
            (GemvParams::ENTRIES, MMA_ENTRIES),
            (FoldedNormGemvParams::ENTRIES, FOLDED_MMA_ENTRIES),
        ] {
            for e in entries {
                assert!(family.contains(&e.entry), "{}", e.entry);
                let cluster = cluster_dims().find(|c| c.entry == e.entry);
                assert_eq!(cluster.map_or(1, |c| c.blocks), e.cluster, "{}", e.entry);
                let bounds = launch_bounds().find(|b| b.entry == e.entry);
                let declared = bounds.map(|b| (b.threads, b.min_blocks_per_sm));
                let expected =
                    (e.blocks_per_sm > 2).then_some((MMA_WARPS_PER_BLOCK * WARP, e.blocks_per_sm));
                assert_eq!(declared, expected, "{}", e.entry);
            }
        }
    }
}
