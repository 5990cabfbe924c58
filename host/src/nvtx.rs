//! NVTX ranges, which Nsight Systems shows on the CPU timeline, around the engine's graph
//! making, graph replays and eager steps; switched on per engine (`--nvtx`). With no
//! profiler attached a range costs a few nanoseconds, but formatting its name does not,
//! hence the switch.

use std::fmt::Arguments;

/// An open range, closed on drop; does nothing when made switched off.
pub struct Range {
    open: bool,
}

impl Range {
    /// Opens a range named `name` if `on`.
    pub fn new(on: bool, name: Arguments) -> Range {
        if on {
            nvtx::range_push!("{name}");
        }
        Range { open: on }
    }
}

impl Drop for Range {
    fn drop(&mut self) {
        if self.open {
            nvtx::range_pop!();
        }
    }
}
