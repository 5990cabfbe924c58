//! GPU tests of every kernel family against its CPU twin, one module per family, on fresh
//! random inputs with outputs poisoned before each launch.

mod attention;
mod embedding;
mod fill;
mod gemv;
mod gemv_folded_norm;
mod gemv_rms;
mod layernorm;
mod lm_head;
mod rmsnorm;
mod rope;
mod swiglu;
