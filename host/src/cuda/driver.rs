//! The CUDA driver, found when the program runs instead of when it links.
//!
//! cust calls the driver's C entry points (`cuInit`, `cuMemAlloc_v2`, ...) by name, and
//! would have the binary link `libcuda.so`, which only machines with an NVIDIA driver
//! have. Here every entry point the engine reaches is defined under its own name and
//! forwards to the same function of `libcuda.so.1`, opened with `dlopen` on first use. The
//! build links no libcuda (cust's build script is pointed at `host/link/`, whose
//! `libcuda.so` is an empty linker script: `.cargo/config.toml`), so `host` starts on any
//! machine: the CPU-only commands run there, and the GPU ones end with one line saying
//! what is missing.

use cust::sys::{
    CUDA_KERNEL_NODE_PARAMS, CUDA_MEMCPY3D, CUcontext, CUdevice, CUdevice_attribute, CUdeviceptr,
    CUevent, CUfunction, CUfunction_attribute, CUgraph, CUgraphExec, CUgraphNode, CUjit_option,
    CUmodule, CUresult, CUstream, CUstreamCaptureMode,
};
use std::ffi::{c_char, c_int, c_uchar, c_uint, c_ulonglong, c_void};
use std::sync::OnceLock;

/// The driver library's name, as the NVIDIA driver installs it (its soname).
const LIBRARY: &str = "libcuda.so.1";

/// Opens the driver library, once; the reason it cannot be opened, if it cannot.
pub(crate) fn load() -> Result<(), String> {
    match table() {
        Ok(_) => Ok(()),
        Err(reason) => Err(reason.clone()),
    }
}

fn table() -> &'static Result<Table, String> {
    static TABLE: OnceLock<Result<Table, String>> = OnceLock::new();
    TABLE.get_or_init(Table::open)
}

/// The driver function `pick` chooses from the table, or the error code of its absence:
/// the library is missing (not initialized, as cuInit would say) or older than the
/// function (not found).
fn entry<T: Copy>(pick: impl FnOnce(&Table) -> Option<T>) -> Result<T, CUresult> {
    match table() {
        Ok(table) => pick(table).ok_or(CUresult::CUDA_ERROR_NOT_FOUND),
        Err(_) => Err(CUresult::CUDA_ERROR_NOT_INITIALIZED),
    }
}

/// Defines the forwarding entry points and the table of the library's functions they
/// forward to. `name(args) in module` also checks at compile time that `module::name`
/// (cust's declaration of the entry point) has exactly this signature.
macro_rules! driver_entry_points {
    ($($name:ident($($arg:ident: $ty:ty),* $(,)?) $(in $declared:ident)?;)*) => {
        /// The signature of each entry point.
        #[allow(non_camel_case_types)]
        mod signature {
            use super::*;
            $(pub(super) type $name = unsafe extern "C" fn($($ty),*) -> CUresult;)*
        }

        /// The library, kept open, and its entry points (`None`: this driver has none of
        /// that name).
        #[allow(non_snake_case)]
        struct Table {
            _library: libloading::Library,
            $($name: Option<signature::$name>,)*
        }

        impl Table {
            fn open() -> Result<Self, String> {
                // SAFETY: loading the NVIDIA driver runs its initializers, which have no
                // preconditions on this process.
                let library = unsafe { libloading::Library::new(LIBRARY) }
                    .map_err(|e| e.to_string())?;
                Ok(Table {
                    $($name: {
                        let symbol = concat!(stringify!($name), "\0").as_bytes();
                        // SAFETY: the entry point of this name has this signature in every
                        // driver that has it (cuda.h; checked against cust's declaration).
                        unsafe { library.get::<signature::$name>(symbol) }.ok().map(|f| *f)
                    },)*
                    _library: library,
                })
            }
        }

        $(
            /// Forwards to the driver's entry point of this name.
            ///
            /// # Safety
            /// As the driver API documents for it.
            #[unsafe(no_mangle)]
            #[allow(non_snake_case)]
            pub unsafe extern "C" fn $name($($arg: $ty),*) -> CUresult {
                match entry(|t| t.$name) {
                    // SAFETY: the caller's promise, for the driver's own function.
                    Ok(function) => unsafe { function($($arg),*) },
                    Err(code) => code,
                }
            }
            $(const _: signature::$name = $declared::$name;)?
        )*
    };
}

use cust::sys as cust_sys;

driver_entry_points! {
    cuInit(flags: c_uint) in cust_sys;
    cuDriverGetVersion(version: *mut c_int) in cust_sys;
    cuGetErrorString(error: CUresult, text: *mut *const c_char) in cust_sys;
    cuDeviceGet(device: *mut CUdevice, ordinal: c_int) in cust_sys;
    cuDeviceGetAttribute(value: *mut c_int, attribute: CUdevice_attribute, device: CUdevice)
        in cust_sys;
    cuDeviceGetName(name: *mut c_char, len: c_int, device: CUdevice) in cust_sys;
    cuDeviceTotalMem_v2(bytes: *mut usize, device: CUdevice) in cust_sys;
    cuDevicePrimaryCtxRetain(context: *mut CUcontext, device: CUdevice) in cust_sys;
    cuDevicePrimaryCtxRelease_v2(device: CUdevice) in cust_sys;
    cuCtxGetCurrent(context: *mut CUcontext) in cust_sys;
    cuCtxSetCurrent(context: CUcontext) in cust_sys;
    cuMemAlloc_v2(pointer: *mut CUdeviceptr, bytes: usize) in cust_sys;
    cuMemFree_v2(pointer: CUdeviceptr) in cust_sys;
    cuMemAllocHost_v2(pointer: *mut *mut c_void, bytes: usize) in cust_sys;
    cuMemFreeHost(pointer: *mut c_void) in cust_sys;
    cuMemGetInfo_v2(free: *mut usize, total: *mut usize) in cust_sys;
    cuMemsetD8_v2(dst: CUdeviceptr, value: c_uchar, count: usize) in cust_sys;
    cuMemcpyHtoD_v2(dst: CUdeviceptr, src: *const c_void, bytes: usize) in cust_sys;
    cuMemcpyDtoH_v2(dst: *mut c_void, src: CUdeviceptr, bytes: usize) in cust_sys;
    cuMemcpyHtoDAsync_v2(dst: CUdeviceptr, src: *const c_void, bytes: usize, stream: CUstream)
        in cust_sys;
    cuMemcpyDtoHAsync_v2(dst: *mut c_void, src: CUdeviceptr, bytes: usize, stream: CUstream)
        in cust_sys;
    cuMemcpyDtoDAsync_v2(dst: CUdeviceptr, src: CUdeviceptr, bytes: usize, stream: CUstream)
        in cust_sys;
    cuModuleLoadDataEx(
        module: *mut CUmodule,
        image: *const c_void,
        options: c_uint,
        option_keys: *mut CUjit_option,
        option_values: *mut *mut c_void,
    ) in cust_sys;
    cuModuleUnload(module: CUmodule) in cust_sys;
    cuModuleGetFunction(function: *mut CUfunction, module: CUmodule, name: *const c_char)
        in cust_sys;
    cuFuncSetAttribute(function: CUfunction, attribute: CUfunction_attribute, value: c_int)
        in cust_sys;
    cuOccupancyMaxActiveBlocksPerMultiprocessor(
        blocks: *mut c_int,
        function: CUfunction,
        block_size: c_int,
        dynamic_shared_bytes: usize,
    ) in cust_sys;
    cuStreamCreate(stream: *mut CUstream, flags: c_uint) in cust_sys;
    cuStreamCreateWithPriority(stream: *mut CUstream, flags: c_uint, priority: c_int)
        in cust_sys;
    cuStreamDestroy_v2(stream: CUstream) in cust_sys;
    cuStreamSynchronize(stream: CUstream) in cust_sys;
    cuStreamWaitEvent(stream: CUstream, event: CUevent, flags: c_uint) in cust_sys;
    cuStreamBeginCapture_v2(stream: CUstream, mode: CUstreamCaptureMode) in cust_sys;
    cuStreamEndCapture(stream: CUstream, graph: *mut CUgraph) in cust_sys;
    cuEventCreate(event: *mut CUevent, flags: c_uint) in cust_sys;
    cuEventDestroy_v2(event: CUevent) in cust_sys;
    cuEventRecord(event: CUevent, stream: CUstream) in cust_sys;
    cuEventSynchronize(event: CUevent) in cust_sys;
    cuEventElapsedTime(milliseconds: *mut f32, start: CUevent, end: CUevent) in cust_sys;
    cuGraphCreate(graph: *mut CUgraph, flags: c_uint) in cust_sys;
    cuGraphDestroy(graph: CUgraph) in cust_sys;
    cuGraphGetNodes(graph: CUgraph, nodes: *mut CUgraphNode, count: *mut usize) in cust_sys;
    cuGraphAddKernelNode(
        node: *mut CUgraphNode,
        graph: CUgraph,
        dependencies: *const CUgraphNode,
        dependency_count: usize,
        params: *const CUDA_KERNEL_NODE_PARAMS,
    ) in cust_sys;
    cuGraphAddMemcpyNode(
        node: *mut CUgraphNode,
        graph: CUgraph,
        dependencies: *const CUgraphNode,
        dependency_count: usize,
        params: *const CUDA_MEMCPY3D,
        context: CUcontext,
    ) in cust_sys;
    cuGraphDebugDotPrint(graph: CUgraph, path: *const c_char, flags: c_uint) in cust_sys;
    cuGraphInstantiateWithFlags(exec: *mut CUgraphExec, graph: CUgraph, flags: c_ulonglong)
        in cust_sys;
    cuGraphUpload(exec: CUgraphExec, stream: CUstream) in cust_sys;
    cuGraphLaunch(exec: CUgraphExec, stream: CUstream) in cust_sys;
    cuGraphExecDestroy(exec: CUgraphExec) in cust_sys;
    // CUDA 12 entry points cust 0.3 does not declare; their structs live with their callers.
    cuLaunchKernelEx(
        config: *const c_void,
        function: CUfunction,
        params: *mut *mut c_void,
        extra: *mut *mut c_void,
    );
    cuGraphExecUpdate_v2(exec: CUgraphExec, graph: CUgraph, result_info: *mut c_void);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where no driver is installed, every entry point answers "not initialized" instead
    /// of failing to link or crashing; where one is, cuDriverGetVersion works before
    /// cuInit, as the driver API says.
    #[test]
    fn entry_points_answer_with_or_without_a_driver() {
        let mut version = 0;
        // SAFETY: the out-pointer is valid for a write.
        let result = unsafe { cuDriverGetVersion(&mut version) };
        match load() {
            Ok(()) => assert_eq!(result, CUresult::CUDA_SUCCESS),
            Err(reason) => {
                assert_eq!(result, CUresult::CUDA_ERROR_NOT_INITIALIZED);
                assert!(reason.contains(LIBRARY), "{reason}");
            }
        }
    }
}
