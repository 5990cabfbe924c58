//! Device-side building blocks: thread indexing, warp shuffles and reductions, vector
//! types and fast math. Everything a kernel needs beyond `core`.

use core::arch::{asm, nvptx};

/// Threads in a warp.
pub const WARP: usize = 32;

/// Eight fp16 values loaded or stored as one 16-byte access (`ld.v4.b32`).
#[repr(C, align(16))]
#[derive(Clone, Copy)]
pub struct Half8(pub [f16; 8]);

impl Half8 {
    /// The eight values widened to f32.
    #[inline(always)]
    pub fn to_f32(self) -> [f32; 8] {
        let mut out = [0.0; 8];
        for k in 0..8 {
            out[k] = self.0[k] as f32;
        }
        out
    }

    /// Eight f32 values rounded to fp16 (round to nearest even).
    #[inline(always)]
    pub fn from_f32(v: [f32; 8]) -> Self {
        let mut out = Half8([0.0; 8]);
        for k in 0..8 {
            out.0[k] = v[k] as f16;
        }
        out
    }
}

/// Reads the `i`-th [`Half8`] at `base` (in units of 8 halves).
///
/// # Safety
/// `base` is 16-byte aligned and `base + 8 * (i + 1)` halves are readable.
#[inline(always)]
pub unsafe fn load8(base: *const f16, i: usize) -> Half8 {
    unsafe { *(base as *const Half8).add(i) }
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
/// Used by the batch-1 GEMVs' bulk copies and the LM head's ring (gpt2 to gpt2-xl batch 1
/// 3-6 % faster); the tensor-core GEMVs and LM head (batch 8, 32) were slower with it, the
/// batch-2/4 GEMVs mixed (gpt2-medium -3 %, gpt2-xl +4 %): PERF.md, version 17.
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
pub unsafe fn load8_stream(base: *const f16, i: usize) -> Half8 {
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
pub unsafe fn load8_weight(base: *const f16, i: usize) -> Half8 {
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

/// Writes the `i`-th [`Half8`] at `base`.
///
/// # Safety
/// `base` is 16-byte aligned and `base + 8 * (i + 1)` halves are writable.
#[inline(always)]
pub unsafe fn store8(base: *mut f16, i: usize, v: Half8) {
    unsafe { *(base as *mut Half8).add(i) = v }
}

/// This thread's index in its block (1-D blocks).
#[inline(always)]
pub fn thread_index() -> usize {
    // SAFETY: reading special registers has no preconditions.
    unsafe { nvptx::_thread_idx_x() as usize }
}

/// Block index along x, y, z.
#[inline(always)]
pub fn block_index() -> (usize, usize, usize) {
    // SAFETY: reading special registers has no preconditions.
    unsafe {
        (
            nvptx::_block_idx_x() as usize,
            nvptx::_block_idx_y() as usize,
            nvptx::_block_idx_z() as usize,
        )
    }
}

/// Threads per block (1-D blocks).
#[inline(always)]
pub fn block_size() -> usize {
    // SAFETY: reading special registers has no preconditions.
    unsafe { nvptx::_block_dim_x() as usize }
}

/// Index of this thread across the whole 1-D grid.
#[inline(always)]
pub fn global_thread_index() -> usize {
    block_index().0 * block_size() + thread_index()
}

/// Blocks in the grid along x: the stride of a block-level grid-stride loop.
#[inline(always)]
pub fn grid_blocks() -> usize {
    // SAFETY: reading special registers has no preconditions.
    unsafe { nvptx::_grid_dim_x() as usize }
}

/// Threads in the whole 1-D grid: the stride of a grid-stride loop.
#[inline(always)]
pub fn grid_thread_count() -> usize {
    // SAFETY: reading special registers has no preconditions.
    unsafe { nvptx::_grid_dim_x() as usize * block_size() }
}

/// This thread's lane in its warp.
#[inline(always)]
pub fn lane() -> usize {
    thread_index() % WARP
}

/// This warp's index in its block.
#[inline(always)]
pub fn warp_in_block() -> usize {
    thread_index() / WARP
}

/// `v` from lane `lane ^ mask` (all 32 lanes take part).
#[inline(always)]
pub fn shuffle_xor(v: f32, mask: u32) -> f32 {
    let out: f32;
    // SAFETY: every lane of the warp executes this (callers keep warps converged), as
    // the full member mask promises.
    unsafe {
        asm!(
            "shfl.sync.bfly.b32 {out}, {v}, {mask}, 0x1f, 0xffffffff;",
            out = out(reg32) out,
            v = in(reg32) v,
            mask = in(reg32) mask,
        );
    }
    out
}

/// `v` from lane `src` (all 32 lanes take part).
#[inline(always)]
pub fn shuffle(v: f32, src: u32) -> f32 {
    let out: f32;
    // SAFETY: as for `shuffle_xor`.
    unsafe {
        asm!(
            "shfl.sync.idx.b32 {out}, {v}, {src}, 0x1f, 0xffffffff;",
            out = out(reg32) out,
            v = in(reg32) v,
            src = in(reg32) src,
        );
    }
    out
}

/// Sum over the warp, returned to every lane.
#[inline(always)]
pub fn warp_sum(mut v: f32) -> f32 {
    let mut mask = WARP as u32 / 2;
    while mask > 0 {
        v += shuffle_xor(v, mask);
        mask /= 2;
    }
    v
}

/// Maximum over the warp, returned to every lane.
#[inline(always)]
pub fn warp_max(mut v: f32) -> f32 {
    let mut mask = WARP as u32 / 2;
    while mask > 0 {
        v = v.max(shuffle_xor(v, mask));
        mask /= 2;
    }
    v
}

/// Maximum of a u64 over the lanes `lane ^ m` for the masks in `masks` (a butterfly over
/// those lane bits), returned to each of them; all 32 lanes take part.
#[inline(always)]
pub fn lanes_max_u64(mut v: u64, masks: &[u32]) -> u64 {
    for &mask in masks {
        // The two halves travel as f32 bit patterns: shuffles move bits, never values.
        let lo = shuffle_xor(f32::from_bits(v as u32), mask).to_bits();
        let hi = shuffle_xor(f32::from_bits((v >> 32) as u32), mask).to_bits();
        v = v.max((u64::from(hi) << 32) | u64::from(lo));
    }
    v
}

/// Waits until every thread of the block reaches this point; memory written before it
/// by any of them (shared or global) is visible to all after it (`bar.sync 0`).
#[inline(always)]
pub fn sync_threads() {
    // SAFETY: every thread of the block executes this the same number of times (callers
    // keep the barrier out of divergent code).
    unsafe { nvptx::_syncthreads() }
}

/// Orders the warp: every lane's earlier shared-memory accesses happen before any lane's
/// later ones (`bar.warp.sync`).
#[inline(always)]
pub fn sync_warp() {
    // SAFETY: all 32 lanes execute it (callers keep the warp converged).
    unsafe {
        asm!(
            "bar.warp.sync 0xffffffff;",
            options(nostack, preserves_flags)
        )
    };
}

/// `d += a b` on the tensor cores: one `mma.sync.m16n8k16` with fp16 inputs and f32
/// accumulation. Fragments as the PTX ISA lays them out, with g = lane / 4 and
/// t = lane % 4: `a` holds A (16 x 16, row-major) halves (g, 2t..2t+2), (g + 8, 2t..),
/// (g, 2t + 8..), (g + 8, 2t + 8..); `b` holds B (16 x 8) halves (2t..2t+2, g) and
/// (2t + 8.., g); `d` holds D (16 x 8) at (g, 2t), (g, 2t + 1), (g + 8, 2t), (g + 8, 2t + 1).
/// All 32 lanes must execute it together.
#[inline(always)]
pub fn mma_m16n8k16(d: &mut [f32; 4], a: [u32; 4], b: [u32; 2]) {
    // SAFETY: register-only; callers keep the warp converged (the `.aligned` promise).
    unsafe {
        asm!(
            "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {{{d0}, {d1}, {d2}, {d3}}}, {{{a0}, {a1}, {a2}, {a3}}}, {{{b0}, {b1}}}, {{{d0}, {d1}, {d2}, {d3}}};",
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

/// Programmatic dependent launch, part one: lets the next kernel on the stream start
/// launching now, while this one runs (`griddepcontrol.launch_dependents`). Safe at any
/// point: the next kernel still waits for this one to finish before touching its data.
#[inline(always)]
pub fn release_dependents() {
    // SAFETY: no operands; a no-op when the next launch is not programmatic.
    unsafe {
        asm!(
            "griddepcontrol.launch_dependents;",
            options(nostack, preserves_flags)
        )
    };
}

/// Programmatic dependent launch, part two: waits until the previous kernel on the
/// stream has finished and its writes are visible (`griddepcontrol.wait`). Every kernel
/// calls it before reading anything an earlier kernel wrote and before writing anything;
/// only reads of data no kernel writes (weights) may come before it. A no-op when this
/// launch was not programmatic.
#[inline(always)]
pub fn wait_for_previous_kernels() {
    // SAFETY: no operands; orders the memory accesses after it (asm without `nomem`).
    unsafe { asm!("griddepcontrol.wait;", options(nostack, preserves_flags)) };
}

/// Both parts at the top of a kernel that has nothing to prefetch.
#[inline(always)]
pub fn start_after_previous_kernels() {
    release_dependents();
    wait_for_previous_kernels();
}

/// Stops the kernel: the launch fails with an illegal-instruction error at the next sync.
/// For inputs the host promised to validate (token ids, lengths) but that would
/// otherwise read out of bounds.
#[inline(always)]
pub fn trap() -> ! {
    // SAFETY: `trap` only aborts the kernel.
    unsafe { nvptx::trap() }
}

/// One `ptx-kernel` entry per batch tile of a kernel family generic over its tile:
/// `batch_tile_entries!(Params, body, [name_b1 = 1, ...])` defines `name_b1(p: Params)`
/// calling `body::<1>(&p)`. The names must match the family's `Kernel::ENTRIES`.
#[macro_export]
macro_rules! batch_tile_entries {
    ($params:ty, $body:ident, [$($name:ident = $tile:literal),* $(,)?]) => {$(
        /// One batch tile of its family; see the parameter struct.
        ///
        /// # Safety
        /// The pointers hold the shapes the parameter struct documents and pass its
        /// `check`.
        #[unsafe(no_mangle)]
        pub unsafe extern "ptx-kernel" fn $name(p: $params) {
            unsafe { $body::<$tile>(&p) }
        }
    )*};
}
