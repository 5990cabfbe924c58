//! The CPU twin of every kernel family, in f32 data with f64 accumulation: what each GPU
//! kernel is tested against. Argument order and shapes follow the kernels' abi structs;
//! one file per family, named as the kernel's. [`model`] builds the whole GPT-2 forward
//! pass from these twins.

mod attention;
mod embedding;
mod fill;
mod gemv;
mod gemv_folded_norm;
mod layernorm;
mod llama;
mod lm_head;
pub mod model;
mod rmsnorm;
mod rope;
mod swiglu;

pub use attention::{KvShape, attention};
pub use embedding::embedding;
pub use fill::fill_uniform;
pub use gemv::{gelu_tanh, linear};
pub use gemv_folded_norm::gemv_folded_norm;
pub use layernorm::layernorm;
pub use llama::LlamaReference;
pub use lm_head::{argmax, lm_head, top2_gap};
pub use rmsnorm::rmsnorm;
pub use rope::{QkvHeads, rope_row};
pub use swiglu::swiglu;

/// Accumulates in f64: the reference must be more precise than what it checks.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x) * f64::from(y))
        .sum()
}

/// ||out - reference|| / ||reference|| in f64; infinite if `out` holds a NaN (an element
/// nothing wrote) or the lengths differ.
pub fn relative_l2(out: &[f32], reference: &[f32]) -> f64 {
    if out.len() != reference.len() || out.iter().any(|x| x.is_nan()) {
        return f64::INFINITY;
    }
    let (mut diff, mut norm) = (0.0f64, 0.0f64);
    for (&o, &r) in out.iter().zip(reference) {
        diff += (f64::from(o) - f64::from(r)).powi(2);
        norm += f64::from(r).powi(2);
    }
    (diff / norm.max(f64::MIN_POSITIVE)).sqrt()
}
