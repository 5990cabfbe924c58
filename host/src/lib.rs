//! Host side of the decode engine: loads the Rust-built PTX and drives the GPU.
//!
//! Everything that touches the CUDA driver lives in [`cuda`]; the rest of the crate is
//! safe Rust on top of it.
#![feature(f16)]

pub mod bench;
pub mod cli;
pub mod cuda;
pub mod engine;
pub mod graphs;
pub mod halves;
pub mod logits_dump;
pub mod model;
pub mod nvtx;
pub mod output;
pub mod reference;
pub mod step;
pub mod tokenizer;
