//! The token and position embedding's parameters.

use super::Kernel;
use super::half::Half;
use super::launch::{LaunchDims, check_batch, check_vector_width};

/// `out[b] = wte[tokens[b]] + wpe[positions[b]]`, summed in fp32.
///
/// Token ids and positions are read from device memory (graph inputs); an id or position
/// out of range stops the kernel (the host validates them first).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct EmbeddingParams {
    /// (vocab, d_model) token embeddings.
    pub wte: *const Half,
    /// (n_positions, d_model) position embeddings, or null for none (rotary positions
    /// enter in attention instead).
    pub wpe: *const Half,
    /// (batch) token ids.
    pub tokens: *const u32,
    /// (batch) positions.
    pub positions: *const u32,
    /// (batch, d_model) the residual stream.
    pub out: *mut Half,
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
    const ENTRIES: &'static [&'static str] = &["embedding"];

    fn check(&self) -> Result<(), &'static str> {
        check_batch(self.batch)?;
        check_vector_width(self.d_model)
    }

    fn launch_dims(&self) -> LaunchDims {
        LaunchDims::linear(self.batch, Self::BLOCK)
    }
}
