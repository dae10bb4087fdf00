//! The license use API of cloud containers (`/cloud/v1`): what the client runtime and the
//! server exchange. A client holds a credential file (a certificate from the firm's
//! authority and its key); it gets a short-lived access token by signing a token request
//! with that key, and opens, keeps (heartbeats) and releases seats with the token.
use serde::{Deserialize, Serialize};

/// How far a token request's time may be from the server's (seconds).
pub const TOKEN_SKEW_SECONDS: i64 = 300;
/// How long an access token lasts (seconds). Longer than the skew window, so a replayed
/// token request always meets its nonce still on record.
pub const TOKEN_SECONDS: i64 = 900;

/// What the credential's key signs (ECDSA with SHA-256) to get a token.
pub fn token_message(fingerprint: &str, nonce: &str, at: i64) -> Vec<u8> {
    format!("licentia-cloud-token\n{fingerprint}\n{nonce}\n{at}").into_bytes()
}

/// `POST /cloud/v1/token`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// The credential's certificate (PEM).
    pub certificate: String,
    /// 32 hex digits, new for every request.
    pub nonce: String,
    /// Unix time of the request.
    pub at: i64,
    /// Base64 of the DER ECDSA signature of `token_message`.
    pub signature: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(schemars::JsonSchema))]
pub struct Token {
    pub token: String,
    /// The cloud container the credential is bound to.
    pub serial: String,
    pub firm_code: i64,
    /// Unix time.
    pub expires_at: i64,
}

/// `POST /cloud/v1/seats`: a seat of a license in the credential's container.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct OpenRequest {
    pub firm_code: i64,
    pub product_code: i64,
    /// Feature bits the license must have (all of them).
    #[serde(default)]
    pub features: u32,
    /// The station (computer) asking: seats counted per station are shared by its opens.
    pub station: String,
}

/// A seat held: its id is the lease's fencing token (never given to another lease).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(schemars::JsonSchema))]
pub struct Lease {
    pub seat: i64,
    pub license_id: i64,
    pub slot: i32,
    /// Unix time the seat is reclaimed unless a heartbeat comes first.
    pub expires_at: i64,
    pub lease_seconds: u32,
    /// How often to send a heartbeat (a third of the lease).
    pub heartbeat_seconds: u32,
}

/// A license of the container and its seats (`GET /cloud/v1/status`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(schemars::JsonSchema))]
pub struct LicenseUse {
    pub license_id: i64,
    pub item_id: String,
    pub firm_code: i64,
    pub product_code: i64,
    pub feature_map: u32,
    pub seats: u32,
    pub in_use: u32,
    pub seat_counting: String,
    pub lease_seconds: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(schemars::JsonSchema))]
pub struct Status {
    pub serial: String,
    pub licenses: Vec<LicenseUse>,
}

/// `POST /cloud/v1/borrow`: a seat checked out of the cloud container into the local
/// container whose signed request comes with it, for `days` days.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct BorrowRequest {
    pub firm_code: i64,
    pub product_code: i64,
    #[serde(default)]
    pub features: u32,
    pub days: u32,
    /// The local container's request (armoured).
    pub request: String,
}

/// The longest borrow, in days.
pub const MAX_BORROW_DAYS: u32 = 365;
