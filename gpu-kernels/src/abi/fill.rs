//! The random fill's parameters and its hash, shared with the CPU.

use super::Kernel;
use super::half::Half;
use super::launch::LaunchDims;

/// `out[i] = uniform(-scale, scale)` from a hash of `seed + i`: the same seed gives the
/// same values on any GPU and on the CPU ([`splitmix64`]).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct FillUniformParams {
    /// (len) output.
    pub out: *mut Half,
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
    const ENTRIES: &'static [&'static str] = &["fill_uniform"];

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
