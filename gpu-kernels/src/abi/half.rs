//! The 16-bit float the kernels store activations, weights and the KV cache in: fp16 in
//! the default build, bf16 in the build with the `bf16` feature (the host embeds both
//! modules and loads the one of the model's type). Arithmetic is in f32 either way; only
//! loads and stores convert.

/// A bfloat16 value by its bits: the upper half of an f32 (8 exponent bits, 7 mantissa
/// bits). Widening is a shift; narrowing rounds to nearest, ties to even.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bf16(pub u16);

/// The module's half type, as the abi's pointers name it: `f16`, or [`Bf16`] with the
/// `bf16` feature. The host passes buffers of either type through the same structs.
#[cfg(not(feature = "bf16"))]
pub type Half = f16;
/// The module's half type, as the abi's pointers name it: `f16`, or [`Bf16`] with the
/// `bf16` feature. The host passes buffers of either type through the same structs.
#[cfg(feature = "bf16")]
pub type Half = Bf16;

/// The half type of a kernel module: the same sources are built twice, and the host
/// loads the module of the model's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HalfType {
    /// IEEE half precision: GPT-2 checkpoints and fp16 Llama or Qwen ones.
    F16,
    /// bfloat16: Llama 3 and Qwen2.5 checkpoints (their activations leave fp16's range).
    Bf16,
}

impl HalfType {
    /// Every module the host embeds.
    pub const ALL: [HalfType; 2] = [HalfType::F16, HalfType::Bf16];

    /// The module's PTX file name: `kernels.ptx` or `kernels_bf16.ptx`.
    pub const fn ptx_file(self) -> &'static str {
        match self {
            HalfType::F16 => "kernels.ptx",
            HalfType::Bf16 => "kernels_bf16.ptx",
        }
    }

    /// The name safetensors and PyTorch give the type: `F16` / `BF16`, `float16` /
    /// `bfloat16`.
    pub const fn torch_name(self) -> &'static str {
        match self {
            HalfType::F16 => "float16",
            HalfType::Bf16 => "bfloat16",
        }
    }
}

/// Conversions between a 16-bit float and f32.
pub trait HalfFloat: Copy {
    /// Zero.
    const ZERO: Self;
    /// Widens to f32 (exact).
    fn to_f32(self) -> f32;
    /// Rounds to nearest, ties to even.
    fn from_f32(value: f32) -> Self;
    /// The value whose bits these are.
    fn from_bits(bits: u16) -> Self;
}

impl HalfFloat for f16 {
    const ZERO: Self = 0.0;
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self as f32
    }
    #[inline(always)]
    fn from_f32(value: f32) -> Self {
        value as f16
    }
    #[inline(always)]
    fn from_bits(bits: u16) -> Self {
        f16::from_bits(bits)
    }
}

impl HalfFloat for Bf16 {
    const ZERO: Self = Bf16(0);
    #[inline(always)]
    fn to_f32(self) -> f32 {
        f32::from_bits((self.0 as u32) << 16)
    }
    #[inline(always)]
    fn from_f32(value: f32) -> Self {
        let bits = value.to_bits();
        if value.is_nan() {
            // A quiet NaN of the same sign: truncation could clear every mantissa bit.
            return Bf16(((bits >> 16) | 0x40) as u16);
        }
        let round = 0x7fff + ((bits >> 16) & 1);
        Bf16((bits.wrapping_add(round) >> 16) as u16)
    }
    #[inline(always)]
    fn from_bits(bits: u16) -> Self {
        Bf16(bits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bf16_rounds_to_nearest_even_and_keeps_specials() {
        let cases: [(f32, u16); 7] = [
            (1.0, 0x3f80),
            (-2.5, 0xc020),
            // 1 + 2^-8 is a tie between 1 and 1 + 2^-7: to the even mantissa, 1.
            (1.0 + 1.0 / 256.0, 0x3f80),
            // 1 + 3 * 2^-8 is a tie between 1 + 2^-7 and 1 + 2^-6: to the even one.
            (1.0 + 3.0 / 256.0, 0x3f82),
            (f32::INFINITY, 0x7f80),
            (f32::MAX, 0x7f80),
            (1e-40, 0x0001),
        ];
        for (value, bits) in cases {
            assert_eq!(Bf16::from_f32(value).0, bits, "{value}");
        }
        assert!(Bf16::from_f32(f32::NAN).to_f32().is_nan());
        assert_eq!(Bf16(0x4049).to_f32(), 3.140625);
    }
}
