//! One GPU: its context, a stream, the kernel module, typed launches.

use super::buffer::{DeviceElement, GpuBuffer};
use super::device::{GpuInfo, device_info};
use super::driver;
use super::error::{Call, CudaError, check};
use super::graph::Graph;
use super::kernels::kernels_ptx;
use super::launch;
use super::nodes::{Copy, NodeBuilder};
use super::requirements::{check_arch, check_driver};
use cust::CudaApiVersion;
use cust::context::Context;
use cust::device::Device;
use cust::module::Module;
use cust::stream::{Stream, StreamFlags};
use cust::sys::CUstream;
use gpu_kernels::abi::{
    ALL_ENTRIES, FillUniformParams, HalfType, Kernel, SHARED_MEMORY_CARVEOUT_PERCENT,
    takes_uniform_carveout,
};
use std::cell::{Cell, RefCell};
use std::ffi::c_void;

/// A CUDA context on one device with the kernels loaded and one stream to launch on.
///
/// Field order is drop order: the module and stream go before the context they live in.
pub struct Gpu {
    module: Module,
    stream: Stream,
    capture_stream: NonBlockingStream,
    /// Where parallel branches run (see [`Gpu::branch`]).
    side_stream: NonBlockingStream,
    /// Where launches and async copies go: `stream`, or `capture_stream` while capturing.
    active_stream: Cell<CUstream>,
    /// Set while [`Gpu::build`] turns launches and copies into graph nodes.
    pub(crate) builder: RefCell<Option<NodeBuilder>>,
    info: GpuInfo,
    half: HalfType,
    programmatic_launch: Cell<bool>,
    _context: Context,
}

/// Gives every kernel of the layers the same split of L1 and shared memory
/// ([`SHARED_MEMORY_CARVEOUT_PERCENT`] says why), eager launches and graph nodes alike.
fn set_shared_memory_carveout(module: &Module) -> Result<(), CudaError> {
    for entry in ALL_ENTRIES.iter().flat_map(|family| family.iter()) {
        if !takes_uniform_carveout(entry) {
            continue;
        }
        let function = module.get_function(entry).call("cuModuleGetFunction")?;
        // SAFETY: a function handle of the loaded module, which outlives the call; the
        // attribute is an int percentage in 0..=100.
        let result = unsafe {
            cust::sys::cuFuncSetAttribute(
                function.to_raw(),
                cust::sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT,
                SHARED_MEMORY_CARVEOUT_PERCENT,
            )
        };
        check(result, "cuFuncSetAttribute (shared memory carveout)")?;
    }
    Ok(())
}

impl Gpu {
    /// [`Gpu::open_for`] with the kernels over fp16 (GPT-2's).
    pub fn open(ordinal: u32) -> Result<Self, CudaError> {
        Self::open_for(ordinal, HalfType::F16)
    }

    /// Initializes the driver, checks the device can run the embedded PTX, creates a
    /// context and loads the kernels over `half` (the model's weight type).
    pub fn open_for(ordinal: u32, half: HalfType) -> Result<Self, CudaError> {
        let no_gpu = |call| {
            move |e: cust::error::CudaError| CudaError::NoGpu {
                call,
                reason: e.to_string(),
            }
        };
        driver::load().map_err(|reason| CudaError::NoDriver { reason })?;
        cust::init(cust::CudaFlags::empty()).map_err(no_gpu("cuInit"))?;
        let driver = CudaApiVersion::get().map_err(no_gpu("cuDriverGetVersion"))?;
        let driver_cuda = (driver.major() as u32, driver.minor() as u32);
        check_driver(driver_cuda)?;
        let device = Device::get_device(ordinal).map_err(no_gpu("cuDeviceGet"))?;
        let info = device_info(ordinal, device, driver_cuda)?;
        check_arch(&info)?;
        let context = Context::new(device).call("cuCtxCreate")?;
        let module =
            Module::from_ptx(kernels_ptx(half), &[]).call("cuModuleLoadData (kernels PTX)")?;
        set_shared_memory_carveout(&module)?;
        // A blocking stream: uploads, memsets and copies back run on the legacy default
        // stream, and this flag orders them with the kernels without extra syncs.
        let stream = Stream::new(StreamFlags::DEFAULT, None).call("cuStreamCreate")?;
        // Graphs are captured on a non-blocking stream: a capturing blocking stream would
        // make every synchronous copy of any other thread in this (primary, shared)
        // context an illegal implicit dependency on the capture.
        let capture_stream = NonBlockingStream::new()?;
        let side_stream = NonBlockingStream::new()?;
        Ok(Gpu {
            side_stream,
            module,
            active_stream: Cell::new(stream.as_inner()),
            builder: RefCell::new(None),
            stream,
            capture_stream,
            info,
            half,
            programmatic_launch: Cell::new(true),
            _context: context,
        })
    }

    /// The half type of the loaded kernels: buffers of the abi's `Half` hold this type.
    pub fn half_type(&self) -> HalfType {
        self.half
    }

    /// The device this context runs on.
    pub fn info(&self) -> &GpuInfo {
        &self.info
    }

    /// Enqueues one kernel on the stream; the entry, shape checks and launch geometry
    /// come from the abi.
    ///
    /// Errors the kernel hits while running surface at the next [`Gpu::synchronize`].
    pub fn launch<K: Kernel>(&self, params: K) -> Result<(), CudaError> {
        let kernel = params.entry();
        params
            .check()
            .map_err(|reason| CudaError::InvalidLaunch { kernel, reason })?;
        let kernel_error = |call| {
            move |e: cust::error::CudaError| CudaError::Kernel {
                kernel,
                call,
                reason: e.to_string(),
            }
        };
        let function = self
            .module
            .get_function(kernel)
            .map_err(kernel_error("cuModuleGetFunction"))?;
        let mut dims = params.launch_dims();
        if dims.persistent {
            let threads = dims.block.iter().product::<u32>();
            let per_sm = function
                .max_active_blocks_per_multiprocessor(threads.into(), dims.shared_bytes as usize)
                .map_err(kernel_error("cuOccupancyMaxActiveBlocksPerMultiprocessor"))?;
            let wave = (per_sm * self.info.multiprocessors).max(1);
            dims.grid[0] = dims.grid[0].min(wave);
        }
        let mut params = params;
        let params = &mut params as *mut K as *mut c_void;
        // SAFETY: every kernel takes exactly one parameter, the #[repr(C)] struct that
        // names it in abi.rs (compiled into both sides; a host test checks each entry's
        // name and parameter count in the embedded PTX), so the driver copies a value of
        // the right size and layout. The kernel only dereferences the device pointers in
        // it: a bad pointer faults on the device and returns as an error from the driver,
        // it cannot touch host memory. Every kernel waits for its predecessors
        // (griddepcontrol.wait) before touching their data, as programmatic launch needs.
        unsafe {
            match self.builder.borrow_mut().as_mut() {
                Some(builder) => builder.add_kernel(function.to_raw(), &dims, params),
                None => launch::launch(
                    function.to_raw(),
                    self.raw_stream(),
                    &dims,
                    params,
                    self.programmatic_launch.get(),
                ),
            }
        }
        .map_err(|e| match e {
            CudaError::Driver { call, reason } => CudaError::Kernel {
                kernel,
                call,
                reason,
            },
            other => other,
        })
    }

    /// Whether launches use programmatic dependent launch.
    pub fn programmatic_launch(&self) -> bool {
        self.programmatic_launch.get()
    }

    /// Whether launches may overlap the previous kernel's tail (programmatic dependent
    /// launch; on by default). Off serializes kernels fully, for comparison.
    pub fn set_programmatic_launch(&self, on: bool) {
        self.programmatic_launch.set(on);
    }

    /// Enqueues a fill of `buffer` with uniform random values in (-scale, scale) from
    /// `seed` (the same on every GPU and on the CPU, see `FillUniformParams`).
    pub fn fill_uniform<T: DeviceElement<Device = f16>>(
        &self,
        buffer: &mut GpuBuffer<T>,
        seed: u64,
        scale: f32,
    ) -> Result<(), CudaError> {
        self.launch(FillUniformParams {
            out: buffer.as_mut_ptr(),
            len: buffer.len() as u64,
            seed,
            scale,
        })
    }

    /// Free device memory, bytes, as the driver counts it (all processes).
    pub fn free_memory(&self) -> Result<usize, CudaError> {
        Ok(cust::memory::mem_get_info().call("cuMemGetInfo")?.0)
    }

    /// Waits for all work on the stream; reports errors of kernels that ran on it.
    pub fn synchronize(&self) -> Result<(), CudaError> {
        self.stream.synchronize().call("cuStreamSynchronize")
    }

    /// Enqueues a device-to-device copy of all of `src` into `dst` (same length).
    pub fn copy<T: DeviceElement>(
        &self,
        dst: &mut GpuBuffer<T>,
        src: &GpuBuffer<T>,
    ) -> Result<(), CudaError> {
        assert_eq!(
            dst.len(),
            src.len(),
            "copy between buffers of different lengths"
        );
        self.enqueue_copy(Copy::DeviceToDevice {
            dst: dst.as_mut_ptr() as u64,
            src: src.as_ptr() as u64,
            bytes: src.len() * std::mem::size_of::<T>(),
        })
    }

    pub(crate) fn stream(&self) -> &Stream {
        &self.stream
    }

    /// The stream launches and async copies go to now.
    pub(crate) fn raw_stream(&self) -> CUstream {
        self.active_stream.get()
    }

    /// The non-blocking stream graphs are captured on.
    pub(crate) fn raw_capture_stream(&self) -> CUstream {
        self.capture_stream.raw
    }

    /// The non-blocking stream parallel branches run on.
    pub(crate) fn raw_side_stream(&self) -> CUstream {
        self.side_stream.raw
    }

    /// Sends launches and async copies to `stream` until the guard drops (also on a
    /// panic), then back to where they went before.
    pub(crate) fn redirect(&self, stream: CUstream) -> Redirect<'_> {
        Redirect {
            gpu: self,
            previous: self.active_stream.replace(stream),
        }
    }

    /// Copies `host` into a new device buffer.
    pub fn upload<T: DeviceElement>(&self, host: &[T]) -> Result<GpuBuffer<T>, CudaError> {
        GpuBuffer::from_host(host)
    }

    /// A new device buffer of `len` zeros: for state a kernel expects zeroed before its
    /// first launch (argmax slots, attention counters), never as a test input.
    pub fn alloc_zeroed<T: DeviceElement>(&self, len: usize) -> Result<GpuBuffer<T>, CudaError> {
        GpuBuffer::from_host(&vec![T::default(); len])
    }

    /// A new device buffer of `len` elements, every byte 0xFF (NaN for f16 and f32), so
    /// an element a kernel forgets to write cannot pass a numerical check.
    pub fn alloc_poisoned<T: DeviceElement>(&self, len: usize) -> Result<GpuBuffer<T>, CudaError> {
        let mut buffer = GpuBuffer::uninitialized(len)?;
        buffer.poison()?;
        Ok(buffer)
    }
}

/// A stream that does not synchronize with the legacy default stream (cust 0.3's
/// `Stream::new` drops that flag, so it is created here).
struct NonBlockingStream {
    raw: CUstream,
}

impl NonBlockingStream {
    fn new() -> Result<Self, CudaError> {
        let mut raw = std::ptr::null_mut();
        // SAFETY: the out-pointer is valid for a write; a context is current.
        check(
            unsafe {
                cust::sys::cuStreamCreate(
                    &mut raw,
                    cust::sys::CUstream_flags::CU_STREAM_NON_BLOCKING as u32,
                )
            },
            "cuStreamCreate",
        )?;
        Ok(NonBlockingStream { raw })
    }
}

impl Drop for NonBlockingStream {
    fn drop(&mut self) {
        // SAFETY: created in `new`, destroyed once, before the context (field order).
        unsafe {
            cust::sys::cuStreamDestroy_v2(self.raw);
        }
    }
}

/// See [`Gpu::redirect`].
pub(crate) struct Redirect<'a> {
    gpu: &'a Gpu,
    previous: CUstream,
}

impl Drop for Redirect<'_> {
    fn drop(&mut self) {
        self.gpu.active_stream.set(self.previous);
    }
}

impl Gpu {
    /// Builds with the node API the graph of what `enqueue` launches and copies; nothing
    /// runs. Each node depends on the one before, the order `enqueue` issues them in, so
    /// the graph does what the same code does eagerly (without programmatic dependent
    /// launch, which stream capture adds and this builder does not).
    pub fn build(
        &self,
        enqueue: impl FnOnce(&Gpu) -> Result<(), CudaError>,
    ) -> Result<Graph, CudaError> {
        let previous = self.builder.replace(Some(NodeBuilder::new()?));
        let enqueued = enqueue(self);
        let builder = std::mem::replace(&mut *self.builder.borrow_mut(), previous);
        enqueued?;
        Ok(builder.expect("the builder set above").into_graph())
    }

    /// Runs `f` on the node builder; only while [`Gpu::build`] runs.
    pub(crate) fn with_builder<R>(&self, f: impl FnOnce(&mut NodeBuilder) -> R) -> R {
        f(self
            .builder
            .borrow_mut()
            .as_mut()
            .expect("called while building a graph"))
    }

    /// Enqueues `copy` on the active stream, or adds it as a node while building.
    pub(crate) fn enqueue_copy(&self, copy: Copy) -> Result<(), CudaError> {
        if let Some(builder) = self.builder.borrow_mut().as_mut() {
            return builder.add_copy(copy);
        }
        let stream = self.raw_stream();
        // SAFETY: the caller checked that both ranges are live allocations of `bytes`;
        // pinned host ends outlive the copy (see PinnedBuffer).
        let (result, call) = unsafe {
            match copy {
                Copy::HostToDevice { dst, src, bytes } => (
                    cust::sys::cuMemcpyHtoDAsync_v2(dst, src, bytes, stream),
                    "cuMemcpyHtoDAsync",
                ),
                Copy::DeviceToHost { dst, src, bytes } => (
                    cust::sys::cuMemcpyDtoHAsync_v2(dst, src, bytes, stream),
                    "cuMemcpyDtoHAsync",
                ),
                Copy::DeviceToDevice { dst, src, bytes } => (
                    cust::sys::cuMemcpyDtoDAsync_v2(dst, src, bytes, stream),
                    "cuMemcpyDtoDAsync",
                ),
            }
        };
        check(result, call)
    }
}
