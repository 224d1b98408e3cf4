//! The daily inactivity sweep: warns about, then disconnects, connections idle for 60 days.

use serde::Serialize;
use xero_sync_core::App;

#[derive(Debug, Default, Serialize)]
pub struct SweepSummary {
    pub warned: usize,
    pub disconnected: usize,
    pub failed: usize,
}

/// Refuses to run until the sweep exists, rather than reporting a run that did nothing.
pub async fn sweep(_app: &App) -> Result<SweepSummary, NotBuilt> {
    Err(NotBuilt)
}

#[derive(Debug, thiserror::Error)]
#[error("the inactivity sweep is not built yet (issue 8)")]
pub struct NotBuilt;
