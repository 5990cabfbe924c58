//! The LM head's parameters (fused with the greedy argmax) and the argmax's finalize,
//! which also feeds a chained step's inputs.

use super::Kernel;
use super::half::Half;
use super::launch::{LaunchDims, WARP, check_batch, check_vector_width};
use super::tiles::{batch_tile_index, tensor_core_dims, uses_tensor_cores};

/// `logits[b] = x[b] wte^T` over the tied embedding, fused with argmax: each warp folds
/// its rows' best (logit, index) into `best[b]` with 64-bit atomic maxima of
/// [`pack_argmax`]; [`ArgmaxFinalizeParams`] turns that into token ids. Optionally also
/// writes the logits. Batch tiles from [`TENSOR_CORE_MIN_TILE`](super::TENSOR_CORE_MIN_TILE) on run on the tensor
/// cores, one block of [`MMA_WARPS_PER_BLOCK`](super::MMA_WARPS_PER_BLOCK) warps per 16 rows at a time.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct LmHeadParams {
    /// (batch, d_model) final hidden state (after ln_f).
    pub x: *const Half,
    /// (vocab, d_model) token embeddings.
    pub wte: *const Half,
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
        "lm_head_argmax_b1",
        "lm_head_argmax_b8",
        "lm_head_argmax_b16",
        "lm_head_argmax_b32",
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
