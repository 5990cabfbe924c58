//! CUDA graphs: captured from the GPU's stream or built node by node, instantiated,
//! uploaded, replayed, updated in place when the buffers they point at move, and dumped
//! as Graphviz dot.

use super::error::{CudaError, check};
use super::gpu::Gpu;
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

unsafe extern "C" {
    /// Driver API since CUDA 12.0 (cust 0.3 binds only the CUDA 11 form).
    fn cuGraphExecUpdate_v2(
        exec: driver::CUgraphExec,
        graph: driver::CUgraph,
        result_info: *mut UpdateResultInfo,
    ) -> driver::CUresult;
}

/// `CU_GRAPH_DEBUG_DOT_FLAGS_VERBOSE`: every node's parameters, not just its kind.
const DOT_VERBOSE: u32 = 1;

/// Ends a stream capture however the enqueueing code leaves: on success through
/// [`Capture::end`], on an early return or panic through `Drop`, which discards the
/// partial graph so the stream is usable again.
struct Capture {
    stream: driver::CUstream,
    ended: bool,
}

impl Capture {
    fn begin(stream: driver::CUstream) -> Result<Self, CudaError> {
        // SAFETY: `stream` is the live stream of a live context. Thread-local mode: other
        // threads (parallel tests, each with its own engine) may keep calling the driver
        // while this one captures.
        let result = unsafe {
            driver::cuStreamBeginCapture_v2(
                stream,
                driver::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL,
            )
        };
        check(result, "cuStreamBeginCapture")?;
        Ok(Capture {
            stream,
            ended: false,
        })
    }

    fn end(mut self) -> Result<Graph, CudaError> {
        self.ended = true;
        let mut raw = ptr::null_mut();
        // SAFETY: this capture was begun on `stream` and not yet ended.
        check(
            unsafe { driver::cuStreamEndCapture(self.stream, &mut raw) },
            "cuStreamEndCapture",
        )?;
        Ok(Graph { raw })
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        let mut graph = ptr::null_mut();
        // SAFETY: as in `end`; the partial graph, if any, is ours to destroy.
        unsafe {
            driver::cuStreamEndCapture(self.stream, &mut graph);
            if !graph.is_null() {
                driver::cuGraphDestroy(graph);
            }
        }
    }
}

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
/// was made from. Drop it before the [`Gpu`] it was made on (an owner declares it first);
/// dropped after, its destruction fails quietly in the dead context and leaks nothing on
/// the host.
pub struct GraphExec {
    exec: driver::CUgraphExec,
    graph: Graph,
}

impl GraphExec {
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
        let result = unsafe { cuGraphExecUpdate_v2(self.exec, graph.raw, &mut info) };
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
        // SAFETY: created by `Gpu::instantiate` and destroyed once, here; `graph` follows.
        unsafe {
            driver::cuGraphExecDestroy(self.exec);
        }
    }
}

impl Gpu {
    /// Records what `enqueue` launches into a graph; nothing runs. Everything `enqueue`
    /// touches must be allocated beforehand and stay where it is while the graph lives.
    /// Captured on a stream of its own, so other threads using this context meanwhile
    /// are not drawn into the capture.
    pub fn capture(
        &self,
        enqueue: impl FnOnce(&Gpu) -> Result<(), CudaError>,
    ) -> Result<Graph, CudaError> {
        let stream = self.raw_capture_stream();
        let capture = Capture::begin(stream)?;
        let enqueued = {
            let _redirect = self.redirect(stream);
            enqueue(self)
        };
        let graph = capture.end()?;
        enqueued?;
        Ok(graph)
    }

    /// Instantiates `graph` and uploads it to the device, so that its first replay costs
    /// no more than the others.
    pub fn instantiate(&self, graph: Graph) -> Result<GraphExec, CudaError> {
        let mut exec = ptr::null_mut();
        // SAFETY: `graph` is a valid graph; the out-pointer is valid for a write.
        check(
            unsafe { driver::cuGraphInstantiateWithFlags(&mut exec, graph.raw, 0) },
            "cuGraphInstantiateWithFlags",
        )?;
        let exec = GraphExec { exec, graph };
        // SAFETY: the executable graph was just made in this context.
        check(
            unsafe { driver::cuGraphUpload(exec.exec, self.raw_stream()) },
            "cuGraphUpload",
        )?;
        Ok(exec)
    }

    /// Enqueues one replay of `graph` on the stream.
    pub fn replay(&self, graph: &GraphExec) -> Result<(), CudaError> {
        // SAFETY: the graph was instantiated in this context and outlives the call.
        check(
            unsafe { driver::cuGraphLaunch(graph.exec, self.raw_stream()) },
            "cuGraphLaunch",
        )
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
