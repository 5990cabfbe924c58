//! Parallel branches: work enqueued on a side stream forked from the active one by an
//! event and joined back by another. Captured, this is a fork and a join in the graph's
//! DAG; built with the node API, the same explicit edges; eager, real concurrency.

use super::error::{CudaError, check};
use super::gpu::Gpu;
use cust::sys as driver;
use std::ptr;

/// An event for ordering only (no timing), destroyed on drop.
struct Event {
    raw: driver::CUevent,
}

impl Event {
    fn new() -> Result<Self, CudaError> {
        let mut raw = ptr::null_mut();
        // SAFETY: the out-pointer is valid for a write; a context is current.
        check(
            unsafe {
                driver::cuEventCreate(
                    &mut raw,
                    driver::CUevent_flags::CU_EVENT_DISABLE_TIMING as u32,
                )
            },
            "cuEventCreate",
        )?;
        Ok(Event { raw })
    }
}

impl Drop for Event {
    fn drop(&mut self) {
        // SAFETY: created in `new`, destroyed once; the driver frees it once the work
        // recorded on it is done (or, captured, it was only an edge of the graph).
        unsafe {
            driver::cuEventDestroy_v2(self.raw);
        }
    }
}

/// The end of a branch, to [`Gpu::join`] where its results are needed.
#[must_use = "a branch must be joined before its results are used"]
pub struct Join {
    end: JoinPoint,
}

enum JoinPoint {
    /// Recorded on the side stream after the branch's work.
    Event(Event),
    /// The branch's last node (node API).
    Node(driver::CUgraphNode),
}

impl Gpu {
    /// Enqueues `work` as a branch that starts after everything enqueued so far and runs
    /// beside what is enqueued next, until [`Gpu::join`].
    pub fn branch(
        &self,
        work: impl FnOnce(&Gpu) -> Result<(), CudaError>,
    ) -> Result<Join, CudaError> {
        if self.builder.borrow().is_some() {
            let fork = self.with_builder(|b| b.last());
            let end = {
                self.with_builder(|b| b.set_last(fork));
                work(self)?;
                self.with_builder(|b| b.last())
            };
            self.with_builder(|b| b.set_last(fork));
            let end = end.expect("a branch adds at least one node");
            return Ok(Join {
                end: JoinPoint::Node(end),
            });
        }
        let side = self.raw_side_stream();
        let fork = Event::new()?;
        record(&fork, self.raw_stream())?;
        wait(side, &fork)?;
        {
            let _redirect = self.redirect(side);
            work(self)?;
        }
        let end = Event::new()?;
        record(&end, side)?;
        Ok(Join {
            end: JoinPoint::Event(end),
        })
    }

    /// Makes what is enqueued next wait for `branch`.
    pub fn join(&self, branch: Join) -> Result<(), CudaError> {
        match branch.end {
            JoinPoint::Event(event) => wait(self.raw_stream(), &event),
            JoinPoint::Node(node) => {
                self.with_builder(|b| b.also_depend_on(node));
                Ok(())
            }
        }
    }
}

fn record(event: &Event, stream: driver::CUstream) -> Result<(), CudaError> {
    // SAFETY: both are live objects of the current context.
    check(
        unsafe { driver::cuEventRecord(event.raw, stream) },
        "cuEventRecord",
    )
}

fn wait(stream: driver::CUstream, event: &Event) -> Result<(), CudaError> {
    // SAFETY: both are live objects of the current context; flags must be 0.
    check(
        unsafe { driver::cuStreamWaitEvent(stream, event.raw, 0) },
        "cuStreamWaitEvent",
    )
}
