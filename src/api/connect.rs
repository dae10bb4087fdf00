//! `/connect/<name>`: orders from shops and ERPs, each answered in the shape its sender
//! expects. Decoding and answering only; the order is the service's.
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use super::status_of;
use crate::connectors::definition::{Definition, Kind, Shop, ShopReply};
use crate::connectors::generic::read_generic;
use crate::connectors::idoc::read_idoc;
use crate::connectors::signature::twocheckout_receipt;
use crate::connectors::xml::esc;
use crate::domain::Interface;
use crate::error::Error;
use crate::service::connectors;
use crate::service::{users, Core};

type Core_ = web::Data<Core>;

/// How the GenericConnector answers: `format=text` (default), `xml` or `json`.
#[derive(Clone, Copy)]
enum Answer {
    Text,
    Xml,
    Json,
}

fn ok_answer(a: Answer, v: &crate::service::orders::OrderView) -> HttpResponse {
    let mut r = HttpResponse::Ok();
    match a {
        Answer::Text => r
            .content_type("text/plain; charset=utf-8")
            .body(format!("{}\n", v.ticket)),
        Answer::Xml => r
            .content_type("application/xml; charset=utf-8")
            .body(format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LicentiaResponse><OrderNumber>{}\
             </OrderNumber><Ticket>{}</Ticket><Created>{}</Created></LicentiaResponse>\n",
                esc(&v.erp_order_id),
                esc(&v.ticket),
                v.created
            )),
        Answer::Json => r.json(serde_json::json!({"order_id": v.erp_order_id,
            "ticket": v.ticket, "created": v.created})),
    }
}

fn error_answer(a: Answer, e: &Error) -> HttpResponse {
    if let Error::Internal(cause) = e {
        tracing::error!(%cause, "connector");
    }
    let status = match e {
        Error::Unauthenticated => StatusCode::UNAUTHORIZED,
        // An unknown product or connector is the sender's to fix: 4xx, so it alerts.
        other => status_of(other),
    };
    let mut r = HttpResponse::build(status);
    let (code, msg) = (e.code(), e.public_message());
    match a {
        Answer::Text => r
            .content_type("text/plain; charset=utf-8")
            .body(format!("ERROR {}\n", e.coded())),
        Answer::Xml => r
            .content_type("application/xml; charset=utf-8")
            .body(format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LicentiaError code=\"{code}\">{}\
             </LicentiaError>\n",
                esc(&msg)
            )),
        Answer::Json => r.json(serde_json::json!({"error": {"code": code, "message": msg}})),
    }
}

/// The GET query and, for a form POST, the body's fields.
fn params(req: &HttpRequest, body: &[u8]) -> Result<Vec<(String, String)>, Error> {
    let mut out: Vec<(String, String)> = serde_urlencoded::from_str(req.query_string())
        .map_err(|e| Error::invalid("query", e.to_string()))?;
    if !body.is_empty() {
        let form: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
            .map_err(|e| Error::invalid("body", format!("not a form: {e}")))?;
        out.extend(form);
    }
    Ok(out)
}

async fn connect(
    core: Core_,
    name: web::Path<String>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let def: Definition = match core.connector(&name) {
        Ok(d) => d.clone(),
        Err(e) => return error_answer(Answer::Json, &e),
    };
    match def.kind {
        Kind::Generic => generic(&core, &def, &req, &body).await,
        Kind::Idoc => idoc(&core, &def, &req, &body).await,
        Kind::Shop => shop(&core, &def, &req, &body).await,
    }
}

fn shop_answer(shop: &Shop) -> Answer {
    match shop.reply {
        ShopReply::Json => Answer::Json,
        ShopReply::Text | ShopReply::TwoCheckout => Answer::Text,
    }
}

async fn shop(core: &Core, def: &Definition, req: &HttpRequest, body: &[u8]) -> HttpResponse {
    let shop = def.shop.as_ref().expect("checked at start");
    let answer = shop_answer(shop);
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let placed = match connectors::receive_shop(core, def, header, body).await {
        Ok(p) => p,
        Err(e) => return error_answer(answer, &e),
    };
    match shop.reply {
        ShopReply::Json => HttpResponse::Ok().json(serde_json::json!({
            "orders": placed.iter().map(|v| serde_json::json!({"order_id": v.erp_order_id,
                "ticket": v.ticket, "created": v.created})).collect::<Vec<_>>()})),
        ShopReply::Text => HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body(
                placed
                    .iter()
                    .map(|v| format!("{}\n", v.ticket))
                    .collect::<String>(),
            ),
        ShopReply::TwoCheckout => {
            let date = chrono::Utc::now().format("%Y%m%d%H%M%S").to_string();
            match twocheckout_receipt(shop, body, &date) {
                Ok(r) => HttpResponse::Ok()
                    .content_type("text/html; charset=utf-8")
                    .body(r),
                Err(e) => error_answer(answer, &e),
            }
        }
    }
}

async fn generic(core: &Core, def: &Definition, req: &HttpRequest, body: &[u8]) -> HttpResponse {
    // Never the password: what cannot be read is not kept at all.
    let p = match params(req, body) {
        Ok(p) => p,
        Err(e) => return refuse(core, def, "", b"", Answer::Text, e).await,
    };
    let shown: Vec<(String, String)> = p
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("password"))
        .cloned()
        .collect();
    let shown = serde_urlencoded::to_string(&shown).unwrap_or_default();
    let answer = match p
        .iter()
        .find(|(k, _)| k == "format")
        .map(|(_, v)| v.as_str())
    {
        None | Some("text") => Answer::Text,
        Some("xml") => Answer::Xml,
        Some("json") => Answer::Json,
        Some(other) => {
            let e = Error::invalid("format", format!("{other:?}: use text, xml or json"));
            return refuse(core, def, "", b"", Answer::Text, e).await;
        }
    };
    // Until the caller is known only the order reference (shortened) and the reason are
    // kept, so that a stranger cannot fill the log with bodies.
    let reference: String = p
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("orderid"))
        .map(|(_, v)| v.chars().take(100).collect())
        .unwrap_or_default();
    let (user, password, incoming) = match read_generic(&p) {
        Ok(x) => x,
        Err(e) => return refuse(core, def, &reference, b"", answer, e).await,
    };
    let actor = match users::authenticate(core, &user, &password, Interface::Connector).await {
        Ok(a) => a,
        Err(e) => return refuse(core, def, &reference, b"", answer, e).await,
    };
    match connectors::place(core, def, &actor, incoming, shown.as_bytes()).await {
        Ok(v) => ok_answer(answer, &v),
        Err(e) => error_answer(answer, &e),
    }
}

async fn idoc(core: &Core, def: &Definition, req: &HttpRequest, body: &[u8]) -> HttpResponse {
    let answer = Answer::Xml;
    let Some((user, password)) = super::basic_auth(req) else {
        return refuse(core, def, "", b"", answer, Error::Unauthenticated).await;
    };
    // Who it is before what it says: an unauthenticated body is neither parsed nor kept.
    let actor = match users::authenticate(core, &user, &password, Interface::Connector).await {
        Ok(a) => a,
        Err(e) => return refuse(core, def, "", b"", answer, e).await,
    };
    let incoming = match read_idoc(body) {
        Ok(i) => i,
        Err(e) => return refuse(core, def, "", body, answer, e).await,
    };
    match connectors::place(core, def, &actor, incoming, body).await {
        Ok(v) => ok_answer(answer, &v),
        Err(e) => error_answer(answer, &e),
    }
}

/// Records a notification refused before it could become an order, and answers.
async fn refuse(
    core: &Core,
    def: &Definition,
    reference: &str,
    body: &[u8],
    answer: Answer,
    e: Error,
) -> HttpResponse {
    if let Err(err) = connectors::reject(core, &def.name, reference, body, &e).await {
        tracing::error!(error = %err, "recording a refused notification");
    }
    error_answer(answer, &e)
}

/// License Central's GenericConnector path (`…/GenericConnector.php`), so that a shop set
/// up for it only changes the host name: the `generic` connector.
async fn generic_php(core: Core_, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    connect(core, web::Path::from("generic".to_string()), req, body).await
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/connect/{name}", web::get().to(connect))
        .route("/connect/{name}", web::post().to(connect))
        .route("/GenericConnector.php", web::get().to(generic_php))
        .route("/GenericConnector.php", web::post().to(generic_php))
        .route(
            "/{prefix:.+}/GenericConnector.php",
            web::get().to(generic_php),
        )
        .route(
            "/{prefix:.+}/GenericConnector.php",
            web::post().to(generic_php),
        );
}
