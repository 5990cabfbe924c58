//! The SwiGLU activation's parameters.

use super::Kernel;
use super::half::Half;
use super::launch::{HALVES_PER_VECTOR, LaunchDims, check_batch, check_vector_width};

/// `out[b, j] = silu(gate[b, j]) * up[b, j]` where each row of `gate_up` is the gate
/// projection's `intermediate` outputs then the up projection's (one GEMV over the two
/// weights stacked), in fp32, rounded once.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SwigluParams {
    /// (batch, 2 intermediate) gate then up.
    pub gate_up: *const Half,
    /// (batch, intermediate) the MLP's hidden activation.
    pub out: *mut Half,
    /// Width of the hidden activation, a multiple of 8.
    pub intermediate: u32,
    /// Sequences.
    pub batch: u32,
}

impl SwigluParams {
    /// Threads per block, one 16-byte vector of outputs each.
    pub const BLOCK: u32 = 256;
}

impl Kernel for SwigluParams {
    const ENTRIES: &'static [&'static str] = &["swiglu"];

    fn check(&self) -> Result<(), &'static str> {
        check_batch(self.batch)?;
        check_vector_width(self.intermediate)
    }

    fn launch_dims(&self) -> LaunchDims {
        let vectors = self.intermediate / HALVES_PER_VECTOR;
        LaunchDims {
            grid: [vectors.div_ceil(Self::BLOCK), self.batch, 1],
            ..LaunchDims::linear(1, Self::BLOCK)
        }
    }
}
