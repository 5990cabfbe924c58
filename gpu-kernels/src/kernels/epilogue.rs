//! What a GEMV does with an output's sum (every batch, CUDA and tensor cores): adds the
//! bias, then applies the epilogue ([`Epilogue`]: GELU, the residual add, or K and V into
//! the cache) and stores.
//!
//! The batch-1 GEMVs request an output's bias before the programmatic wait (a weight) and
//! its residual or cache position right after it, beside x ([`bias`],
//! [`EpilogueInput::load`]): loaded where they are used, after the warp's sums, they
//! would be two more dependent round trips at the end of every kernel.

use crate::abi::{Epilogue, GemvParams, HEAD_DIM};
use crate::abi::{Half, HalfFloat};
use crate::primitives::{gelu_tanh, trap};

/// The bias of output `row`, 0 without one. A weight: no kernel writes it, so it may be
/// loaded before the programmatic wait.
///
/// # Safety
/// row < out_features of a checked [`GemvParams`].
#[inline(always)]
pub unsafe fn bias(p: &GemvParams, row: usize) -> f32 {
    if p.bias.is_null() {
        0.0
    } else {
        // SAFETY: the caller's promise.
        unsafe { (*p.bias.add(row)).to_f32() }
    }
}

/// What the epilogue of output `(b, row)` reads that an earlier kernel wrote: the residual
/// ([`Epilogue::Residual`]) or the sequence's cache position ([`Epilogue::QkvToCache`]);
/// 0 for the others.
#[derive(Clone, Copy)]
pub struct EpilogueInput {
    residual: f32,
    position: usize,
}

impl EpilogueInput {
    /// Nothing loaded (an output not stored).
    pub const NONE: Self = EpilogueInput {
        residual: 0.0,
        position: 0,
    };

    /// Loads the input of output `(b, row)`: after the programmatic wait.
    ///
    /// # Safety
    /// b < batch and row < out_features of a checked [`GemvParams`].
    #[inline(always)]
    pub unsafe fn load(p: &GemvParams, b: usize, row: usize) -> Self {
        let mut input = Self::NONE;
        // SAFETY: the caller's promise.
        unsafe {
            if p.epilogue == Epilogue::Residual as u32 {
                input.residual = (*p.residual.add(b * p.out_features as usize + row)).to_f32();
            } else if p.epilogue == Epilogue::QkvToCache as u32 {
                input.position = *p.cache.positions.add(b) as usize;
            }
        }
        input
    }
}

/// Applies the epilogue to output `(b, row)`, its bias already added to `y` and the
/// epilogue's input loaded, and stores it.
///
/// # Safety
/// b < batch and row < out_features of a checked [`GemvParams`]; `input` loaded for
/// `(b, row)` after the programmatic wait.
#[inline(always)]
pub unsafe fn store_loaded(p: &GemvParams, b: usize, row: usize, y: f32, input: EpilogueInput) {
    let at = b * p.out_features as usize + row;
    // SAFETY: the caller's promise; for QKV the cache indices are checked there.
    unsafe {
        match p.epilogue {
            e if e == Epilogue::Gelu as u32 => *p.out.add(at) = Half::from_f32(gelu_tanh(y)),
            e if e == Epilogue::Residual as u32 => {
                *p.out.add(at) = Half::from_f32(y + input.residual)
            }
            e if e == Epilogue::QkvToCache as u32 => store_qkv(p, b, row, y, input.position),
            _ => *p.out.add(at) = Half::from_f32(y),
        }
    }
}

/// Column `row` of the QKV projection for sequence `b` at cache position `position`: q
/// to `out`, K and V into the cache.
///
/// # Safety
/// As [`store_loaded`] with [`Epilogue::QkvToCache`]; the position is checked here.
#[inline(always)]
unsafe fn store_qkv(p: &GemvParams, b: usize, row: usize, y: f32, position: usize) {
    let d = p.out_features as usize / 3;
    let head_dim = HEAD_DIM as usize;
    let n_head = d / head_dim;
    let capacity = p.cache.capacity as usize;
    // SAFETY: b < batch and row < 3 d; the position is checked against the capacity.
    unsafe {
        if row < d {
            *p.out.add(b * d + row) = Half::from_f32(y);
            return;
        }
        if position >= capacity {
            trap();
        }
        let (cache, column) = if row < 2 * d {
            (p.cache.k, row - d)
        } else {
            (p.cache.v, row - 2 * d)
        };
        let (head, dim) = (column / head_dim, column % head_dim);
        let at = ((b * n_head + head) * capacity + position) * head_dim + dim;
        *cache.add(at) = Half::from_f32(y);
    }
}
