//! Launch geometry and the shapes every kernel shares: the launch dimensions, vector and
//! warp widths, the batch limit, the checks of shapes the kernels support, and the SM
//! resources the launch shapes are chosen for.

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
    pub(crate) fn linear(blocks: u32, threads: u32) -> Self {
        LaunchDims {
            grid: [blocks.max(1), 1, 1],
            block: [threads, 1, 1],
            shared_bytes: 0,
            persistent: false,
        }
    }
}

/// fp16 elements per 16-byte vector access.
pub const HALVES_PER_VECTOR: u32 = 8;

/// Threads per warp.
pub const WARP: u32 = 32;

/// Dimensions per attention head (the whole GPT-2 family).
pub const HEAD_DIM: u32 = 64;

/// The largest batch one launch takes.
pub const MAX_BATCH: u32 = 32;

/// Shared memory an H100 SM gives blocks at [`SHARED_MEMORY_CARVEOUT_PERCENT`](super::SHARED_MEMORY_CARVEOUT_PERCENT): half of
/// 228 KiB, rounded up to the next size the SM supports.
pub const SHARED_BYTES_PER_SM: u32 = 132 * 1024;

/// Shared memory the driver reserves for each resident block (sm_90).
pub const RESERVED_SHARED_BYTES_PER_BLOCK: u32 = 1024;

/// Resident warps an SM holds at most (sm_90).
pub const MAX_WARPS_PER_SM: u32 = 64;

/// SMs the launch shapes that depend on how many blocks fit at once are chosen for: an
/// H100 SXM's or H200's 132. Another count changes their speed, never their results.
pub const TUNED_SMS: u32 = 132;

pub(crate) fn check_batch(batch: u32) -> Result<(), &'static str> {
    if batch == 0 || batch > MAX_BATCH {
        return Err("batch must be 1..=32");
    }
    Ok(())
}

pub(crate) fn check_vector_width(features: u32) -> Result<(), &'static str> {
    if features == 0 || !features.is_multiple_of(HALVES_PER_VECTOR) {
        return Err("feature sizes must be positive multiples of 8 (16-byte rows)");
    }
    Ok(())
}
