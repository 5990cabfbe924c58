//! Stream capture: what the enqueueing code launches on the GPU's stream, recorded into a
//! graph instead of run, and the graph's instantiation and replay on that stream.

use super::error::{CudaError, check};
use super::gpu::Gpu;
use super::graph::{Graph, GraphExec};
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
        Ok(Graph::from_raw(raw))
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
        graph.instantiate(self.raw_stream())
    }

    /// Enqueues one replay of `graph` on the stream.
    pub fn replay(&self, graph: &GraphExec) -> Result<(), CudaError> {
        graph.launch(self.raw_stream())
    }
}
