//! Page-locked host buffers: the fixed host end of a graph's input and output copies.

use super::buffer::{DeviceElement, GpuBuffer};
use super::error::{Call, CudaError};
use super::gpu::Gpu;
use super::nodes::Copy;
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
        // The pinned buffer outlives the copy: graphs that capture it are dropped before
        // it (see Engine).
        self.enqueue_copy(Copy::HostToDevice {
            dst: dst.as_mut_ptr() as u64,
            src: src.as_slice().as_ptr().cast(),
            bytes: std::mem::size_of_val(src.as_slice()),
        })
    }

    /// Enqueues a copy of the first `len` elements of `src` into the front of `dst` (a
    /// memcpy node when captured).
    pub fn download_async<T: DeviceElement>(
        &self,
        dst: &mut PinnedBuffer<T>,
        src: &GpuBuffer<T>,
        len: usize,
    ) -> Result<(), CudaError> {
        assert!(
            len <= src.len() && len <= dst.as_slice().len(),
            "download past the end of a buffer"
        );
        self.enqueue_copy(Copy::DeviceToHost {
            dst: dst.as_mut_slice().as_mut_ptr().cast(),
            src: src.as_ptr() as u64,
            bytes: len * std::mem::size_of::<T>(),
        })
    }
}
