//! Builds and runs the HTTP server on a `Core`.
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Instant;

use actix_web::dev::{Server, Service};
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpResponse, HttpServer};

use crate::api::{connect, gateway, json, metrics::Metrics, soap};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::service::Core;

pub struct Running {
    pub addr: SocketAddr,
    pub server: Server,
    pub core: web::Data<Core>,
}

/// Opens the database, binds the configured address (port 0 picks a free one) and returns
/// the server, not yet awaited.
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
    let workers = config.workers;
    let limit = config.max_body_bytes;
    let core = web::Data::new(Core::open(config).await?);
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
            .configure(gateway::configure)
            .configure(connect::configure)
            .configure(soap::configure)
            .configure(json::configure)
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
    .listen(listener)
    .map_err(|e| Error::internal(format!("cannot start the server: {e}")))?
    .run();
    // The outbox worker and the scheduler run beside the HTTP server on every node.
    tokio::spawn(crate::service::mail::run_worker(core.clone()));
    tokio::spawn(crate::service::jobs::run_scheduler(core.clone()));
    tokio::spawn(crate::service::connectors::run_writeback_worker(
        core.clone(),
    ));
    Ok(Running { addr, server, core })
}

/// The request span without the query string: the GenericConnector's password travels in
/// it and must not reach the logs.
pub struct PathOnlySpan;

impl tracing_actix_web::RootSpanBuilder for PathOnlySpan {
    fn on_request_start(req: &actix_web::dev::ServiceRequest) -> tracing::Span {
        tracing::info_span!(
            "request",
            method = %req.method(),
            path = %req.path(),
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
