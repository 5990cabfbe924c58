//! The device primitives the kernels are built from: thread ids and barriers, warps,
//! vector loads and stores, the arithmetic they share, and the Hopper machinery of
//! clusters, asynchronous copies (`cp.async`), bulk copies (`cp.async.bulk`) and row
//! streaming through shared memory.

pub mod async_copy;
pub mod bulk_copy;
pub mod cluster;
mod math;
mod memory;
pub mod row_stream;
mod threads;
mod warp;

pub use math::*;
pub use memory::*;
pub use threads::*;
pub use warp::*;
