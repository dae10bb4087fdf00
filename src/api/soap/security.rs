//! WS-Security UsernameToken (PasswordText or PasswordDigest), or HTTP Basic: the caller's
//! credentials become one `Actor`. Only the token is read here; whether the credentials
//! hold is the users service's to decide.
//!
//! Read by hand from the checked envelope, not with a yaserde type: the token lives in the
//! header, which our XSDs do not declare (so the schema check does not cover it), and its
//! Password's `Type` attribute decides how the rest is read.
use actix_web::HttpRequest;

use super::envelope::{El, Request};
use crate::domain::{Actor, Interface};
use crate::error::Error;
use crate::service::{users, Core};

pub const WSSE: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
/// How far a token's Created may be from now; its nonce is remembered that long.
const NONCE_WINDOW_SECS: i64 = 300;

/// A WS-Security UsernameToken as read, before its credentials are checked.
enum Token {
    /// PasswordText; with a Nonce (and Created, within five minutes of now) the nonce may be
    /// used once.
    Text {
        user: String,
        password: String,
        nonce: Option<String>,
    },
    /// PasswordDigest: Base64(SHA-1(nonce + created + password)).
    Digest {
        user: String,
        digest: String,
        nonce: String,
        nonce_bytes: Vec<u8>,
        created: String,
    },
}

/// The actor a request to a vendor service stands for: its UsernameToken if it has one,
/// else HTTP Basic. A token's nonce is spent only once its credentials hold.
pub async fn actor(core: &Core, http: &HttpRequest, request: &Request) -> Result<Actor, Error> {
    let token = request
        .header()
        .and_then(|h| {
            h.children
                .iter()
                .find(|c| c.name == "Security" && c.ns == WSSE)
        })
        .and_then(|s| s.child("UsernameToken"));
    let (actor, nonce) = match token.map(username_token).transpose()? {
        Some(Token::Text {
            user,
            password,
            nonce,
        }) => (
            users::authenticate(core, &user, &password, Interface::Soap).await?,
            nonce,
        ),
        Some(Token::Digest {
            user,
            digest,
            nonce,
            nonce_bytes,
            created,
        }) => (
            users::authenticate_digest(
                core,
                &user,
                &digest,
                &nonce_bytes,
                &created,
                Interface::Soap,
            )
            .await?,
            Some(nonce),
        ),
        None => match super::super::basic_auth(http) {
            Some((u, p)) => (
                users::authenticate(core, &u, &p, Interface::Soap).await?,
                None,
            ),
            None => return Err(Error::Unauthenticated),
        },
    };
    // Only a token whose credentials hold uses up its nonce: a stranger can neither fill
    // the nonce table nor spend a user's nonce.
    if let Some(nonce) = nonce {
        users::remember_nonce(core, nonce).await?;
    }
    Ok(actor)
}

/// Reads a UsernameToken: PasswordText or PasswordDigest; a Nonce is base64 of 1 to 64
/// bytes and goes with a Created within five minutes of now (a digest needs both).
fn username_token(t: &El) -> Result<Token, Error> {
    let user = t
        .text_of("Username")
        .ok_or_else(|| Error::invalid("UsernameToken/Username", "is missing"))?;
    let pw = t
        .child("Password")
        .ok_or_else(|| Error::invalid("UsernameToken/Password", "is missing"))?;
    let digest = pw
        .attr("Type")
        .is_some_and(|ty| ty.ends_with("#PasswordDigest"));
    let nonce = t.text_of("Nonce");
    let created = t.text_of("Created");
    if digest && (nonce.is_none() || created.is_none()) {
        return Err(Error::invalid(
            "UsernameToken/Password",
            "a PasswordDigest needs a Nonce and Created",
        ));
    }
    let Some(nonce) = nonce else {
        return Ok(Token::Text {
            user,
            password: pw.text.trim().to_string(),
            nonce: None,
        });
    };
    use base64::Engine;
    let nonce_bytes = base64::engine::general_purpose::STANDARD
        .decode(&nonce)
        .ok()
        .filter(|b| (1..=64).contains(&b.len()))
        .ok_or_else(|| Error::invalid("UsernameToken/Nonce", "must be base64 of 1 to 64 bytes"))?;
    let created =
        created.ok_or_else(|| Error::invalid("UsernameToken/Created", "goes with a Nonce"))?;
    let at = chrono::DateTime::parse_from_rfc3339(&created).map_err(|_| {
        Error::invalid(
            "UsernameToken/Created",
            format!("{created:?} is not a time"),
        )
    })?;
    let age = (chrono::Utc::now() - at.with_timezone(&chrono::Utc)).num_seconds();
    if age.abs() > NONCE_WINDOW_SECS {
        return Err(Error::NotAllowed(format!(
            "the token was created {age} s ago; at most {NONCE_WINDOW_SECS} s either way"
        )));
    }
    Ok(if digest {
        Token::Digest {
            user,
            digest: pw.text.trim().to_string(),
            nonce,
            nonce_bytes,
            created,
        }
    } else {
        Token::Text {
            user,
            password: pw.text.trim().to_string(),
            nonce: Some(nonce),
        }
    })
}
