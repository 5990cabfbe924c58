//! The node API: a graph built node by node with explicit dependencies, from the same
//! enqueueing code that runs eagerly or under stream capture. While `Gpu::build` runs,
//! every kernel launch and copy becomes a node depending on the node before it.

use super::error::{CudaError, check};
use super::graph::Graph;
use cust::sys as driver;
use gpu_kernels::abi::LaunchDims;
use std::ffi::c_void;
use std::ptr;

/// One copy between pinned host memory and the device, or within the device.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Copy {
    /// Host to device.
    HostToDevice {
        dst: driver::CUdeviceptr,
        src: *const c_void,
        bytes: usize,
    },
    /// Device to host.
    DeviceToHost {
        dst: *mut c_void,
        src: driver::CUdeviceptr,
        bytes: usize,
    },
    /// Device to device.
    DeviceToDevice {
        dst: driver::CUdeviceptr,
        src: driver::CUdeviceptr,
        bytes: usize,
    },
}

/// A graph under construction and the nodes the next one depends on.
pub(crate) struct NodeBuilder {
    graph: Graph,
    /// The node added last on the current branch.
    last: Option<driver::CUgraphNode>,
    /// Ends of joined branches, also dependencies of the next node.
    joined: Vec<driver::CUgraphNode>,
    context: driver::CUcontext,
}

impl NodeBuilder {
    /// An empty graph to add nodes to, for the current context.
    pub(crate) fn new() -> Result<Self, CudaError> {
        let mut context = ptr::null_mut();
        // SAFETY: the out-pointer is valid for a write.
        check(
            unsafe { driver::cuCtxGetCurrent(&mut context) },
            "cuCtxGetCurrent",
        )?;
        Ok(NodeBuilder {
            graph: Graph::empty()?,
            last: None,
            joined: Vec::new(),
            context,
        })
    }

    /// The graph built so far.
    pub(crate) fn into_graph(self) -> Graph {
        self.graph
    }

    /// The node the next one follows.
    pub(crate) fn last(&self) -> Option<driver::CUgraphNode> {
        self.last
    }

    /// Continues from `node` (a fork point) instead.
    pub(crate) fn set_last(&mut self, node: Option<driver::CUgraphNode>) {
        self.last = node;
    }

    /// Makes the next node depend on `node` too (a join).
    pub(crate) fn also_depend_on(&mut self, node: driver::CUgraphNode) {
        self.joined.push(node);
    }

    fn dependencies(&self) -> Vec<driver::CUgraphNode> {
        self.last.iter().chain(&self.joined).copied().collect()
    }

    fn added(&mut self, node: driver::CUgraphNode) {
        self.last = Some(node);
        self.joined.clear();
    }

    /// Adds a kernel node.
    ///
    /// # Safety
    /// As for [`super::launch::launch`]: `params` points to the one parameter `function`
    /// takes; the driver copies it before returning.
    pub(crate) unsafe fn add_kernel(
        &mut self,
        function: driver::CUfunction,
        dims: &LaunchDims,
        params: *mut c_void,
    ) -> Result<(), CudaError> {
        let mut args = [params];
        let node_params = driver::CUDA_KERNEL_NODE_PARAMS {
            func: function,
            gridDimX: dims.grid[0],
            gridDimY: dims.grid[1],
            gridDimZ: dims.grid[2],
            blockDimX: dims.block[0],
            blockDimY: dims.block[1],
            blockDimZ: dims.block[2],
            sharedMemBytes: dims.shared_bytes,
            kernelParams: args.as_mut_ptr(),
            extra: ptr::null_mut(),
        };
        let deps = self.dependencies();
        let mut node = ptr::null_mut();
        // SAFETY: the graph is live, `deps` are its nodes, and the params (copied by the
        // call) are valid per the caller's promise.
        check(
            unsafe {
                driver::cuGraphAddKernelNode(
                    &mut node,
                    self.graph.raw,
                    deps.as_ptr(),
                    deps.len(),
                    &node_params,
                )
            },
            "cuGraphAddKernelNode",
        )?;
        self.added(node);
        Ok(())
    }

    /// Adds a memcpy node.
    pub(crate) fn add_copy(&mut self, copy: Copy) -> Result<(), CudaError> {
        let (host, device) = (
            driver::CUmemorytype::CU_MEMORYTYPE_HOST,
            driver::CUmemorytype::CU_MEMORYTYPE_DEVICE,
        );
        // (memory type, host pointer, device pointer) of each end.
        let (src, dst, bytes) = match copy {
            Copy::HostToDevice { dst, src, bytes } => {
                ((host, src, 0), (device, ptr::null_mut(), dst), bytes)
            }
            Copy::DeviceToHost { dst, src, bytes } => {
                ((device, ptr::null(), src), (host, dst, 0), bytes)
            }
            Copy::DeviceToDevice { dst, src, bytes } => (
                (device, ptr::null(), src),
                (device, ptr::null_mut(), dst),
                bytes,
            ),
        };
        // A one-dimensional copy: every offset, pitch and array field unused (zero).
        let p = driver::CUDA_MEMCPY3D {
            srcXInBytes: 0,
            srcY: 0,
            srcZ: 0,
            srcLOD: 0,
            srcMemoryType: src.0,
            srcHost: src.1,
            srcDevice: src.2,
            srcArray: ptr::null_mut(),
            reserved0: ptr::null_mut(),
            srcPitch: 0,
            srcHeight: 0,
            dstXInBytes: 0,
            dstY: 0,
            dstZ: 0,
            dstLOD: 0,
            dstMemoryType: dst.0,
            dstHost: dst.1,
            dstDevice: dst.2,
            dstArray: ptr::null_mut(),
            reserved1: ptr::null_mut(),
            dstPitch: 0,
            dstHeight: 0,
            WidthInBytes: bytes,
            Height: 1,
            Depth: 1,
        };
        let deps = self.dependencies();
        let mut node = ptr::null_mut();
        // SAFETY: as in `add_kernel`; the copy's ranges were checked by the caller.
        check(
            unsafe {
                driver::cuGraphAddMemcpyNode(
                    &mut node,
                    self.graph.raw,
                    deps.as_ptr(),
                    deps.len(),
                    &p,
                    self.context,
                )
            },
            "cuGraphAddMemcpyNode",
        )?;
        self.added(node);
        Ok(())
    }
}
