//! The items' Xero calls: one `POST /Items` for every upsert of a lot, one `DELETE` per deletion.

use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;
use xero_sync_domain::xero::{ValidationError, refusal_reasons};
use xero_sync_runtime::App;
use xero_sync_runtime::token_provider::TokenError;
use xero_sync_xero::{ApiRequest, XeroError};

use super::{ItemOutcome, ItemResult, Job, Plan};
use crate::contact::literal;
use crate::push::{PushPolicy, idempotency_key, later_for};
use xero_sync_domain::model::Connection;

/// One item of Xero's answer.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Answered {
    #[serde(rename = "ItemID", default)]
    item_id: Option<Uuid>,
    #[serde(default)]
    status_attribute_string: Option<String>,
    #[serde(default)]
    validation_errors: Vec<ValidationError>,
}

#[derive(Debug, Default, Deserialize)]
struct Items {
    #[serde(rename = "Items", default)]
    items: Vec<Value>,
}

impl Answered {
    fn read(v: &Value) -> Answered {
        serde_json::from_value(v.clone()).unwrap_or_default()
    }
}

/// Writes what the jobs plan; each job written gets its result.
pub(super) async fn to_xero(app: &App, _policy: &PushPolicy, connection: &Connection, jobs: &mut [Job]) {
    let upserts: Vec<usize> = (0..jobs.len()).filter(|&i| matches!(jobs[i].plan, Plan::Upsert { .. })).collect();
    if !upserts.is_empty() {
        upsert(app, connection, jobs, &upserts).await;
    }
    let deletions: Vec<usize> = (0..jobs.len()).filter(|&i| matches!(jobs[i].plan, Plan::Delete)).collect();
    for i in deletions {
        let result = delete(app, connection, &jobs[i]).await;
        jobs[i].result = Some(result);
    }
}

async fn upsert(app: &App, connection: &Connection, jobs: &mut [Job], which: &[usize]) {
    let elements: Vec<Value> = which
        .iter()
        .map(|&i| {
            let Plan::Upsert { body, .. } = &jobs[i].plan else { unreachable!("only upserts are chosen") };
            let mut element = body.clone();
            // By its id once known, so a code changed in the platform renames the same item.
            if let (Some(id), Some(map)) =
                (jobs[i].record.xero_item_id.filter(|_| !jobs[i].record.deleted), element.as_object_mut())
            {
                map.insert("ItemID".into(), json!(id));
            }
            element
        })
        .collect();
    let count = elements.len();
    let deliveries: Vec<&str> = which.iter().map(|&i| jobs[i].event.delivery_id.as_str()).collect();
    let body = json!({ "Items": elements });
    let mut request = ApiRequest::new("/Items");
    request.query = vec![("summarizeErrors", "false".into())];
    request.idempotency_key = Some(idempotency_key(connection.tenant_id, "POST", &body, &deliveries));
    let answer = match app.tokens.post::<_, Items>(connection, &request, &body).await {
        Ok(answer) if answer.body.items.len() == count => answer.body.items,
        Ok(answer) => {
            let e = TokenError::Xero(XeroError::Unreadable {
                what: "/Items".into(),
                reason: format!("{count} items sent, {} answered", answer.body.items.len()),
                maybe_applied: true,
            });
            return fail_all(jobs, which, &e);
        }
        Err(e) => return fail_all(jobs, which, &e),
    };
    for (&i, raw) in which.iter().zip(answer) {
        let item = Answered::read(&raw);
        let refused = item.status_attribute_string.as_deref() == Some("ERROR") || !item.validation_errors.is_empty();
        jobs[i].result = Some(match (refused, item.item_id) {
            (true, _) | (false, None) => {
                Ok(ItemOutcome::Failed { reasons: refusal_reasons(item.validation_errors, "item") })
            }
            (false, Some(id)) if jobs[i].record.xero_item_id.is_none() || jobs[i].record.deleted => {
                Ok(ItemOutcome::Created { xero_item_id: id })
            }
            (false, Some(id)) => Ok(ItemOutcome::Updated { xero_item_id: id }),
        });
        if !refused {
            jobs[i].in_xero = serde_json::from_value(raw).ok();
        }
    }
}

fn fail_all(jobs: &mut [Job], which: &[usize], e: &TokenError) {
    for &i in which {
        jobs[i].result = Some(failure(e));
    }
}

/// Deletes the Xero item, found by its code when its id was never learnt; one Xero no longer
/// has is deleted already.
async fn delete(app: &App, connection: &Connection, job: &Job) -> ItemResult {
    let id = match job.record.xero_item_id {
        Some(id) => id,
        None => {
            let mut request = ApiRequest::new("/Items");
            request.query = vec![("where", format!("Code=={}", literal(&job.event.item.code)))];
            match app.tokens.get::<Items>(connection, &request).await {
                Ok(found) => match found.body.items.first().and_then(|i| Answered::read(i).item_id) {
                    Some(id) => id,
                    None => return Ok(ItemOutcome::Deleted { xero_item_id: None }),
                },
                Err(e) => return failure(&e),
            }
        }
    };
    let path = format!("/Items/{id}");
    match app.tokens.delete::<Value>(connection, &ApiRequest::new(&path)).await {
        Ok(_) | Err(TokenError::Xero(XeroError::NotFound(_))) => Ok(ItemOutcome::Deleted { xero_item_id: Some(id) }),
        Err(e) => failure(&e),
    }
}

/// A failed call as the outcome of the items it was for: a lost grant parks them, what Xero
/// refuses for good fails them, the rest is tried again.
fn failure(e: &TokenError) -> ItemResult {
    match e {
        TokenError::Reconnect | TokenError::Xero(XeroError::NotGranted) => Ok(ItemOutcome::Parked),
        TokenError::Xero(XeroError::Validation { messages, .. }) => {
            Ok(ItemOutcome::Failed { reasons: messages.clone() })
        }
        e => Err(later_for(e)),
    }
}
