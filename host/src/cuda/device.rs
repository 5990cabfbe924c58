//! What the host knows about a GPU: its name, compute capability, size and the CUDA version
//! its driver supports.

use super::error::{Call, CudaError};
use cust::device::{Device, DeviceAttribute};

/// What the host knows about the GPU it runs on.
#[derive(Clone, Debug)]
pub struct GpuInfo {
    /// Device ordinal.
    pub ordinal: u32,
    /// Marketing name, e.g. "NVIDIA H100 80GB HBM3".
    pub name: String,
    /// Compute capability (major, minor).
    pub compute_capability: (u32, u32),
    /// Streaming multiprocessors.
    pub multiprocessors: u32,
    /// Device memory, bytes.
    pub total_memory: usize,
    /// L2 cache, bytes.
    pub l2_bytes: u32,
    /// The newest CUDA version the driver supports (major, minor).
    pub driver_cuda: (u32, u32),
}

/// Reads what [`GpuInfo`] holds of `device`.
pub(crate) fn device_info(
    ordinal: u32,
    device: Device,
    driver_cuda: (u32, u32),
) -> Result<GpuInfo, CudaError> {
    let attribute = |attr| {
        device
            .get_attribute(attr)
            .call("cuDeviceGetAttribute")
            .map(|v| v as u32)
    };
    Ok(GpuInfo {
        ordinal,
        name: device.name().call("cuDeviceGetName")?,
        compute_capability: (
            attribute(DeviceAttribute::ComputeCapabilityMajor)?,
            attribute(DeviceAttribute::ComputeCapabilityMinor)?,
        ),
        multiprocessors: attribute(DeviceAttribute::MultiprocessorCount)?,
        total_memory: device.total_memory().call("cuDeviceTotalMem")?,
        l2_bytes: attribute(DeviceAttribute::L2CacheSize)?,
        driver_cuda,
    })
}
