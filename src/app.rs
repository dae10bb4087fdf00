//! Builds and runs the HTTP server and the background workers on a `Core`, and stops them
//! in order: no new connections, in-flight requests (and the writes they wait for) finish,
//! the workers finish the step in progress; every wait is bounded.
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::{ServerHandle, Service};
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpResponse, HttpServer};

use crate::api::{admin, cloud, connect, gateway, json, metrics::Metrics, portal, soap};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::service::workers::Supervisor;
use crate::service::Core;

/// How long in-flight requests get to finish after a stop before their connections are
/// closed (whole seconds: actix's unit). Its default, 30 s, let one slow request (a job run
/// by hand that sends the outbox through a slow SMTP server) hold the exit that long.
const HTTP_DRAIN_SECS: u64 = 5;

/// How long the worker steps in progress at a stop get to finish (an SMTP send or an ERP
/// post waits for the other side; abandoned, it is taken up again when its lease runs out).
const WORKER_GRACE: Duration = Duration::from_secs(2);

/// A started server: HTTP and the background workers.
pub struct Running {
    pub addr: SocketAddr,
    pub core: web::Data<Core>,
    handle: ServerHandle,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    workers: Supervisor,
}

/// Opens the database, binds the configured address (port 0 picks a free one) and starts
/// serving and the workers on the current runtime.
pub async fn start(mut config: Config) -> Result<Running> {
    let listener = TcpListener::bind(&config.listen)
        .map_err(|e| Error::internal(format!("cannot listen on {}: {e}", config.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::internal(e.to_string()))?;
    // Not configured (or derived from a port 0 listen address): the address bound.
    if config.public_url.is_empty() || config.public_url == format!("http://{}", config.listen) {
        config.public_url = format!("http://{addr}");
    }
    if config.portal_url.is_empty()
        || config.portal_url == format!("http://{}/portal", config.listen)
    {
        config.portal_url = format!("{}/portal", config.public_url.trim_end_matches('/'));
    }
    let workers = config.workers;
    let limit = config.max_body_bytes;
    // Before anything is opened: a broken portal template stops the start, naming it.
    let mut portal = portal::Portal::load(&config)?;
    let admin = web::Data::new(admin::Admin::load(&config)?);
    let limiter = web::Data::new(gateway::TicketLimiter::new(&config)?);
    let core = web::Data::new(Core::open(config).await?);
    if let Some(sso) = core.sso() {
        portal.allow_form_targets(&sso.form_origins());
    }
    let portal = web::Data::new(portal);
    let metrics = web::Data::new(Metrics::default());
    let data = core.clone();
    let server = HttpServer::new(move || {
        let m: Arc<Metrics> = metrics.clone().into_inner();
        App::new()
            .app_data(data.clone())
            .app_data(metrics.clone())
            .app_data(json::json_config(limit))
            .app_data(json::query_config())
            .app_data(json::path_config())
            .app_data(web::PayloadConfig::new(limit))
            // The SOAP Depot names tickets too: the same limiter.
            .app_data(limiter.clone())
            .configure(|cfg| gateway::configure(cfg, limiter.clone()))
            .configure(connect::configure)
            .configure(soap::configure)
            .configure(json::configure)
            .configure(cloud::configure)
            .configure(|cfg| portal::configure(cfg, portal.clone()))
            .configure(|cfg| admin::configure(cfg, admin.clone()))
            .default_service(web::to(|| async {
                HttpResponse::NotFound().json(serde_json::json!({"error": {"code": "not_found", "message": "no such endpoint"}}))
            }))
            .wrap_fn(move |req, srv| {
                let started = Instant::now();
                let method = req.method().to_string();
                let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
                let m = m.clone();
                let fut = srv.call(req);
                async move {
                    let res = fut.await;
                    let status = res.as_ref().map(|r| r.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                    m.observe(&method, &route, status.as_u16(), started.elapsed());
                    res
                }
            })
            .wrap(tracing_actix_web::TracingLogger::<PathOnlySpan>::new())
    })
    .workers(workers)
    // Signals are ours (`StopSignals`, `until_signal`): the workers stop with the server.
    .disable_signals()
    .shutdown_timeout(HTTP_DRAIN_SECS)
    .listen(listener)
    .map_err(|e| Error::internal(format!("cannot start the server: {e}")))?
    .run();
    let handle = server.handle();
    // The workers run beside the HTTP server on every node.
    let workers = Supervisor::start(core.clone().into_inner());
    Ok(Running {
        addr,
        core,
        handle,
        server: tokio::spawn(server),
        workers,
    })
}

impl Running {
    /// Runs every worker until nothing is due (see `Supervisor::run_pending`).
    pub async fn run_pending_workers(&self) -> Result<()> {
        self.workers.run_pending().await
    }

    /// Serves until one of `signals` comes, then stops (see `stop`).
    pub async fn until_signal(mut self, mut signals: StopSignals) -> Result<()> {
        let name = tokio::select! {
            name = signals.recv() => name,
            ended = &mut self.server => {
                // The server ended by itself (it does not, unless it failed).
                self.workers.shutdown(WORKER_GRACE).await;
                return server_outcome(ended);
            }
        };
        tracing::info!(signal = name, "stopping");
        self.stop().await
    }

    /// Stops: no new connections; in-flight requests get `HTTP_DRAIN_SECS` to finish (the
    /// writes they wait for are committed by the writer, which lives on until the last
    /// handle to the database is gone); at the same time the workers start no new step and
    /// the steps in progress get `WORKER_GRACE`.
    pub async fn stop(self) -> Result<()> {
        let started = Instant::now();
        let ((), ()) = tokio::join!(self.handle.stop(true), self.workers.shutdown(WORKER_GRACE));
        let outcome = server_outcome(self.server.await);
        tracing::info!(ms = started.elapsed().as_millis() as u64, "stopped");
        outcome
    }
}

/// The signals that stop the server gracefully: SIGTERM, SIGINT and SIGQUIT (actix stopped
/// on SIGQUIT too), caught from when this is made (before the server starts, so that a
/// signal during the start is not the default's immediate end).
pub struct StopSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    quit: tokio::signal::unix::Signal,
}

impl StopSignals {
    pub fn watch() -> Result<StopSignals> {
        use tokio::signal::unix::{signal, SignalKind};
        let watch = |kind: SignalKind, name: &str| {
            signal(kind).map_err(|e| Error::internal(format!("cannot watch {name}: {e}")))
        };
        Ok(StopSignals {
            term: watch(SignalKind::terminate(), "SIGTERM")?,
            int: watch(SignalKind::interrupt(), "SIGINT")?,
            quit: watch(SignalKind::quit(), "SIGQUIT")?,
        })
    }

    /// The next one's name.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
            _ = self.quit.recv() => "SIGQUIT",
        }
    }
}

fn server_outcome(
    r: std::result::Result<std::io::Result<()>, tokio::task::JoinError>,
) -> Result<()> {
    match r {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Error::internal(format!("server: {e}"))),
        Err(e) => Err(Error::internal(format!("server task: {e}"))),
    }
}

/// The request span without the query string: the GenericConnector's password travels in
/// it and must not reach the logs. Nor does a report link's token (the last segment of
/// `/admin/downloads/…`).
pub struct PathOnlySpan;

/// A request's path as the logs show it.
fn logged_path(path: &str) -> &str {
    match path.strip_prefix("/admin/downloads/") {
        Some(token) if !token.is_empty() => "/admin/downloads/(token)",
        _ => path,
    }
}

impl tracing_actix_web::RootSpanBuilder for PathOnlySpan {
    fn on_request_start(req: &actix_web::dev::ServiceRequest) -> tracing::Span {
        tracing::info_span!(
            "request",
            method = %req.method(),
            path = %logged_path(req.path()),
            http.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            exception.message = tracing::field::Empty,
        )
    }

    fn on_request_end<B: actix_web::body::MessageBody>(
        span: tracing::Span,
        outcome: &std::result::Result<actix_web::dev::ServiceResponse<B>, actix_web::Error>,
    ) {
        tracing_actix_web::DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}
