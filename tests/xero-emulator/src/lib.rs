//! An in-memory HTTP server that behaves like the parts of Xero that xero-sync uses: the OAuth 2
//! identity service (authorize, token, revocation, connections) and the Accounting API for
//! invoices and credit notes (with their attachments), contacts, payments and the reference data
//! they depend on.
//!
//! Start it in-process with [`Emulator::start`] (binds 127.0.0.1 on a free port) or run the
//! binary (`cargo run -p xero-emulator -- --port 8080 --seed demo`). Tests steer it through the
//! Rust control API on [`Emulator`] or the JSON endpoints under `/_emulator/`.

mod accounting;
mod attachments;
mod clock;
mod config;
mod contact_groups;
mod control;
mod documents;
mod faults;
mod http;
mod idempotency;
mod identity;
mod items;
mod jwt;
mod limits;
mod model;
mod query;
mod seed;
mod server;
mod spec;
mod state;
mod util;
mod webhooks;
mod writes;

pub use attachments::AttachmentView;
pub use clock::Clock;
pub use faults::{FaultAction, FaultRule, Faults, Gate, Trigger};
pub use idempotency::IDEMPOTENCY_WINDOW;
pub use limits::{Limiter, LimitsConfig, Rejection, Remaining};
pub use model::{Account, Currency, Item, ItemDetails, TaxComponent, TaxRate, TrackingCategory, TrackingOption};
pub use seed::{ClientSeed, OrgSeed, Seed, UserSeed, demo};
pub use server::{CallCount, Counters, Emulator, EmulatorConfig, Settings, WebhookSubscription};
pub use spec::SPEC_DIR_VAR;
pub use webhooks::{IntentToReceiveReport, WebhookDelivery, WebhookEvent};
