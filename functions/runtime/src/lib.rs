//! The runtime glue every xero-sync function shares: [`Config`] read once, the AWS adapters
//! and the Xero client built once per process ([`App`]), the token provider that keeps each
//! grant's access token fresh, and the connection lifecycle (reconnect, disconnect, clean-up).
//!
//! Function crates stay thin: they read the configuration once, build the app once per process
//! and hand borrowed references to handlers that live in libraries, so tests call the same code
//! the Lambda runtime does.

pub mod app;
pub mod aws;
pub mod config;
pub mod contact_groups;
pub mod governor;
pub mod lease;
pub mod lifecycle;
pub mod mail;
pub mod meter;
pub mod queue;
pub mod reconnect;
pub mod reference;
pub mod telemetry;
pub mod token_provider;

pub use app::App;
pub use config::{Config, ConfigError, Env};
