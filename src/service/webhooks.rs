//! Outbound events (webhooks): a vendor's CRM or support desk subscribes to kinds of
//! history events at a URL and learns what happened without polling.
//!
//! Every history event is a possible outbound event; its kind is the event's action
//! (`license.activated`, `order.created`, `ticket.mailed` …). The `WebhookSender` worker
//! queues the events after each subscription's cursor (in the transaction that moves the
//! cursor, so an event is queued once per subscription whichever node looks) and sends the
//! due deliveries on the queue the outbox and the write-backs use: claimed by one node,
//! retried with a doubling delay, failed after `webhook_max_attempts`, requeueable. A
//! subscription's deliveries leave one at a time in the history's order, so a receiver sees
//! a license's events in the order they happened, also after it was down for a while.
//!
//! Each delivery is signed: `Licentia-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
//! "<t>.<body>" keyed with the subscription's secret>`; `Licentia-Delivery` is the event's
//! id, the same on every attempt (a receiver drops what it has seen).
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::queue::{self, Failure, Recorded};
use super::workers::{Next, Stopping, Worker};
use super::Core;
use crate::domain::ticket::TicketCode;
use crate::domain::{Actor, QueueState, Role};
use crate::error::{Error, Result};
use crate::store::history::{self, EventRow};
use crate::store::webhooks::{self as store, Deliveries, DeliveryToSend, NewWebhook};
pub use crate::store::webhooks::{DeliveryView, WebhookView};

/// The families of event kinds (the part before the dot).
pub const FAMILIES: &[&str] = &[
    "activation",
    "approval",
    "blacklist",
    "cloud",
    "container",
    "customer",
    "firm",
    "item",
    "license",
    "mail",
    "order",
    "production",
    "settings",
    "ticket",
    "update",
    "user",
    "webhook",
    "writeback",
];

/// Most kinds one subscription names.
const MAX_KINDS: usize = 50;

/// Most events one look reads per subscription (the worker looks again at once after a
/// full page).
const PAGE: i64 = 500;

const MANAGE: &[Role] = &[Role::Admin];
const READ: &[Role] = &[Role::Admin, Role::Support];

/// A subscription to make.
#[derive(schemars::JsonSchema, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSubscription {
    pub url: String,
    /// Kinds: `license.activated`, a family `license.*`, or `*` for every event.
    pub events: Vec<String>,
    #[serde(default)]
    pub description: String,
}

/// A subscription as made: its secret is shown this once.
#[derive(schemars::JsonSchema, Debug, Serialize)]
pub struct Made {
    #[serde(flatten)]
    pub webhook: WebhookView,
    pub secret: String,
}

/// Checks one kind pattern: `*`, `family.*` or `family.name` of a known family.
fn check_kind(k: &str) -> Result<()> {
    if k == "*" {
        return Ok(());
    }
    let bad = |why: String| Error::invalid("events", why);
    let shown: String = k.chars().take(60).collect();
    let Some((family, name)) = k.split_once('.') else {
        return Err(bad(format!(
            "{shown:?} is not a kind: write family.name, family.* or *"
        )));
    };
    if !FAMILIES.contains(&family) {
        return Err(bad(format!(
            "{shown:?}: {:?} is not a family of events; one of {}",
            family.chars().take(30).collect::<String>(),
            FAMILIES.join(", ")
        )));
    }
    let word = |s: &str| {
        !s.is_empty() && s.len() <= 60 && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
    };
    if name != "*" && !word(name) {
        return Err(bad(format!(
            "{shown:?}: after the dot comes * or a name of lowercase letters and _"
        )));
    }
    Ok(())
}

/// Whether an event of kind `action` is one of `kinds` (comma separated patterns).
pub fn matches(kinds: &str, action: &str) -> bool {
    kinds.split(',').any(|k| {
        k == "*"
            || k == action
            || k.strip_suffix(".*")
                .is_some_and(|f| action.split_once('.').is_some_and(|(af, _)| af == f))
    })
}

fn check_url(u: &str) -> Result<()> {
    let bad = |why: &str| Error::invalid("url", why.to_string());
    if u.len() > 2000 {
        return Err(bad("at most 2,000 characters"));
    }
    let parsed =
        url::Url::parse(u).map_err(|e| Error::invalid("url", format!("not a URL: {e}")))?;
    if !["http", "https"].contains(&parsed.scheme()) {
        return Err(bad("must be an http:// or https:// URL"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    if parsed.fragment().is_some() {
        return Err(bad("must not have a #fragment"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        // The URL goes into the history, which keeps it for good; deliveries are signed.
        return Err(bad(
            "must not hold credentials (user:password@): the receiver checks the signature",
        ));
    }
    Ok(())
}

/// Checks a subscription: its URL, its kinds (deduplicated, in the order given) and its
/// description; the kinds as stored.
fn check(req: &NewSubscription) -> Result<String> {
    check_url(&req.url)?;
    if req.events.is_empty() {
        return Err(Error::invalid(
            "events",
            "name at least one kind (\"*\" for every event)",
        ));
    }
    if req.events.len() > MAX_KINDS {
        return Err(Error::invalid(
            "events",
            format!("at most {MAX_KINDS} kinds"),
        ));
    }
    let mut kinds: Vec<&str> = vec![];
    for k in &req.events {
        let k = k.trim();
        check_kind(k)?;
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    if req.description.chars().count() > 200 {
        return Err(Error::invalid("description", "at most 200 characters"));
    }
    Ok(kinds.join(","))
}

const SECRET_AAD: &[u8] = b"licentia webhook secret";

/// A subscription's URL as the history keeps it: without its query, which may hold a
/// receiver's token (the history keeps what it is given for good, and `webhook.*` events are
/// delivered to other subscriptions).
fn shown_url(u: &str) -> String {
    match url::Url::parse(u) {
        Ok(mut parsed) => {
            parsed.set_query(None);
            parsed.to_string()
        }
        Err(_) => String::new(),
    }
}

/// Makes a subscription; it receives the events recorded from now on (its own
/// `webhook.created` among them).
pub async fn create(core: &Core, actor: &Actor, req: NewSubscription) -> Result<Made> {
    actor.require(MANAGE, "subscribe to events")?;
    let kinds = check(&req)?;
    let mut key = [0u8; 32];
    openssl::rand::rand_bytes(&mut key).map_err(|e| Error::internal(e.to_string()))?;
    let secret = hex::encode(key);
    // Kept sealed under the master key, as firm keys are: a copy of the database does not
    // let anyone sign deliveries.
    let sealed = core.master.seal(secret.as_bytes(), SECRET_AAD)?;
    let shown = shown_url(&req.url);
    let actor = actor.clone();
    let webhook = core
        .db
        .write(move |c| {
            let (head, _) = crate::store::audit_head(c)?;
            let id = store::insert(
                c,
                &NewWebhook {
                    url: &req.url,
                    events: &kinds,
                    secret: &sealed,
                    description: req.description.trim(),
                    created_by: &actor.name,
                },
                head,
                super::now(),
            )?;
            super::audit::record(
                &actor,
                super::audit::Event {
                    action: "webhook.created",
                    details: json!({ "webhook_id": id, "url": shown, "events": kinds }),
                    ..Default::default()
                },
            )?;
            store::get(c, id)?.ok_or_else(|| Error::internal("the new subscription is gone"))
        })
        .await?;
    Ok(Made { webhook, secret })
}

pub async fn list(core: &Core, actor: &Actor) -> Result<Vec<WebhookView>> {
    actor.require(READ, "read the event subscriptions")?;
    core.db.read(store::all).await
}

/// Pauses (`active` false) or resumes a subscription. A paused one keeps queuing its
/// events and sends them when it is resumed.
pub async fn set_active(core: &Core, actor: &Actor, id: i64, active: bool) -> Result<WebhookView> {
    actor.require(MANAGE, "pause or resume event subscriptions")?;
    let actor = actor.clone();
    core.db
        .write(move |c| {
            let was = store::get(c, id)?.ok_or_else(|| Error::not_found("webhook", id))?;
            if was.active != active {
                store::set_active(c, id, active)?;
                super::audit::record(
                    &actor,
                    super::audit::Event {
                        action: if active {
                            "webhook.resumed"
                        } else {
                            "webhook.paused"
                        },
                        details: json!({ "webhook_id": id }),
                        ..Default::default()
                    },
                )?;
            }
            store::get(c, id)?.ok_or_else(|| Error::not_found("webhook", id))
        })
        .await
}

/// Deletes a subscription and its deliveries (sent or not).
pub async fn delete(core: &Core, actor: &Actor, id: i64) -> Result<()> {
    actor.require(MANAGE, "delete event subscriptions")?;
    let actor = actor.clone();
    core.db
        .write(move |c| {
            let was = store::get(c, id)?.ok_or_else(|| Error::not_found("webhook", id))?;
            store::delete(c, id)?;
            super::audit::record(
                &actor,
                super::audit::Event {
                    action: "webhook.deleted",
                    details: json!({ "webhook_id": id, "url": shown_url(&was.url) }),
                    ..Default::default()
                },
            )
        })
        .await
}

/// The newest deliveries (at most 1,000), of one subscription or of all, in one state or
/// in any.
pub async fn deliveries(
    core: &Core,
    actor: &Actor,
    webhook_id: Option<i64>,
    state: Option<String>,
) -> Result<Vec<DeliveryView>> {
    actor.require(READ, "read webhook deliveries")?;
    let state = state
        .map(|s| {
            QueueState::parse(&s)
                .map_err(|_| Error::invalid("state", "must be queued, sending, sent or failed"))
        })
        .transpose()?;
    core.db
        .read(move |c| {
            if let Some(id) = webhook_id {
                store::get(c, id)?.ok_or_else(|| Error::not_found("webhook", id))?;
            }
            store::newest(c, webhook_id, state, 1000)
        })
        .await
}

/// Puts a failed delivery back in the queue, attempts counted from zero. It is sent before
/// its subscription's later events that are still pending.
pub async fn requeue(core: &Core, actor: &Actor, id: i64) -> Result<()> {
    actor.require(READ, "re-queue webhook deliveries")?;
    let actor = actor.clone();
    core.db
        .write(move |c| {
            queue::requeue::<Deliveries>(c, id, "webhook delivery")?;
            super::audit::record(
                &actor,
                super::audit::Event {
                    action: "webhook.delivery_requeued",
                    details: json!({ "delivery_id": id }),
                    ..Default::default()
                },
            )
        })
        .await
}

/// The body of an event's delivery.
pub fn body(e: &EventRow) -> String {
    let ticket = e
        .ticket
        .as_deref()
        .map(|t| TicketCode::parse(t).map_or_else(|_| t.to_string(), |c| c.to_string()));
    let details: Value = serde_json::from_str(&e.details).unwrap_or(Value::Null);
    json!({
        "id": e.id,
        "type": e.action,
        "at": e.at.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "actor": e.actor,
        "interface": e.interface,
        "order_id": e.order_id,
        "ticket": ticket,
        "license_id": e.license_id,
        "serial": e.serial,
        "details": details,
    })
    .to_string()
}

/// The signature header's value for `body` sent at `t` (unix seconds).
pub fn signature(secret: &str, t: i64, body: &str) -> Result<String> {
    let mac = crate::connectors::signature::hmac(
        openssl::hash::MessageDigest::sha256(),
        secret.as_bytes(),
        format!("{t}.{body}").as_bytes(),
    )?;
    Ok(format!("t={t},v1={}", hex::encode(mac)))
}

/// Queues the events after each subscription's cursor (a page per subscription); how many
/// deliveries were queued, and whether any subscription has more to read.
async fn queue_new_events(core: &Core) -> Result<(usize, bool)> {
    let (behind, head) = core
        .db
        .read(|c| {
            let (head, _) = crate::store::audit_head(c)?;
            let behind: Vec<WebhookView> = store::all(c)?
                .into_iter()
                .filter(|w| w.cursor_event_id < head)
                .collect();
            Ok((behind, head))
        })
        .await?;
    let (mut queued, mut more) = (0, false);
    for w in behind {
        let (n, full) = core
            .db
            .write(move |c| {
                let page = history::page(c, w.cursor_event_id, head, PAGE)?;
                let Some(last) = page.last() else {
                    return Ok((0, false));
                };
                if !store::advance(c, w.id, w.cursor_event_id, last.id)? {
                    // Another node queued these events.
                    return Ok((0, false));
                }
                let mut n = 0;
                for e in page.iter().filter(|e| matches(&w.events, &e.action)) {
                    store::queue(c, w.id, e.id, &e.action, &body(e))?;
                    n += 1;
                }
                Ok((n, page.len() as i64 == PAGE))
            })
            .await?;
        queued += n;
        more |= full;
    }
    Ok((queued, more))
}

/// The webhook worker: queues new events, then sends the deliveries that are due.
#[derive(Default)]
pub struct WebhookSender;

impl WebhookSender {
    pub fn new() -> WebhookSender {
        WebhookSender
    }
}

impl queue::Sender for WebhookSender {
    type Queue = Deliveries;

    fn retries(&self, core: &Core) -> (i32, i64) {
        (
            core.config.webhook_max_attempts as i32,
            core.config.webhook_retry_secs as i64,
        )
    }

    /// Posts the event, signed, to its subscription's URL; only a 2xx answer counts.
    async fn send(&self, core: &Core, d: &DeliveryToSend) -> std::result::Result<(), Failure> {
        let id = d.webhook_id;
        let target = core
            .db
            .read(move |c| store::target(c, id))
            .await
            .map_err(|e| Failure::passing(e.to_string()))?;
        let Some((url, sealed)) = target else {
            return Err(Failure::permanent("the subscription was deleted"));
        };
        let secret = core
            .master
            .open(&sealed, SECRET_AAD)
            .ok()
            .and_then(|s| String::from_utf8(s).ok())
            .ok_or_else(|| Failure::permanent("the subscription's secret cannot be opened"))?;
        let t = chrono::Utc::now().timestamp();
        let sig = signature(&secret, t, &d.body).map_err(|e| Failure::passing(e.to_string()))?;
        let headers = vec![
            ("Content-Type", "application/json".to_string()),
            (
                "User-Agent",
                concat!("Licentia/", env!("CARGO_PKG_VERSION")).to_string(),
            ),
            ("Licentia-Event", d.kind.clone()),
            ("Licentia-Delivery", d.event_id.to_string()),
            ("Licentia-Signature", sig),
        ];
        let timeout = Duration::from_secs(core.config.webhook_timeout_secs);
        queue::post(url, headers, d.body.clone(), timeout).await
    }

    fn log(&self, id: i64, recorded: Recorded, why: Option<&str>) {
        match recorded {
            Recorded::Failed => {
                tracing::warn!(delivery = id, error = ?why, "webhook delivery failed for good")
            }
            Recorded::TakenOver => tracing::warn!(
                delivery = id,
                "webhook delivery outcome not recorded: claimed by another node"
            ),
            Recorded::Sent | Recorded::Again => {}
        }
    }
}

impl Worker for WebhookSender {
    fn name(&self) -> &'static str {
        "webhooks"
    }

    async fn step(&mut self, core: &Arc<Core>, stop: &Stopping) -> Result<Next> {
        let (queued, more) = queue_new_events(core).await?;
        let sent = queue::send_due(core, self, stop).await?;
        Ok(if more || queued + sent > 0 {
            Next::Now
        } else {
            Next::After(Duration::from_millis(500))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_match_by_name_by_family_or_all() {
        assert!(matches("license.activated", "license.activated"));
        assert!(!matches("license.activated", "license.activated_twice"));
        assert!(matches("order.created,license.*", "license.returned"));
        assert!(!matches("license.*", "licenses.returned"));
        assert!(!matches("license.*", "cloud.seat_denied"));
        assert!(matches("*", "cloud.seat_denied"));
    }

    #[test]
    fn unknown_families_and_malformed_kinds_are_refused_saying_why() {
        for ok in ["*", "license.*", "ticket.mailed", "cloud.seat_denied"] {
            check_kind(ok).unwrap();
        }
        for (bad, says) in [
            ("licence.activated", "not a family"),
            ("license", "not a kind"),
            ("license.Activated", "lowercase"),
            ("license.", "lowercase"),
            ("license.a,b", "lowercase"),
        ] {
            let e = check_kind(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn the_signature_is_the_hmac_of_the_timestamp_and_the_body() {
        // Python: hmac.new(b"key", b"1700000000.{}", hashlib.sha256).hexdigest()
        assert_eq!(
            signature("key", 1_700_000_000, "{}").unwrap(),
            "t=1700000000,v1=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae"
        );
    }
}
