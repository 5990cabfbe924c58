//! The only module that touches cust and the CUDA driver: context and stream, the
//! embedded kernel module, device buffers, typed kernel launches.

mod branch;
mod buffer;
mod capture;
mod device;
mod driver;
mod error;
mod gpu;
mod graph;
mod kernels;
mod launch;
mod nodes;
mod pinned;
mod requirements;
mod timing;

pub use branch::Join;
pub use buffer::{DeviceElement, GpuBuffer, HalfBits};
pub use device::GpuInfo;
pub use error::CudaError;
pub use gpu::Gpu;
pub use graph::{Graph, GraphExec};
pub use kernels::{KERNELS_PTX, ptx_entries, ptx_isa_version, ptx_target_arch};
pub use pinned::PinnedBuffer;
