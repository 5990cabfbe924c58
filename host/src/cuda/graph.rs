//! CUDA graphs and their executable instances: counted, dumped as Graphviz dot,
//! instantiated, launched, and updated in place when the buffers they point at move. They
//! are made by stream capture (`capture.rs`) or node by node (`nodes.rs`).

use super::error::{CudaError, check};
use cust::sys as driver;
use std::ffi::CString;
use std::path::Path;
use std::ptr;

/// `CUgraphExecUpdateResultInfo` (cuda.h, CUDA 12): why an update was refused.
#[repr(C)]
struct UpdateResultInfo {
    result: driver::CUgraphExecUpdateResult,
    error_node: driver::CUgraphNode,
    error_from_node: driver::CUgraphNode,
}

/// `CU_GRAPH_DEBUG_DOT_FLAGS_VERBOSE`: every node's parameters, not just its kind.
const DOT_VERBOSE: u32 = 1;

/// A graph of kernel and copy nodes, not yet executable.
pub struct Graph {
    pub(crate) raw: driver::CUgraph,
}

impl Graph {
    /// An empty graph, for the node API.
    pub(crate) fn empty() -> Result<Self, CudaError> {
        let mut raw = ptr::null_mut();
        // SAFETY: the out-pointer is valid for a write; flags must be 0.
        check(
            unsafe { driver::cuGraphCreate(&mut raw, 0) },
            "cuGraphCreate",
        )?;
        Ok(Graph { raw })
    }

    /// A captured graph (from cuStreamEndCapture), now owned.
    pub(crate) fn from_raw(raw: driver::CUgraph) -> Self {
        Graph { raw }
    }

    /// Instantiates the graph and uploads it on `stream`, so that its first launch costs
    /// no more than the others.
    pub(crate) fn instantiate(self, stream: driver::CUstream) -> Result<GraphExec, CudaError> {
        let mut exec = ptr::null_mut();
        // SAFETY: the graph is valid; the out-pointer is valid for a write.
        check(
            unsafe { driver::cuGraphInstantiateWithFlags(&mut exec, self.raw, 0) },
            "cuGraphInstantiateWithFlags",
        )?;
        let exec = GraphExec { exec, graph: self };
        // SAFETY: the executable graph was just made in this context.
        check(
            unsafe { driver::cuGraphUpload(exec.exec, stream) },
            "cuGraphUpload",
        )?;
        Ok(exec)
    }

    /// Nodes in the graph (kernels and copies).
    pub fn nodes(&self) -> Result<usize, CudaError> {
        let mut count = 0;
        // SAFETY: a null node array asks for the count alone.
        check(
            unsafe { driver::cuGraphGetNodes(self.raw, ptr::null_mut(), &mut count) },
            "cuGraphGetNodes",
        )?;
        Ok(count)
    }

    /// Writes the graph as Graphviz dot, every node with its parameters.
    pub fn write_dot(&self, path: &Path) -> Result<(), CudaError> {
        let bad_path = || CudaError::Driver {
            call: "cuGraphDebugDotPrint",
            reason: format!("{} is not a valid C path", path.display()),
        };
        let c_path = CString::new(path.to_str().ok_or_else(bad_path)?).map_err(|_| bad_path())?;
        // SAFETY: the graph is live and the path a NUL-terminated string for the call.
        check(
            unsafe { driver::cuGraphDebugDotPrint(self.raw, c_path.as_ptr(), DOT_VERBOSE) },
            "cuGraphDebugDotPrint",
        )
    }
}

impl Drop for Graph {
    fn drop(&mut self) {
        // SAFETY: created by capture or cuGraphCreate and destroyed once, here.
        unsafe {
            driver::cuGraphDestroy(self.raw);
        }
    }
}

/// An instantiated, uploaded graph ready to replay on its GPU's stream, with the graph it
/// was made from. Drop it before the `Gpu` it was made on (an owner declares it first);
/// dropped after, its destruction fails quietly in the dead context and leaks nothing on
/// the host.
pub struct GraphExec {
    exec: driver::CUgraphExec,
    graph: Graph,
}

impl GraphExec {
    /// Enqueues one launch on `stream`.
    pub(crate) fn launch(&self, stream: driver::CUstream) -> Result<(), CudaError> {
        // SAFETY: the graph was instantiated in the stream's context and outlives the call.
        check(
            unsafe { driver::cuGraphLaunch(self.exec, stream) },
            "cuGraphLaunch",
        )
    }

    /// The graph it runs (the one of the last update).
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Points this executable graph at the parameters of `graph`, which must have the same
    /// topology (same nodes, same kernels, same kinds of copies): the way to follow
    /// buffers that moved without instantiating again. On refusal nothing changed.
    pub fn update(&mut self, graph: Graph) -> Result<(), CudaError> {
        let mut info = UpdateResultInfo {
            result: driver::CUgraphExecUpdateResult::CU_GRAPH_EXEC_UPDATE_SUCCESS,
            error_node: ptr::null_mut(),
            error_from_node: ptr::null_mut(),
        };
        // SAFETY: both handles are live; `info` is valid for the driver's write.
        // cuGraphExecUpdate_v2 is driver API since CUDA 12.0 (cust 0.3 binds the CUDA 11
        // form only).
        let info_ptr: *mut UpdateResultInfo = &mut info;
        let result =
            unsafe { super::driver::cuGraphExecUpdate_v2(self.exec, graph.raw, info_ptr.cast()) };
        check(result, "cuGraphExecUpdate").map_err(|e| match e {
            CudaError::Driver { call, reason } => CudaError::Driver {
                call,
                reason: format!("{reason} ({:?})", info.result),
            },
            other => other,
        })?;
        self.graph = graph;
        Ok(())
    }
}

impl Drop for GraphExec {
    fn drop(&mut self) {
        // SAFETY: created by `Graph::instantiate` and destroyed once, here; `graph` follows.
        unsafe {
            driver::cuGraphExecDestroy(self.exec);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout cuda.h gives the update result on x86-64.
    #[test]
    fn update_result_matches_cuda_h() {
        assert_eq!(std::mem::size_of::<UpdateResultInfo>(), 24);
        assert_eq!(std::mem::offset_of!(UpdateResultInfo, error_node), 8);
    }
}
