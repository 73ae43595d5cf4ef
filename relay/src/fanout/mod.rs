//! The fan-out engine: one upstream leg, N device legs, a shared content log.
//!
//! No I/O on sockets and no clock: inputs are `handle_*` calls with the time
//! as an argument, outputs are `poll_*` calls that say what to write on which
//! leg and which events to raise.

pub mod imdn;
pub mod log;
pub mod pacer;
