//! The parameters of the GEMV with the layernorm before it folded into its weights.

use super::Kernel;
use super::gemv::GemvParams;
use super::launch::{HALVES_PER_VECTOR, LaunchDims, WARP};
use super::tiles::{
    BATCH_TILES, FOLDED_MMA_ENTRIES, TENSOR_CORE_MIN_TILE, batch_tile_index, mma_cluster_blocks,
    mma_entry, uses_tensor_cores,
};

/// A GEMV whose input is the layernorm of `gemv.x`: `y[b] = LN(x[b]) W^T + bias`, then
/// the epilogue, without a layernorm kernel or a normalized copy of x.
///
/// The layernorm's scale and shift are folded into the weights when they are loaded
/// (`host::model::fold`): `gemv.w` holds `W diag(gamma)` and `gemv.bias` holds
/// `bias + W beta`, and `row_sums[j]` is the sum of row j of `gemv.w`. Then
/// `LN(x) W^T + bias = inv_std * (x W'^T - mean * row_sums) + bias'`, so each warp takes
/// the row's mean and variance from the same loads of x as its dot product, in one pass,
/// in fp32. An RMSNorm (Llama, Qwen) folds the same way with no shift and no mean: null
/// `row_sums`.
///
/// Batches 1 to 8 ([`Self::supports_batch`]): at batch 1 every warp takes the moments of
/// x with its row; from batch 2 the tensor-core GEMV takes them from the x fragments it
/// loads. From batch 9 a layernorm with unit scale and zero shift runs before a plain
/// [`GemvParams`] over the same folded weights: there the moments cost more than that
/// kernel ([`Self::supports_batch`]).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct FoldedNormGemvParams {
    /// The GEMV over the folded weights; `x` is the un-normalized input.
    pub gemv: GemvParams,
    /// (out_features) sum of each row of the folded weights, fp32; null for an RMSNorm
    /// (no mean: `y = W' x / sqrt(mean(x^2) + eps) + bias`, `W' = W diag(gamma)`).
    pub row_sums: *const f32,
    /// The layernorm's epsilon.
    pub eps: f32,
}

impl Kernel for FoldedNormGemvParams {
    const ENTRIES: &'static [&'static str] = &[
        "gemv_folded_norm_b1",
        "gemv_folded_norm_b8",
        "gemv_folded_norm_b8_cluster4",
        "gemv_folded_norm_regs_b1",
        "gemv_folded_norm_sized_b1",
        "gemv_folded_norm_b8_four_per_sm",
        "gemv_folded_norm_b8_cluster4_four_per_sm",
        "gemv_folded_norm_wide_b1",
    ];

    /// The plain GEMV's entry for these shapes, folded; at batch 1 rows of up to
    /// [`Self::REGISTER_ROW_HALVES`] in registers.
    fn entry(&self) -> &'static str {
        let g = &self.gemv;
        if !uses_tensor_cores(g.batch) {
            if g.in_features <= Self::REGISTER_ROW_HALVES {
                return Self::ENTRIES[3];
            }
            if g.in_features > GemvParams::STAGED_ROW_HALVES {
                return Self::ENTRIES[7];
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
    /// of staged in shared memory by bulk copies (`gemv_folded_norm_regs_b1`): for
    /// short rows the registers cost less than the staging, for wider ones they cost
    /// occupancy (PERF.md, "GEMV at batch 1").
    pub const REGISTER_ROW_HALVES: u32 = 3 * WARP * HALVES_PER_VECTOR;

    /// Whether a batch runs on this kernel (else: a layernorm, then a plain GEMV): batch
    /// 1 on CUDA cores and the tensor-core tile of 8. The tensor-core GEMV sums x and x^2
    /// from the x fragments it loads, 24 more instructions per 16-byte load next to two
    /// mmas: free at the tile of 8, where the step saves two layernorm kernels a block,
    /// a cost at 16 and 32, where the kernel is issue-bound (PERF.md, "Tensor-core
    /// GEMV").
    pub fn supports_batch(batch: u32) -> bool {
        (1..=TENSOR_CORE_MIN_TILE).contains(&batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::gemv::tests::unlaunched_gemv;

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
        assert_eq!(folded.entry(), "gemv_folded_norm_b1");
        let gpt2_rows = FoldedNormGemvParams {
            gemv: GemvParams {
                in_features: 768,
                out_features: 2304,
                ..folded.gemv
            },
            ..folded
        };
        assert_eq!(gpt2_rows.entry(), "gemv_folded_norm_regs_b1");
        let at = |batch: u32, out_features: u32| FoldedNormGemvParams {
            gemv: GemvParams {
                batch,
                out_features,
                ..folded.gemv
            },
            ..folded
        };
        assert_eq!(at(2, 4800).check(), Ok(()));
        assert_eq!(at(2, 4800).entry(), "gemv_folded_norm_b8");
        let narrow_long = FoldedNormGemvParams {
            gemv: GemvParams {
                batch: 8,
                in_features: 5120,
                out_features: 1280,
                ..folded.gemv
            },
            ..folded
        };
        assert_eq!(narrow_long.entry(), "gemv_folded_norm_b8_cluster4");
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
        assert_eq!(wide.check(), Ok(()));
        assert_eq!(
            wide.entry(),
            "gemv_folded_norm_wide_b1",
            "two pieces in flight"
        );
        let rms = FoldedNormGemvParams {
            row_sums: core::ptr::null(),
            ..folded
        };
        assert_eq!(rms.check(), Ok(()), "an RMSNorm folds without row sums");
        assert_eq!(
            folded.launch_dims().grid,
            folded.gemv.launch_dims().grid,
            "one warp per row, as the plain GEMV"
        );
    }
}
