//! End-to-end tests of the Xero emulator over HTTP; responses and requests are checked against
//! Xero's OpenAPI files (see `spec`).

mod helpers;
mod spec;

mod accounting;
mod attachments;
mod binary;
mod control;
mod faults;
mod idempotency;
mod identity;
mod limits;
mod queries;
mod validation;
mod visibility;
mod webhooks;
