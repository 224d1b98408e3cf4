//! What the tests and the local stack need to run against real AWS APIs on this machine:
//! a moto server ([`Moto`]) and the stack's resources created from `infra/template.yaml`
//! ([`Template`]), so there is no second, hand-kept copy of the table or the queues.

pub mod apigw;
mod aws_proxy;
pub mod event_schemas;
mod inbox;
pub mod lambda;
mod local_api;
mod local_aws;
mod moto;
pub mod openapi;
mod template;
mod write_units;

use std::path::PathBuf;

pub use aws_proxy::{AwsCall, AwsProxy, ProxyGate};
pub use inbox::{EventInbox, SentEmail, sent_emails};
pub use local_api::{Handler, LocalApi};
pub use local_aws::LocalAws;
pub use moto::Moto;
pub use template::{Stack, Template};
pub use write_units::WriteUnits;

/// The repository root (this crate lives in `tests/testkit`).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root exists")
}

/// A name no other test in this run uses, for stacks and resources.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}
