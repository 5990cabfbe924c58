//! Kernel parameter structs and launch geometry, compiled for both host and device.
//!
//! Every kernel takes exactly one of these `#[repr(C)]` structs by value; its
//! [`Kernel`] impl names the PTX entry and derives the launch dimensions, so the host
//! never repeats a number the kernel depends on.

/// Grid, block and dynamic shared memory of one launch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LaunchDims {
    /// Blocks in x, y, z.
    pub grid: [u32; 3],
    /// Threads per block in x, y, z.
    pub block: [u32; 3],
    /// Dynamic shared memory per block, bytes.
    pub shared_bytes: u32,
}

/// The parameter struct of one kernel.
pub trait Kernel: Copy {
    /// Name of the PTX entry that takes this struct as its only parameter.
    const NAME: &'static str;
    /// How to launch the kernel for these parameters.
    fn launch_dims(&self) -> LaunchDims;
}

/// Every kernel's PTX entry name, for checking the built module against the abi.
pub const KERNEL_NAMES: &[&str] = &[ResidualAddParams::NAME];

/// fp16 elements per 16-byte vector access.
pub const HALVES_PER_VECTOR: u32 = 8;

/// `out = a + b` elementwise over fp16 vectors (the residual connection).
///
/// Sums in fp32 and rounds once to fp16. `out` may be `a` or `b` (in-place add).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ResidualAddParams {
    /// (len) first addend.
    pub a: *const f16,
    /// (len) second addend.
    pub b: *const f16,
    /// (len) sum.
    pub out: *mut f16,
    /// Elements in each vector; any value, not only multiples of 8.
    pub len: u32,
}

impl ResidualAddParams {
    /// Threads per block.
    pub const BLOCK: u32 = 256;
}

impl Kernel for ResidualAddParams {
    const NAME: &'static str = "residual_add_f16";

    fn launch_dims(&self) -> LaunchDims {
        // One thread per 16-byte vector; the kernel loops grid-stride, so at least one
        // block also covers the scalar tail and unaligned pointers.
        let vectors = self.len.div_ceil(HALVES_PER_VECTOR);
        LaunchDims {
            grid: [vectors.div_ceil(Self::BLOCK).max(1), 1, 1],
            block: [Self::BLOCK, 1, 1],
            shared_bytes: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn residual_add(len: u32) -> ResidualAddParams {
        ResidualAddParams {
            a: core::ptr::null(),
            b: core::ptr::null(),
            out: core::ptr::null_mut(),
            len,
        }
    }

    #[test]
    fn residual_add_grid_covers_every_vector() {
        for len in [0, 1, 7, 8, 9, 2047, 2048, 2049, 1 << 20, u32::MAX] {
            let dims = residual_add(len).launch_dims();
            let threads = u64::from(dims.grid[0]) * u64::from(dims.block[0]);
            assert!(
                threads >= u64::from(len.div_ceil(HALVES_PER_VECTOR)),
                "len {len}"
            );
            assert!(
                dims.grid[0] >= 1,
                "len {len}: an empty grid is an invalid launch"
            );
        }
    }

    #[test]
    fn kernel_names_are_unique() {
        for (i, a) in KERNEL_NAMES.iter().enumerate() {
            assert!(!KERNEL_NAMES[i + 1..].contains(a), "{a} listed twice");
        }
    }
}
