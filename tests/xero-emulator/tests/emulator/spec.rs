//! Validation against Xero's OpenAPI files, shared with the product's tests.

pub use xero_sync_testkit::openapi::{SpecFile, accounting, assert_valid, is_valid};
