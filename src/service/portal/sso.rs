//! Single sign-on through the vendor's SAML identity provider, Licentia being the Service
//! Provider. What is set up at start (`Sso::load`: the identity provider's metadata, refused
//! without a signing certificate; our key and certificate) and the use cases: start a login
//! (a one-time request id and RelayState kept in the database), take the identity provider's
//! answer (verified by `crate::saml`, then the request id, the RelayState and the assertion's
//! id checked in the same write that starts the session, so any node can take it and none
//! twice), and single logout both ways.
use std::path::Path;

use chrono::NaiveDateTime;

use super::{new_row, open, LoginMethod, NewSession, Session};
use crate::config::Config;
use crate::domain::ticket::TicketCode;
use crate::error::{Error, Result};
use crate::saml::messages::{self, Envelope, Logout};
use crate::saml::metadata::{sp_metadata, SpUrls};
use crate::saml::{self as protocol, Binding, CertInfo, IdpMetadata, Outgoing, SpKeys};
use crate::service::Core;
use crate::store::customers::{self, Contact};
use crate::store::portal as portal_store;
use crate::store::saml::{self as store, RequestRow, SsoSessionRow};

/// How many days before a certificate expires the health check and the log warn.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// Single sign-on as set up at start.
pub struct Sso {
    pub idp: IdpMetadata,
    keys: SpKeys,
    pub urls: SpUrls,
    /// (what it is, what it says): the identity provider's signing certificates and ours.
    pub certs: Vec<(String, CertInfo)>,
    idp_initiated: bool,
    create_customers: bool,
    attr_customer: String,
    attr_email: String,
    attr_name: String,
    skew: chrono::Duration,
    request_lifetime: chrono::Duration,
    pub binding: Binding,
}

impl Sso {
    /// Sets single sign-on up, or nothing when `saml_idp_metadata` is unset. Metadata that
    /// cannot be read, or that has no signing certificate, stops the start.
    pub fn load(config: &Config) -> Result<Option<Sso>> {
        let source = config.saml_idp_metadata.trim();
        if source.is_empty() {
            return Ok(None);
        }
        let bad = |why: String| Error::invalid("saml_idp_metadata", why);
        let text = if source.starts_with("https://") || source.starts_with("http://") {
            ureq::get(source)
                .timeout(std::time::Duration::from_secs(15))
                .call()
                .map_err(|e| bad(format!("cannot fetch {source}: {e}")))?
                .into_string()
                .map_err(|e| bad(format!("cannot read {source}: {e}")))?
        } else {
            std::fs::read_to_string(source)
                .map_err(|e| bad(format!("cannot read {source}: {e}")))?
        };
        let idp = IdpMetadata::parse(text.as_bytes()).map_err(|e| bad(format!("{source}: {e}")))?;
        let keys = sp_keys(config)?;
        let portal = portal_url(config);
        let portal = portal.trim_end_matches('/');
        let urls = SpUrls {
            entity_id: if config.saml_entity_id.is_empty() {
                format!("{portal}/saml/metadata")
            } else {
                config.saml_entity_id.clone()
            },
            acs: format!("{portal}/saml/acs"),
            slo: format!("{portal}/saml/slo"),
        };
        let mut certs = vec![];
        for der in &idp.signing_certs {
            let info = CertInfo::read(der).map_err(bad)?;
            certs.push((format!("identity provider {}", idp.entity_id), info));
        }
        let ours =
            CertInfo::read(&keys.cert_der()).map_err(|e| Error::invalid("saml_sp_cert", e))?;
        certs.push(("service provider".to_string(), ours));
        let binding = match config.saml_binding.as_str() {
            "post" => Binding::Post,
            _ => Binding::Redirect,
        };
        if idp.sso_location(binding.uri()).is_none() {
            return Err(bad(format!(
                "the identity provider offers no single sign-on with the {} binding \
                 (saml_binding)",
                config.saml_binding
            )));
        }
        let sso = Sso {
            idp,
            keys,
            urls,
            certs,
            idp_initiated: config.saml_idp_initiated,
            create_customers: config.saml_create_customers,
            attr_customer: config.saml_attr_customer.clone(),
            attr_email: config.saml_attr_email.clone(),
            attr_name: config.saml_attr_name.clone(),
            skew: chrono::Duration::seconds(i64::from(config.saml_clock_skew_secs)),
            request_lifetime: chrono::Duration::minutes(i64::from(config.saml_request_minutes)),
            binding,
        };
        for w in sso.expiry_warnings(super::super::now()) {
            tracing::warn!("{w}");
        }
        tracing::info!(idp = %sso.idp.entity_id, entity_id = %sso.urls.entity_id,
            "single sign-on set up");
        Ok(Some(sso))
    }

    /// The certificates that expire within `EXPIRY_WARNING_DAYS` (or did), said in words.
    pub fn expiry_warnings(&self, now: NaiveDateTime) -> Vec<String> {
        self.certs
            .iter()
            .filter(|(_, c)| c.days_left(now) < EXPIRY_WARNING_DAYS)
            .map(|(what, c)| {
                if c.not_after <= now {
                    format!(
                        "the SAML certificate of the {what} ({}) expired on {}",
                        c.subject, c.not_after
                    )
                } else {
                    format!(
                        "the SAML certificate of the {what} ({}) expires on {} (in {} days)",
                        c.subject,
                        c.not_after,
                        c.days_left(now)
                    )
                }
            })
            .collect()
    }

    /// The origins of the identity provider's endpoints (where the portal's forms and their
    /// redirects may send the browser).
    pub fn form_origins(&self) -> Vec<String> {
        let mut out: Vec<String> = vec![];
        let locations = self
            .idp
            .sso
            .iter()
            .map(|(_, l)| l)
            .chain(self.idp.slo.iter().flat_map(|(_, l, r)| [l, r]));
        for l in locations {
            if let Some(o) = crate::config::url_origin(l) {
                if !out.contains(&o) {
                    out.push(o);
                }
            }
        }
        out
    }

    /// Our metadata, signed (valid a week; made anew on every request).
    pub fn metadata(&self) -> Result<String> {
        sp_metadata(&self.urls, &self.keys, 7).map_err(Error::internal)
    }

    fn envelope<'a>(
        &'a self,
        destination: &'a str,
        relay_state: &'a str,
        binding: Binding,
    ) -> Envelope<'a> {
        Envelope {
            keys: &self.keys,
            issuer: &self.urls.entity_id,
            destination,
            relay_state,
            binding,
        }
    }
}

/// The SP key and certificate: configured, else `<data_dir>/saml/sp.key` and `sp.crt`, made
/// on first start (with several nodes, configure the same pair on each).
fn sp_keys(config: &Config) -> Result<SpKeys> {
    let read = |key: &str, path: &str| {
        std::fs::read(path).map_err(|e| Error::invalid(key, format!("cannot read {path}: {e}")))
    };
    match (
        config.saml_sp_key.is_empty(),
        config.saml_sp_cert.is_empty(),
    ) {
        (false, false) => SpKeys::from_pem(
            &read("saml_sp_key", &config.saml_sp_key)?,
            &read("saml_sp_cert", &config.saml_sp_cert)?,
        )
        .map_err(|e| Error::invalid("saml_sp_key", e)),
        (true, true) => {
            let dir = config.data_dir.join("saml");
            let (key, cert) = (dir.join("sp.key"), dir.join("sp.crt"));
            if key.exists() || cert.exists() {
                let r = |p: &Path| {
                    std::fs::read(p)
                        .map_err(|e| Error::internal(format!("cannot read {}: {e}", p.display())))
                };
                return SpKeys::from_pem(&r(&key)?, &r(&cert)?)
                    .map_err(|e| Error::invalid("saml_sp_key", format!("{}: {e}", key.display())));
            }
            std::fs::create_dir_all(&dir)
                .map_err(|e| Error::internal(format!("cannot create {}: {e}", dir.display())))?;
            let portal = portal_url(config);
            let subject = portal.split("://").nth(1).unwrap_or("licentia");
            let keys = SpKeys::generate(subject.split('/').next().unwrap_or("licentia"), 3650)
                .map_err(Error::internal)?;
            let pem = |b: Vec<u8>| String::from_utf8(b).expect("PEM is text");
            crate::service::firms::write_private(&key, &pem(keys.key_pem()))?;
            std::fs::write(&cert, keys.cert_pem())
                .map_err(|e| Error::internal(format!("cannot write {}: {e}", cert.display())))?;
            tracing::info!(key = %key.display(), "made the SAML service provider's key and certificate");
            Ok(keys)
        }
        _ => Err(Error::invalid(
            "saml_sp_key",
            "set both saml_sp_key and saml_sp_cert, or neither (then they are made on first start)",
        )),
    }
}

/// Where customers reach the portal (`portal_url`, else `<public_url>/portal`).
fn portal_url(config: &Config) -> String {
    if config.portal_url.is_empty() {
        format!("{}/portal", config.public_url.trim_end_matches('/'))
    } else {
        config.portal_url.clone()
    }
}

fn sso(core: &Core) -> Result<&Sso> {
    core.sso()
        .ok_or_else(|| Error::NotAllowed("single sign-on is not set up".into()))
}

fn random_token() -> String {
    let mut b = [0u8; 16];
    openssl::rand::rand_bytes(&mut b).expect("CSPRNG");
    hex::encode(b)
}

fn digest(s: &str) -> String {
    hex::encode(openssl::sha::sha256(s.as_bytes()))
}

/// A refusal of the identity provider's message: nothing was changed.
fn refused(why: impl std::fmt::Display) -> Error {
    Error::NotAllowed(format!("single sign-on refused: {why}"))
}

/// Starts a login: a request with a new one-time id and RelayState, kept until it expires;
/// `next` is where the customer goes afterwards.
pub async fn begin_login(core: &Core, next: &str, binding: Option<Binding>) -> Result<Outgoing> {
    let sso = sso(core)?;
    let binding = binding.unwrap_or(sso.binding);
    let Some(destination) = sso.idp.sso_location(binding.uri()) else {
        return Err(Error::invalid(
            "binding",
            "the identity provider does not offer this binding",
        ));
    };
    let id = protocol::new_id();
    let relay = random_token();
    let now = crate::service::now();
    let row = RequestRow {
        id: id.clone(),
        kind: "login".into(),
        relay_state: digest(&relay),
        next_path: next.to_string(),
        created_at: now,
        expires_at: now + sso.request_lifetime,
    };
    core.db
        .write(move |c| store::insert_request(c, &row))
        .await?;
    let out = messages::authn_request(
        &sso.envelope(destination, &relay, binding),
        &id,
        &sso.urls.acs,
    )
    .map_err(Error::internal)?;
    tracing::info!(request = %id, binding = ?binding, "single sign-on started");
    Ok(out)
}

/// What the identity provider's answer came to.
pub enum AcsOutcome {
    /// A new session for the user's customer; its token goes into the cookie.
    Started {
        token: String,
        session: Box<Session>,
        next: String,
    },
    /// An unsolicited answer while IdP-initiated login is allowed: not taken; the login is
    /// started again from here (SP-initiated).
    Restart,
}

/// Takes the identity provider's answer (`SAMLResponse`, `RelayState`). A refusal (an
/// `Error::NotAllowed` saying why, or an unknown customer) changes nothing.
pub async fn consume(core: &Core, saml_response: &str, relay_state: &str) -> Result<AcsOutcome> {
    let sso = sso(core)?;
    let raw = protocol::response::decode(saml_response).map_err(refused)?;
    let claimed = protocol::response::claimed_in_response_to(&raw).map_err(refused)?;
    if claimed.is_none() {
        if sso.idp_initiated {
            tracing::info!("unsolicited SAML response: the login starts again from here");
            return Ok(AcsOutcome::Restart);
        }
        tracing::warn!("unsolicited SAML response refused (IdP-initiated login is off)");
        return Err(refused(
            "the response answers no request (IdP-initiated login is off)",
        ));
    }
    let expect = protocol::Expect {
        idp: &sso.idp,
        entity_id: &sso.urls.entity_id,
        acs: &sso.urls.acs,
        now: chrono::Utc::now(),
        skew: sso.skew,
    };
    let v = protocol::response::verify(&raw, &expect).map_err(|e| {
        tracing::warn!(why = %e, "SAML response refused");
        refused(e)
    })?;
    let Some(request_id) = v
        .in_response_to
        .clone()
        .filter(|r| Some(r) == claimed.as_ref())
    else {
        tracing::warn!("SAML response whose signed InResponseTo differs from its envelope");
        return Err(refused("the response answers no request of ours"));
    };
    let relay = digest(relay_state);
    let now = crate::service::now();
    let email = v.attribute(&sso.attr_email).unwrap_or("").to_string();
    let name = v.attribute(&sso.attr_name).unwrap_or("").to_string();
    let number = v.attribute(&sso.attr_customer).map(str::to_string);
    let create = sso.create_customers;
    let new = NewSession {
        method: LoginMethod::Sso,
        tickets: vec![],
        customer_id: None,
    };
    let (token, base_row) = new_row(core, &new, now);
    let v2 = v.clone();
    let (row, tickets, customer) = core
        .db
        .write(move |c| {
            let Some(next) = store::take_request(c, &request_id, "login", &relay, now)? else {
                return Err(refused(
                    "the response answers no request of ours that is still open (unknown, \
                     expired, already answered, or another RelayState)",
                ));
            };
            if !store::take_assertion(c, &v2.assertion_id, &v2.issuer, now, v2.expires_at)? {
                return Err(refused("this assertion was taken before (a replay)"));
            }
            let user = store::user(c, &v2.issuer, &v2.name_id)?;
            let (user_id, customer_id) = match user {
                Some(u) => {
                    store::touch_user(c, u.id, &email, &name, now)?;
                    (u.id, u.customer_id)
                }
                None => {
                    let Some(number) = number.as_deref() else {
                        return Err(Error::not_found("customer", "(no customer number)"));
                    };
                    // The identity provider is the vendor's: its customer numbers are the
                    // vendor's own customers, or, when the vendor has none with the number,
                    // the one customer any connector has with it (an ERP's numbers, its
                    // customers in its connector's scope).
                    let known = match customers::by_external_id(c, "", number)? {
                        Some(cu) => Some(cu.id),
                        None => match customers::all_named(c, number)?.as_slice() {
                            [only] => Some(*only),
                            _ => None,
                        },
                    };
                    let customer = match known {
                        Some(id) => id,
                        None if create => {
                            let contact = Contact {
                                name: &name,
                                email: &email,
                                locale: "en",
                            };
                            customers::insert(c, "", number, &contact, now)?.id
                        }
                        None => return Err(Error::not_found("customer", number)),
                    };
                    let id = store::insert_user(
                        c,
                        &v2.issuer,
                        &v2.name_id,
                        customer,
                        &email,
                        &name,
                        now,
                    )?;
                    (id, customer)
                }
            };
            let mut row = base_row.clone();
            row.customer_id = Some(customer_id);
            portal_store::insert_session(c, &row)?;
            store::insert_sso_session(
                c,
                &SsoSessionRow {
                    session_id: row.id.clone(),
                    user_id,
                    name_id: v2.name_id.clone(),
                    name_id_format: v2.name_id_format.clone(),
                    session_index: v2.session_index.clone(),
                },
            )?;
            let tickets = portal_store::tickets_of_customer(c, customer_id)?;
            Ok(((row, next), tickets, customer_id))
        })
        .await
        .inspect_err(|e| tracing::warn!(why = %e, "single sign-on refused"))?;
    let (row, next) = row;
    let tickets = tickets
        .iter()
        .map(|t| TicketCode::parse(t))
        .collect::<Result<Vec<_>>>()?;
    tracing::info!(customer, assertion = %v.assertion_id, tickets = tickets.len(),
        "portal login by single sign-on");
    let mut session = open(row, &token, tickets)?;
    session.sso_user = Some(v.name_id.clone());
    Ok(AcsOutcome::Started {
        token,
        session: Box::new(session),
        next,
    })
}

/// Ends a session at a customer's logout. A single sign-on session whose identity provider
/// takes logout requests: the way there (a LogoutRequest, kept as a request of ours so its
/// answer is known); otherwise none.
pub async fn logout(core: &Core, s: &Session) -> Result<Option<Outgoing>> {
    let id = s.id.clone();
    let sso_row = if s.method == LoginMethod::Sso {
        core.db.read(move |c| store::sso_session(c, &id)).await?
    } else {
        None
    };
    super::end_session(core, s).await?;
    let (Some(row), Some(sso)) = (sso_row, core.sso()) else {
        return Ok(None);
    };
    let Some((binding, location, _)) = sso.idp.slo_endpoint().cloned() else {
        return Ok(None);
    };
    let binding = Binding::from_uri(&binding).unwrap_or(Binding::Redirect);
    let request_id = protocol::new_id();
    let relay = random_token();
    let now = crate::service::now();
    let req = RequestRow {
        id: request_id.clone(),
        kind: "logout".into(),
        relay_state: digest(&relay),
        next_path: String::new(),
        created_at: now,
        expires_at: now + sso.request_lifetime,
    };
    core.db
        .write(move |c| store::insert_request(c, &req))
        .await?;
    let out = messages::logout_request(
        &sso.envelope(&location, &relay, binding),
        &request_id,
        &row.name_id,
        &row.name_id_format,
        &row.session_index,
    )
    .map_err(Error::internal)?;
    tracing::info!(request = %request_id, "single logout sent to the identity provider");
    Ok(Some(out))
}

/// What came to the single logout endpoint.
pub enum SloOutcome {
    /// The identity provider answered our logout request.
    LoggedOut,
    /// The identity provider asked us to end a user's sessions: they are ended, and this
    /// answer goes back to it.
    Answer(Outgoing),
}

/// A message at the single logout endpoint: by Redirect (`raw_query`, signed over the
/// query) or by POST (`form`: the XML signed inside). Either a LogoutResponse to our
/// request, or the identity provider's LogoutRequest.
pub async fn single_logout(
    core: &Core,
    raw_query: Option<&str>,
    form: Option<(&str, &str, Option<&str>)>,
) -> Result<SloOutcome> {
    let sso = sso(core)?;
    let incoming = match (raw_query, form) {
        (Some(q), _) => messages::read_logout_redirect(q, &sso.idp, &sso.urls.slo),
        (None, Some((param, value, relay))) => {
            messages::read_logout_post(param, value, relay, &sso.idp, &sso.urls.slo)
        }
        (None, None) => return Err(refused("no SAML message")),
    }
    .map_err(refused)?;
    let relay = incoming.relay_state;
    match incoming.message {
        Logout::Response { in_response_to } => {
            let relay = digest(&relay);
            let now = crate::service::now();
            let taken = core
                .db
                .write(move |c| store::take_request(c, &in_response_to, "logout", &relay, now))
                .await?;
            if taken.is_none() {
                return Err(refused(
                    "the logout response answers no logout request of ours",
                ));
            }
            Ok(SloOutcome::LoggedOut)
        }
        Logout::Request {
            id,
            name_id,
            session_index: index,
            not_on_or_after,
        } => {
            if let Some(until) = not_on_or_after {
                if chrono::Utc::now() - sso.skew >= until {
                    return Err(refused("the logout request expired"));
                }
            }
            let issuer = sso.idp.entity_id.clone();
            let ended = core
                .db
                .write(move |c| {
                    let ids = store::sessions_of(c, &issuer, &name_id, index.as_deref())?;
                    store::delete_sso_sessions(c, &ids)?;
                    for id in &ids {
                        portal_store::delete_session(c, id)?;
                    }
                    Ok(ids.len())
                })
                .await?;
            tracing::info!(ended, "single logout asked by the identity provider");
            let Some((binding, location, response_location)) = sso.idp.slo_endpoint().cloned()
            else {
                return Err(refused(
                    "the identity provider has no logout endpoint to answer",
                ));
            };
            let to = if response_location.is_empty() {
                location
            } else {
                response_location
            };
            let binding = Binding::from_uri(&binding).unwrap_or(Binding::Redirect);
            let out = messages::logout_response(&sso.envelope(&to, &relay, binding), &id)
                .map_err(Error::internal)?;
            Ok(SloOutcome::Answer(out))
        }
    }
}
