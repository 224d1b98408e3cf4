//! What Xero's webhooks said changed, read and announced: the same events as the import, for
//! only the objects named, within a minute of Xero telling us.
//!
//! * Contacts and invoices are read by id, [`IDS_PER_CALL`] to a call (`IDs=`; invoices with
//!   `page=1`, so that they come with their payments). Only our sales invoices are announced.
//! * Credit notes have no `IDs=`: those changed since the earliest event are listed
//!   (`If-Modified-Since`, customer credit notes only, paged), and the invoices they are
//!   allocated to are read with the others: a credit reaches the platform as its invoice's
//!   `amount_credited`.
//! * Payments have no webhook, but a payment changes its invoice: an invoice's payments not
//!   yet announced become `payment.recorded`; an announced one that left it is read (one call)
//!   and, deleted, becomes `payment.reversed`.
//! * Each event is published once, however often Xero redelivers and however many deliveries
//!   run at once: an event's id is claimed before it is published (see [`at_most_once`]). Its
//!   state is noted on the sync record by the run that published it.

use std::collections::BTreeSet;

use chrono::Duration;
use uuid::Uuid;
use xero_sync_domain::events::PlatformEvent;
use xero_sync_domain::model::{ConnectionKey, ConnectionStatus};
use xero_sync_domain::store::at_most_once;
use xero_sync_domain::xero::webhooks::{Change, ChangeCategory};
use xero_sync_domain::xero::{CreditNotes, InvoiceType};
use xero_sync_runtime::App;
use xero_sync_xero::ApiRequest;

use super::documents::{Billed, Paid, StateChange, is_echo};
use super::resource::Incremental;
use super::{ImportError, ImportPolicy, ImportSummary, Item, Run};

/// About 50 ids keep a request's URL inside what Xero accepts.
pub const IDS_PER_CALL: usize = 50;
/// How long an event's id is remembered as published: longer than Xero retries a delivery (24 h).
const REMEMBER: Duration = Duration::days(3);

/// Reads and announces one connection's changes.
pub async fn apply(
    app: &App,
    policy: &ImportPolicy,
    key: &ConnectionKey,
    changes: &[Change],
) -> Result<ImportSummary, ImportError> {
    let skip = |why: &str| Ok(ImportSummary { skipped: Some(why.to_owned()), ..Default::default() });
    let Some(connection) = app.services.store.get_connection(key).await? else { return skip("no such connection") };
    if connection.status != ConnectionStatus::Connected {
        return skip("not connected");
    }
    let mut run = Run::new(app, policy, connection);
    let result = run.changes(changes).await;
    if run.summary.events > 0 {
        app.services.store.record_activity(key, app.now()).await?;
    }
    match result {
        Ok(()) => {}
        Err(ImportError::Reconnect) => return skip("the organisation must be reconnected"),
        Err(e) => return Err(e),
    }
    if run.summary.unreadable > 0 {
        // Left for the safety-net import, which keeps such records on its cursor.
        tracing::warn!(account = %key.account_id, tenant = %key.tenant_id, count = run.summary.unreadable, "changed Xero records did not parse");
    }
    tracing::info!(account = %key.account_id, tenant = %key.tenant_id, changes = changes.len(), events = run.summary.events, calls = run.summary.calls, "Xero changes announced");
    Ok(run.summary)
}

fn ids(changes: &[Change], category: ChangeCategory) -> BTreeSet<Uuid> {
    changes.iter().filter(|c| c.category == category).map(|c| c.resource_id).collect()
}

impl Run<'_> {
    async fn changes(&mut self, changes: &[Change]) -> Result<(), ImportError> {
        let contacts = ids(changes, ChangeCategory::Contact);
        let mut invoices = ids(changes, ChangeCategory::Invoice);
        if let Some(earliest) = changes.iter().filter(|c| c.category == ChangeCategory::CreditNote).map(|c| c.at).min()
        {
            invoices.extend(self.credited_invoices(earliest - self.policy.overlap).await?);
        }
        for chunk in contacts.into_iter().collect::<Vec<_>>().chunks(IDS_PER_CALL) {
            let items = self.by_ids(Incremental::Contacts, chunk, &[("includeArchived", "true".into())]).await?;
            let found: Vec<&Item> = items.iter().collect();
            let events = self.contact_events(&found).await?;
            self.publish_once(events).await?;
            self.summary.unreadable += std::mem::take(&mut self.unreadable).len();
        }
        for chunk in invoices.into_iter().collect::<Vec<_>>().chunks(IDS_PER_CALL) {
            let items = self.by_ids(Incremental::Invoices, chunk, &[("page", "1".into())]).await?;
            self.invoice_changes(&items).await?;
            self.summary.unreadable += std::mem::take(&mut self.unreadable).len();
        }
        Ok(())
    }

    async fn by_ids(
        &mut self,
        resource: Incremental,
        ids: &[Uuid],
        extra: &[(&'static str, String)],
    ) -> Result<Vec<Item>, ImportError> {
        let mut request = ApiRequest::new(resource.path());
        request.query = vec![("IDs", ids.iter().map(Uuid::to_string).collect::<Vec<_>>().join(","))];
        request.query.extend(extra.iter().cloned());
        self.list(resource, &request).await
    }

    /// The invoices that customer credit notes changed since `since` are allocated to.
    async fn credited_invoices(&mut self, since: chrono::DateTime<chrono::Utc>) -> Result<Vec<Uuid>, ImportError> {
        let mut invoices = Vec::new();
        for page in 1.. {
            let mut request = ApiRequest::new("/CreditNotes");
            request.if_modified_since = Some(since);
            request.query = vec![
                ("where", format!("Type==\"{}\"", InvoiceType::AccRecCredit)),
                ("page", page.to_string()),
                ("pageSize", self.policy.page_size.to_string()),
            ];
            let listed: CreditNotes = self.get(&request).await?;
            let count = listed.credit_notes.len();
            invoices.extend(
                listed
                    .credit_notes
                    .iter()
                    .flat_map(|c| &c.allocations)
                    .filter_map(|a| a.invoice.as_ref().and_then(|i| i.invoice_id)),
            );
            if count < self.policy.page_size as usize {
                break;
            }
        }
        Ok(invoices)
    }

    /// Our invoices among `items`: a moved payment state, payments recorded and reversed.
    async fn invoice_changes(&mut self, items: &[Item]) -> Result<(), ImportError> {
        let found: Vec<&Item> = items.iter().collect();
        let invoices: Vec<Billed> = self.parse(&found, Billed::read);
        let ids: Vec<Uuid> = invoices.iter().map(|i| i.invoice_id).collect();
        let ours = self.app.services.store.invoices_for_xero_ids(&self.key, &ids).await?;
        for invoice in &invoices {
            let Some(platform_id) = ours.get(&invoice.invoice_id) else { continue };
            let Some(record) = self.app.services.store.get_sync_record(&self.key, platform_id).await? else { continue };
            let state = invoice.state();
            let paid: Vec<Paid> = invoice.payments.iter().filter_map(|p| Paid::on_invoice(p, invoice)).collect();
            let present: Vec<Uuid> = paid.iter().map(|p| p.id).collect();
            let pushed = self.pushed_payments(&paid).await?;
            let mut events = Vec::new();
            if record.payment_state.as_deref() != Some(state.as_str()) {
                events.push(self.state_event(invoice, platform_id));
            }
            let news = |p: &&Paid| !record.announced_payments.contains(&p.id) && !is_echo(p, &pushed);
            for p in paid.iter().filter(news) {
                events.push(self.payment_event(p, platform_id));
            }
            let gone: Vec<Uuid> =
                record.announced_payments.iter().filter(|id| !present.contains(id)).copied().collect();
            for id in gone {
                let listed = self.list(Incremental::Payments, &ApiRequest::new(&format!("/Payments/{id}"))).await?;
                let listed: Vec<&Item> = listed.iter().collect();
                events.extend(self.payment_events(&listed).await?);
            }
            if events.is_empty() && present == record.announced_payments {
                continue;
            }
            if self.publish_once(events).await? {
                let change = StateChange { record, state, status: invoice.status, payments: Some(present) };
                self.note_payment_states(vec![change]).await?;
            }
        }
        Ok(())
    }

    /// Publishes each event unless it was published before (or is being published now by
    /// another delivery). True when every event was published here or found published, so the
    /// state behind them may be noted; false when another run is still at it (it notes it).
    async fn publish_once(&mut self, events: Vec<PlatformEvent>) -> Result<bool, ImportError> {
        let store = self.app.services.store.as_ref();
        let mut all_ours = true;
        for event in events {
            let now = self.app.now();
            let name = format!("xero-event#{}", event.id);
            let publisher = &self.app.services.events;
            let published = at_most_once(store, &name, now, REMEMBER, || async move {
                publisher.publish(std::slice::from_ref(&event)).await
            })
            .await
            .map_err(|e| ImportError::Later {
                reason: format!("publishing events: {e}"),
                after: std::time::Duration::from_secs(30),
            })?;
            if published {
                self.summary.events += 1;
            } else {
                all_ours = false;
            }
        }
        Ok(all_ours)
    }
}
