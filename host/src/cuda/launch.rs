//! Kernel launches through cuLaunchKernelEx, which cust 0.3 does not wrap, for
//! programmatic dependent launch: the next kernel on the stream may start launching
//! while the current one runs, and waits for it in-kernel (`griddepcontrol.wait`), which
//! hides most of the gap between back-to-back kernels (also inside captured graphs).

use super::driver;
use super::error::{CudaError, check};
use cust::sys::{CUfunction, CUstream};
use gpu_kernels::abi::LaunchDims;
use std::ffi::c_void;

/// `CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION` (cuda.h, CUDA 12).
const PROGRAMMATIC_STREAM_SERIALIZATION: u32 = 6;

/// `CUlaunchAttribute`: an id, padding to 8 bytes, a 64-byte value union.
#[repr(C)]
struct LaunchAttribute {
    id: u32,
    pad: [u8; 4],
    value: [u64; 8],
}

/// `CUlaunchConfig`.
#[repr(C)]
struct LaunchConfig {
    grid: [u32; 3],
    block: [u32; 3],
    shared_bytes: u32,
    stream: CUstream,
    attributes: *mut LaunchAttribute,
    attribute_count: u32,
}

/// Launches `function` on `stream` with one parameter struct, programmatically
/// dependent on the previous launch when `programmatic` is set.
///
/// # Safety
/// `params` points to the one parameter value `function` takes, of the layout it expects,
/// alive for the call; `function` and `stream` belong to the current context.
pub(crate) unsafe fn launch(
    function: CUfunction,
    stream: CUstream,
    dims: &LaunchDims,
    params: *mut c_void,
    programmatic: bool,
) -> Result<(), CudaError> {
    let mut attribute = LaunchAttribute {
        id: PROGRAMMATIC_STREAM_SERIALIZATION,
        pad: [0; 4],
        // `int programmaticStreamSerializationAllowed = 1` in the union's first bytes.
        value: [1, 0, 0, 0, 0, 0, 0, 0],
    };
    let config = LaunchConfig {
        grid: dims.grid,
        block: dims.block,
        shared_bytes: dims.shared_bytes,
        stream,
        attributes: &mut attribute,
        attribute_count: u32::from(programmatic),
    };
    let mut args = [params];
    // SAFETY: the caller's promise; `config`, `attribute` and `args` outlive the call,
    // which copies them.
    // cuLaunchKernelEx is driver API since CUDA 12.0.
    let config: *const LaunchConfig = &config;
    let result = unsafe {
        driver::cuLaunchKernelEx(
            config.cast(),
            function,
            args.as_mut_ptr(),
            std::ptr::null_mut(),
        )
    };
    check(result, "cuLaunchKernelEx")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layouts cuda.h gives these structs on x86-64.
    #[test]
    fn structs_match_cuda_h() {
        assert_eq!(std::mem::size_of::<LaunchAttribute>(), 72);
        assert_eq!(std::mem::align_of::<LaunchAttribute>(), 8);
        assert_eq!(std::mem::offset_of!(LaunchConfig, stream), 32);
        assert_eq!(std::mem::offset_of!(LaunchConfig, attributes), 40);
        assert_eq!(std::mem::offset_of!(LaunchConfig, attribute_count), 48);
        assert_eq!(std::mem::size_of::<LaunchConfig>(), 56);
    }
}
