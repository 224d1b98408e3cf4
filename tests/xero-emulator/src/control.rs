//! The JSON control API under `/_emulator/` (the same operations as the Rust methods on
//! `Emulator`), for the binary and for tests written in other languages.

use std::sync::Arc;

use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::faults::FaultRule;
use crate::http::{Reply, Req};
use crate::seed::Seed;
use crate::server::{Settings, Shared};
use crate::state::State;
use crate::util::{iso, parse_datetime};
use crate::webhooks::WebhookEvent;

fn bad(msg: impl std::fmt::Display) -> Response {
    Reply::json(400, json!({"error": msg.to_string()})).into_response()
}

fn ok(v: Value) -> Response {
    Reply::json(200, v).into_response()
}

fn body<T: for<'de> Deserialize<'de>>(req: &Req) -> Result<T, Box<Response>> {
    serde_json::from_slice(&req.body).map_err(|e| Box::new(bad(format!("invalid JSON body: {e}"))))
}

/// What `GET /connections` says of each connection, plus whose it is (for tests).
pub fn connections_dump(state: &State) -> Vec<Value> {
    state
        .connections
        .iter()
        .map(|c| {
            let mut json = crate::identity::connection_json(state, c);
            json["clientId"] = json!(c.client_id);
            json["userId"] = json!(c.user_id);
            json
        })
        .collect()
}

fn clock_json(shared: &Shared) -> Value {
    let now = shared.clock.now();
    json!({"now": iso(now) + "Z", "nowMillis": now.timestamp_millis()})
}

#[derive(Deserialize)]
struct Advance {
    #[serde(default)]
    seconds: u64,
    #[serde(default)]
    millis: u64,
}

#[derive(Deserialize)]
struct SetClock {
    now: String,
}

#[derive(Deserialize)]
struct Reseed {
    seed: u64,
}

#[derive(Deserialize)]
struct Shorthand {
    tenant_id: Uuid,
    category: String,
    event_type: String,
    resource_id: Uuid,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum EventSpec {
    Full(WebhookEvent),
    Short(Shorthand),
}

#[derive(Deserialize)]
struct SendWebhook {
    url: String,
    key: String,
    #[serde(default)]
    events: Vec<EventSpec>,
}

#[derive(Deserialize)]
struct Visibility {
    tenant_id: Uuid,
    resource: String,
    id: Uuid,
    visible_at: String,
}

#[derive(Deserialize)]
struct Itr {
    url: String,
    key: String,
}

pub async fn handle(shared: &Arc<Shared>, req: &Req) -> Response {
    let segs: Vec<&str> = req.lower.iter().skip(1).map(String::as_str).collect();
    let method = req.method.as_str();
    match (method, segs.as_slice()) {
        ("GET", ["health"]) => ok(json!({"status": "ok", "baseUrl": shared.base_url()})),
        ("GET", ["info"]) => {
            let state = shared.lock();
            let base = shared.base_url();
            ok(json!({
                "baseUrl": base,
                "authorizeUrl": format!("{base}/identity/connect/authorize"),
                "tokenUrl": format!("{base}/connect/token"),
                "apiUrl": format!("{base}/api.xro/2.0"),
                "tenants": state.tenants.iter().map(|t| json!({"tenantId": t.id, "name": t.name})).collect::<Vec<_>>(),
                "users": state.users.iter().map(|u| json!({"userId": u.user_id, "email": u.email, "organisations": u.organisations})).collect::<Vec<_>>(),
                "clients": state.clients.values().map(|c| json!({"clientId": c.client_id, "redirectUris": c.redirect_uris, "name": c.name})).collect::<Vec<_>>(),
            }))
        }
        ("POST", ["seed"]) => {
            let seed: Seed = match body(req) {
                Ok(s) => s,
                Err(r) => return *r,
            };
            let now = shared.clock.now();
            match crate::seed::apply(&mut shared.lock(), seed, now) {
                Ok(()) => ok(json!({"seeded": true})),
                Err(e) => bad(e),
            }
        }
        ("POST", ["seed", "demo"]) => {
            let now = shared.clock.now();
            match crate::seed::apply(&mut shared.lock(), crate::seed::demo::seed(), now) {
                Ok(()) => ok(json!({"seeded": true})),
                Err(e) => bad(e),
            }
        }
        ("GET", ["settings"]) => ok(serde_json::to_value(shared.settings()).unwrap_or_default()),
        ("PUT" | "PATCH", ["settings"]) => {
            let patch: Value = match body(req) {
                Ok(v) => v,
                Err(r) => return *r,
            };
            let mut current = serde_json::to_value(shared.settings()).unwrap_or_default();
            merge(&mut current, &patch);
            match serde_json::from_value::<Settings>(current) {
                Ok(s) => {
                    shared.update_settings(|cur| *cur = s.clone());
                    ok(serde_json::to_value(s).unwrap_or_default())
                }
                Err(e) => bad(format!("invalid settings: {e}")),
            }
        }
        ("GET", ["clock"]) => ok(clock_json(shared)),
        ("POST", ["clock", "advance"]) => match body::<Advance>(req) {
            Ok(a) => {
                shared
                    .clock
                    .advance(std::time::Duration::from_secs(a.seconds) + std::time::Duration::from_millis(a.millis));
                ok(clock_json(shared))
            }
            Err(r) => *r,
        },
        ("POST", ["clock", "set"]) => match body::<SetClock>(req) {
            Ok(s) => match parse_datetime(&s.now) {
                Some(t) => {
                    shared.clock.set(t);
                    ok(clock_json(shared))
                }
                None => bad(format!("not a date-time: {}", s.now)),
            },
            Err(r) => *r,
        },
        ("GET", ["faults"]) => ok(json!(
            shared.faults.list().into_iter().map(|(id, rule)| json!({"id": id, "rule": rule})).collect::<Vec<_>>()
        )),
        ("POST", ["faults"]) => match body::<FaultRule>(req) {
            Ok(rule) => ok(json!({"id": shared.faults.add(rule)})),
            Err(r) => *r,
        },
        ("POST", ["faults", "reseed"]) => match body::<Reseed>(req) {
            Ok(r) => {
                shared.faults.reseed(r.seed);
                ok(json!({"seed": r.seed}))
            }
            Err(r) => *r,
        },
        ("DELETE", ["faults"]) => {
            shared.faults.clear();
            ok(json!({"cleared": true}))
        }
        ("DELETE", ["faults", id]) => match id.parse::<u64>() {
            Ok(id) if shared.faults.remove(id) => ok(json!({"removed": id})),
            _ => Reply::json(404, json!({"error": "no such fault"})).into_response(),
        },
        ("GET", ["counters"]) => ok(serde_json::to_value(shared.counters()).unwrap_or_default()),
        ("DELETE", ["counters"]) => {
            shared.reset_counters();
            ok(json!({"cleared": true}))
        }
        ("GET", ["connections"]) => ok(json!(connections_dump(&shared.lock()))),
        ("GET", ["tenants"]) => {
            let state = shared.lock();
            ok(json!(state.tenants.iter().map(|t| json!({"tenantId": t.id, "name": t.name})).collect::<Vec<_>>()))
        }
        ("GET", ["tenants", tenant, resource]) => {
            let Ok(tenant) = Uuid::parse_str(tenant) else { return bad("tenant id must be a GUID") };
            let state = shared.lock();
            match crate::accounting::dump(&state, tenant, resource, shared.clock.now()) {
                Some(items) => ok(json!(items)),
                None => Reply::json(404, json!({"error": "unknown tenant or resource"})).into_response(),
            }
        }
        ("POST", ["visibility"]) => {
            let v: Visibility = match body(req) {
                Ok(v) => v,
                Err(r) => return *r,
            };
            let Some(at) = parse_datetime(&v.visible_at) else {
                return bad(format!("not a date-time: {}", v.visible_at));
            };
            let now = shared.clock.now();
            match crate::accounting::delay_visibility(&mut shared.lock(), v.tenant_id, &v.resource, v.id, at, now) {
                Ok(()) => ok(json!({"tenant_id": v.tenant_id, "resource": v.resource.to_ascii_lowercase(),
                    "id": v.id, "visible_at": iso(at) + "Z"})),
                Err(e) => bad(e),
            }
        }
        ("POST", ["webhooks", "send"]) => {
            let send: SendWebhook = match body(req) {
                Ok(s) => s,
                Err(r) => return *r,
            };
            let now = shared.clock.now();
            let base = shared.base_url();
            let events = send
                .events
                .into_iter()
                .map(|e| match e {
                    EventSpec::Full(e) => e,
                    EventSpec::Short(s) => {
                        WebhookEvent::new(&base, s.tenant_id, &s.category, &s.event_type, s.resource_id, now)
                    }
                })
                .collect();
            match crate::webhooks::send(&send.url, &send.key, events, true).await {
                Ok(d) => ok(serde_json::to_value(d).unwrap_or_default()),
                Err(e) => Reply::json(502, json!({"error": e})).into_response(),
            }
        }
        ("POST", ["webhooks", "deliver"]) => match crate::webhooks::deliver_pending(shared).await {
            Ok(d) => ok(json!({ "delivery": d, "pending": shared.lock().webhook_outbox.len() })),
            Err(e) => Reply::json(502, json!({"error": e})).into_response(),
        },
        ("POST", ["webhooks", "intent-to-receive"]) => {
            let itr: Itr = match body(req) {
                Ok(s) => s,
                Err(r) => return *r,
            };
            match crate::webhooks::intent_to_receive(&itr.url, &itr.key).await {
                Ok(r) => ok(serde_json::to_value(r).unwrap_or_default()),
                Err(e) => Reply::json(502, json!({"error": e})).into_response(),
            }
        }
        _ => Reply::json(404, json!({"error": format!("no control endpoint {method} {}", req.path)})).into_response(),
    }
}

fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                match t.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => merge(existing, v),
                    _ => {
                        t.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}
