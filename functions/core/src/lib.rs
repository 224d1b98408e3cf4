//! The library every xero-sync function shares.
//!
//! Function crates stay thin: they read [`Config`] once, build [`aws::AwsClients`] once per
//! process and hand borrowed references to handlers that live in libraries, so tests call the
//! same code the Lambda runtime does.

pub mod app;
pub mod aws;
pub mod config;
pub mod decimal;
pub mod email;
pub mod error;
pub mod events;
pub mod http;
pub mod lifecycle;
pub mod mail;
pub mod model;
pub mod notify;
pub mod reference;
pub mod settings;
pub mod signing;
pub mod store;
pub mod telemetry;
pub mod time;
pub mod token_provider;
pub mod tokens;
pub mod vault;
pub mod xero;

pub use app::App;
pub use config::{Config, ConfigError, Env};
pub use error::{AwsError, Error};
