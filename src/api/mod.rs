//! Thin adapters: decode, turn credentials into an `Actor`, call one service, encode.
pub mod admin;
pub mod cloud;
pub mod connect;
pub mod gateway;
pub mod json;
pub mod metrics;
pub mod openapi;
pub mod portal;
pub mod report_stream;
pub mod soap;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::error::Error;

/// The body of every JSON error.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct ErrorDetail {
    /// A word that stays the same for programs to read (`unknown_ticket`).
    pub code: String,
    /// What was wrong, for people.
    pub message: String,
    /// A blacklisted container's lock: the container applies this update first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update: Option<serde_json::Value>,
    /// The approval request the refused operation made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval_id: Option<i64>,
}

impl ErrorBody {
    pub fn new(code: &str, message: String) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: code.to_string(),
                message,
                update: None,
                approval_id: None,
            },
        }
    }
}

/// The JSON form of a domain error: `{"error": {"code": …, "message": …}}`.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

pub fn status_of(e: &Error) -> StatusCode {
    match e {
        Error::Invalid { .. } | Error::InvalidTicket(_) | Error::InvalidMessage(_) => {
            StatusCode::BAD_REQUEST
        }
        Error::Mismatch(_) | Error::Manipulation(_) => StatusCode::CONFLICT,
        Error::NotAllowed(_)
        | Error::Blacklisted { .. }
        | Error::QuotaExceeded { .. }
        | Error::ApprovalRequired { .. } => StatusCode::FORBIDDEN,
        Error::NotFound { .. } => StatusCode::NOT_FOUND,
        Error::LeaseLost(_) => StatusCode::GONE,
        Error::AlreadyExists { .. }
        | Error::OrderConflict(_)
        | Error::Conflict(_)
        | Error::NoSeat(_) => StatusCode::CONFLICT,
        Error::Unauthenticated => StatusCode::UNAUTHORIZED,
        Error::Forbidden { .. } => StatusCode::FORBIDDEN,
        Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        Error::Busy | Error::Retry => StatusCode::SERVICE_UNAVAILABLE,
        Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        status_of(&self.0)
    }
    fn error_response(&self) -> HttpResponse {
        if let Error::Internal(cause) = &self.0 {
            tracing::error!(%cause, "internal error");
        }
        let mut r = HttpResponse::build(self.status_code());
        if matches!(self.0, Error::Unauthenticated) {
            r.insert_header(("WWW-Authenticate", "Basic realm=\"licentia\""));
        }
        if let Error::RateLimited { retry_after } = self.0 {
            r.insert_header(("Retry-After", retry_after.to_string()));
        }
        let mut body = ErrorBody::new(self.0.code(), self.0.public_message());
        match &self.0 {
            // The lock update travels with the refusal: the container applies it first.
            Error::Blacklisted { lock: Some(u), .. } => {
                body.error.update = serde_json::to_value(u).ok()
            }
            Error::ApprovalRequired { id, .. } => body.error.approval_id = Some(*id),
            _ => {}
        }
        r.json(body)
    }
}

/// The client's address: the peer, or, behind a trusted reverse proxy, the last address in
/// `X-Forwarded-For` that is not itself a trusted proxy.
pub fn client_addr(req: &actix_web::HttpRequest, proxies: &[std::net::IpAddr]) -> std::net::IpAddr {
    use std::net::IpAddr;
    let peer = req
        .peer_addr()
        .map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip());
    if !proxies.contains(&peer) {
        return peer;
    }
    let forwarded: Vec<IpAddr> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    forwarded
        .into_iter()
        .rev()
        .find(|a| !proxies.contains(a))
        .unwrap_or(peer)
}

/// An error of the request itself, before a service is called (body too large, bad JSON).
pub fn request_error(code: &'static str, status: StatusCode, message: String) -> actix_web::Error {
    let body = ErrorBody::new(code, message.clone());
    actix_web::error::InternalError::from_response(message, HttpResponse::build(status).json(body))
        .into()
}

/// HTTP Basic credentials of a request, if it carries them.
pub fn basic_auth(req: &actix_web::HttpRequest) -> Option<(String, String)> {
    use base64::Engine;
    let h = req.headers().get("authorization")?.to_str().ok()?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(h.strip_prefix("Basic ")?.trim())
        .ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}
