//! `licentia container serve-local`: the helper through which the portal's page, open in
//! the customer's browser, transfers licenses online into the container on this computer.
//! It listens on 127.0.0.1 only, answers only requests that name it as their host (no DNS
//! rebinding) and come from pages of the portal's origin (checked on every request, not
//! only by the browser's CORS), and takes JSON bodies only (so a page of another site cannot
//! even send a form to it without the browser asking first). What it does is
//! `licentia::client::local::Desk`'s.
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use actix_web::http::header::{self, HeaderMap};
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use anyhow::Context;
use clap::Args;
use serde::Deserialize;
use serde_json::json;

use licentia::client::local::{self, Desk};
use licentia::client::{cerr, ClientError};
use licentia::domain::ContainerType;
use licentia::protocol::MAX_MESSAGE;

#[derive(Args)]
pub struct ServeLocalArgs {
    /// The folder of the container (made on the first template if it holds none).
    #[arg(long)]
    dir: PathBuf,
    /// The portal whose pages may use the helper, e.g. https://licenses.example.com/portal
    #[arg(long)]
    portal: String,
    /// The port on 127.0.0.1 (the portal's `portal_local_helper_port`).
    #[arg(long, default_value_t = local::DEFAULT_PORT)]
    port: u16,
    /// The kind of container to make when the folder holds none: act or dongle.
    #[arg(long = "type", default_value = "act")]
    kind: String,
    /// How many machine traits may change (act).
    #[arg(long, default_value_t = 2)]
    tolerance: u32,
    /// Machine traits as a JSON object instead of this machine's own (for tests).
    #[arg(long)]
    traits_file: Option<PathBuf>,
}

struct Helper {
    /// One transfer step at a time: each loads, changes and saves the container file.
    desk: Mutex<Desk>,
    origin: String,
    port: u16,
}

type Helper_ = web::Data<Helper>;

pub async fn serve(args: ServeLocalArgs) -> anyhow::Result<()> {
    let kind =
        ContainerType::parse(&args.kind).map_err(|e| cerr("invalid_input", e.to_string()))?;
    let traits = licentia::client::cli::traits(args.traits_file.as_deref())?;
    let desk = Desk::new(args.dir, kind, traits, args.tolerance, &args.portal)?;
    let mut signals = licentia::app::StopSignals::watch()?;
    let listener = std::net::TcpListener::bind(("127.0.0.1", args.port))
        .with_context(|| format!("cannot listen on 127.0.0.1:{}", args.port))?;
    let port = listener.local_addr()?.port();
    let helper = web::Data::new(Helper {
        origin: desk.origin(),
        desk: Mutex::new(desk),
        port,
    });
    let origin = helper.origin.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(helper.clone())
            .app_data(web::PayloadConfig::new(MAX_MESSAGE + 4096))
            .default_service(web::to(answer))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    // The line a script (or the test) waits for.
    println!("serving the container to {origin} on http://127.0.0.1:{port}");
    let handle = server.handle();
    let running = tokio::spawn(server);
    let signal = signals.recv().await;
    eprintln!("{signal}: stopping");
    handle.stop(true).await;
    running.await??;
    Ok(())
}

/// Every request: the guards, then the route.
async fn answer(helper: Helper_, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let headers = req.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !local::host_is_loopback(host, helper.port) {
        return refused(
            None,
            StatusCode::MISDIRECTED_REQUEST,
            "wrong_host",
            format!("this helper answers as 127.0.0.1:{} only", helper.port),
        );
    }
    let origin = headers.get(header::ORIGIN).and_then(|h| h.to_str().ok());
    if origin != Some(helper.origin.as_str()) {
        return refused(
            None,
            StatusCode::FORBIDDEN,
            "wrong_origin",
            format!(
                "this helper answers pages of {} only, not {}",
                helper.origin,
                origin.unwrap_or("a request without an Origin")
            ),
        );
    }
    let route = (req.method().as_str(), req.path());
    if route.0 == "OPTIONS" {
        return preflight(&helper.origin, headers);
    }
    let origin = helper.origin.clone();
    let allow = Some(origin.as_str());
    if route.0 == "POST" && !is_json(headers) {
        return refused(
            allow,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_input",
            "send the body as application/json".into(),
        );
    }
    let helper = helper.into_inner();
    let outcome = match route {
        ("GET", "/v1/hello") => run(helper, |d| json_of(d.hello())).await,
        ("POST", "/v1/template") => match field::<FirmCode>(&body) {
            Ok(b) => run(helper, move |d| json_of(d.template(b.firm_code))).await,
            Err(e) => Err(e),
        },
        ("POST", "/v1/request") => match field::<FirmCode>(&body) {
            Ok(b) => run(helper, move |d| json_of(d.request(b.firm_code))).await,
            Err(e) => Err(e),
        },
        ("POST", "/v1/traits") => match field::<Salt>(&body) {
            Ok(b) => run(helper, move |d| json_of(d.traits(&b.salt))).await,
            Err(e) => Err(e),
        },
        ("POST", "/v1/apply") => match field::<Update>(&body) {
            Ok(b) => run(helper, move |d| json_of(d.apply(&b.update))).await,
            Err(e) => Err(e),
        },
        _ => Err(cerr("not_found", format!("no {} {}", route.0, route.1))),
    };
    match outcome {
        Ok(v) => HttpResponse::Ok()
            .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.as_str()))
            .insert_header((header::VARY, "Origin"))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(v),
        Err(e) => {
            let status = match e.code.as_str() {
                "not_found" => StatusCode::NOT_FOUND,
                "server_unreachable" => StatusCode::BAD_GATEWAY,
                "io" | "corrupt_container" => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            refused(allow, status, &e.code, e.message)
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FirmCode {
    firm_code: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Salt {
    salt: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Update {
    update: String,
}

fn field<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ClientError> {
    serde_json::from_slice(body).map_err(|e| cerr("invalid_input", format!("the body: {e}")))
}

fn json_of<T: serde::Serialize>(
    r: Result<T, ClientError>,
) -> Result<serde_json::Value, ClientError> {
    r.map(|v| serde_json::to_value(v).expect("json"))
}

/// Runs a step of the desk off the executor (files, the template's download).
async fn run(
    helper: Arc<Helper>,
    f: impl FnOnce(&Desk) -> Result<serde_json::Value, ClientError> + Send + 'static,
) -> Result<serde_json::Value, ClientError> {
    tokio::task::spawn_blocking(move || {
        let desk = helper.desk.lock().unwrap_or_else(|p| p.into_inner());
        f(&desk)
    })
    .await
    .unwrap_or_else(|e| Err(cerr("internal", e.to_string())))
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

/// The browser's question before a cross-origin POST with a JSON body (and, from a page on
/// the internet, before it may reach this private address at all).
fn preflight(origin: &str, headers: &HeaderMap) -> HttpResponse {
    let mut r = HttpResponse::NoContent();
    r.insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin))
        .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, "Content-Type"))
        .insert_header((header::ACCESS_CONTROL_MAX_AGE, "600"))
        .insert_header((header::VARY, "Origin"));
    if headers.contains_key("access-control-request-private-network") {
        r.insert_header(("Access-Control-Allow-Private-Network", "true"));
    }
    r.finish()
}

/// A refusal as JSON, readable by the portal's page only when it comes from the portal.
fn refused(allow: Option<&str>, status: StatusCode, code: &str, message: String) -> HttpResponse {
    let mut r = HttpResponse::build(status);
    if let Some(origin) = allow {
        r.insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin))
            .insert_header((header::VARY, "Origin"));
    }
    r.json(json!({"error": code, "message": message}))
}
