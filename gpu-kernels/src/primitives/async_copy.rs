//! Asynchronous copies from global to block-shared memory (`cp.async`, sm_80 on): a
//! thread can keep many 16-byte weight loads in flight without a register for each, so
//! the bytes in flight per SM stop depending on how many registers a kernel can spare.
//!
//! Each lane owns its slots: it issues copies into them, waits for its own groups and
//! reads back only what it copied, so no block barrier is ever needed.

use crate::abi::Half;
use crate::primitives::{Half8, evict_first, load_v4};
use core::arch::asm;

/// 16-byte slots each lane of a [`weight_ring`] owns: with 4 warps per block, 8 KiB of
/// shared memory per block and 2 KiB in flight per warp. Not 8: the LM head's persistent
/// grid would take 221 KiB of each SM's shared memory, and the kernels after it in a
/// chained graph could not overlap it until the SM's carveout changes back.
pub const RING_SLOTS: usize = 4;

/// Warps per block a [`weight_ring`] has room for.
pub const RING_WARPS: usize = 4;

const RING_BYTES: usize = RING_WARPS * RING_SLOTS * crate::primitives::WARP * 16;

/// The block's ring of weight slots, as a shared-state-space address: slot `s` of lane
/// `l` of warp `w` is 16 bytes at `((w * RING_SLOTS + s) * 32 + l) * 16`. An inline-asm
/// `.shared` declaration, like [`crate::primitives::block_shared_f32`]: call it once per
/// kernel, at its top.
#[inline(always)]
pub fn weight_ring() -> u32 {
    let address: u32;
    // SAFETY: declares block-shared memory and takes its shared-window address.
    unsafe {
        asm!(
            "{{ .shared .align 16 .b8 weight_ring[{bytes}]; mov.u32 {a}, weight_ring; }}",
            bytes = const RING_BYTES,
            a = out(reg32) address,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    address
}

/// The shared address of `slot` of this lane of `warp` in `ring`.
#[inline(always)]
pub fn ring_slot(ring: u32, warp: usize, lane: usize, slot: usize) -> u32 {
    ring + (((warp * RING_SLOTS + slot) * crate::primitives::WARP + lane) * 16) as u32
}

/// Starts copying the `i`-th [`Half8`] at `base` into the shared slot `dst`, through L2
/// only (`cp.async.cg`: weights are read once, L1 keeps the activations) and first to be
/// evicted from it ([`crate::primitives::evict_first`]). It lands after
/// a later [`wait_for_copies`] covers its group.
///
/// # Safety
/// As [`crate::primitives::load8_stream`] for the source; `dst` is a 16-byte slot of a
/// shared array that nothing else uses until the copy has been waited for.
#[inline(always)]
pub unsafe fn copy8_async(dst: u32, base: *const Half, i: usize) {
    // SAFETY: the caller's promise (see `load8_stream` for cvta.to.global).
    unsafe {
        asm!(
            "{{ .reg .u64 g; cvta.to.global.u64 g, {p}; cp.async.cg.shared.global.L2::cache_hint [{d}], [g], 16, {policy}; }}",
            p = in(reg64) (base as *const Half8).add(i),
            d = in(reg32) dst,
            policy = in(reg64) evict_first(),
            options(nostack, preserves_flags),
        );
    }
}

/// Closes this thread's group of copies issued since the last commit (an empty group
/// if none): [`wait_for_copies`] counts groups, so committing once per ring step, copy
/// or not, keeps the count uniform.
#[inline(always)]
pub fn commit_copies() {
    // SAFETY: no operands.
    unsafe { asm!("cp.async.commit_group;", options(nostack, preserves_flags)) };
}

/// Waits until at most `RING_SLOTS - 1` of this thread's committed groups are still in
/// flight: the oldest outstanding one has landed and is visible to this thread.
#[inline(always)]
pub fn wait_for_copies() {
    // SAFETY: no operands; orders later shared reads after the copies (no `nomem`).
    unsafe {
        asm!(
            "cp.async.wait_group {pending};",
            pending = const RING_SLOTS - 1,
            options(nostack, preserves_flags),
        )
    };
}

/// Reads the 16 bytes of the shared slot `src`.
///
/// # Safety
/// `src` is a 16-byte slot whose copy this thread has waited for.
#[inline(always)]
pub unsafe fn read_slot(src: u32) -> Half8 {
    // SAFETY: the caller's promise. Not `pure`: it must stay between the wait before it
    // and the copy that refills the slot after it.
    unsafe {
        load_v4!(
            "ld.shared.v4.b32 {{{a}, {b}, {c}, {d}}}, [{s}];",
            s = in(reg32) src,
            options(readonly, nostack, preserves_flags),
        )
    }
}
