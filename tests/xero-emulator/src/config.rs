//! The emulator's configuration, its run-time settings and the call counters it reports.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::limits::LimitsConfig;
use crate::seed::Seed;

/// Settings that can change while the emulator runs (Rust API or `PUT /_emulator/settings`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Settings {
    /// Skip the consent page: GET authorize redirects at once with a code.
    pub auto_approve: bool,
    /// With auto-approve, connect only these tenants (of the user's); all when `None`.
    pub approve_tenants: Option<Vec<Uuid>>,
    /// Email of the user who is "signed in" at the consent page; the first seeded user if `None`.
    pub signed_in_user: Option<String>,
    pub limits: LimitsConfig,
    /// How long a `TimeoutAfterWrite` fault holds the response back, unless the rule says.
    pub timeout_hang_millis: u64,
    /// The app's webhook subscription: where changes are delivered and the key they are signed
    /// with. `None` (the default): no webhooks, as for an app that registered none.
    pub webhooks: Option<WebhookSubscription>,
}

/// Where Xero delivers an app's webhooks, and with which key it signs them.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct WebhookSubscription {
    pub url: String,
    pub key: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            auto_approve: false,
            approve_tenants: None,
            signed_in_user: None,
            limits: LimitsConfig::default(),
            timeout_hang_millis: 30_000,
            webhooks: None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    pub host: IpAddr,
    /// 0 picks a free port.
    pub port: u16,
    /// Data loaded at start; the demo seed by default.
    pub seed: Option<Seed>,
    pub settings: Settings,
    /// Where the emulator clock starts; the real time by default.
    pub start_time: Option<DateTime<Utc>>,
    /// Seed of the fault-injection RNG.
    pub rng_seed: u64,
    /// Where Xero's OpenAPI files are read from; `$XERO_OPENAPI_DIR`, else the workspace's
    /// `../shared/xero-openapi`, when `None`.
    pub openapi_dir: Option<PathBuf>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            seed: Some(crate::seed::demo::seed()),
            settings: Settings::default(),
            start_time: None,
            rng_seed: 42,
            openapi_dir: None,
        }
    }
}

impl EmulatorConfig {
    /// No users, organisations or clients; seed them through the control API.
    pub fn empty() -> Self {
        EmulatorConfig { seed: None, ..Self::default() }
    }

    pub fn auto_approve(mut self, on: bool) -> Self {
        self.settings.auto_approve = on;
        self
    }

    pub fn approve_tenants(mut self, tenants: Vec<Uuid>) -> Self {
        self.settings.approve_tenants = Some(tenants);
        self
    }

    pub fn signed_in_user(mut self, email: &str) -> Self {
        self.settings.signed_in_user = Some(email.into());
        self
    }

    pub fn limits(mut self, limits: LimitsConfig) -> Self {
        self.settings.limits = limits;
        self
    }

    pub fn seed(mut self, seed: Seed) -> Self {
        self.seed = Some(seed);
        self
    }

    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    pub fn host(mut self, host: IpAddr) -> Self {
        self.host = host;
        self
    }

    pub fn start_time(mut self, at: DateTime<Utc>) -> Self {
        self.start_time = Some(at);
        self
    }

    pub fn rng_seed(mut self, seed: u64) -> Self {
        self.rng_seed = seed;
        self
    }

    pub fn openapi_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.openapi_dir = Some(dir.into());
        self
    }

    pub fn timeout_hang_millis(mut self, millis: u64) -> Self {
        self.settings.timeout_hang_millis = millis;
        self
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CallCount {
    pub method: String,
    /// Lower-case path with ids as `{id}`, e.g. `/api.xro/2.0/invoices/{id}`.
    pub endpoint: String,
    pub tenant_id: Option<Uuid>,
    pub calls: u64,
    pub rate_limited: u64,
    /// Bytes of answer bodies sent: the API egress Xero bills.
    #[serde(default)]
    pub bytes: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Counters {
    pub calls: Vec<CallCount>,
}

impl Counters {
    /// Calls to one endpoint (any tenant); `endpoint` as in [`CallCount::endpoint`].
    pub fn calls_to(&self, method: &str, endpoint: &str) -> u64 {
        self.matching(method, endpoint).map(|c| c.calls).sum()
    }

    pub fn calls_for_tenant(&self, tenant: Uuid) -> u64 {
        self.calls.iter().filter(|c| c.tenant_id == Some(tenant)).map(|c| c.calls).sum()
    }

    /// Bytes of answers sent to a tenant: its egress.
    pub fn bytes_for_tenant(&self, tenant: Uuid) -> u64 {
        self.calls.iter().filter(|c| c.tenant_id == Some(tenant)).map(|c| c.bytes).sum()
    }

    pub fn total_bytes(&self) -> u64 {
        self.calls.iter().map(|c| c.bytes).sum()
    }

    pub fn total_calls(&self) -> u64 {
        self.calls.iter().map(|c| c.calls).sum()
    }

    pub fn rate_limited(&self) -> u64 {
        self.calls.iter().map(|c| c.rate_limited).sum()
    }

    fn matching<'a>(&'a self, method: &'a str, endpoint: &'a str) -> impl Iterator<Item = &'a CallCount> + 'a {
        let endpoint = endpoint.to_ascii_lowercase();
        self.calls.iter().filter(move |c| c.method.eq_ignore_ascii_case(method) && c.endpoint == endpoint)
    }
}
