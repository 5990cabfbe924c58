//! CUDA failures, each naming the call or kernel that failed.

/// A failed CUDA driver call or kernel launch.
#[derive(Debug, thiserror::Error)]
pub enum CudaError {
    /// No NVIDIA driver: its library could not be opened.
    #[error(
        "no CUDA driver: {reason} (a GPU needs the NVIDIA driver, which installs libcuda.so.1)"
    )]
    NoDriver {
        /// Why the library could not be opened, as the dynamic loader says.
        reason: String,
    },
    /// The driver could not be initialized or found no device.
    #[error("no usable CUDA GPU: {call} failed: {reason}")]
    NoGpu {
        /// The driver call that failed.
        call: &'static str,
        /// The driver's description of the error.
        reason: String,
    },
    /// The GPU is older than the architecture the PTX was built for.
    #[error(
        "GPU {ordinal} ({name}) has compute capability {found}; the kernels are built for {arch} and need compute capability {needed} or newer"
    )]
    GpuTooOld {
        /// Device ordinal.
        ordinal: u32,
        /// Device name.
        name: String,
        /// The device's compute capability, `major.minor`.
        found: String,
        /// The PTX target, `sm_NN`.
        arch: String,
        /// The compute capability the target needs.
        needed: String,
    },
    /// The driver is older than the CUDA release that introduced the PTX's ISA version.
    #[error(
        "the CUDA driver supports CUDA {found}; the kernels are PTX ISA {isa} and need a driver for CUDA {needed} or newer"
    )]
    DriverTooOld {
        /// The newest CUDA version the driver supports, `major.minor`.
        found: String,
        /// The PTX's `.version`, `major.minor`.
        isa: String,
        /// The first CUDA version whose driver loads that ISA, `major.minor`.
        needed: String,
    },
    /// A driver call failed.
    #[error("{call} failed: {reason}")]
    Driver {
        /// The driver call that failed.
        call: &'static str,
        /// The driver's description of the error.
        reason: String,
    },
    /// The parameters fail the kernel's shape checks; nothing was launched.
    #[error("kernel {kernel}: {reason}")]
    InvalidLaunch {
        /// The PTX entry name.
        kernel: &'static str,
        /// What the abi's check refused.
        reason: &'static str,
    },
    /// A kernel could not be found or launched, or failed while running.
    #[error("kernel {kernel}: {call} failed: {reason}")]
    Kernel {
        /// The PTX entry name.
        kernel: &'static str,
        /// The driver call that reported the failure.
        call: &'static str,
        /// The driver's description of the error.
        reason: String,
    },
}

/// Attaches the name of the failed driver call to a cust result.
pub(crate) trait Call<T> {
    fn call(self, call: &'static str) -> Result<T, CudaError>;
}

impl<T> Call<T> for cust::error::CudaResult<T> {
    fn call(self, call: &'static str) -> Result<T, CudaError> {
        self.map_err(|e| CudaError::Driver {
            call,
            reason: e.to_string(),
        })
    }
}

/// Checks the result of a raw driver call (one cust does not wrap).
pub(crate) fn check(result: cust::sys::CUresult, call: &'static str) -> Result<(), CudaError> {
    if result == cust::sys::CUresult::CUDA_SUCCESS {
        return Ok(());
    }
    let mut text: *const std::ffi::c_char = std::ptr::null();
    // SAFETY: cuGetErrorString writes a pointer to a static NUL-terminated string, or
    // leaves it null for an unknown code.
    let known = unsafe { cust::sys::cuGetErrorString(result, &mut text) };
    let reason = if known == cust::sys::CUresult::CUDA_SUCCESS && !text.is_null() {
        // SAFETY: non-null, static and NUL-terminated, as above.
        unsafe { std::ffi::CStr::from_ptr(text) }
            .to_string_lossy()
            .into_owned()
    } else {
        format!("CUDA error {}", result as u32)
    };
    Err(CudaError::Driver { call, reason })
}
