//! The world the tests run in lives in the crate's library, which the benchmark shares.

pub use xero_sync_e2e::*;
