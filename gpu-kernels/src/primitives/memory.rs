//! Loads and stores of 16-byte vectors of fp16 through the cache paths the kernels need
//! (read-only streams of weights, L2-only reads of data other SMs wrote), L2 eviction
//! policies, fences, and block-shared arrays declared in inline asm.

use crate::abi::{Half, HalfFloat};
use core::arch::asm;

/// Eight halves (fp16 or bf16, [`Half`]) loaded or stored as one 16-byte access (`ld.v4.b32`).
#[repr(C, align(16))]
#[derive(Clone, Copy)]
pub struct Half8(pub [Half; 8]);

impl Half8 {
    /// Eight zeros.
    pub const ZERO: Half8 = Half8([Half::ZERO; 8]);

    /// The eight values widened to f32.
    #[inline(always)]
    pub fn to_f32(self) -> [f32; 8] {
        let mut out = [0.0; 8];
        for k in 0..8 {
            out[k] = self.0[k].to_f32();
        }
        out
    }

    /// Eight f32 values rounded to fp16 (round to nearest even).
    #[inline(always)]
    pub fn from_f32(v: [f32; 8]) -> Self {
        let mut out = Half8::ZERO;
        for k in 0..8 {
            out.0[k] = Half::from_f32(v[k]);
        }
        out
    }
}

/// Reads the `i`-th [`Half8`] at `base` (in units of 8 halves).
///
/// # Safety
/// `base` is 16-byte aligned and `base + 8 * (i + 1)` halves are readable.
#[inline(always)]
pub unsafe fn load8(base: *const Half, i: usize) -> Half8 {
    unsafe { *(base as *const Half8).add(i) }
}

/// Writes the `i`-th [`Half8`] at `base`.
///
/// # Safety
/// `base` is 16-byte aligned and `base + 8 * (i + 1)` halves are writable.
#[inline(always)]
pub unsafe fn store8(base: *mut Half, i: usize, v: Half8) {
    unsafe { *(base as *mut Half8).add(i) = v }
}

/// One 16-byte load in inline asm whose template names its four 32-bit results `a`..`d`
/// (and its address operand as given), returned as a [`Half8`]: the loads differ only in
/// the instruction (state space, cache operator) and in whether they may be reordered.
macro_rules! load_v4 {
    ($template:literal, $address:ident = $kind:ident($class:ident) $value:expr, options($($option:ident),*) $(,)?) => {{
        let (a, b, c, d): (u32, u32, u32, u32);
        asm!(
            $template,
            $address = $kind($class) $value,
            a = out(reg32) a,
            b = out(reg32) b,
            c = out(reg32) c,
            d = out(reg32) d,
            options($($option),*),
        );
        core::mem::transmute::<[u32; 4], Half8>([a, b, c, d])
    }};
}

pub(crate) use load_v4;

/// An L2 cache policy for weights, which a step reads once: their lines are the first L2
/// evicts (`createpolicy.fractional.L2::evict_first`), so the stream does not push out
/// what the next kernels read again (activations, the cache rows just written). One
/// instruction, which ptxas keeps next to each copy that uses it.
///
/// Used by the batch-1 GEMVs' bulk copies and the LM head's ring, where it makes the
/// step faster; the tensor-core GEMVs and LM head are faster without it (PERF.md, "GEMV
/// at batch 1").
#[inline(always)]
pub fn evict_first() -> u64 {
    let policy: u64;
    // SAFETY: computes a policy descriptor; no memory access.
    unsafe {
        asm!(
            "createpolicy.fractional.L2::evict_first.b64 {p}, 1.0;",
            p = out(reg64) policy,
            options(pure, nomem, nostack, preserves_flags),
        )
    };
    policy
}

/// Reads the `i`-th [`Half8`] at `base` from global memory that is read once (weights,
/// the KV cache): through the read-only path without allocating in L1, so a stream of
/// weights does not evict the small, reused activations.
///
/// # Safety
/// As [`load8`], and `base` points to global memory no kernel writes during this one.
#[inline(always)]
pub unsafe fn load8_stream(base: *const Half, i: usize) -> Half8 {
    // SAFETY: the caller's promise; cvta.to.global maps the generic address of device
    // memory to its global address (an identity on current GPUs).
    unsafe {
        load_v4!(
            "{{ .reg .u64 g; cvta.to.global.u64 g, {p}; ld.global.nc.L1::no_allocate.v4.b32 {{{a}, {b}, {c}, {d}}}, [g]; }}",
            p = in(reg64) (base as *const Half8).add(i),
            options(pure, readonly, nostack, preserves_flags),
        )
    }
}

/// [`load8_stream`] with the L2 evict-first policy of the weight streams ([`evict_first`]).
///
/// # Safety
/// As [`load8_stream`].
#[inline(always)]
pub unsafe fn load8_weight(base: *const Half, i: usize) -> Half8 {
    let (a, b, c, d): (u32, u32, u32, u32);
    // SAFETY: the caller's promise (see `load8_stream`).
    unsafe {
        asm!(
            "{{ .reg .u64 g; cvta.to.global.u64 g, {p}; ld.global.nc.L1::no_allocate.L2::cache_hint.v4.b32 {{{a}, {b}, {c}, {d}}}, [g], {policy}; }}",
            p = in(reg64) (base as *const Half8).add(i),
            policy = in(reg64) evict_first(),
            a = out(reg32) a,
            b = out(reg32) b,
            c = out(reg32) c,
            d = out(reg32) d,
            options(pure, readonly, nostack, preserves_flags),
        );
        core::mem::transmute::<[u32; 4], Half8>([a, b, c, d])
    }
}

/// Reads two f32 through L2, skipping L1 (`ld.global.cg.v2`): for data other SMs wrote
/// during this kernel, which this SM's L1 may hold stale.
///
/// # Safety
/// `ptr` points to two readable f32 of global memory, 8-byte aligned.
#[inline(always)]
pub unsafe fn load_l2_pair(ptr: *const f32) -> [f32; 2] {
    let (a, b): (f32, f32);
    // SAFETY: the caller's promise.
    unsafe {
        asm!(
            "{{ .reg .u64 g; cvta.to.global.u64 g, {p}; ld.global.cg.v2.f32 {{{a}, {b}}}, [g]; }}",
            p = in(reg64) ptr,
            a = out(reg32) a,
            b = out(reg32) b,
            options(readonly, nostack, preserves_flags),
        );
    }
    [a, b]
}

/// Orders this thread's earlier memory accesses before its later ones for the whole GPU
/// (`fence.acq_rel.gpu`): with an atomic counter, lets the last block of a reduction read
/// what the others wrote.
#[inline(always)]
pub fn fence_gpu() {
    // SAFETY: a fence has no operands and no preconditions.
    unsafe { asm!("fence.acq_rel.gpu;", options(nostack, preserves_flags)) };
}

/// Defines `fn $name() -> *mut f32`: a block-shared array of `$len` f32 named `$symbol`
/// in the PTX, as a generic pointer. An inline-asm `.shared` declaration (Rust has no
/// address-space-3 statics): call the function once per kernel, at its top, and pass the
/// pointer down; every call would declare another array. Unused, the asm (pure) and its
/// array are dropped.
macro_rules! block_shared_array {
    ($(#[$doc:meta])* $vis:vis fn $name:ident = $symbol:literal [$len:expr]) => {
        $(#[$doc])*
        #[inline(always)]
        $vis fn $name() -> *mut f32 {
            let address: u64;
            // SAFETY: declares block-shared memory and takes its generic address; no
            // access.
            unsafe {
                core::arch::asm!(
                    concat!(
                        "{{ .shared .align 16 .b8 ", $symbol, "[{bytes}]; ",
                        "cvta.shared.u64 {a}, ", $symbol, "; }}"
                    ),
                    bytes = const $len * 4,
                    a = out(reg64) address,
                    options(pure, nomem, nostack, preserves_flags),
                );
            }
            address as *mut f32
        }
    };
}

pub(crate) use block_shared_array;

block_shared_array!(
    /// The kernel's block-shared scratch of [`BLOCK_SHARED_F32`] f32 (see
    /// `block_shared_array`).
    pub fn block_shared_f32 = "block_scratch"[BLOCK_SHARED_F32]
);

/// f32 elements of [`block_shared_f32`]'s scratch (16 KiB): the largest tensor-core
/// GEMV's partial sums, 8 warps x 4 batch tiles x 128.
pub const BLOCK_SHARED_F32: usize = 4096;
