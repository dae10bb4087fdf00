//! One domain error with a stable code per case; each adapter maps it to its own wire form.
use std::fmt;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid {field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("not a valid ticket: {0}")]
    InvalidTicket(String),
    #[error("unknown {kind}: {id}")]
    NotFound { kind: &'static str, id: String },
    #[error("{kind} already exists: {id}")]
    AlreadyExists { kind: &'static str, id: String },
    #[error("authentication required or credentials wrong")]
    Unauthenticated,
    #[error("the role {role} may not {action}")]
    Forbidden { role: String, action: &'static str },
    #[error("order conflict: {0}")]
    OrderConflict(String),
    #[error("conflict: {0}")]
    Conflict(String),
    /// A request, update or receipt that cannot be read or whose signature fails.
    #[error("invalid message: {0}")]
    InvalidMessage(String),
    /// A context or receipt that fits nothing the server issued.
    #[error("{0}")]
    Mismatch(String),
    /// The container showed a state the server never issued; automatic handling stops.
    #[error("manipulation detected for container {0}: a person must decide before it gets licenses again")]
    Manipulation(String),
    /// What the vendor's rules do not allow (return not allowed, wrong container type …).
    #[error("not allowed: {0}")]
    NotAllowed(String),
    /// The container is on the blacklist; `lock` is the lock update it must apply first.
    #[error("container {serial} is blacklisted: {description}")]
    Blacklisted {
        serial: String,
        description: String,
        lock: Option<Box<crate::protocol::Issued>>,
    },
    /// The policy does not allow it alone: a person must approve request `id`.
    #[error("{why}; approval request {id} waits for support")]
    ApprovalRequired { id: i64, why: String },
    #[error("the monthly activation quota of {quota} for firm code {firm_code} is used up")]
    QuotaExceeded { firm_code: i64, quota: u32 },
    /// Too many attempts from this client (or at this ticket): held back for a while.
    #[error("too many attempts; try again in {retry_after} s")]
    RateLimited { retry_after: u64 },
    /// Every seat of the licenses that would serve a cloud open is in use.
    #[error("no seat free: {0}")]
    NoSeat(String),
    /// A heartbeat or release for a seat no longer held: the lease ended.
    #[error("seat {0} is no longer held: its lease ended (released, reclaimed after the lease ran out, or the credential was revoked); open a new seat")]
    LeaseLost(i64),
    #[error("the server is busy, try again")]
    Busy,
    /// A serialization conflict inside the writer; the write is run again.
    #[error("retry")]
    Retry,
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn invalid(field: impl Into<String>, reason: impl fmt::Display) -> Error {
        Error::Invalid {
            field: field.into(),
            reason: reason.to_string(),
        }
    }
    pub fn not_found(kind: &'static str, id: impl fmt::Display) -> Error {
        Error::NotFound {
            kind,
            id: id.to_string(),
        }
    }
    pub fn internal(msg: impl fmt::Display) -> Error {
        Error::Internal(msg.to_string())
    }

    /// The stable, machine-readable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Invalid { .. } => "invalid_input",
            Error::InvalidTicket(_) => "invalid_ticket",
            Error::NotFound { kind, .. } => match *kind {
                "item" => "unknown_item",
                "ticket" => "unknown_ticket",
                "customer" => "unknown_customer",
                "order" => "unknown_order",
                "license" => "unknown_license",
                "user" => "unknown_user",
                "firm" => "unknown_firm",
                "container" => "unknown_container",
                "production order" => "unknown_production_order",
                "dongle" => "unknown_dongle",
                _ => "not_found",
            },
            Error::AlreadyExists { .. } => "already_exists",
            Error::Unauthenticated => "unauthenticated",
            Error::Forbidden { .. } => "forbidden",
            Error::OrderConflict(_) => "order_conflict",
            Error::Conflict(_) => "conflict",
            Error::InvalidMessage(_) => "invalid_message",
            Error::Mismatch(_) => "context_mismatch",
            Error::Manipulation(_) => "manipulation_detected",
            Error::NotAllowed(_) => "not_allowed",
            Error::Blacklisted { .. } => "blacklisted",
            Error::ApprovalRequired { .. } => "approval_required",
            Error::QuotaExceeded { .. } => "quota_exceeded",
            Error::RateLimited { .. } => "rate_limited",
            Error::NoSeat(_) => "no_seat_free",
            Error::LeaseLost(_) => "lease_lost",
            Error::Busy | Error::Retry => "busy",
            Error::Internal(_) => "internal",
        }
    }

    /// What may be shown to the caller: internal causes are logged, never sent.
    pub fn public_message(&self) -> String {
        match self {
            Error::Internal(_) => "internal error".to_string(),
            other => other.to_string(),
        }
    }

    /// `code: message` for a log line or a record, without saying the kind twice (the
    /// message of a conflict begins "conflict: " already).
    pub fn coded(&self) -> String {
        let code = self.code();
        let message = self.public_message();
        let kind = code.replace('_', " ");
        match message.strip_prefix(&format!("{kind}: ")) {
            Some(rest) => format!("{code}: {rest}"),
            None => format!("{code}: {message}"),
        }
    }
}

#[cfg(feature = "server")]
impl From<diesel::result::Error> for Error {
    fn from(e: diesel::result::Error) -> Error {
        use diesel::result::{DatabaseErrorKind, Error as D};
        match e {
            D::NotFound => Error::internal("row not found"),
            D::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => Error::Retry,
            // Two PostgreSQL writers locking the same licenses in another order: the one
            // PostgreSQL chose as victim runs its job again once the other has committed.
            D::DatabaseError(_, info) if info.message().contains("deadlock detected") => {
                Error::Retry
            }
            // PostgreSQL text cannot hold U+0000 (SQLite's can): a value with one was never
            // stored, and the request that brought it is refused as input.
            D::DatabaseError(_, info)
                if info.message().contains("invalid byte sequence")
                    && info.message().contains("0x00") =>
            {
                Error::invalid("input", "a value contains the character U+0000")
            }
            other => Error::internal(format!("database: {other}")),
        }
    }
}

impl From<crate::protocol::ProtocolError> for Error {
    fn from(e: crate::protocol::ProtocolError) -> Error {
        Error::InvalidMessage(e.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_coded_message_says_its_kind_once() {
        assert_eq!(
            Error::Conflict("license 12 is activated".into()).coded(),
            "conflict: license 12 is activated"
        );
        assert_eq!(
            Error::NotAllowed("the vendor says no".into()).coded(),
            "not_allowed: the vendor says no"
        );
        assert_eq!(
            Error::OrderConflict("order 7 differs".into()).coded(),
            "order_conflict: order 7 differs"
        );
        assert_eq!(
            Error::InvalidMessage("not JSON".into()).coded(),
            "invalid_message: not JSON"
        );
        assert_eq!(
            Error::invalid("body", "not JSON").coded(),
            "invalid_input: invalid body: not JSON"
        );
        assert_eq!(
            Error::internal("database down").coded(),
            "internal: internal error"
        );
    }
}
