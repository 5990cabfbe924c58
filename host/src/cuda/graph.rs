//! CUDA graphs captured from the GPU's stream: a capture guard that always ends the
//! capture, and an instantiated, uploaded graph to replay.

use super::error::{CudaError, check};
use super::gpu::Gpu;
use cust::sys as driver;
use std::ptr;

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
        // threads (parallel tests, each with its own context) may keep calling the
        // driver while this one captures.
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

    fn end(mut self) -> Result<driver::CUgraph, CudaError> {
        self.ended = true;
        let mut graph = ptr::null_mut();
        // SAFETY: this capture was begun on `stream` and not yet ended.
        check(
            unsafe { driver::cuStreamEndCapture(self.stream, &mut graph) },
            "cuStreamEndCapture",
        )?;
        Ok(graph)
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

/// A captured graph, instantiated and uploaded, ready to replay on its GPU's stream.
/// Drop it before the [`Gpu`] it was captured on (an owner declares it first); dropped
/// after, its destruction fails quietly in the dead context and leaks nothing on the host.
pub struct GraphExec {
    graph: driver::CUgraph,
    exec: driver::CUgraphExec,
    nodes: usize,
}

impl GraphExec {
    /// Nodes in the graph (kernels and copies).
    pub fn nodes(&self) -> usize {
        self.nodes
    }
}

impl Drop for GraphExec {
    fn drop(&mut self) {
        // SAFETY: both handles were created by `Gpu::capture` and are destroyed once.
        unsafe {
            driver::cuGraphExecDestroy(self.exec);
            driver::cuGraphDestroy(self.graph);
        }
    }
}

impl Gpu {
    /// Records what `enqueue` launches on the stream into a graph (nothing runs), then
    /// instantiates and uploads it. Everything `enqueue` touches must be allocated
    /// beforehand and stay where it is while the graph lives.
    pub fn capture(
        &self,
        enqueue: impl FnOnce(&Gpu) -> Result<(), CudaError>,
    ) -> Result<GraphExec, CudaError> {
        let stream = self.raw_stream();
        let capture = Capture::begin(stream)?;
        let enqueued = enqueue(self);
        let graph = capture.end()?;
        let mut exec = GraphExec {
            graph,
            exec: ptr::null_mut(),
            nodes: 0,
        };
        enqueued?;
        // SAFETY: `graph` is a valid graph; the out-pointers are valid for writes.
        unsafe {
            check(
                driver::cuGraphGetNodes(graph, ptr::null_mut(), &mut exec.nodes),
                "cuGraphGetNodes",
            )?;
            check(
                driver::cuGraphInstantiateWithFlags(&mut exec.exec, graph, 0),
                "cuGraphInstantiateWithFlags",
            )?;
            check(driver::cuGraphUpload(exec.exec, stream), "cuGraphUpload")?;
        }
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
