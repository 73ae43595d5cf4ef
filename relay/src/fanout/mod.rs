//! The fan-out engine: one upstream leg, N device legs, a shared content log.
//!
//! No I/O on sockets and no clock: inputs are `handle_*` calls with the time
//! as an argument, outputs are `poll_*` calls that say what to write on which
//! leg and which events to raise.
#![forbid(unsafe_code)]

mod counters;
mod engine;
pub mod ids;
pub mod imdn;
mod leg;
pub mod log;
pub mod pacer;
mod session;
mod stream;
mod tid;
pub mod types;

pub use counters::{COUNTED_STATUS, StatusCounts};
pub use engine::{Engine, EngineStats, LegInfo, LegsByState, READ_SIZE};
pub use log::MemoryBudget;
pub use types::*;

#[cfg(test)]
mod tests;
