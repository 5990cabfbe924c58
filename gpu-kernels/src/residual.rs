//! Residual add: `out = a + b` over fp16 vectors, 16-byte accesses with a scalar tail.
//!
//! Bytes: 3 * 2 * len (two reads, one write). FLOPs: len. Purely bandwidth bound.

use crate::abi::ResidualAddParams;
use crate::device::{Half8, global_thread_index, grid_thread_count, is_vector_aligned};

#[inline(always)]
fn add(a: f16, b: f16) -> f16 {
    (a as f32 + b as f32) as f16
}

/// See [`ResidualAddParams`].
///
/// # Safety
/// `a`, `b` and `out` point to `len` fp16 values in device memory.
#[unsafe(no_mangle)]
pub unsafe extern "ptx-kernel" fn residual_add_f16(p: ResidualAddParams) {
    crate::device::start_after_previous_kernels();
    let len = p.len as usize;
    let first = global_thread_index();
    let stride = grid_thread_count();

    // cudaMalloc'd buffers are aligned, but views into them need not be: fall back to
    // scalar accesses rather than fault.
    let aligned = is_vector_aligned(p.a) && is_vector_aligned(p.b) && is_vector_aligned(p.out);
    let vectors = if aligned { len / 8 } else { 0 };

    let mut v = first;
    while v < vectors {
        // SAFETY: v < len / 8 and the three pointers are 16-byte aligned, so each access
        // is an aligned Half8 inside its buffer.
        unsafe {
            let a = *(p.a as *const Half8).add(v);
            let b = *(p.b as *const Half8).add(v);
            let mut sum = Half8([0.0; 8]);
            for k in 0..8 {
                sum.0[k] = add(a.0[k], b.0[k]);
            }
            *(p.out as *mut Half8).add(v) = sum;
        }
        v += stride;
    }

    let mut i = vectors * 8 + first;
    while i < len {
        // SAFETY: i < len.
        unsafe { *p.out.add(i) = add(*p.a.add(i), *p.b.add(i)) };
        i += stride;
    }
}
