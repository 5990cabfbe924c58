//! Page-locked host buffers: the fixed host end of a graph's input and output copies.

use super::buffer::{DeviceElement, GpuBuffer};
use super::error::{Call, CudaError, check};
use super::gpu::Gpu;
use cust::memory::LockedBuffer;

/// `len` elements of page-locked host memory, which the GPU copies from and to
/// asynchronously (a pageable buffer would make every copy synchronous and uncapturable).
pub struct PinnedBuffer<T: DeviceElement> {
    inner: LockedBuffer<T>,
}

impl<T: DeviceElement> PinnedBuffer<T> {
    /// The elements, to fill before or read after the GPU's copy.
    pub fn as_slice(&self) -> &[T] {
        self.inner.as_slice()
    }

    /// The elements, to fill before the GPU copies them.
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        self.inner.as_mut_slice()
    }
}

impl Gpu {
    /// A pinned host buffer of `len` default values.
    pub fn alloc_pinned<T: DeviceElement>(&self, len: usize) -> Result<PinnedBuffer<T>, CudaError> {
        let inner = LockedBuffer::new(&T::default(), len).call("cuMemAllocHost")?;
        Ok(PinnedBuffer { inner })
    }

    /// Enqueues a copy of all of `src` to the front of `dst` (a memcpy node when
    /// captured).
    pub fn upload_async<T: DeviceElement>(
        &self,
        dst: &mut GpuBuffer<T>,
        src: &PinnedBuffer<T>,
    ) -> Result<(), CudaError> {
        assert!(
            src.as_slice().len() <= dst.len(),
            "upload past the end of a device buffer"
        );
        let bytes = std::mem::size_of_val(src.as_slice());
        // SAFETY: both ranges are live allocations of at least `bytes`; the pinned buffer
        // outlives the copy (graphs that capture it are dropped before it, see Engine).
        let result = unsafe {
            cust::sys::cuMemcpyHtoDAsync_v2(
                dst.as_mut_ptr() as u64,
                src.as_slice().as_ptr().cast(),
                bytes,
                self.raw_stream(),
            )
        };
        check(result, "cuMemcpyHtoDAsync")
    }

    /// Enqueues a copy of the front of `src` into all of `dst` (a memcpy node when
    /// captured).
    pub fn download_async<T: DeviceElement>(
        &self,
        dst: &mut PinnedBuffer<T>,
        src: &GpuBuffer<T>,
    ) -> Result<(), CudaError> {
        assert!(
            dst.as_slice().len() <= src.len(),
            "download past the end of a device buffer"
        );
        let bytes = std::mem::size_of_val(dst.as_slice());
        // SAFETY: as in `upload_async`.
        let result = unsafe {
            cust::sys::cuMemcpyDtoHAsync_v2(
                dst.as_mut_slice().as_mut_ptr().cast(),
                src.as_ptr() as u64,
                bytes,
                self.raw_stream(),
            )
        };
        check(result, "cuMemcpyDtoHAsync")
    }
}
