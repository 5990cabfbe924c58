//! The kernels, one file per family: each exports its `ptx-kernel` entries, whose names and
//! parameters are its `abi` struct's.

mod attention;
mod embedding;
mod epilogue;
mod fill;
mod gemv;
mod gemv_folded_norm;
mod gemv_tensor_core;
mod layernorm;
mod lm_head;
mod rmsnorm;
mod rope;
mod swiglu;

/// One `ptx-kernel` entry per batch tile of a kernel family generic over its tile:
/// `batch_tile_entries!(Params, body, [name_b1 = 1, ...])` defines `name_b1(p: Params)`
/// calling `body::<1>(&p)`. The names must match the family's `Kernel::ENTRIES`.
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
pub(crate) use batch_tile_entries;
