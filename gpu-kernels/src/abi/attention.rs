//! Decode attention's parameters: which entry combines the splits of a context bucket
//! (in a block, in a cluster, or through memory) and its grid.

use super::half::Half;
use super::launch::{LaunchDims, WARP, check_batch};
use super::{ClusterDims, Kernel, LaunchBounds};

/// Decode attention: `out[b, h*hd + d] = sum_t softmax_t(q . k_t * scale) v_t[d]` over
/// cache positions `0..lengths[b]` of query head h's KV head `h / (n_head / n_kv_head)`
/// (grouped-query attention; GPT-2 has one KV head per query head), heads of 64 or 128
/// ([`AttentionParams::HEAD_DIMS`]), split along the context into
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
    /// (batch, n_head * head_dim) queries.
    pub q: *const Half,
    /// (batch, n_kv_head, capacity, head_dim) keys of this layer.
    pub k: *const Half,
    /// (batch, n_kv_head, capacity, head_dim) values of this layer.
    pub v: *const Half,
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
    /// (batch, n_head * head_dim) attention output.
    pub out: *mut Half,
    /// (batch, n_head, splits, head_dim) scratch: per-split `sum_t p_t v_t`.
    pub partial_out: *mut f32,
    /// (batch, n_head, splits, 2) scratch: per-split (max score in log2 units, sum of p).
    pub partial_stats: *mut f32,
    /// (batch, n_head) finished-split counters: zero before the first launch, and every
    /// launch leaves them zero.
    pub counters: *mut u32,
    /// Query heads.
    pub n_head: u32,
    /// Key and value heads: n_head divided by the query heads sharing one.
    pub n_kv_head: u32,
    /// Dimensions per head: one of [`AttentionParams::HEAD_DIMS`].
    pub head_dim: u32,
    /// Sequences, 1..=32.
    pub batch: u32,
    /// Positions per sequence in the cache (the stride between heads).
    pub capacity: u32,
    /// The most positions any sequence may attend to in this launch; sets the grid.
    pub context_bucket: u32,
    /// Score scale, 1/sqrt(head_dim).
    pub scale: f32,
}

impl AttentionParams {
    /// The head sizes the kernels take.
    pub const HEAD_DIMS: [u32; 2] = [64, 128];
    /// Cache positions per split: one per lane of the warp that handles the split.
    pub const SPLIT: u32 = WARP;
    /// Warps (splits) per block.
    pub const WARPS_PER_BLOCK: u32 = 4;

    /// The largest batch whose steps pass [`AttentionParams::settled`]: there the cache
    /// is a latency chain and the early requests shorten it; at batch 32 attention
    /// streams the cache near the copy bandwidth and they cost (PERF.md, "Attention").
    pub const SETTLED_ROWS_MAX_BATCH: u32 = 8;

    /// Blocks in the largest cluster: 8 blocks of 4 warps hold the splits of 1024
    /// positions.
    pub const MAX_CLUSTER_BLOCKS: u32 = 8;

    /// The entries whose splits of a (sequence, head) combine within one cluster, by
    /// head size ([`Self::HEAD_DIMS`]) and blocks per cluster: 2, 4 and
    /// [`Self::MAX_CLUSTER_BLOCKS`].
    pub const CLUSTER_ENTRIES: [[&'static str; 3]; 2] = [
        [
            "decode_attention_cluster2",
            "decode_attention_cluster4",
            "decode_attention_cluster8",
        ],
        [
            "decode_attention_hd128_cluster2",
            "decode_attention_hd128_cluster4",
            "decode_attention_hd128_cluster8",
        ],
    ];

    /// The entries combining in one block or through memory, by head size.
    pub const SINGLE_ENTRIES: [&'static str; 2] = ["decode_attention", "decode_attention_hd128"];

    /// Four blocks per SM (128 registers a thread): unbounded, the kernels take 132-134
    /// registers and three fit, and a batch of 8 or 32 at context 1024 (1600 or 6400
    /// blocks) takes a third more waves.
    pub(crate) const fn bounds(entry: &'static str) -> LaunchBounds {
        LaunchBounds {
            entry,
            threads: Self::WARPS_PER_BLOCK * WARP,
            min_blocks_per_sm: 4,
        }
    }

    pub(crate) const fn cluster_dims(head: usize, i: usize) -> ClusterDims {
        ClusterDims {
            entry: Self::CLUSTER_ENTRIES[head][i],
            blocks: Self::MAX_CLUSTER_BLOCKS >> (2 - i),
        }
    }

    /// Index of the head size in [`Self::HEAD_DIMS`] (the first for an unknown one,
    /// which `check` refuses).
    fn head_index(&self) -> usize {
        (self.head_dim == Self::HEAD_DIMS[1]) as usize
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
        Self::SINGLE_ENTRIES[0],
        Self::CLUSTER_ENTRIES[0][0],
        Self::CLUSTER_ENTRIES[0][1],
        Self::CLUSTER_ENTRIES[0][2],
        Self::SINGLE_ENTRIES[1],
        Self::CLUSTER_ENTRIES[1][0],
        Self::CLUSTER_ENTRIES[1][1],
        Self::CLUSTER_ENTRIES[1][2],
    ];

    fn entry(&self) -> &'static str {
        let head = self.head_index();
        match Self::cluster_blocks(self.context_bucket) {
            Some(blocks) => Self::CLUSTER_ENTRIES[head][blocks.trailing_zeros() as usize - 1],
            None => Self::SINGLE_ENTRIES[head],
        }
    }

    fn check(&self) -> Result<(), &'static str> {
        check_batch(self.batch)?;
        if self.n_head == 0 || self.context_bucket == 0 || self.context_bucket > self.capacity {
            return Err("attention needs heads and 0 < context_bucket <= capacity");
        }
        if !Self::HEAD_DIMS.contains(&self.head_dim) {
            return Err("attention heads are 64 or 128 wide");
        }
        if self.n_kv_head == 0 || !self.n_head.is_multiple_of(self.n_kv_head) {
            return Err("query heads must be a multiple of the KV heads");
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::{ALL_ENTRIES, cluster_dims};

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
            n_kv_head: 12,
            head_dim: 64,
            batch: 1,
            capacity: 1024,
            context_bucket: 128,
            scale: 0.125,
        }
    }

    #[test]
    fn attention_combines_in_a_block_then_a_cluster_then_through_memory() {
        let at = |bucket| AttentionParams {
            context_bucket: bucket,
            capacity: 4096,
            ..unlaunched_attention()
        };
        let cases = [
            (1, "decode_attention", 1),
            (128, "decode_attention", 1),
            (129, "decode_attention_cluster2", 2),
            (256, "decode_attention_cluster2", 2),
            (257, "decode_attention_cluster4", 4),
            (384, "decode_attention_cluster4", 4),
            (512, "decode_attention_cluster4", 4),
            (513, "decode_attention_cluster8", 8),
            (1024, "decode_attention_cluster8", 8),
            (1025, "decode_attention", 9),
            (4096, "decode_attention", 32),
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
}
