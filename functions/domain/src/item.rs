//! The platform's products and services as Xero items, and what became of each.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::{AccountId, ConnectionKey, PlatformItemId, TenantId};

/// A platform item and the Xero item that stands for it, found by its code. Writes are
/// conditional on `version`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemRecord {
    pub account_id: AccountId,
    pub tenant_id: TenantId,
    pub item_id: PlatformItemId,
    /// The code the Xero item carries as last written: invoice lines naming it carry it too.
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub xero_item_id: Option<Uuid>,
    /// Hash of what was last written (or refused): the same again makes no Xero call.
    #[serde(default)]
    pub content_hash: Option<String>,
    /// Deleted in Xero by `item.deleted` (Xero's items have no archive).
    #[serde(default)]
    pub deleted: bool,
    /// Why the last write failed, in Xero's words or ours.
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(with = "crate::time::fixed_opt", default)]
    pub last_event_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub last_sequence: Option<u64>,
    #[serde(with = "crate::time::fixed")]
    pub updated_at: DateTime<Utc>,
    #[serde(default)]
    pub version: u64,
}

impl ItemRecord {
    pub fn new(key: &ConnectionKey, item_id: PlatformItemId, now: DateTime<Utc>) -> Self {
        Self {
            account_id: key.account_id.clone(),
            tenant_id: key.tenant_id,
            item_id,
            code: None,
            xero_item_id: None,
            content_hash: None,
            deleted: false,
            reason: None,
            last_event_at: None,
            last_sequence: None,
            updated_at: now,
            version: 0,
        }
    }

    pub fn key(&self) -> ConnectionKey {
        ConnectionKey { account_id: self.account_id.clone(), tenant_id: self.tenant_id }
    }

    /// The code invoice lines may carry: the item is in Xero under it.
    pub fn live_code(&self) -> Option<&str> {
        self.code.as_deref().filter(|_| !self.deleted && self.xero_item_id.is_some())
    }
}
