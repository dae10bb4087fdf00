//! Connectors: shops and ERPs send orders to `/connect/<name>`; each connector is defined by
//! a TOML file in `connectors/` (loaded and checked at start). What they send is read by the
//! pure parsers in `crate::connectors`; here an order from a connector becomes a ticket
//! through the same `create_order_then` as the JSON API, so the same notification twice is
//! one order. Every notification is recorded with its outcome; an ERP connector may post
//! the ticket back through a durable queue, sent by the `WriteBackSender` worker.
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::json;

use super::catalog::CustomerData;
use super::orders::{self, NewOrder, OrderLine, OrderView, Placed};
use super::queue::{self, Failure, Recorded};
use super::workers::{Next, Stopping, Worker};
use super::Core;
use crate::connectors::definition::{self, Definition, Kind, Shop};
use crate::connectors::shop::{read_shop, ShopNotice};
use crate::connectors::signature::verify_shop;
use crate::connectors::writeback;
use crate::connectors::Incoming;
use crate::domain::{Actor, NotificationOutcome, Role};
use crate::error::{Error, Result};
use crate::store::writebacks::{self, WriteBackToPost, WriteBacks};
use crate::store::{notifications, Conn};

pub use crate::store::notifications::NotificationView;
pub use crate::store::writebacks::WriteBackView;

/// The connectors of this server, by name.
#[derive(Debug, Default)]
pub struct Connectors(pub BTreeMap<String, Definition>);

impl Connectors {
    /// Reads every `*.toml` in `dir` (none if it does not exist). A bad definition stops
    /// the start with a message naming the file and the field.
    pub fn load(dir: &str) -> Result<Connectors> {
        let mut out = BTreeMap::new();
        let path = Path::new(dir);
        if dir.is_empty() || !path.is_dir() {
            return Ok(Connectors(out));
        }
        let mut files: Vec<_> = std::fs::read_dir(path)
            .map_err(|e| Error::invalid("connectors_dir", format!("{dir}: {e}")))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        for file in files {
            let name = file
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_string();
            let bad = |field: &str, why: String| {
                Error::invalid(
                    "connectors_dir",
                    format!("{}: {field}: {why}", file.display()),
                )
            };
            definition::check_name(&name).map_err(|why| bad("file name", why))?;
            let text = std::fs::read_to_string(&file).map_err(|e| bad("file", e.to_string()))?;
            let def = definition::parse(&name, &text, |var| std::env::var(var).ok())
                .map_err(|(field, why)| bad(&field, why))?;
            if let Some(why) = &def.off {
                tracing::warn!(connector = %name, %why, "connector off");
            }
            out.insert(name, def);
        }
        Ok(Connectors(out))
    }

    pub fn get(&self, name: &str) -> Result<&Definition> {
        let def = self
            .0
            .get(name)
            .ok_or_else(|| Error::not_found("connector", name))?;
        match &def.off {
            Some(why) => Err(Error::NotAllowed(format!(
                "connector {name} is not set up: {why}"
            ))),
            None => Ok(def),
        }
    }
}

/// Turns a notification into an order: recorded as received, then the order, then the
/// outcome. The order's (source, order id) makes a repeated notification the same order.
pub async fn place(
    core: &Core,
    def: &Definition,
    actor: &Actor,
    incoming: Incoming,
    body: &[u8],
) -> Result<OrderView> {
    let note = record(core, &def.name, &incoming.order_id, body).await?;
    let result = place_order(core, def, actor, &incoming).await;
    let (state, detail, ticket) = match &result {
        Ok((v, placed)) => (
            match placed {
                Placed::Created => NotificationOutcome::OrderCreated,
                Placed::Appended => NotificationOutcome::LinesAdded,
                Placed::Repeated => NotificationOutcome::Duplicate,
            },
            format!("order {}", v.order_id),
            Some(v.ticket.clone()),
        ),
        Err(e) => (NotificationOutcome::Rejected, e.coded(), None),
    };
    set_outcome(core, note, state, detail, ticket).await?;
    result.map(|(v, _)| v)
}

/// Records a notification that was refused before it could become an order.
pub async fn reject(
    core: &Core,
    connector: &str,
    reference: &str,
    body: &[u8],
    why: &Error,
) -> Result<()> {
    let id = record(core, connector, reference, body).await?;
    let detail = why.coded();
    set_outcome(core, id, NotificationOutcome::Rejected, detail, None).await
}

/// Writes what became of a recorded notification.
async fn set_outcome(
    core: &Core,
    id: i64,
    outcome: NotificationOutcome,
    detail: String,
    ticket: Option<String>,
) -> Result<()> {
    core.db
        .write(move |c| notifications::set_outcome(c, id, outcome, &detail, ticket.as_deref()))
        .await
}

async fn record(core: &Core, connector: &str, reference: &str, body: &[u8]) -> Result<i64> {
    let (connector, reference) = (connector.to_string(), reference.to_string());
    let body = String::from_utf8_lossy(&body[..body.len().min(64 * 1024)]).to_string();
    core.db
        .write(move |c| {
            notifications::insert_received(c, &connector, &reference, &body, super::now())
        })
        .await
}

/// The batch an ERP's or the GenericConnector's later lines for an order are appended as:
/// named by the message's own number where the sender gives one (an IDoc's DOCNUM), else by
/// the lines themselves (the same lines again are a resend). Shops do not append: a shop's
/// order id names one purchase.
fn batch_of(def: &Definition, incoming: &Incoming) -> Option<String> {
    if def.kind == Kind::Shop {
        return None;
    }
    Some(match &incoming.document {
        Some(doc) => format!("doc-{doc}"),
        None => {
            let text: String = incoming
                .lines
                .iter()
                .map(|(item, q)| format!("{item}\u{1f}{q}\u{1e}"))
                .collect();
            let digest = hex::encode(openssl::sha::sha256(text.as_bytes()));
            format!("lines-{}", &digest[..16])
        }
    })
}

async fn place_order(
    core: &Core,
    def: &Definition,
    actor: &Actor,
    incoming: &Incoming,
) -> Result<(OrderView, Placed)> {
    let lines = incoming
        .lines
        .iter()
        .map(|(id, q)| OrderLine {
            item_id: def.items.get(id).cloned().unwrap_or_else(|| id.clone()),
            quantity: *q,
        })
        .collect();
    let req = NewOrder {
        source: def.source.clone(),
        erp_order_id: (!incoming.order_id.is_empty()).then(|| incoming.order_id.clone()),
        // A shop's or ERP's customer ids are its own: its customers live in its source's scope.
        customer: CustomerData {
            scope: def.source.clone(),
            external_id: incoming.customer_id.clone(),
            name: incoming.customer_name.clone(),
            email: incoming.customer_email.clone(),
            locale: None,
        },
        comment: format!("via connector {}", def.name),
        lines,
    };
    let writeback = def.writeback.clone().map(|w| (def.name.clone(), w));
    let then = move |c: &mut Conn, view: &OrderView| match &writeback {
        Some((name, w)) => queue_writeback(c, name, w, view),
        None => Ok(()),
    };
    match batch_of(def, incoming) {
        Some(batch) if !incoming.order_id.is_empty() => {
            orders::create_or_append_then(core, actor, req, batch, then).await
        }
        _ => {
            let view = orders::create_order_then(core, actor, req, then).await?;
            let placed = if view.created {
                Placed::Created
            } else {
                Placed::Repeated
            };
            Ok((view, placed))
        }
    }
}

/// Queues the write-back of an order's ticket, new or with lines appended (in the order's
/// transaction).
fn queue_writeback(
    c: &mut Conn,
    connector: &str,
    w: &definition::WriteBack,
    v: &OrderView,
) -> Result<()> {
    let (content_type, body) = writeback::body(
        w.format,
        &writeback::Ticket {
            order_id: &v.erp_order_id,
            customer_id: &v.customer_id,
            ticket: &v.ticket,
            lines: v
                .lines
                .iter()
                .map(|l| (l.item_id.as_str(), l.licenses.as_slice()))
                .collect(),
        },
    );
    writebacks::queue(
        c,
        &writebacks::NewWriteBack {
            connector,
            order_id: v.order_id,
            url: &w.url,
            content_type,
            body: &body,
        },
    )
}

/// The ERP write-back sender: posts the write-backs that are due, then looks again every
/// half second (another node may have queued one).
#[derive(Default)]
pub struct WriteBackSender;

impl WriteBackSender {
    pub fn new() -> WriteBackSender {
        WriteBackSender
    }

    /// Posts the write-backs that are due (at most one batch); each is claimed by one node
    /// (as mails are). Once `stop` is set no further write-back is claimed.
    pub async fn post_due(&self, core: &Core, stop: &Stopping) -> Result<usize> {
        queue::send_due(core, self, stop).await
    }
}

impl queue::Sender for WriteBackSender {
    type Queue = WriteBacks;

    fn retries(&self, core: &Core) -> (i32, i64) {
        (
            core.config.writeback_max_attempts as i32,
            core.config.mail_retry_secs as i64,
        )
    }

    /// Posts the ticket to the ERP with the credentials of its connector's definition.
    async fn send(&self, core: &Core, d: &WriteBackToPost) -> std::result::Result<(), Failure> {
        let auth = core
            .connectors
            .0
            .get(&d.connector)
            .and_then(|def| def.writeback.as_ref())
            .filter(|w| !w.user.is_empty())
            .map(|w| {
                use base64::Engine;
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD
                        .encode(format!("{}:{}", w.user, w.password))
                )
            });
        let mut headers = vec![("Content-Type", d.content_type.clone())];
        headers.extend(auth.map(|a| ("Authorization", a)));
        queue::post(
            d.url.clone(),
            headers,
            d.body.clone(),
            Duration::from_secs(10),
        )
        .await
    }

    fn log(&self, id: i64, recorded: Recorded, _why: Option<&str>) {
        if recorded == Recorded::TakenOver {
            tracing::warn!(
                writeback = id,
                "write-back outcome not recorded: claimed by another node"
            );
        }
    }
}

impl Worker for WriteBackSender {
    fn name(&self) -> &'static str {
        "writeback"
    }

    async fn step(&mut self, core: &std::sync::Arc<Core>, stop: &Stopping) -> Result<Next> {
        Ok(match self.post_due(core, stop).await? {
            0 => Next::After(Duration::from_millis(500)),
            _ => Next::Now,
        })
    }
}

/// The newest notifications (at most 1,000) and the write-backs, for support.
pub async fn list(
    core: &Core,
    actor: &Actor,
    connector: Option<String>,
) -> Result<(Vec<NotificationView>, Vec<WriteBackView>)> {
    actor.require(
        &[Role::Admin, Role::Support],
        "read connector notifications",
    )?;
    core.db
        .read(move |c| {
            let connector = connector.as_deref();
            Ok((
                notifications::newest(c, connector, 1000)?,
                writebacks::newest(c, connector, 1000)?,
            ))
        })
        .await
}

/// A shop's notification: its signature checked, read, each order placed and each other
/// event recorded as ignored. A refusal is recorded (without the body when the signature
/// fails); the shop is the actor, its signature stands for it.
pub async fn receive_shop(
    core: &Core,
    def: &Definition,
    header: impl Fn(&str) -> Option<String>,
    body: &[u8],
) -> Result<Vec<OrderView>> {
    let shop = def
        .shop
        .as_ref()
        .ok_or_else(|| Error::internal(format!("{} is not a shop", def.name)))?;
    let now = chrono::Utc::now().timestamp();
    if let Err(e) = verify_shop(shop, header, body, now) {
        // The body is not kept: only the order reference it claims, for support to find.
        reject(core, &def.name, &claimed_reference(shop, body), b"", &e).await?;
        return Err(e);
    }
    let notices = match read_shop(shop, body) {
        Ok(n) => n,
        Err(e) => {
            reject(core, &def.name, "", body, &e).await?;
            return Err(e);
        }
    };
    let actor = Actor {
        name: format!("connector:{}", def.name),
        role: Role::Erp,
        interface: crate::domain::Interface::Connector,
    };
    let mut placed = vec![];
    for n in notices {
        match n {
            ShopNotice::Ignored { reference, event } => {
                ignore(core, &def.name, &reference, &event, body).await?
            }
            // An error goes to the shop, which retries or alerts; orders placed before it
            // are idempotent.
            ShopNotice::Order(incoming) => {
                placed.push(place(core, def, &actor, incoming, body).await?)
            }
        }
    }
    Ok(placed)
}

/// The order reference a notification names, read without trusting it (its signature
/// failed): the first order's number, or the first event's reference; printable, at most
/// 64 characters.
fn claimed_reference(shop: &Shop, body: &[u8]) -> String {
    let notices = read_shop(shop, body).unwrap_or_default();
    let reference = notices
        .iter()
        .find_map(|n| match n {
            ShopNotice::Order(i) => Some(i.order_id.as_str()),
            ShopNotice::Ignored { .. } => None,
        })
        .or_else(|| {
            notices.iter().find_map(|n| match n {
                ShopNotice::Ignored { reference, .. } => Some(reference.as_str()),
                ShopNotice::Order(_) => None,
            })
        })
        .unwrap_or_default();
    reference
        .chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect()
}

/// Records an event the connector acknowledges without an order.
pub async fn ignore(
    core: &Core,
    connector: &str,
    reference: &str,
    event: &str,
    body: &[u8],
) -> Result<()> {
    let id = record(core, connector, reference, body).await?;
    let detail = format!("event {event:?} places no order");
    set_outcome(core, id, NotificationOutcome::Ignored, detail, None).await
}

/// Puts a failed write-back back in the queue.
pub async fn requeue_writeback(core: &Core, actor: &Actor, id: i64) -> Result<()> {
    actor.require(&[Role::Admin, Role::Support], "re-queue write-backs")?;
    let actor = actor.clone();
    core.db
        .write(move |c| {
            queue::requeue::<WriteBacks>(c, id, "write-back")?;
            super::audit::record(
                &actor,
                super::audit::Event {
                    action: "writeback.requeued",
                    details: json!({ "writeback_id": id }),
                    ..Default::default()
                },
            )
        })
        .await
}
