//! Kernel parameter structs and launch geometry, compiled for both host and device.
//!
//! Every kernel takes exactly one of these `#[repr(C)]` structs by value; its [`Kernel`]
//! impl names the PTX entry, checks the shapes and derives the launch dimensions, so the
//! host never repeats a number the kernel depends on. Shapes are written beside every
//! pointer: `(batch, d_model)` is row-major with `d_model` contiguous.

/// Grid, block and dynamic shared memory of one launch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LaunchDims {
    /// Blocks in x, y, z.
    pub grid: [u32; 3],
    /// Threads per block in x, y, z.
    pub block: [u32; 3],
    /// Dynamic shared memory per block, bytes.
    pub shared_bytes: u32,
    /// The kernel loops grid-stride over its work, so any grid of at least one block is
    /// correct: the host shrinks `grid[0]` to the blocks the GPU holds at once, so the
    /// work is spread over one full wave instead of a wave and a ragged tail.
    pub persistent: bool,
}

impl LaunchDims {
    fn linear(blocks: u32, threads: u32) -> Self {
        LaunchDims {
            grid: [blocks.max(1), 1, 1],
            block: [threads, 1, 1],
            shared_bytes: 0,
            persistent: false,
        }
    }
}

/// The parameter struct of one kernel family.
pub trait Kernel: Copy {
    /// Every PTX entry that takes this struct as its only parameter.
    const ENTRIES: &'static [&'static str];
    /// The entry to launch for these parameters (families specialize on the batch tile).
    fn entry(&self) -> &'static str {
        Self::ENTRIES[0]
    }
    /// Why these parameters cannot be launched, if they cannot (shapes the kernel does not
    /// support). The host checks this before every launch.
    fn check(&self) -> Result<(), &'static str> {
        Ok(())
    }
    /// How to launch the kernel for these parameters.
    fn launch_dims(&self) -> LaunchDims;
}

/// Every kernel family's PTX entries, for checking the built module against the abi.
pub const ALL_ENTRIES: &[&[&str]] = &[
    EmbeddingParams::ENTRIES,
    LayerNormParams::ENTRIES,
    GemvParams::ENTRIES,
    FoldedNormGemvParams::ENTRIES,
    AttentionParams::ENTRIES,
    LmHeadParams::ENTRIES,
    ArgmaxFinalizeParams::ENTRIES,
    FillUniformParams::ENTRIES,
];

/// A kernel's `__launch_bounds__`: the build writes them into the PTX (`.maxntid`,
/// `.minnctapersm`), and ptxas keeps the kernel's registers low enough for
/// `min_blocks_per_sm` blocks of `threads` per SM.
#[derive(Clone, Copy, Debug)]
pub struct LaunchBounds {
    /// The PTX entry.
    pub entry: &'static str,
    /// Threads per block, at most.
    pub threads: u32,
    /// Blocks that must fit on one SM at once.
    pub min_blocks_per_sm: u32,
}

/// The entries with launch bounds but the tensor-core GEMVs' ([`launch_bounds`] adds
/// those from [`MMA_ENTRIES`]).
pub const LAUNCH_BOUNDS: &[LaunchBounds] = &[
    AttentionParams::bounds("attention_f16"),
    AttentionParams::bounds(AttentionParams::CLUSTER_ENTRIES[0]),
    AttentionParams::bounds(AttentionParams::CLUSTER_ENTRIES[1]),
    AttentionParams::bounds(AttentionParams::CLUSTER_ENTRIES[2]),
];

/// The shared-memory carveout every kernel asks for, in percent of the SM's largest
/// (`CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT`; on an H100 half of 228 KiB,
/// which the driver rounds to a size it supports, the rest of the 256 KiB being L1).
/// One value for all: an SM changes its
/// split between L1 and shared memory only when idle, so kernels that asked for
/// different splits could not overlap at their boundaries under programmatic launch.
/// Measured (H100, graph ms per token at batch 1, PERF.md version 16): the driver's
/// per-kernel default 2.01 (gpt2-xl) and 0.280 (gpt2); 40 %: 2.18 / 0.272; 50 %: 1.93 /
/// 0.268; 60 %: 1.98 / 0.275; 75 %: 1.97 / 0.275; 100 % starves attention of L1
/// (context 1024: 7.8 -> 10.7 us).
pub const SHARED_MEMORY_CARVEOUT_PERCENT: i32 = 50;
/// Shared memory an H100 SM gives blocks at [`SHARED_MEMORY_CARVEOUT_PERCENT`]: half of
/// 228 KiB, rounded up to the next size the SM supports.
pub const SHARED_BYTES_PER_SM: u32 = 132 * 1024;
/// Shared memory the driver reserves for each resident block (sm_90).
pub const RESERVED_SHARED_BYTES_PER_BLOCK: u32 = 1024;
/// Resident warps an SM holds at most (sm_90).
pub const MAX_WARPS_PER_SM: u32 = 64;
/// SMs the launch shapes that depend on how many blocks fit at once are chosen for: an
/// H100 SXM's or H200's 132. Another count changes their speed, never their results.
pub const TUNED_SMS: u32 = 132;
const _: () = assert!(SHARED_MEMORY_CARVEOUT_PERCENT >= 0 && SHARED_MEMORY_CARVEOUT_PERCENT <= 100);

/// Whether `entry` asks for [`SHARED_MEMORY_CARVEOUT_PERCENT`]. All but the LM head: it
/// runs once per step, between the last block and the next step's embedding, so its own
/// split costs one switch per step, and with the driver's choice it keeps 85 and 65 % of
/// copy at batch 8 and 32 alone instead of 79 and 50 % (the step's time is the same
/// either way, H100 A/B in one run).
pub fn takes_uniform_carveout(entry: &str) -> bool {
    !LmHeadParams::ENTRIES.contains(&entry)
}

/// A kernel launched as thread block clusters: the build writes the shape into the PTX
/// (`.reqnctapercluster`), so every launch, eager or in a graph, runs it that way; grids
/// are a multiple of it along x.
#[derive(Clone, Copy, Debug)]
pub struct ClusterDims {
    /// The PTX entry.
    pub entry: &'static str,
    /// Blocks per cluster along x (1 along y and z).
    pub blocks: u32,
}

/// The entries launched as clusters but the tensor-core GEMVs' ([`cluster_dims`] adds
/// those from [`MMA_ENTRIES`]).
pub const CLUSTER_DIMS: &[ClusterDims] = &[
    AttentionParams::cluster_dims(0),
    AttentionParams::cluster_dims(1),
    AttentionParams::cluster_dims(2),
];

/// fp16 elements per 16-byte vector access.
pub const HALVES_PER_VECTOR: u32 = 8;
/// Threads per warp.
pub const WARP: u32 = 32;
/// Dimensions per attention head (the whole GPT-2 family).
pub const HEAD_DIM: u32 = 64;
/// The largest batch one launch takes.
pub const MAX_BATCH: u32 = 32;
/// Batch tiles the GEMV and LM head kernels are specialized for: a launch uses the
/// smallest tile that holds its batch, so every weight is read once per launch while the
/// per-row accumulators stay in registers. Batch 1 runs on CUDA cores, every larger batch
/// on the tensor cores padded to 8, 16 or 32: tiles of 2 and 4 on CUDA cores were slower
/// than the tile of 8 on the tensor cores (gpt2-xl batch 4 2.93 against 2.45 ms a step,
/// gpt2 0.37 against 0.26; PERF.md version 20).
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
/// Output rows of one tensor-core tile (the product's 16 rows).
pub const MMA_ROWS: u32 = 16;
/// Warps of one tensor-core block: they split one 16-row tile's reduction between them
/// (so that a 1600-row output still has 800 warps loading weights) and add their
/// partial sums through shared memory.
pub const MMA_WARPS_PER_BLOCK: u32 = 8;

/// Whether a launch for `batch` sequences runs on the tensor cores.
pub fn uses_tensor_cores(batch: u32) -> bool {
    BATCH_TILES[batch_tile_index(batch)] >= TENSOR_CORE_MIN_TILE
}

/// Launch geometry of a tensor-core GEMV over `rows` outputs: one block per 16 rows, or
/// one cluster of `cluster` blocks (consecutive along x) per 16 rows.
fn tensor_core_dims(rows: u32, cluster: u32) -> LaunchDims {
    LaunchDims::linear(
        rows.div_ceil(MMA_ROWS) * cluster,
        MMA_WARPS_PER_BLOCK * WARP,
    )
}

/// On the tensor cores, an output of fewer 16-row tiles than this (one per SM of an H100)
/// whose rows are longer than the output is wide (the MLP projection: 4d inputs, d
/// outputs) splits each tile's reduction over a cluster of [`MMA_CLUSTER_BLOCKS`] blocks:
/// narrow outputs (gpt2-xl's 1600 rows: 100 tiles; gpt2's 768: 48) otherwise leave SMs
/// idle and the rest with few bytes in flight. Measured (H100, PERF.md version 19):
/// steps at batch 8, 16 and 32 3-13 % faster; splitting wider outputs too (gpt2-medium's
/// 192- and 256-tile QKV and fc over 2 blocks) was slower. A square output (the attention
/// projection) splits too from [`MMA_CLUSTER_SQUARE_MIN_INPUTS`] inputs.
pub const MMA_CLUSTER_BELOW_TILES: u32 = 132;
/// The shortest rows of a square tensor-core output that split over a cluster: 48 chunks
/// of 32, one and a half a warp of the cluster. gpt2-xl's attention projection (1600, 400
/// blocks in clusters, one wave at four a SM: [`MMA_ENTRIES`]) alone at batch 8 5.5 ->
/// 3.8 us, at 32 7.2 -> 5.9; steps at batch 8, 16, 32 4, 3, 2 % faster. Shorter rows
/// gained nothing or lost (the cluster's extra pass costs what the idle SMs give): gpt2
/// (768) batch 8 and gpt2-medium (1024) batch 32 2-3 % slower, gpt2-large (1280) even
/// (H100, PERF.md version 23; version 19 had found the square split slower at gpt2-xl
/// too, when its 400 blocks took two waves).
pub const MMA_CLUSTER_SQUARE_MIN_INPUTS: u32 = 1536;
/// Blocks per cluster of a narrow tensor-core GEMV: 48 to 131 tiles become 192 to 524
/// blocks.
pub const MMA_CLUSTER_BLOCKS: u32 = 4;

/// The batch tile from which the tensor-core GEMV requests every x fragment of a round of
/// chunks before the round's first mma, instead of one chunk's after another (the LM head
/// too, but at 16; the folded GEMVs, whose moments take the registers, keep the
/// chunk-by-chunk loads): at batch 32 x (100 KiB at gpt2-xl's width) does not stay in
/// L1, and each chunk's x was one more L2 round trip on the warp's critical path (ncu: L1
/// hit rate 38 %, stalls on loads); at 8, right after the programmatic wait x is new to
/// every SM, so each chunk's x was an L2 round trip too. At 32 it takes registers:
/// 105-112 instead of 80, two blocks of 8 warps per SM instead of three, so the cluster
/// entry of 16 (bounded to three) keeps the chunk-by-chunk loads; at 8 one to four more
/// (60-79).
/// Measured (H100, PERF.md versions 22 and 25): gpt2-xl's layer GEMVs at batch 32 56.2
/// -> 47.2 us, the LM head 83.6 -> 80.4 us; steps at batch 16 1.5-2.6 % faster; from 8,
/// steps at batch 4 and 8 1.2-5 % faster, the LM head at batch 8 63.6 -> 56.6 us.
pub const MMA_X_AHEAD_TILE: u32 = 8;

/// One tensor-core GEMV entry: its batch tile, blocks per cluster (1: none) and how many
/// of its blocks an SM holds at once (from three on, its launch bounds in
/// [`LAUNCH_BOUNDS`]; two, unbounded, by its registers).
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
/// late. Measured (H100,
/// PERF.md versions 22 and 23): gpt2-xl's 300-tile QKV at batch 32 10.8 us with x per
/// chunk against 13.4; its fc (400 tiles) and MLP projection (100 tiles in clusters of
/// 4) at batch 8 four per SM: 13.3 -> 9.5 and 13.1 -> 9.9 us, the step 2.33 -> 1.96 ms;
/// at batch 32 (one chunk in flight: two spilled at 64 registers) 14.1 -> 12.6 and 15.4
/// -> 13.4 us, the step 3.30 -> 3.13 ms. The leaner entries everywhere were slower (gpt2
/// batch 8 0.235 -> 0.255 ms).
pub const MMA_ENTRIES: &[MmaEntry] = &[
    MmaEntry::new("gemv_f16_b8", 8, 1, 3),
    MmaEntry::new("gemv_f16_b8_four_per_sm", 8, 1, 4),
    MmaEntry::new("gemv_f16_b8_cluster4", 8, MMA_CLUSTER_BLOCKS, 3),
    MmaEntry::new("gemv_f16_b8_cluster4_four_per_sm", 8, MMA_CLUSTER_BLOCKS, 4),
    MmaEntry::new("gemv_f16_b16", 16, 1, 2),
    MmaEntry::new("gemv_f16_b16_x_per_chunk", 16, 1, 3),
    MmaEntry::new("gemv_f16_b16_four_per_sm", 16, 1, 4),
    MmaEntry::new("gemv_f16_b16_cluster4", 16, MMA_CLUSTER_BLOCKS, 3),
    MmaEntry::new(
        "gemv_f16_b16_cluster4_four_per_sm",
        16,
        MMA_CLUSTER_BLOCKS,
        4,
    ),
    MmaEntry::new("gemv_f16_b32", 32, 1, 2),
    MmaEntry::new("gemv_f16_b32_x_per_chunk", 32, 1, 3),
    MmaEntry::new("gemv_f16_b32_cluster4", 32, MMA_CLUSTER_BLOCKS, 2),
    MmaEntry::new(
        "gemv_f16_b32_cluster4_x_per_chunk",
        32,
        MMA_CLUSTER_BLOCKS,
        3,
    ),
    MmaEntry::new("gemv_f16_b32_four_per_sm", 32, 1, 4),
    MmaEntry::new(
        "gemv_f16_b32_cluster4_four_per_sm",
        32,
        MMA_CLUSTER_BLOCKS,
        4,
    ),
];

/// [`MMA_ENTRIES`] for the GEMV with a folded layernorm (the tile of 8 only).
pub const FOLDED_MMA_ENTRIES: &[MmaEntry] = &[
    MmaEntry::new("gemv_folded_norm_f16_b8", 8, 1, 3),
    MmaEntry::new("gemv_folded_norm_f16_b8_four_per_sm", 8, 1, 4),
    MmaEntry::new("gemv_folded_norm_f16_b8_cluster4", 8, MMA_CLUSTER_BLOCKS, 3),
    MmaEntry::new(
        "gemv_folded_norm_f16_b8_cluster4_four_per_sm",
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

/// Every entry with launch bounds: [`LAUNCH_BOUNDS`], and the tensor-core entries of
/// three and four blocks per SM (those of two, 105-114 registers, fit two unbounded;
/// bounded, ptxas gave them other code).
pub fn launch_bounds() -> impl Iterator<Item = LaunchBounds> {
    let mma = MMA_ENTRIES.iter().chain(FOLDED_MMA_ENTRIES);
    let bounded = mma.filter(|e| e.blocks_per_sm > 2).map(|e| LaunchBounds {
        entry: e.entry,
        threads: MMA_WARPS_PER_BLOCK * WARP,
        min_blocks_per_sm: e.blocks_per_sm,
    });
    LAUNCH_BOUNDS.iter().copied().chain(bounded)
}

/// Every entry launched as clusters: [`CLUSTER_DIMS`], and the tensor-core entries of
/// more than one block per tile.
pub fn cluster_dims() -> impl Iterator<Item = ClusterDims> {
    let mma = MMA_ENTRIES.iter().chain(FOLDED_MMA_ENTRIES);
    let clustered = mma.filter(|e| e.cluster > 1).map(|e| ClusterDims {
        entry: e.entry,
        blocks: e.cluster,
    });
    CLUSTER_DIMS.iter().copied().chain(clustered)
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

fn check_batch(batch: u32) -> Result<(), &'static str> {
    if batch == 0 || batch > MAX_BATCH {
        return Err("batch must be 1..=32");
    }
    Ok(())
}

fn check_vector_width(features: u32) -> Result<(), &'static str> {
    if features == 0 || !features.is_multiple_of(HALVES_PER_VECTOR) {
        return Err("feature sizes must be positive multiples of 8 (16-byte rows)");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// embedding

/// `out[b] = wte[tokens[b]] + wpe[positions[b]]`, summed in fp32.
///
/// Token ids and positions are read from device memory (graph inputs); an id or position
/// out of range stops the kernel (the host validates them first).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct EmbeddingParams {
    /// (vocab, d_model) token embeddings.
    pub wte: *const f16,
    /// (n_positions, d_model) position embeddings.
    pub wpe: *const f16,
    /// (batch) token ids.
    pub tokens: *const u32,
    /// (batch) positions.
    pub positions: *const u32,
    /// (batch, d_model) the residual stream.
    pub out: *mut f16,
    /// Model width, a multiple of 8.
    pub d_model: u32,
    /// Rows of `wte`.
    pub vocab: u32,
    /// Rows of `wpe`.
    pub n_positions: u32,
    /// Sequences.
    pub batch: u32,
}

impl EmbeddingParams {
    /// Threads per block; one block per sequence.
    pub const BLOCK: u32 = 256;
}

impl Kernel for EmbeddingParams {
    const ENTRIES: &'static [&'static str] = &["embedding_f16"];

    fn check(&self) -> Result<(), &'static str> {
        check_batch(self.batch)?;
        check_vector_width(self.d_model)
    }

    fn launch_dims(&self) -> LaunchDims {
        LaunchDims::linear(self.batch, Self::BLOCK)
    }
}

// ---------------------------------------------------------------------------------------
// layernorm

/// `out = (x - mean) / sqrt(var + eps) * gamma + beta` per row, statistics in fp32.
///
/// One warp per row holds the row in registers: one read of the row from memory, then
/// exact two-pass statistics over the registers.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct LayerNormParams {
    /// (batch, d_model) input.
    pub x: *const f16,
    /// (d_model) scale.
    pub gamma: *const f16,
    /// (d_model) shift.
    pub beta: *const f16,
    /// (batch, d_model) output; may not alias `x`.
    pub out: *mut f16,
    /// Row width, a multiple of 8, at most [`LayerNormParams::MAX_D_MODEL`].
    pub d_model: u32,
    /// Rows.
    pub batch: u32,
    /// Added to the variance (GPT-2: 1e-5).
    pub eps: f32,
}

impl LayerNormParams {
    /// 16-byte vectors each lane holds in registers.
    pub const VECTORS_PER_LANE: u32 = 8;
    /// The widest row one warp holds: 32 lanes x 8 vectors x 8 halves.
    pub const MAX_D_MODEL: u32 = WARP * Self::VECTORS_PER_LANE * HALVES_PER_VECTOR;
    /// Warps (rows) per block.
    pub const WARPS_PER_BLOCK: u32 = 4;
}

impl Kernel for LayerNormParams {
    const ENTRIES: &'static [&'static str] = &["layernorm_f16"];

    fn check(&self) -> Result<(), &'static str> {
        check_batch(self.batch)?;
        check_vector_width(self.d_model)?;
        if self.d_model > Self::MAX_D_MODEL {
            return Err("layernorm rows are at most 2048 wide");
        }
        Ok(())
    }

    fn launch_dims(&self) -> LaunchDims {
        LaunchDims::linear(
            self.batch.div_ceil(Self::WARPS_PER_BLOCK),
            Self::WARPS_PER_BLOCK * WARP,
        )
    }
}

// ---------------------------------------------------------------------------------------
// GEMV with fused epilogues

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
    pub k: *mut f16,
    /// (batch, n_head, capacity, HEAD_DIM) values.
    pub v: *mut f16,
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
/// [`TENSOR_CORE_MIN_TILE`]): one warp per output row, CUDA-core FMAs, the row through
/// block-shared memory in bulk copies of [`Self::STAGED_PIECE_CHUNKS`] 512-byte chunks
/// (in blocks of 4 warps, or of 8 with slots sized to the row where only that holds the
/// output in one wave: [`Self::takes_sized_stage`]).
/// From batch 2 on: one block of [`MMA_WARPS_PER_BLOCK`] warps per [`MMA_ROWS`] rows on
/// the tensor cores, or a cluster of [`MMA_CLUSTER_BLOCKS`] blocks for outputs narrower
/// than [`MMA_CLUSTER_BELOW_TILES`] tiles.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct GemvParams {
    /// (batch, in_features) input.
    pub x: *const f16,
    /// (out_features, in_features) weight, rows contiguous (Conv1D weights transposed
    /// at load).
    pub w: *const f16,
    /// (out_features) bias, or null for none.
    pub bias: *const f16,
    /// (batch, out_features) output; with [`Epilogue::QkvToCache`], (batch, d) for q.
    pub out: *mut f16,
    /// (batch, out_features) added by [`Epilogue::Residual`]; may be `out`.
    pub residual: *const f16,
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
    /// pieces in flight per warp (`gemv_wide_f16_b1`).
    pub const STAGED_ROW_HALVES: u32 = Self::STAGED_PIECE_CHUNKS * WARP * HALVES_PER_VECTOR;
    /// mbarriers per warp of the static stage (`gpu_kernels::bulk_copy`'s
    /// `PIECE_BARRIERS`).
    pub const STAGED_PIECE_BARRIERS: u32 = 8;
    /// Static shared memory of a batch-1 block of one-piece rows (`gemv_f16_b1`): a
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
    /// whole kernel late: gpt2-large's fc GEMV (5120 rows of 1280) in one wave took its
    /// step from 1.09-1.14 to 1.02 ms (x16 1.09 to 1.00; H100, PERF.md version 23).
    ///
    /// Not for the QKV projection: gpt2-xl's (4800 rows of 1600) in one wave was faster
    /// alone (8.9 -> 6.8 us, folded 9.35 -> 7.95) but its step slower (1.81 -> 1.82-1.84
    /// ms): its blocks take the SMs' shared memory whole, where attention's blocks would
    /// start beside them.
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
        "gemv_f16_b1",
        "gemv_f16_b8",
        "gemv_f16_b16",
        "gemv_f16_b32",
        "gemv_wide_f16_b1",
        "gemv_f16_b8_cluster4",
        "gemv_f16_b16_cluster4",
        "gemv_f16_b32_cluster4",
        "gemv_f16_b32_x_per_chunk",
        "gemv_sized_f16_b1",
        "gemv_f16_b8_four_per_sm",
        "gemv_f16_b8_cluster4_four_per_sm",
        "gemv_f16_b16_x_per_chunk",
        "gemv_f16_b16_four_per_sm",
        "gemv_f16_b16_cluster4_four_per_sm",
        "gemv_f16_b32_cluster4_x_per_chunk",
        "gemv_f16_b32_four_per_sm",
        "gemv_f16_b32_cluster4_four_per_sm",
    ];

    fn entry(&self) -> &'static str {
        let tile = batch_tile_index(self.batch);
        if tile == 0 && self.in_features > Self::STAGED_ROW_HALVES {
            return "gemv_wide_f16_b1";
        }
        if self.takes_sized_stage() {
            return "gemv_sized_f16_b1";
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

/// A GEMV whose input is the layernorm of `gemv.x`: `y[b] = LN(x[b]) W^T + bias`, then
/// the epilogue, without a layernorm kernel or a normalized copy of x.
///
/// The layernorm's scale and shift are folded into the weights when they are loaded
/// (`host::model::fold`): `gemv.w` holds `W diag(gamma)` and `gemv.bias` holds
/// `bias + W beta`, and `row_sums[j]` is the sum of row j of `gemv.w`. Then
/// `LN(x) W^T + bias = inv_std * (x W'^T - mean * row_sums) + bias'`, so each warp takes
/// the row's mean and variance from the same loads of x as its dot product, in one pass,
/// in fp32.
///
/// Batches 1 to 8 ([`Self::supports_batch`]): at batch 1 every warp takes the moments of
/// x with its row; from batch 2 the tensor-core GEMV takes them from the x fragments it
/// loads. From batch 9 a layernorm with unit scale and zero shift runs before a plain
/// [`GemvParams`] over the same folded weights (there the moments cost more than that
/// kernel: PERF.md versions 15 and 21).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct FoldedNormGemvParams {
    /// The GEMV over the folded weights; `x` is the un-normalized input.
    pub gemv: GemvParams,
    /// (out_features) sum of each row of the folded weights, fp32.
    pub row_sums: *const f32,
    /// The layernorm's epsilon.
    pub eps: f32,
}

impl Kernel for FoldedNormGemvParams {
    const ENTRIES: &'static [&'static str] = &[
        "gemv_folded_norm_f16_b1",
        "gemv_folded_norm_f16_b8",
        "gemv_folded_norm_f16_b8_cluster4",
        "gemv_folded_norm_regs_f16_b1",
        "gemv_folded_norm_sized_f16_b1",
        "gemv_folded_norm_f16_b8_four_per_sm",
        "gemv_folded_norm_f16_b8_cluster4_four_per_sm",
    ];

    /// The plain GEMV's entry for these shapes, folded; at batch 1 rows of up to
    /// [`Self::REGISTER_ROW_HALVES`] in registers.
    fn entry(&self) -> &'static str {
        let g = &self.gemv;
        if !uses_tensor_cores(g.batch) {
            if g.in_features <= Self::REGISTER_ROW_HALVES {
                return Self::ENTRIES[3];
            }
            if g.takes_sized_stage() {
                return Self::ENTRIES[4];
            }
            return Self::ENTRIES[0];
        }
        let tile = BATCH_TILES[batch_tile_index(g.batch)];
        let cluster = mma_cluster_blocks(g.out_features, g.in_features, tile);
        mma_entry(FOLDED_MMA_ENTRIES, g.out_features, cluster, tile)
    }

    fn check(&self) -> Result<(), &'static str> {
        self.gemv.check()?;
        if !Self::supports_batch(self.gemv.batch) {
            return Err("a folded layernorm runs at batches of 1 to 8");
        }
        if self.gemv.batch == 1 && self.gemv.in_features > GemvParams::STAGED_ROW_HALVES {
            return Err("a folded layernorm at batch 1 takes rows of one staged piece");
        }
        if self.row_sums.is_null() {
            return Err("folded layernorm without row sums");
        }
        Ok(())
    }

    fn launch_dims(&self) -> LaunchDims {
        // The register entry runs 4-warp blocks whatever the plain GEMV's stage would be.
        if self.entry() == Self::ENTRIES[3] {
            return LaunchDims::linear(
                self.gemv.out_features.div_ceil(GemvParams::WARPS_PER_BLOCK),
                GemvParams::WARPS_PER_BLOCK * WARP,
            );
        }
        self.gemv.launch_dims()
    }
}

impl FoldedNormGemvParams {
    /// At batch 1, rows up to this wide (gpt2's 768: three 16-byte loads a lane) are held
    /// in registers, each lane's share requested before the programmatic wait, instead
    /// of staged in shared memory by bulk copies (`gemv_folded_norm_regs_f16_b1`).
    /// Measured (H100, PERF.md version 22): gpt2 batch 1 6 % faster a step (x16 graph
    /// 0.227 -> 0.212 ms); with the wider rows in registers too gpt2-medium and gpt2-xl
    /// were 7-9 % slower.
    pub const REGISTER_ROW_HALVES: u32 = 3 * WARP * HALVES_PER_VECTOR;

    /// Whether a batch runs on this kernel (else: a layernorm, then a plain GEMV): batch
    /// 1 on CUDA cores and the tensor-core tile of 8. The tensor-core GEMV sums x and x^2
    /// from the x fragments it loads, 24 more instructions per 16-byte load next to two
    /// mmas: free at batch 2-8 (steps 4-11 % faster without the two layernorm kernels a
    /// block), 2-14 % slower at batch 32, where the kernel is issue-bound (H100, PERF.md
    /// version 21).
    pub fn supports_batch(batch: u32) -> bool {
        (1..=TENSOR_CORE_MIN_TILE).contains(&batch)
    }
}

// ---------------------------------------------------------------------------------------
// attention

/// Decode attention: `out[b, h*64 + d] = sum_t softmax_t(q . k_t * scale) v_t[d]` over
/// cache positions `0..lengths[b]`, split along the context into
/// [`AttentionParams::SPLIT`]-position pieces that run in parallel, then combined: in
/// block shared memory where one block holds every split of a (sequence, head) (buckets
/// up to 128 positions), in the shared memory of a cluster's first block where one
/// cluster holds them (up to 1024, [`AttentionParams::CLUSTER_ENTRIES`]), else by the last
/// piece to finish, found with `counters`, through global memory.
///
/// `lengths[b]` (read from device memory) is how many cache positions sequence b attends
/// to, so a graph captured for a context bucket is right for every length inside it.
/// Splits past a sequence's length do nothing. A length of 0 or over `context_bucket`
/// stops the kernel.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct AttentionParams {
    /// (batch, n_head * HEAD_DIM) queries.
    pub q: *const f16,
    /// (batch, n_head, capacity, HEAD_DIM) keys of this layer.
    pub k: *const f16,
    /// (batch, n_head, capacity, HEAD_DIM) values of this layer.
    pub v: *const f16,
    /// (batch) positions attended to, 1..=context_bucket.
    pub lengths: *const u32,
    /// (batch) leading cache rows of each sequence that were complete before the step's
    /// first kernel started (written by earlier steps; no kernel of this launch's chain
    /// writes them); or null. With them the kernel knows each length before its
    /// programmatic wait, `settled[b] + fresh_rows` (`lengths` is then not read), and
    /// requests the settled rows there, so their DRAM round trip overlaps the previous
    /// kernel's end; the fresh rows after it.
    pub settled: *const u32,
    /// With `settled`: the rows past them that this step's chain writes, the newest
    /// included (the step's index in its graph + 1; 1 for a step of its own).
    pub fresh_rows: u32,
    /// (batch, n_head * HEAD_DIM) attention output.
    pub out: *mut f16,
    /// (batch, n_head, splits, HEAD_DIM) scratch: per-split `sum_t p_t v_t`.
    pub partial_out: *mut f32,
    /// (batch, n_head, splits, 2) scratch: per-split (max score in log2 units, sum of p).
    pub partial_stats: *mut f32,
    /// (batch, n_head) finished-split counters: zero before the first launch, and every
    /// launch leaves them zero.
    pub counters: *mut u32,
    /// Heads.
    pub n_head: u32,
    /// Sequences, 1..=32.
    pub batch: u32,
    /// Positions per sequence in the cache (the stride between heads).
    pub capacity: u32,
    /// The most positions any sequence may attend to in this launch; sets the grid.
    pub context_bucket: u32,
    /// Score scale, 1/sqrt(HEAD_DIM).
    pub scale: f32,
}

impl AttentionParams {
    /// Cache positions per split: one per lane of the warp that handles the split.
    pub const SPLIT: u32 = WARP;
    /// Warps (splits) per block.
    pub const WARPS_PER_BLOCK: u32 = 4;

    /// The largest batch whose steps pass [`AttentionParams::settled`]: there the cache
    /// is a latency chain and the early requests shorten it (gpt2 batch 8 x16 graph
    /// 0.320 -> 0.310 ms, gpt2-xl batch 1 1.88 -> 1.86); at batch 32 attention streams
    /// the cache near the copy bandwidth and they cost (gpt2-xl context 1000 7.56 ->
    /// 7.80 ms), so it runs as before (PERF.md version 17).
    pub const SETTLED_ROWS_MAX_BATCH: u32 = 8;

    /// Blocks in the largest cluster: 8 blocks of 4 warps hold the splits of 1024
    /// positions.
    pub const MAX_CLUSTER_BLOCKS: u32 = 8;

    /// The entries whose splits of a (sequence, head) combine within one cluster, by
    /// blocks per cluster: 2, 4 and [`Self::MAX_CLUSTER_BLOCKS`].
    pub const CLUSTER_ENTRIES: [&'static str; 3] = [
        "attention_cluster2_f16",
        "attention_cluster4_f16",
        "attention_cluster8_f16",
    ];

    /// Four blocks per SM (128 registers a thread): unbounded, the kernels take 132-134
    /// registers and three fit, and a batch of 8 or 32 at context 1024 (1600 or 6400
    /// blocks) takes a third more waves.
    const fn bounds(entry: &'static str) -> LaunchBounds {
        LaunchBounds {
            entry,
            threads: Self::WARPS_PER_BLOCK * WARP,
            min_blocks_per_sm: 4,
        }
    }

    const fn cluster_dims(i: usize) -> ClusterDims {
        ClusterDims {
            entry: Self::CLUSTER_ENTRIES[i],
            blocks: Self::MAX_CLUSTER_BLOCKS >> (2 - i),
        }
    }

    /// Splits of a launch: what the partial buffers must hold per (sequence, head).
    pub fn splits(context_bucket: u32) -> u32 {
        context_bucket.div_ceil(Self::SPLIT)
    }

    /// Blocks per cluster when a launch for this bucket combines in a cluster: more
    /// splits than one block holds, no more than the largest cluster does; the smallest
    /// cluster that holds them (idle blocks would cost whole waves at large batches).
    pub fn cluster_blocks(context_bucket: u32) -> Option<u32> {
        let blocks = Self::splits(context_bucket).div_ceil(Self::WARPS_PER_BLOCK);
        (2..=Self::MAX_CLUSTER_BLOCKS)
            .contains(&blocks)
            .then(|| blocks.next_power_of_two())
    }
}

impl Kernel for AttentionParams {
    const ENTRIES: &'static [&'static str] = &[
        "attention_f16",
        Self::CLUSTER_ENTRIES[0],
        Self::CLUSTER_ENTRIES[1],
        Self::CLUSTER_ENTRIES[2],
    ];

    fn entry(&self) -> &'static str {
        match Self::cluster_blocks(self.context_bucket) {
            Some(blocks) => Self::CLUSTER_ENTRIES[blocks.trailing_zeros() as usize - 1],
            None => Self::ENTRIES[0],
        }
    }

    fn check(&self) -> Result<(), &'static str> {
        check_batch(self.batch)?;
        if self.n_head == 0 || self.context_bucket == 0 || self.context_bucket > self.capacity {
            return Err("attention needs heads and 0 < context_bucket <= capacity");
        }
        Ok(())
    }

    fn launch_dims(&self) -> LaunchDims {
        LaunchDims {
            grid: [
                Self::cluster_blocks(self.context_bucket)
                    .unwrap_or(Self::splits(self.context_bucket).div_ceil(Self::WARPS_PER_BLOCK)),
                self.n_head,
                self.batch,
            ],
            block: [Self::WARPS_PER_BLOCK * WARP, 1, 1],
            shared_bytes: 0,
            persistent: false,
        }
    }
}

// ---------------------------------------------------------------------------------------
// LM head and argmax

/// `logits[b] = x[b] wte^T` over the tied embedding, fused with argmax: each warp folds
/// its rows' best (logit, index) into `best[b]` with 64-bit atomic maxima of
/// [`pack_argmax`]; [`ArgmaxFinalizeParams`] turns that into token ids. Optionally also
/// writes the logits. Batch tiles from [`TENSOR_CORE_MIN_TILE`] on run on the tensor
/// cores, one block of [`MMA_WARPS_PER_BLOCK`] warps per 16 rows at a time.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct LmHeadParams {
    /// (batch, d_model) final hidden state (after ln_f).
    pub x: *const f16,
    /// (vocab, d_model) token embeddings.
    pub wte: *const f16,
    /// (batch) packed running maxima; all zero before the launch
    /// ([`ArgmaxFinalizeParams`] leaves them so).
    pub best: *mut u64,
    /// (batch, vocab) logits in f32, or null to skip writing them.
    pub logits: *mut f32,
    /// Model width, a multiple of 8.
    pub d_model: u32,
    /// Rows of wte.
    pub vocab: u32,
    /// Sequences, 1..=32.
    pub batch: u32,
}

impl LmHeadParams {
    /// Warps per block.
    pub const WARPS_PER_BLOCK: u32 = 4;
}

impl Kernel for LmHeadParams {
    const ENTRIES: &'static [&'static str] = &[
        "lm_head_argmax_f16_b1",
        "lm_head_argmax_f16_b8",
        "lm_head_argmax_f16_b16",
        "lm_head_argmax_f16_b32",
    ];

    fn entry(&self) -> &'static str {
        Self::ENTRIES[batch_tile_index(self.batch)]
    }

    fn check(&self) -> Result<(), &'static str> {
        check_batch(self.batch)?;
        check_vector_width(self.d_model)
    }

    fn launch_dims(&self) -> LaunchDims {
        // Warps loop over the vocabulary and end with one atomic per sequence: one full
        // wave of them (the host caps the grid), never more blocks than rows need.
        let dims = if uses_tensor_cores(self.batch) {
            tensor_core_dims(self.vocab, 1)
        } else {
            LaunchDims::linear(
                self.vocab.div_ceil(Self::WARPS_PER_BLOCK),
                Self::WARPS_PER_BLOCK * WARP,
            )
        };
        LaunchDims {
            persistent: true,
            ..dims
        }
    }
}

/// `tokens[b] = unpack(best[b])`, then `best[b] = 0` for the next step; with
/// [`Feedback`], also the next step's input, so that several steps chain on the device.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ArgmaxFinalizeParams {
    /// (batch) packed maxima from [`LmHeadParams`].
    pub best: *mut u64,
    /// (batch) the next token of each sequence.
    pub tokens: *mut u32,
    /// Where the next step reads its input, or [`Feedback::NONE`].
    pub feedback: Feedback,
    /// Sequences.
    pub batch: u32,
}

/// The input buffers of a decode step, advanced in place by [`ArgmaxFinalizeParams`]:
/// `tokens[b] = next`, `positions[b] += 1`, `lengths[b] += 1`. This is what lets one
/// graph hold several consecutive steps, each fed by the argmax of the one before.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Feedback {
    /// (batch) input tokens, or null for no feedback.
    pub tokens: *mut u32,
    /// (batch) input positions.
    pub positions: *mut u32,
    /// (batch) positions attended to.
    pub lengths: *mut u32,
}

impl Feedback {
    /// No feedback: the host writes the next step's input.
    pub const NONE: Feedback = Feedback {
        tokens: core::ptr::null_mut(),
        positions: core::ptr::null_mut(),
        lengths: core::ptr::null_mut(),
    };
}

impl Kernel for ArgmaxFinalizeParams {
    const ENTRIES: &'static [&'static str] = &["argmax_finalize"];

    fn check(&self) -> Result<(), &'static str> {
        check_batch(self.batch)
    }

    fn launch_dims(&self) -> LaunchDims {
        LaunchDims::linear(1, WARP)
    }
}

/// Packs (logit, index) so that the larger u64 is the larger logit and, between equal
/// logits, the lower index: the f32 bits mapped to a monotonic u32 in the high half, the
/// inverted index in the low half. Never 0 for a real logit, so 0 means "nothing yet".
pub fn pack_argmax(logit: f32, index: u32) -> u64 {
    let bits = logit.to_bits();
    let ordered = if bits & 0x8000_0000 != 0 {
        !bits
    } else {
        bits | 0x8000_0000
    };
    (u64::from(ordered) << 32) | u64::from(!index)
}

/// The index packed by [`pack_argmax`].
pub fn unpack_argmax_index(packed: u64) -> u32 {
    !(packed as u32)
}

// ---------------------------------------------------------------------------------------
// random fill

/// `out[i] = uniform(-scale, scale)` from a hash of `seed + i`: the same seed gives the
/// same values on any GPU and on the CPU ([`splitmix64`]).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct FillUniformParams {
    /// (len) output.
    pub out: *mut f16,
    /// Elements.
    pub len: u64,
    /// Stream of values; different seeds give unrelated values.
    pub seed: u64,
    /// Half-width of the interval.
    pub scale: f32,
}

impl FillUniformParams {
    /// Threads per block.
    pub const BLOCK: u32 = 256;
}

impl Kernel for FillUniformParams {
    const ENTRIES: &'static [&'static str] = &["fill_uniform_f16"];

    fn launch_dims(&self) -> LaunchDims {
        let blocks = self.len.div_ceil(u64::from(Self::BLOCK));
        LaunchDims {
            persistent: true,
            ..LaunchDims::linear(blocks.min(u64::from(u32::MAX)) as u32, Self::BLOCK)
        }
    }
}

/// SplitMix64's output function: a cheap, well-mixed hash of a counter.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names_are_unique() {
        for (i, family) in ALL_ENTRIES.iter().enumerate() {
            for (j, name) in family.iter().enumerate() {
                let later_in_family = &family[j + 1..];
                assert!(!later_in_family.contains(name), "{name} listed twice");
                for other in &ALL_ENTRIES[i + 1..] {
                    assert!(!other.contains(name), "{name} in two families");
                }
            }
        }
    }

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

    #[test]
    fn every_kernel_but_the_lm_head_takes_the_uniform_carveout() {
        for entry in ALL_ENTRIES.iter().flat_map(|family| family.iter()) {
            let lm_head = entry.starts_with("lm_head");
            assert_eq!(takes_uniform_carveout(entry), !lm_head, "{entry}");
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
            (8, 1600, 4800, "gemv_f16_b8"),
            (8, 1600, 6400, "gemv_f16_b8_four_per_sm"),
            (2, 6400, 1600, "gemv_f16_b8_cluster4_four_per_sm"),
            (8, 5120, 1280, "gemv_f16_b8_cluster4"),
            (16, 1024, 4096, "gemv_f16_b16"),
            (16, 1600, 4800, "gemv_f16_b16_x_per_chunk"),
            (16, 1280, 5120, "gemv_f16_b16_x_per_chunk"),
            (16, 1600, 6400, "gemv_f16_b16_four_per_sm"),
            (16, 6400, 1600, "gemv_f16_b16_cluster4_four_per_sm"),
            (16, 5120, 1280, "gemv_f16_b16_cluster4"),
            (32, 1024, 4096, "gemv_f16_b32"),
            (32, 1600, 4800, "gemv_f16_b32_x_per_chunk"),
            (32, 1600, 6400, "gemv_f16_b32_four_per_sm"),
            (32, 5120, 1280, "gemv_f16_b32_cluster4_x_per_chunk"),
            (32, 6400, 1600, "gemv_f16_b32_cluster4_four_per_sm"),
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
            "gemv_folded_norm_f16_b8_four_per_sm"
        );
        assert_eq!(
            folded(at(8, 6400, 1600)).entry(),
            "gemv_folded_norm_f16_b8_cluster4_four_per_sm"
        );
        assert_eq!(folded(at(8, 1600, 4800)).entry(), "gemv_folded_norm_f16_b8");
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
        assert_eq!(large_fc.entry(), "gemv_sized_f16_b1");
        let dims = large_fc.launch_dims();
        assert_eq!((dims.grid[0], dims.block[0]), (640, 256));
        assert_eq!(dims.shared_bytes, 128 + 8 * 2560);
        let folded = FoldedNormGemvParams {
            gemv: large_fc,
            row_sums: core::ptr::null(),
            eps: 1e-5,
        };
        assert_eq!(folded.entry(), "gemv_folded_norm_sized_f16_b1");
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
            (1, 768, "gemv_f16_b1"),
            (1, 1600, "gemv_f16_b1"),
            (1, 1792, "gemv_f16_b1"),
            (1, 1800, "gemv_wide_f16_b1"),
            (1, 6400, "gemv_wide_f16_b1"),
            (2, 6400, "gemv_f16_b8"),
            (8, 6400, "gemv_f16_b8"),
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

    #[test]
    fn argmax_packing_orders_by_logit_then_lowest_index() {
        let order = [
            pack_argmax(f32::NEG_INFINITY, 0),
            pack_argmax(-3.5, 7),
            pack_argmax(-0.0, 9),
            pack_argmax(0.0, 9),
            pack_argmax(1.25, 50256),
            pack_argmax(1.25, 3),
            pack_argmax(f32::INFINITY, 2),
        ];
        for pair in order.windows(2) {
            assert!(pair[0] < pair[1], "{:x} !< {:x}", pair[0], pair[1]);
        }
        assert!(order.iter().all(|&p| p != 0));
        assert_eq!(unpack_argmax_index(pack_argmax(2.0, 50256)), 50256);
    }

    #[test]
    fn attention_combines_in_a_block_then_a_cluster_then_through_memory() {
        let at = |bucket| AttentionParams {
            context_bucket: bucket,
            capacity: 4096,
            ..unlaunched_attention()
        };
        let cases = [
            (1, "attention_f16", 1),
            (128, "attention_f16", 1),
            (129, "attention_cluster2_f16", 2),
            (256, "attention_cluster2_f16", 2),
            (257, "attention_cluster4_f16", 4),
            (384, "attention_cluster4_f16", 4),
            (512, "attention_cluster4_f16", 4),
            (513, "attention_cluster8_f16", 8),
            (1024, "attention_cluster8_f16", 8),
            (1025, "attention_f16", 9),
            (4096, "attention_f16", 32),
        ];
        for (bucket, entry, blocks) in cases {
            let p = at(bucket);
            assert_eq!(p.entry(), entry, "bucket {bucket}");
            assert_eq!(p.launch_dims().grid, [blocks, 12, 1], "bucket {bucket}");
        }
        for cluster in cluster_dims() {
            assert!(ALL_ENTRIES.iter().any(|f| f.contains(&cluster.entry)));
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
            (32, 1600, 4800, "gemv_f16_b32_x_per_chunk", 1),
            (32, 1280, 5120, "gemv_f16_b32_x_per_chunk", 1),
            (32, 1600, 6400, "gemv_f16_b32_four_per_sm", 1),
            (32, 768, 2304, "gemv_f16_b32", 1),
            (16, 1600, 4800, "gemv_f16_b16_x_per_chunk", 1),
            (32, 6400, 6400, "gemv_f16_b32_four_per_sm", 1),
            (32, 9216, 2304, "gemv_f16_b32", 1),
            (32, 8448, 2112, "gemv_f16_b32", 1),
            (32, 8384, 2096, "gemv_f16_b32_cluster4_four_per_sm", 4),
            (32, 6400, 1600, "gemv_f16_b32_cluster4_four_per_sm", 4),
            (32, 1600, 1600, "gemv_f16_b32_cluster4_four_per_sm", 4),
            (8, 1280, 1280, "gemv_f16_b8", 1),
            (32, 3072, 768, "gemv_f16_b32_cluster4", 4),
            (17, 6400, 1600, "gemv_f16_b32_cluster4_four_per_sm", 4),
            (16, 3072, 768, "gemv_f16_b16_cluster4", 4),
            (16, 768, 768, "gemv_f16_b16", 1),
            (9, 1600, 4800, "gemv_f16_b16_x_per_chunk", 1),
            (8, 6400, 1600, "gemv_f16_b8_cluster4_four_per_sm", 4),
            (8, 5120, 1280, "gemv_f16_b8_cluster4", 4),
            (8, 1600, 6400, "gemv_f16_b8_four_per_sm", 1),
            (3, 1600, 4800, "gemv_f16_b8", 1),
            (2, 5120, 1280, "gemv_f16_b8_cluster4", 4),
            (1, 6400, 1600, "gemv_wide_f16_b1", 1),
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
    fn every_launch_bound_names_an_entry() {
        for bound in launch_bounds() {
            let known = ALL_ENTRIES
                .iter()
                .any(|family| family.contains(&bound.entry));
            assert!(known, "{}", bound.entry);
        }
    }

    /// gpt2's attention at batch 1, pointers null: for the host-side checks.
    fn unlaunched_attention() -> AttentionParams {
        AttentionParams {
            q: core::ptr::null(),
            k: core::ptr::null(),
            v: core::ptr::null(),
            lengths: core::ptr::null(),
            settled: core::ptr::null(),
            fresh_rows: 1,
            out: core::ptr::null_mut(),
            partial_out: core::ptr::null_mut(),
            partial_stats: core::ptr::null_mut(),
            counters: core::ptr::null_mut(),
            n_head: 12,
            batch: 1,
            capacity: 1024,
            context_bucket: 128,
            scale: 0.125,
        }
    }

    /// gpt2-xl's QKV shape at batch 1, pointers null: for the host-side checks.
    fn unlaunched_gemv() -> GemvParams {
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
        assert_eq!(GemvParams { batch: 3, ..gemv }.entry(), "gemv_f16_b8");
    }

    #[test]
    fn a_folded_layernorm_runs_at_batches_up_to_8_with_row_sums() {
        let sums = [0.0f32; 6400];
        let folded = FoldedNormGemvParams {
            gemv: GemvParams {
                // gpt2-xl's fc rows, which take the static stage (see
                // `sized_stage_where_only_it_holds_the_output_in_one_wave`).
                out_features: 6400,
                ..unlaunched_gemv()
            },
            row_sums: sums.as_ptr(),
            eps: 1e-5,
        };
        assert_eq!(folded.check(), Ok(()));
        assert_eq!(folded.entry(), "gemv_folded_norm_f16_b1");
        let gpt2_rows = FoldedNormGemvParams {
            gemv: GemvParams {
                in_features: 768,
                out_features: 2304,
                ..folded.gemv
            },
            ..folded
        };
        assert_eq!(gpt2_rows.entry(), "gemv_folded_norm_regs_f16_b1");
        let at = |batch: u32, out_features: u32| FoldedNormGemvParams {
            gemv: GemvParams {
                batch,
                out_features,
                ..folded.gemv
            },
            ..folded
        };
        assert_eq!(at(2, 4800).check(), Ok(()));
        assert_eq!(at(2, 4800).entry(), "gemv_folded_norm_f16_b8");
        let narrow_long = FoldedNormGemvParams {
            gemv: GemvParams {
                batch: 8,
                in_features: 5120,
                out_features: 1280,
                ..folded.gemv
            },
            ..folded
        };
        assert_eq!(narrow_long.entry(), "gemv_folded_norm_f16_b8_cluster4");
        assert_eq!(
            narrow_long.launch_dims().grid,
            narrow_long.gemv.launch_dims().grid
        );
        assert_eq!(
            at(9, 4800).check(),
            Err("a folded layernorm runs at batches of 1 to 8")
        );
        let wide = FoldedNormGemvParams {
            gemv: GemvParams {
                in_features: 6400,
                ..folded.gemv
            },
            ..folded
        };
        assert!(wide.check().is_err());
        let no_sums = FoldedNormGemvParams {
            row_sums: core::ptr::null(),
            ..folded
        };
        assert_eq!(no_sums.check(), Err("folded layernorm without row sums"));
        assert_eq!(
            folded.launch_dims().grid,
            folded.gemv.launch_dims().grid,
            "one warp per row, as the plain GEMV"
        );
    }
}
