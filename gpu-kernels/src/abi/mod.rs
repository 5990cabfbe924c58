//! Kernel parameter structs and launch geometry, compiled for both host and device: the
//! one source of truth for every launch.
//!
//! Every kernel takes exactly one of these `#[repr(C)]` structs by value; its [`Kernel`]
//! impl names the PTX entry, checks the shapes and derives the launch dimensions, so the
//! host never repeats a number the kernel depends on. Shapes are written beside every
//! pointer: `(batch, d_model)` is row-major with `d_model` contiguous.
//!
//! This file is the registry: every family's entries, and the launch bounds and cluster
//! shapes the PTX builder writes into the entries that need them. [`launch`] holds the
//! launch and shape helpers, [`tiles`] the batch tiles and the tensor-core entry tables,
//! and each family has a file of its own.

mod attention;
mod embedding;
mod fill;
mod gemv;
mod gemv_folded_norm;
mod half;
pub mod launch;
mod layernorm;
mod lm_head;
mod rmsnorm;
mod rope;
mod swiglu;
pub mod tiles;

pub use attention::*;
pub use embedding::*;
pub use fill::*;
pub use gemv::*;
pub use gemv_folded_norm::*;
pub use half::*;
pub use launch::*;
pub use layernorm::*;
pub use lm_head::*;
pub use rmsnorm::*;
pub use rope::*;
pub use swiglu::*;
pub use tiles::*;

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
    RmsNormParams::ENTRIES,
    RopeKvParams::ENTRIES,
    SwigluParams::ENTRIES,
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
    AttentionParams::bounds(AttentionParams::SINGLE_ENTRIES[0]),
    AttentionParams::bounds(AttentionParams::CLUSTER_ENTRIES[0][0]),
    AttentionParams::bounds(AttentionParams::CLUSTER_ENTRIES[0][1]),
    AttentionParams::bounds(AttentionParams::CLUSTER_ENTRIES[0][2]),
];

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
    AttentionParams::cluster_dims(0, 0),
    AttentionParams::cluster_dims(0, 1),
    AttentionParams::cluster_dims(0, 2),
    AttentionParams::cluster_dims(1, 0),
    AttentionParams::cluster_dims(1, 1),
    AttentionParams::cluster_dims(1, 2),
];

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

/// The shared-memory carveout every kernel asks for, in percent of the SM's largest
/// (`CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT`; on an H100 half of 228 KiB,
/// which the driver rounds to a size it supports, the rest of the 256 KiB being L1).
/// One value for all: an SM changes its split between L1 and shared memory only when
/// idle, so kernels that asked for different splits could not overlap at their boundaries
/// under programmatic launch. Half is the fastest split for the whole step; all of it
/// would starve attention of L1 (PERF.md, "Launch policy").
pub const SHARED_MEMORY_CARVEOUT_PERCENT: i32 = 50;

const _: () = assert!(SHARED_MEMORY_CARVEOUT_PERCENT >= 0 && SHARED_MEMORY_CARVEOUT_PERCENT <= 100);

/// Whether `entry` asks for [`SHARED_MEMORY_CARVEOUT_PERCENT`]. All but the LM head: it
/// runs once per step, between the last block and the next step's embedding, so its own
/// split costs one switch per step, and the driver's choice keeps more of its bytes in
/// flight at batches 8 and 32.
pub fn takes_uniform_carveout(entry: &str) -> bool {
    !LmHeadParams::ENTRIES.contains(&entry)
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
    fn every_kernel_but_the_lm_head_takes_the_uniform_carveout() {
        for entry in ALL_ENTRIES.iter().flat_map(|family| family.iter()) {
            let lm_head = entry.starts_with("lm_head");
            assert_eq!(takes_uniform_carveout(entry), !lm_head, "{entry}");
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
}
