//! The license portal under `/portal`: server-rendered pages for customers. One more thin
//! front door: each handler turns the session cookie into a `Session`, calls the service
//! function (`service::portal`, which calls the same activation and lifecycle functions as
//! the gateway), and renders a template in the customer's language. Forms work without
//! script; every POST carries a token bound to the session (CSRF); the pages run no inline
//! script or style (Content-Security-Policy); the session cookie is HttpOnly, SameSite=Lax
//! and Secure when customers reach the server over https.
mod cloud;
pub(crate) mod form;
mod licenses;
mod login;
mod pages;
mod register;
mod sso;
mod transfer;
pub(crate) mod views;

use std::net::IpAddr;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::DefaultHeaders;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::Value;

use self::form::Form;
pub(crate) use self::pages::negotiate;
use self::pages::Pages;
use self::views::{Cx, BASE};
use crate::config::{url_origin, Config};
use crate::error::{Error, Result};
use crate::protocol::MAX_MESSAGE;
use crate::service::portal::Session;
use crate::service::Core;

const SESSION_COOKIE: &str = "licentia_portal";
/// The token of the login form, before there is a session to bind it to.
const LOGIN_COOKIE: &str = "licentia_portal_login";
const LANG_COOKIE: &str = "licentia_lang";

/// The portal, as built at start from the configuration.
pub struct Portal {
    pages: Pages,
    /// Cookies are sent only over https.
    secure: bool,
    proxies: Vec<IpAddr>,
    session_secs: i64,
    /// The pages' Content-Security-Policy.
    csp: String,
    /// Single sign-on is set up: the login page offers it.
    sso: bool,
    /// Visitors may register with their e-mail address.
    registration: bool,
}

impl Portal {
    /// Loads and checks the templates, catalogues and style sheet (a broken override stops
    /// the start, naming the file).
    pub fn load(config: &Config) -> Result<Portal> {
        let pages = Pages::load(config)?;
        // Images from the server itself and from the logo's origin; nothing inline. The
        // script talks to the portal and to the local helper on the customer's computer.
        let logo = url_origin(&config.logo_url).unwrap_or_default();
        let helper = &pages.local_helper;
        let csp = format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' {logo}; \
             connect-src 'self' {helper}; form-action 'self'; frame-ancestors 'none'; \
             base-uri 'none'"
        )
        .replace("  ", " ")
        .replace(" ;", ";");
        Ok(Portal {
            pages,
            secure: config.is_https(),
            proxies: config.trusted_proxy_list()?,
            session_secs: i64::from(config.portal_session_minutes) * 60,
            csp,
            sso: !config.saml_idp_metadata.trim().is_empty(),
            registration: config.portal_self_registration,
        })
    }

    /// Lets the pages' forms go to the identity provider too (single sign-on by HTTP-POST,
    /// and the logout, whose answer sends the browser on to it: a browser holds a form's
    /// redirects to the policy of the page it was sent from).
    pub fn allow_form_targets(&mut self, origins: &[String]) {
        let mut extra = String::new();
        for o in origins {
            if !self.csp.contains(&format!(" {o}")) {
                extra.push(' ');
                extra.push_str(o);
            }
        }
        self.csp = self
            .csp
            .replace("form-action 'self'", &format!("form-action 'self'{extra}"));
    }

    /// The headers every portal answer carries.
    fn headers(&self) -> DefaultHeaders {
        DefaultHeaders::new()
            .add((header::CONTENT_SECURITY_POLICY, self.csp.clone()))
            .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .add((header::X_FRAME_OPTIONS, "DENY"))
            // Tickets travel in the pages' addresses: no other site learns them.
            .add((header::REFERRER_POLICY, "no-referrer"))
            .add((header::CACHE_CONTROL, "no-store"))
    }

    /// A page, or a plain 500 if it cannot be rendered (logged; the start checked every
    /// template, so this is a bug, not a configuration).
    fn page(
        &self,
        cx: &Cx,
        status: StatusCode,
        name: &str,
        title: &str,
        body: Value,
    ) -> HttpResponse {
        self.page_with(cx, status, name, title, body, None, None)
    }

    #[allow(clippy::too_many_arguments)]
    fn page_with(
        &self,
        cx: &Cx,
        status: StatusCode,
        name: &str,
        title: &str,
        body: Value,
        error: Option<Value>,
        notice: Option<String>,
    ) -> HttpResponse {
        let mut v = views::page(&self.pages, cx, name.trim_end_matches(".html"), title, body);
        if let Some(e) = error {
            v["error"] = e;
        }
        if let Some(n) = notice {
            v["notice"] = Value::String(n);
        }
        match self.pages.render(name, v) {
            Ok(html) => HttpResponse::build(status)
                .content_type("text/html; charset=utf-8")
                .body(html),
            Err(e) => {
                tracing::error!(cause = %e, "portal page");
                HttpResponse::InternalServerError()
                    .content_type("text/plain; charset=utf-8")
                    .body("internal error")
            }
        }
    }

    fn text(&self, cx: &Cx, name: &str) -> String {
        self.pages.text(cx.lang, name).unwrap_or(name).to_string()
    }

    /// A page that only says why something was refused.
    fn refused(&self, cx: &Cx, e: &Error) -> HttpResponse {
        if let Error::Internal(cause) = e {
            tracing::error!(%cause, "internal error");
        }
        let r = views::refusal(&self.pages, cx.lang, e);
        let title = r["title"].as_str().unwrap_or_default().to_string();
        let body = serde_json::json!({"heading": self.text(cx, "error.title")});
        self.page_with(
            cx,
            super::status_of(e),
            "message.html",
            &title,
            body,
            Some(r),
            None,
        )
    }

    /// A page of the portal's own refusals (`csrf`, `page_not_found`).
    fn refused_as(&self, cx: &Cx, status: StatusCode, code: &str) -> HttpResponse {
        let r = views::portal_refusal(&self.pages, cx.lang, code);
        let title = r["title"].as_str().unwrap_or_default().to_string();
        let body = serde_json::json!({"heading": title});
        self.page_with(cx, status, "message.html", &title, body, Some(r), None)
    }

    fn cookie(&self, name: &str, value: &str, max_age: i64) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{name}={value}; Path={BASE}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"
        ))
        .expect("cookie text")
    }

    /// The colours the back office set (primary, accent), if it set any; the database not
    /// answering is logged and the configured ones hold.
    async fn colors(&self, core: &Core) -> Option<([u8; 3], [u8; 3])> {
        match crate::service::admin::portal_look(core).await {
            Ok(l) if !l.color.is_empty() || !l.accent_color.is_empty() => {
                let l = l.in_force(core.config());
                Some((
                    crate::config::parse_color(&l.color)?,
                    crate::config::parse_color(&l.accent_color)?,
                ))
            }
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(cause = %e, "portal look");
                None
            }
        }
    }

    /// The columns of the license overview: as set in the back office, else as configured.
    async fn columns(&self, core: &Core) -> Vec<String> {
        match crate::service::admin::portal_look(core).await {
            Ok(l) if !l.columns.is_empty() => l.column_list(),
            Ok(_) => self.pages.columns.clone(),
            Err(e) => {
                tracing::warn!(cause = %e, "portal look");
                self.pages.columns.clone()
            }
        }
    }

    /// The client's address (behind a trusted reverse proxy, the one it forwards for).
    fn client(&self, req: &HttpRequest) -> IpAddr {
        super::client_addr(req, &self.proxies)
    }
}

type Core_ = web::Data<Core>;
type Portal_ = web::Data<Portal>;

/// A cookie of the request.
pub(crate) fn cookie(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// A path inside the portal to come back to after a login or a change of language;
/// anything else (another site, `//host`) becomes the portal's start.
fn local_path(next: Option<&str>) -> String {
    path_within(BASE, next).unwrap_or_else(|| format!("{BASE}/tickets"))
}

/// `next` if it is a path inside `base` (`base` itself, `base/…` or `base?…`) that leads
/// nowhere else (no `//`, no backslash, printable ASCII only).
pub(crate) fn path_within(base: &str, next: Option<&str>) -> Option<String> {
    let n = next?;
    let inside = n == base
        || n.strip_prefix(base)
            .is_some_and(|rest| rest.starts_with('/') || rest.starts_with('?'));
    (inside && !n.contains("//") && !n.contains('\\') && n.chars().all(|c| c.is_ascii_graphic()))
        .then(|| n.to_string())
}

pub(crate) fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish()
}

/// The request as the pages need it: language, session and the token its forms carry.
struct Visit {
    cx: Cx,
    session: Option<Session>,
}

impl Visit {
    async fn of(core: &Core, req: &HttpRequest) -> Result<Visit> {
        let session = match cookie(req, SESSION_COOKIE) {
            Some(token) => crate::service::portal::session(core, &token).await?,
            None => None,
        };
        let accept = req
            .headers()
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok());
        let lang = pages::negotiate(cookie(req, LANG_COOKIE).as_deref(), accept);
        let path = match req.query_string() {
            "" => req.path().to_string(),
            q => format!("{}?{q}", req.path()),
        };
        let cx = Cx {
            lang,
            logged_in: session.is_some(),
            has_tickets: session.as_ref().is_some_and(sees_tickets),
            csrf: session
                .as_ref()
                .map(|s| s.csrf().to_string())
                .unwrap_or_default(),
            path,
        };
        Ok(Visit { cx, session })
    }

    /// The session whose tickets the page shows; without one, the login page (coming back
    /// here afterwards).
    fn ticket_session(&self) -> std::result::Result<&Session, Box<HttpResponse>> {
        match &self.session {
            Some(s) if sees_tickets(s) => Ok(s),
            _ => Err(Box::new(see_other(&format!(
                "{BASE}/login?next={}",
                views::query_escape(&self.cx.path)
            )))),
        }
    }
}

/// Whether a session is one whose tickets the pages show: one with tickets, or a
/// customer's session (single sign-on, an e-mail link: all of its customer's tickets, none
/// yet perhaps).
fn sees_tickets(s: &Session) -> bool {
    s.customer_id.is_some() || !s.tickets().is_empty()
}

/// Loads the visit, or answers with the page for its failure.
macro_rules! visit {
    ($core:expr, $portal:expr, $req:expr) => {
        match $crate::api::portal::Visit::of(&$core, &$req).await {
            Ok(v) => v,
            Err(e) => return $crate::api::portal::failed_visit(&$portal, &e),
        }
    };
}
use visit;

/// The page for a visit whose session could not be read (the database did not answer).
fn failed_visit(portal: &Portal, e: &Error) -> HttpResponse {
    let cx = Cx {
        lang: pages::LANGUAGES[0],
        logged_in: false,
        has_tickets: false,
        csrf: String::new(),
        path: BASE.to_string(),
    };
    portal.refused(&cx, e)
}

/// The form token of a visitor without a session (the login form, the automatic updates):
/// their cookie's (kept, so that two open pages both work), or a new one (the flag says so:
/// the page sets the cookie).
fn visitor_token(req: &HttpRequest) -> (String, bool) {
    form_token(req, LOGIN_COOKIE)
}

/// The token kept in cookie `name` for a form shown before there is a session, or a new
/// one (the flag says so: the page sets the cookie).
pub(crate) fn form_token(req: &HttpRequest, name: &str) -> (String, bool) {
    match cookie(req, name) {
        Some(t) if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) => (t, false),
        _ => {
            let mut b = [0u8; 32];
            openssl::rand::rand_bytes(&mut b).expect("CSPRNG");
            (hex::encode(b), true)
        }
    }
}

/// Whether a form's token is the one expected (compared in constant time).
pub(crate) fn token_matches(given: &str, expected: &str) -> bool {
    !expected.is_empty()
        && given.len() == expected.len()
        && openssl::memcmp::eq(given.as_bytes(), expected.as_bytes())
}

/// A posted form, its token checked: the session's, or for a visitor without one the token
/// of their form cookie. Without the right token nothing is done (a page from elsewhere
/// cannot make the customer's browser change anything).
fn posted(
    portal: &Portal,
    visit: &Visit,
    req: &HttpRequest,
    body: &[u8],
) -> std::result::Result<Form, Box<HttpResponse>> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let form = Form::parse(ct, body).map_err(|e| Box::new(portal.refused(&visit.cx, &e)))?;
    let given = form.get("csrf").unwrap_or("");
    let ok = match &visit.session {
        Some(s) => s.csrf_matches(given),
        None => token_matches(given, &cookie(req, LOGIN_COOKIE).unwrap_or_default()),
    };
    if !ok {
        tracing::warn!(path = %req.path(), "portal form without its session's token refused");
        return Err(Box::new(portal.refused_as(
            &visit.cx,
            StatusCode::FORBIDDEN,
            "csrf",
        )));
    }
    Ok(form)
}

async fn style(portal: Portal_) -> HttpResponse {
    asset("text/css; charset=utf-8", portal.pages.style.clone())
}
/// The vendor's colours: as set in the back office, else as configured. Not kept by the
/// browser (a change in the back office shows at the next page).
async fn brand(core: Core_, portal: Portal_) -> HttpResponse {
    let css = match portal.colors(&core).await {
        Some((primary, accent)) => pages::brand_css(primary, accent),
        None => portal.pages.brand_css.clone(),
    };
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(css)
}
async fn icon(core: Core_, portal: Portal_) -> HttpResponse {
    let svg = match portal.colors(&core).await {
        Some((primary, _)) => pages::icon(&portal.pages.brand.name, primary),
        None => portal.pages.icon.clone(),
    };
    HttpResponse::Ok()
        .content_type("image/svg+xml")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(svg)
}
async fn script() -> HttpResponse {
    asset("text/javascript; charset=utf-8", pages::SCRIPT.to_string())
}

/// A style sheet or script: the same until the server restarts with other settings.
fn asset(content_type: &str, body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(body)
}

async fn not_found(core: Core_, portal: Portal_, req: HttpRequest) -> HttpResponse {
    let v = visit!(core, portal, req);
    portal.refused_as(&v.cx, StatusCode::NOT_FOUND, "page_not_found")
}

pub fn configure(cfg: &mut web::ServiceConfig, portal: web::Data<Portal>) {
    let headers = portal.headers();
    let registration = portal.registration;
    let scope = web::scope(BASE)
        .app_data(portal)
        // A request or receipt file, with the form around it.
        .app_data(web::PayloadConfig::new(MAX_MESSAGE + 64 * 1024))
        .wrap(headers)
        .route("", web::get().to(login::root))
        .route("/", web::get().to(login::root))
        .route("/login", web::get().to(login::login_page))
        .route("/login", web::post().to(login::login))
        .route("/logout", web::post().to(login::logout))
        .route("/language", web::get().to(login::language))
        .route("/static/portal.css", web::get().to(style))
        .route("/static/brand.css", web::get().to(brand))
        .route("/static/portal.js", web::get().to(script))
        .route("/static/icon.svg", web::get().to(icon))
        .route("/tickets", web::get().to(licenses::overview))
        .route("/tickets/{ticket}", web::get().to(licenses::ticket))
        .route(
            "/tickets/{ticket}/activate",
            web::get().to(transfer::activate_page),
        )
        .route(
            "/tickets/{ticket}/activate",
            web::post().to(transfer::activate),
        )
        .route(
            "/tickets/{ticket}/return",
            web::get().to(transfer::return_page),
        )
        .route(
            "/tickets/{ticket}/return",
            web::post().to(transfer::deactivate),
        )
        .route(
            "/tickets/{ticket}/reactivate",
            web::get().to(transfer::reactivate_page),
        )
        .route(
            "/tickets/{ticket}/reactivate",
            web::post().to(transfer::reactivate),
        )
        .route("/transfer", web::get().to(transfer::transfer_page))
        .route("/transfer/update", web::get().to(transfer::update_file))
        .route("/transfer/receipt", web::post().to(transfer::receipt))
        .route("/updates", web::get().to(transfer::updates_page))
        .route("/updates", web::post().to(transfer::updates))
        .route("/restore", web::get().to(transfer::restore_page))
        .route("/restore", web::post().to(transfer::restore))
        .route("/licenses/{id}/history", web::get().to(licenses::history))
        .route("/licenses/{id}/split", web::get().to(licenses::split_page))
        .route("/licenses/{id}/split", web::post().to(licenses::split))
        .route("/template/{firm_code}", web::get().to(licenses::template))
        .route("/trials", web::post().to(register::take_trial))
        .route("/cloud", web::post().to(cloud::create))
        .route("/cloud/{serial}/{action}", web::post().to(cloud::act))
        .route("/saml/metadata", web::get().to(sso::metadata))
        .route("/saml/login", web::get().to(sso::login))
        .route("/saml/acs", web::post().to(sso::acs))
        .route("/saml/slo", web::get().to(sso::slo))
        .route("/saml/slo", web::post().to(sso::slo_post));
    // Without self-registration its pages are unknown pages.
    let scope = if registration {
        scope
            .route("/register", web::get().to(register::page))
            .route("/register", web::post().to(register::request))
            .route("/register/verify", web::get().to(register::verify_page))
            .route("/register/verify", web::post().to(register::verify))
    } else {
        scope
    };
    cfg.service(scope.default_service(web::to(not_found)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_inside_the_portal_are_come_back_to() {
        assert_eq!(local_path(Some("/portal/tickets/AB")), "/portal/tickets/AB");
        assert_eq!(local_path(Some("/portal")), "/portal");
        for bad in [
            "https://evil.example/",
            "//evil.example",
            "/portal//evil",
            "/api/v1",
            "/portal/\\x",
        ] {
            assert_eq!(local_path(Some(bad)), "/portal/tickets", "{bad}");
        }
        assert_eq!(local_path(None), "/portal/tickets");
    }
}
