//! GPU time of enqueued work, measured with events on the stream.

use super::error::{Call, CudaError};
use super::gpu::Gpu;
use cust::event::{Event, EventFlags};

impl Gpu {
    /// Milliseconds of GPU time the work `enqueue` puts on the stream takes: events
    /// recorded before and after it, then a wait for the second.
    pub fn time_ms(
        &self,
        enqueue: impl FnOnce(&Gpu) -> Result<(), CudaError>,
    ) -> Result<f32, CudaError> {
        let start = Event::new(EventFlags::DEFAULT).call("cuEventCreate")?;
        let stop = Event::new(EventFlags::DEFAULT).call("cuEventCreate")?;
        start.record(self.stream()).call("cuEventRecord")?;
        enqueue(self)?;
        stop.record(self.stream()).call("cuEventRecord")?;
        stop.synchronize().call("cuEventSynchronize")?;
        stop.elapsed_time_f32(&start).call("cuEventElapsedTime")
    }
}
