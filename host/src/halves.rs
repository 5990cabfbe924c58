//! Conversions between f32 and the 16-bit floats the kernels store ([`HalfBits`], fp16 or
//! bf16 by [`HalfType`]): rounding to nearest even, as the kernels' stores round.

pub use crate::cuda::HalfBits;
pub use gpu_kernels::abi::HalfType;

impl HalfBits {
    /// NaN in both types (all bits set): what poisoned buffers hold.
    pub const NAN: HalfBits = HalfBits(0xFFFF);

    /// The value, widened exactly.
    pub fn to_f32(self, half: HalfType) -> f32 {
        match half {
            HalfType::F16 => half::f16::from_bits(self.0).to_f32(),
            HalfType::Bf16 => half::bf16::from_bits(self.0).to_f32(),
        }
    }

    /// `value` rounded to nearest, ties to even (infinite past the type's range).
    pub fn from_f32(value: f32, half: HalfType) -> HalfBits {
        HalfBits(match half {
            HalfType::F16 => half::f16::from_f32(value).to_bits(),
            HalfType::Bf16 => half::bf16::from_f32(value).to_bits(),
        })
    }
}

/// `values` widened to f32.
pub fn to_f32(values: &[HalfBits], half: HalfType) -> Vec<f32> {
    values.iter().map(|v| v.to_f32(half)).collect()
}

/// `values` rounded to `half`.
pub fn from_f32(values: &[f32], half: HalfType) -> Vec<HalfBits> {
    values
        .iter()
        .map(|&v| HalfBits::from_f32(v, half))
        .collect()
}

/// `values` rounded to `half` and widened back: what a kernel computing in f32 sees of
/// values it reads from memory.
pub fn rounded(values: &[f32], half: HalfType) -> Vec<f32> {
    values
        .iter()
        .map(|&v| HalfBits::from_f32(v, half).to_f32(half))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use gpu_kernels::abi::{Bf16, HalfFloat};

    /// The host's bf16 rounding (the `half` crate) and the kernels' ([`Bf16`]) agree.
    #[test]
    fn host_and_kernel_bf16_round_alike() {
        let mut x = 0x3f80_1234u32;
        for _ in 0..100_000 {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let value = f32::from_bits(x);
            if value.is_nan() {
                continue;
            }
            assert_eq!(
                HalfBits::from_f32(value, HalfType::Bf16).0,
                Bf16::from_f32(value).0,
                "{value:e}"
            );
        }
    }

    #[test]
    fn poison_is_nan_in_both_types() {
        for half in HalfType::ALL {
            assert!(HalfBits::NAN.to_f32(half).is_nan());
        }
    }
}
