//! Arithmetic the kernels share: the fast exponential, GPT-2's GELU, SiLU, and the
//! tensor-core product.

use core::arch::asm;

/// 2^x (`ex2.approx`, relative error about 2^-22; 2^-inf = 0).
#[inline(always)]
pub fn exp2(x: f32) -> f32 {
    let out: f32;
    // SAFETY: a pure arithmetic instruction.
    unsafe { asm!("ex2.approx.f32 {o}, {i};", o = out(reg32) out, i = in(reg32) x) };
    out
}

/// log2(e), to turn e^x into 2^(x log2 e).
pub const LOG2_E: f32 = core::f32::consts::LOG2_E;

/// GPT-2's GELU, tanh form: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
#[inline(always)]
pub fn gelu_tanh(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    let u = SQRT_2_OVER_PI * (x + 0.044715 * x * x * x);
    // tanh(u) = 1 - 2 / (e^{2u} + 1): exact at both tails (e^{2u} -> inf or 0).
    let tanh = 1.0 - 2.0 / (exp2(2.0 * LOG2_E * u) + 1.0);
    0.5 * x * (1.0 + tanh)
}

/// The mma's input type: the module's half type.
#[cfg(not(feature = "bf16"))]
macro_rules! mma_type {
    () => {
        "f16"
    };
}
#[cfg(feature = "bf16")]
macro_rules! mma_type {
    () => {
        "bf16"
    };
}

/// SiLU, `x / (1 + e^-x)` (the gate of SwiGLU); 0 at the negative tail, x at the
/// positive one.
#[inline(always)]
pub fn silu(x: f32) -> f32 {
    x / (1.0 + exp2(-LOG2_E * x))
}

/// `d += a b` on the tensor cores: one `mma.sync.m16n8k16` with inputs of the module's
/// half type (fp16 or bf16, the same fragment layout) and f32 accumulation. Fragments as the PTX ISA lays them out, with g = lane / 4 and
/// t = lane % 4: `a` holds A (16 x 16, row-major) halves (g, 2t..2t+2), (g + 8, 2t..),
/// (g, 2t + 8..), (g + 8, 2t + 8..); `b` holds B (16 x 8) halves (2t..2t+2, g) and
/// (2t + 8.., g); `d` holds D (16 x 8) at (g, 2t), (g, 2t + 1), (g + 8, 2t), (g + 8, 2t + 1).
/// All 32 lanes must execute it together.
#[inline(always)]
pub fn mma_m16n8k16(d: &mut [f32; 4], a: [u32; 4], b: [u32; 2]) {
    // SAFETY: register-only; callers keep the warp converged (the `.aligned` promise).
    unsafe {
        asm!(
            concat!("mma.sync.aligned.m16n8k16.row.col.f32.", mma_type!(), ".", mma_type!(), ".f32 {{{d0}, {d1}, {d2}, {d3}}}, {{{a0}, {a1}, {a2}, {a3}}}, {{{b0}, {b1}}}, {{{d0}, {d1}, {d2}, {d3}}};"),
            d0 = inout(reg32) d[0],
            d1 = inout(reg32) d[1],
            d2 = inout(reg32) d[2],
            d3 = inout(reg32) d[3],
            a0 = in(reg32) a[0],
            a1 = in(reg32) a[1],
            a2 = in(reg32) a[2],
            a3 = in(reg32) a[3],
            b0 = in(reg32) b[0],
            b1 = in(reg32) b[1],
            options(pure, nomem, nostack, preserves_flags),
        );
    }
}
