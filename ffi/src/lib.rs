//! The C ABI of ccr (`libccr.so`, `include/ccr.h`).
//!
//! Each function checks its arguments, converts them, calls the engine once through
//! `ccr::api`, catches any panic and records the last error for the calling thread.
//! Nothing else lives here: `opts` holds the options object and its setters, `ops`
//! the operations, `error` the last error.

// In header order: the options object, the operations, the last error.
mod opts;

mod ops;

mod error;

pub use error::ccr_last_error;
pub use ops::*;
pub use opts::*;
