//! Device buffers of plain elements, with the raw pointers the abi structs carry.

use super::error::{Call, CudaError, check};
use cust::memory::{CopyDestination, DeviceBuffer, DeviceCopy};

/// A host element type that can live in device memory, and the type kernels see it as.
pub trait DeviceElement: DeviceCopy + Default {
    /// The element as the kernels' abi names it (`half::f16` is the primitive `f16`).
    type Device;
}

impl DeviceElement for half::f16 {
    type Device = f16;
}

/// A 16-bit float by its bits: fp16 or bf16, as the model (and the kernel module the
/// GPU loaded, [`gpu_kernels::abi::HalfType`]) says. The kernels of either module read
/// it through the abi's `Half` pointers; conversions are in [`crate::halves`].
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HalfBits(pub u16);

// SAFETY: two bytes of plain data; every bit pattern is a value.
unsafe impl DeviceCopy for HalfBits {}

impl DeviceElement for HalfBits {
    type Device = f16;
}
impl DeviceElement for f32 {
    type Device = f32;
}
impl DeviceElement for u32 {
    type Device = u32;
}
impl DeviceElement for i32 {
    type Device = i32;
}
impl DeviceElement for u64 {
    type Device = u64;
}

/// `len` elements of `T` in device memory, freed on drop.
pub struct GpuBuffer<T: DeviceElement> {
    inner: DeviceBuffer<T>,
}

impl<T: DeviceElement> GpuBuffer<T> {
    pub(crate) fn from_host(host: &[T]) -> Result<Self, CudaError> {
        let inner = DeviceBuffer::from_slice(host).call("cuMemAlloc + cuMemcpyHtoD")?;
        Ok(GpuBuffer { inner })
    }

    pub(crate) fn uninitialized(len: usize) -> Result<Self, CudaError> {
        // SAFETY: T is DeviceCopy (plain data), and every constructor that hands the
        // buffer out writes it first (poison or an upload).
        let inner = unsafe { DeviceBuffer::uninitialized(len) }.call("cuMemAlloc")?;
        Ok(GpuBuffer { inner })
    }

    /// Copies `host` into the front of the buffer (waits for the copy).
    pub fn write(&mut self, host: &[T]) -> Result<(), CudaError> {
        assert!(
            host.len() <= self.len(),
            "writing past the end of a device buffer"
        );
        let bytes = std::mem::size_of_val(host);
        // SAFETY: `bytes` fit in both the host slice and this allocation.
        let result = unsafe {
            cust::sys::cuMemcpyHtoD_v2(
                self.inner.as_device_ptr().as_raw(),
                host.as_ptr().cast(),
                bytes,
            )
        };
        check(result, "cuMemcpyHtoD")
    }

    /// Copies the first `len` elements to a new host vector (waits for the copy).
    pub fn read_front(&self, len: usize) -> Result<Vec<T>, CudaError> {
        assert!(len <= self.len(), "reading past the end of a device buffer");
        let mut host = vec![T::default(); len];
        let bytes = std::mem::size_of_val(&host[..]);
        // SAFETY: `bytes` fit in both this allocation and the host vector; T is plain
        // data, so any bytes the device holds are a valid T.
        let result = unsafe {
            cust::sys::cuMemcpyDtoH_v2(
                host.as_mut_ptr().cast(),
                self.inner.as_device_ptr().as_raw(),
                bytes,
            )
        };
        check(result, "cuMemcpyDtoH")?;
        Ok(host)
    }

    /// Elements in the buffer.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether the buffer holds no element.
    pub fn is_empty(&self) -> bool {
        self.inner.len() == 0
    }

    /// The device address, typed as the abi structs want it.
    pub fn as_ptr(&self) -> *const T::Device {
        self.inner.as_device_ptr().as_raw() as *const T::Device
    }

    /// The device address, for a kernel to write through.
    pub fn as_mut_ptr(&mut self) -> *mut T::Device {
        self.inner.as_device_ptr().as_raw() as *mut T::Device
    }

    /// Sets every byte to 0xFF: NaN for f16 and f32, `MAX` for integers.
    pub fn poison(&mut self) -> Result<(), CudaError> {
        if self.is_empty() {
            return Ok(());
        }
        let bytes = self.len() * std::mem::size_of::<T>();
        // SAFETY: the range is exactly this live allocation; T is plain data, so any
        // byte pattern is a valid value.
        let result =
            unsafe { cust::sys::cuMemsetD8_v2(self.inner.as_device_ptr().as_raw(), 0xFF, bytes) };
        check(result, "cuMemsetD8")
    }

    /// Copies the buffer to a new host vector (waits for the copy).
    pub fn to_host(&self) -> Result<Vec<T>, CudaError> {
        let mut host = vec![T::default(); self.len()];
        if !host.is_empty() {
            self.inner.copy_to(&mut host[..]).call("cuMemcpyDtoH")?;
        }
        Ok(host)
    }
}
