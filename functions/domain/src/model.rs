//! The data xero-sync keeps, independent of how it is stored (see [`crate::store`]).

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Why an identifier from outside was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{kind} {reason}")]
pub struct InvalidId {
    pub kind: &'static str,
    pub reason: &'static str,
}

/// Identifiers chosen by the platform. They become parts of DynamoDB keys, where `#` separates
/// components, so the alphabet is closed rather than escaped.
macro_rules! platform_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub const MAX_LEN: usize = 128;

            pub fn parse(raw: impl Into<String>) -> Result<Self, InvalidId> {
                let raw = raw.into();
                if raw.is_empty() {
                    return Err(InvalidId { kind: $kind, reason: "is empty" });
                }
                if raw.len() > Self::MAX_LEN {
                    return Err(InvalidId { kind: $kind, reason: "is longer than 128 characters" });
                }
                if !raw.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:@".contains(&b)) {
                    return Err(InvalidId { kind: $kind, reason: "may hold only letters, digits and - _ . : @" });
                }
                Ok(Self(raw))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(raw: String) -> Result<Self, InvalidId> {
                Self::parse(raw)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }
    };
}

platform_id!(
    /// The platform account (a field-service company) that connects to Xero.
    AccountId,
    "account id"
);
platform_id!(
    /// The platform's id of an invoice.
    PlatformInvoiceId,
    "invoice id"
);
platform_id!(
    /// The platform's id of a customer.
    PlatformCustomerId,
    "customer id"
);
platform_id!(
    /// The platform's id of a payment taken against one of its invoices.
    PlatformPaymentId,
    "payment id"
);
platform_id!(
    /// The platform's id of a credit note (a job's sales credit).
    PlatformCreditNoteId,
    "credit note id"
);
platform_id!(
    /// The platform's id of a product or service it sells (a Xero item).
    PlatformItemId,
    "item id"
);

/// Identifiers Xero issues are UUIDs.
macro_rules! xero_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            pub fn parse(raw: &str) -> Result<Self, InvalidId> {
                Uuid::parse_str(raw)
                    .map(Self)
                    .map_err(|_| InvalidId { kind: stringify!($name), reason: "is not a UUID" })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }
    };
}

xero_id!(
    /// A Xero organisation (`xero-tenant-id`).
    TenantId
);
xero_id!(
    /// One consent: Xero's `authentication_event_id`. Its token set is one secret.
    GrantId
);
xero_id!(
    /// Xero's id of the link between our app and a tenant (`DELETE /connections/{id}`).
    XeroConnectionId
);

/// One Xero organisation as connected by one platform account.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConnectionKey {
    pub account_id: AccountId,
    pub tenant_id: TenantId,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConnectionStatus {
    Connected,
    /// Xero refused the refresh token; nothing syncs until the account reconnects.
    NeedsReconnect,
    /// The account disconnected.
    Disconnected,
    /// The inactivity sweep disconnected it.
    DisconnectedInactive,
}

impl ConnectionStatus {
    /// Whether the connection is still the account's (syncing, or waiting for a reconnect).
    pub fn is_live(self) -> bool {
        matches!(self, Self::Connected | Self::NeedsReconnect)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connected => "CONNECTED",
            Self::NeedsReconnect => "NEEDS_RECONNECT",
            Self::Disconnected => "DISCONNECTED",
            Self::DisconnectedInactive => "DISCONNECTED_INACTIVE",
        }
    }
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    pub account_id: AccountId,
    pub tenant_id: TenantId,
    pub xero_connection_id: XeroConnectionId,
    pub grant_id: GrantId,
    pub status: ConnectionStatus,
    pub organisation_name: String,
    /// Where account emails go; personal data, never logged.
    #[serde(default)]
    pub notify_email: Option<String>,
    #[serde(with = "crate::time::fixed")]
    pub connected_at: DateTime<Utc>,
    /// What the inactivity sweep measures; see [`crate::store`] for what counts as activity.
    #[serde(with = "crate::time::fixed")]
    pub last_activity_at: DateTime<Utc>,
    #[serde(with = "crate::time::fixed_opt", default)]
    pub last_sync_at: Option<DateTime<Utc>>,
    #[serde(with = "crate::time::fixed")]
    pub status_changed_at: DateTime<Utc>,
    #[serde(default)]
    pub last_error: Option<String>,
    /// Ended, but its connection at Xero or its tokens may still be there: the clean-up is
    /// repeated (by a repeated disconnect, or the daily sweep) until it is done.
    #[serde(default)]
    pub cleanup_pending: bool,
    /// SES refused the notify address for good; emails to it are held (see [`crate::mail`]).
    #[serde(default)]
    pub email_refused: Option<EmailRefusal>,
    /// What the consent granted, as Xero's token answer said; `None` for a connection made
    /// before scopes were recorded (its token set says: see [`crate::scopes`]).
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// The organisation's ShortCode, read from Xero when it connected: Xero's deep links name
    /// the organisation by it (see [`crate::links`]). `None` until read.
    #[serde(default)]
    pub short_code: Option<String>,
}

/// A permanent refusal of an account's address by SES. The address itself is not kept here,
/// only a hash of it, so a new address is tried at once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailRefusal {
    pub address_hash: String,
    /// SES's error code (`MessageRejected` ...); never its message, which quotes the address.
    pub code: String,
    #[serde(with = "crate::time::fixed")]
    pub at: DateTime<Utc>,
}

/// Leaves out the email address: personal data.
impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("account_id", &self.account_id)
            .field("tenant_id", &self.tenant_id)
            .field("xero_connection_id", &self.xero_connection_id)
            .field("grant_id", &self.grant_id)
            .field("status", &self.status)
            .field("last_activity_at", &self.last_activity_at)
            .finish_non_exhaustive()
    }
}

impl Connection {
    pub fn key(&self) -> ConnectionKey {
        ConnectionKey { account_id: self.account_id.clone(), tenant_id: self.tenant_id }
    }

    /// Opens `document` in this organisation in Xero, once its ShortCode is known.
    pub fn xero_link(&self, document: crate::links::XeroDocument) -> Option<String> {
        crate::links::deep_link(self.short_code.as_deref()?, document)
    }
}

/// A consent in progress: single use, bound to the account and where it returns to.
#[derive(Serialize, Deserialize)]
pub struct OAuthState {
    /// The random `state` value sent to Xero.
    pub state: String,
    pub account_id: AccountId,
    #[serde(default)]
    pub return_to: Option<String>,
    /// PKCE verifier; prints `[redacted]`.
    pub pkce_verifier: crate::secret::PkceVerifier,
    #[serde(default)]
    pub notify_email: Option<String>,
    #[serde(with = "crate::time::fixed")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::time::fixed")]
    pub expires_at: DateTime<Utc>,
}

/// Leaves out the state value and the email address.
impl fmt::Debug for OAuthState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthState")
            .field("account_id", &self.account_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// An organisation a consent reached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrganisationChoice {
    pub xero_connection_id: XeroConnectionId,
    pub tenant_id: TenantId,
    pub name: String,
}

/// A consent that reached several organisations while the account may keep only one: the
/// token set is stored, and this waits (single use, like an OAuth state) for the user's pick.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingChoice {
    pub token: String,
    pub account_id: AccountId,
    #[serde(default)]
    pub return_to: Option<String>,
    #[serde(default)]
    pub notify_email: Option<String>,
    pub grant_id: GrantId,
    pub organisations: Vec<OrganisationChoice>,
    /// The consent cookie of the browser that may make the choice.
    #[serde(default)]
    pub browser: String,
    /// What the consent granted (an older pending choice has none recorded).
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    #[serde(with = "crate::time::fixed")]
    pub expires_at: DateTime<Utc>,
}

/// Leaves out the choice token, the browser binding and the email address.
impl fmt::Debug for PendingChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingChoice")
            .field("account_id", &self.account_id)
            .field("grant_id", &self.grant_id)
            .field("organisations", &self.organisations.len())
            .finish_non_exhaustive()
    }
}

/// A grant whose Xero connections and tokens are to be released once nobody uses them: a
/// consent that was abandoned or failed after the code exchange, or the grant of a connection
/// replaced by another Xero user's. The sweep handles those due.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantRelease {
    pub grant_id: GrantId,
    pub account_id: AccountId,
    /// Xero connections known to belong to the grant (Xero is asked for the rest).
    #[serde(default)]
    pub xero_connection_ids: Vec<XeroConnectionId>,
    /// Not before this: a consent still in progress must be left to finish.
    #[serde(with = "crate::time::fixed")]
    pub due_at: DateTime<Utc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SyncStatus {
    /// Accepted, not yet in Xero.
    Pending,
    Synced,
    /// Xero refused it for a reason a retry cannot fix.
    Failed,
}

/// A platform invoice and what became of it in Xero. Writes are conditional on `version`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRecord {
    pub account_id: AccountId,
    pub tenant_id: TenantId,
    pub invoice_id: PlatformInvoiceId,
    pub invoice_number: String,
    #[serde(default)]
    pub xero_invoice_id: Option<Uuid>,
    /// The Xero contact the invoice is made out to, as Xero answered its write: a refund's
    /// credit note goes to the same contact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xero_contact_id: Option<Uuid>,
    pub status: SyncStatus,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default)]
    pub last_error: Option<String>,
    /// Hash of the content last written to Xero (or refused by it): the same content again
    /// makes no Xero call.
    #[serde(default)]
    pub content_hash: Option<String>,
    /// The invoice's status in Xero as last seen (DRAFT, AUTHORISED, PAID, VOIDED ...): what an
    /// update may send and whether a void is a VOIDED or a DELETED.
    #[serde(default)]
    pub xero_status: Option<crate::xero::InvoiceStatus>,
    /// When the newest event applied so far happened: an older one arriving late is dropped.
    #[serde(with = "crate::time::fixed_opt", default)]
    pub last_event_at: Option<DateTime<Utc>>,
    /// The platform's version of the newest event applied, when it sends one.
    #[serde(default)]
    pub last_sequence: Option<u64>,
    /// Set while a push is writing to Xero: others wait until then; a claim still set after it
    /// means the pusher died midway, so its write may or may not have reached Xero.
    #[serde(with = "crate::time::fixed_opt", default)]
    pub claimed_until: Option<DateTime<Utc>>,
    /// A write may have reached Xero without us learning the outcome: look before creating.
    #[serde(default)]
    pub uncertain: bool,
    /// The delivery that produced this state: the same delivery again changes nothing, a new
    /// one with the same content retries a failure (the account may have fixed it in Xero).
    #[serde(default)]
    pub last_delivery_id: Option<String>,
    /// The invoice's payment state in Xero as last announced by the import
    /// (`status|paid|credited|due`): a change is announced once.
    #[serde(default)]
    pub payment_state: Option<String>,
    /// The invoice's payments announced from Xero's webhooks (`payment.recorded`), so that
    /// each is announced once and one that leaves the invoice is looked up as reversed.
    #[serde(default)]
    pub announced_payments: Vec<Uuid>,
    /// The outcome is recorded but the platform (and, for a failure, the account) has not been
    /// told yet: the next delivery tells them.
    #[serde(default)]
    pub untold: bool,
    /// While FAILED: the queue message of the event that failed, as it would be queued again,
    /// so a retry re-sends it from here without the platform. Dropped once the invoice syncs.
    /// A record that failed before it was kept has none: the platform sends the invoice again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_message: Option<String>,
    #[serde(with = "crate::time::fixed")]
    pub updated_at: DateTime<Utc>,
    /// 0 before the first write.
    #[serde(default)]
    pub version: u64,
}

impl SyncRecord {
    /// A record for an invoice never seen before (version 0: the first save must create it).
    pub fn new(key: &ConnectionKey, invoice_id: PlatformInvoiceId, number: &str, now: DateTime<Utc>) -> Self {
        Self {
            account_id: key.account_id.clone(),
            tenant_id: key.tenant_id,
            invoice_id,
            invoice_number: number.to_owned(),
            xero_invoice_id: None,
            xero_contact_id: None,
            status: SyncStatus::Pending,
            attempts: 0,
            last_error: None,
            content_hash: None,
            xero_status: None,
            last_event_at: None,
            last_sequence: None,
            claimed_until: None,
            uncertain: false,
            last_delivery_id: None,
            payment_state: None,
            announced_payments: Vec::new(),
            untold: false,
            failed_message: None,
            updated_at: now,
            version: 0,
        }
    }
}

/// An invoice event held while its connection waits for reconnection, re-sent to the push queue
/// once the account reconnects. Only the newest event per invoice is kept: each carries the
/// whole invoice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParkedPush {
    /// The invoice an invoice or payment event is about; none for a credit note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice_id: Option<PlatformInvoiceId>,
    /// Set for a payment event: parked under the payment, beside (not over) its invoice's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<PlatformPaymentId>,
    /// Set for a credit note event: parked under the credit note, beside its invoice's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit_note_id: Option<PlatformCreditNoteId>,
    /// Set for a customer event: parked under the customer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<PlatformCustomerId>,
    /// Set for an item event: parked under the item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_id: Option<PlatformItemId>,
    /// Set for an uploaded file: parked under its upload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<Uuid>,
    #[serde(with = "crate::time::fixed")]
    pub occurred_at: DateTime<Utc>,
    /// The event's platform version, when it has one: it orders events before the time does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
    /// The queue message, as it will be sent again.
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ContactMatch {
    Created,
    ContactNumber,
    Email,
    Name,
}

/// A platform customer and the Xero contact that stands for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactMapping {
    pub customer_id: PlatformCustomerId,
    pub xero_contact_id: Uuid,
    pub matched_by: ContactMatch,
    #[serde(with = "crate::time::fixed")]
    pub mapped_at: DateTime<Utc>,
    /// The hash of the customer's details as we last wrote them to the contact: the same
    /// details again cost no Xero call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details_hash: Option<String>,
    /// The contact's UpdatedDateUTC as our last write left it: a later one is an edit made in
    /// Xero since, and the contact read back at no later time is our own write coming back.
    #[serde(default, with = "crate::time::fixed_opt", skip_serializing_if = "Option::is_none")]
    pub pushed_updated_at: Option<DateTime<Utc>>,
    /// The platform's time and version of the last customer event applied: an older one is
    /// dropped.
    #[serde(default, with = "crate::time::fixed_opt", skip_serializing_if = "Option::is_none")]
    pub event_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_sequence: Option<u64>,
}

impl ContactMapping {
    /// A mapping found or made by a push that wrote none of the customer's details itself.
    pub fn new(
        customer_id: PlatformCustomerId,
        xero_contact_id: Uuid,
        matched_by: ContactMatch,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            customer_id,
            xero_contact_id,
            matched_by,
            mapped_at: at,
            details_hash: None,
            pushed_updated_at: None,
            event_at: None,
            event_sequence: None,
        }
    }
}

/// Whose a Xero contact is, as the reverse reference of a [`ContactMapping`] says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactOwner {
    pub customer_id: PlatformCustomerId,
    /// See [`ContactMapping::pushed_updated_at`].
    pub pushed_updated_at: Option<DateTime<Utc>>,
}

/// What one connection received from Xero in one UTC day: calls made and bytes of answers
/// (Xero bills egress past each tier's allowance).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct XeroUsage {
    pub calls: u64,
    pub bytes: u64,
}

impl XeroUsage {
    pub fn add(&mut self, other: XeroUsage) {
        self.calls += other.calls;
        self.bytes += other.bytes;
    }
}

/// How far the import of one resource has come for one connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportCursor {
    pub resource: String,
    /// The newest UpdatedDateUTC the platform has accepted; the next run asks for newer.
    #[serde(with = "crate::time::fixed_opt", default)]
    pub modified_since: Option<DateTime<Utc>>,
    /// When the last run first read: records carrying a time shortly before it may have been
    /// invisible then (see scheduled-import's `cursor`).
    #[serde(with = "crate::time::fixed_opt", default)]
    pub read_at: Option<DateTime<Utc>>,
    /// Set while a run pages by number through a window of changes larger than a page, with
    /// the `If-Modified-Since` those pages are numbered in.
    #[serde(default)]
    pub next_page: Option<u32>,
    #[serde(with = "crate::time::fixed_opt", default)]
    pub paging_from: Option<DateTime<Utc>>,
    /// What was delivered inside the overlap before `modified_since`, as `{time}|{id}` (older
    /// runs kept plain ids at that instant): Xero lists them again, and they are not news.
    #[serde(default)]
    pub boundary: Vec<String>,
    /// Ids of records Xero sent that did not parse: tried again each run until they do.
    #[serde(default)]
    pub unreadable: Vec<String>,
    /// For resources read whole (tax rates, accounts ...): what was last delivered.
    #[serde(default)]
    pub content_hash: Option<String>,
    #[serde(with = "crate::time::fixed")]
    pub updated_at: DateTime<Utc>,
    #[serde(default)]
    pub version: u64,
}

impl ImportCursor {
    /// A resource never imported (version 0: the first save must create it).
    pub fn new(resource: &str, now: DateTime<Utc>) -> Self {
        Self {
            resource: resource.to_owned(),
            modified_since: None,
            read_at: None,
            next_page: None,
            paging_from: None,
            boundary: Vec::new(),
            unreadable: Vec::new(),
            content_hash: None,
            updated_at: now,
            version: 0,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeliveryStatus {
    /// Recorded, not yet handed to the queue.
    Received,
    Enqueued,
}

/// A webhook delivery id seen recently, so a redelivery is acknowledged without a second push.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub delivery_id: String,
    pub status: DeliveryStatus,
    #[serde(with = "crate::time::fixed")]
    pub received_at: DateTime<Utc>,
    #[serde(with = "crate::time::fixed")]
    pub expires_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_ids_refuse_key_separators_and_empties() {
        assert!(AccountId::parse("acct_42").is_ok());
        assert_eq!(AccountId::parse("").unwrap_err().reason, "is empty");
        let err = AccountId::parse("a#b").unwrap_err();
        assert_eq!(err.to_string(), "account id may hold only letters, digits and - _ . : @");
        assert!(AccountId::parse("x".repeat(129)).is_err());
    }

    #[test]
    fn platform_ids_are_validated_when_deserialized() {
        let err = serde_json::from_str::<AccountId>("\"a b\"").unwrap_err();
        assert!(err.to_string().contains("account id"), "{err}");
    }

    #[test]
    fn xero_ids_must_be_uuids() {
        assert!(TenantId::parse("not-a-uuid").is_err());
        assert!(TenantId::parse("4a6b6a0a-6a5b-4f6c-9d1c-6d3c1b0f9a11").is_ok());
    }
}
