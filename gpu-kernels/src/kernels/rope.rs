//! Rotary position embedding of q and k, K and V into the cache ([`RopeKvParams`]).
//!
//! Bytes: batch * (n_head + 2 n_kv_head) * head_dim * 2 * 2 (the projection in, q and the
//! cache rows out) + batch * head_dim / 2 * 8 (the table rows). One thread per rotation
//! pair of a head: its two elements, its (cos, sin), two stores.

use crate::abi::{Half, HalfFloat, RopeKvParams};
use crate::primitives::{block_index, start_after_previous_kernels, thread_index, trap};

/// See [`RopeKvParams`]. Grid: (pairs / 256, batch).
///
/// # Safety
/// The pointers hold the shapes [`RopeKvParams`] documents and pass its `check`.
#[unsafe(no_mangle)]
pub unsafe extern "ptx-kernel" fn rope_kv(p: RopeKvParams) {
    start_after_previous_kernels();
    let (block, b, _) = block_index();
    let pair = block * RopeKvParams::BLOCK as usize + thread_index();
    if pair >= p.pairs() as usize || b >= p.batch as usize {
        return;
    }
    let half_dim = p.head_dim as usize / 2;
    let (head, i) = (pair / half_dim, pair % half_dim);
    let (n_head, n_kv_head) = (p.n_head as usize, p.n_kv_head as usize);
    let width = (n_head + 2 * n_kv_head) * 2 * half_dim;
    // SAFETY: b < batch; head < n_head + 2 n_kv_head and i < head_dim / 2 index the
    // sequence's projection row; the position is checked against the capacity before it
    // indexes the table or the cache.
    unsafe {
        let position = *p.positions.add(b) as usize;
        if position >= p.capacity as usize {
            trap();
        }
        let row = p.qkv.add(b * width + head * 2 * half_dim);
        let (y0, y1) = ((*row.add(i)).to_f32(), (*row.add(i + half_dim)).to_f32());
        let (x0, x1) = if head < n_head + n_kv_head {
            let [cos, sin] = *(p.rope.add((position * half_dim + i) * 2) as *const [f32; 2]);
            (y0 * cos - y1 * sin, y1 * cos + y0 * sin)
        } else {
            (y0, y1)
        };
        let out = if head < n_head {
            p.q.add((b * n_head + head) * 2 * half_dim)
        } else {
            let (cache, kv_head) = if head < n_head + n_kv_head {
                (p.k, head - n_head)
            } else {
                (p.v, head - n_head - n_kv_head)
            };
            let sequence_head = b * n_kv_head + kv_head;
            cache.add((sequence_head * p.capacity as usize + position) * 2 * half_dim)
        };
        *out.add(i) = Half::from_f32(x0);
        *out.add(i + half_dim) = Half::from_f32(x1);
    }
}
