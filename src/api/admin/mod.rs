//! The back office under `/admin`: server-rendered pages for the vendor's staff, in English
//! and German. One more thin front door: each handler turns the session cookie into the
//! staff member's `Actor` (their role as it is now), calls the same service function as the
//! JSON API and SOAP, and renders a template. Every POST carries a token bound to the
//! session (CSRF); the pages run no script at all and no inline style (Content-Security-
//! Policy); charts are SVG drawn on the server.
mod charts;
mod control;
mod customers;
mod operations;
mod orders;
mod webhooks;

use std::net::IpAddr;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::DefaultHeaders;
use actix_web::{web, HttpRequest, HttpResponse};
use minijinja::{Environment, UndefinedBehavior};
use serde_json::{json, Value};

use super::portal::form::Form;
use super::portal::{cookie, form_token, see_other, token_matches};
use crate::config::Config;
use crate::domain::Role;
use crate::error::{Error, Result};
use crate::service::admin::{self, StaffSession};
use crate::service::Core;

pub const BASE: &str = "/admin";
const SESSION_COOKIE: &str = "licentia_admin";
const LANG_COOKIE: &str = "licentia_admin_lang";
/// The token of the login form, before there is a session to bind it to (so that a page
/// elsewhere cannot log a browser in as someone else).
const LOGIN_COOKIE: &str = "licentia_admin_login";
const LANGUAGES: &[&str] = &["en", "de"];

macro_rules! built_in {
    ($($name:literal),+ $(,)?) => {
        &[$(($name, include_str!(concat!("../../../templates/admin/", $name)))),+]
    };
}

const TEMPLATES: &[(&str, &str)] = built_in!(
    "base.html",
    "login.html",
    "message.html",
    "dashboard.html",
    "orders.html",
    "customers.html",
    "customer.html",
    "order_new.html",
    "order.html",
    "items.html",
    "item.html",
    "container.html",
    "blacklist.html",
    "approvals.html",
    "reports.html",
    "mail.html",
    "users.html",
    "settings.html",
    "jobs.html",
    "history.html",
    "webhooks.html",
);
const CATALOGUES: &[(&str, &str)] = built_in!("messages.en.toml", "messages.de.toml");
const STYLE: &str = include_str!("../../../templates/admin/admin.css");

/// The back office, as built at start.
pub struct Admin {
    env: Environment<'static>,
    catalogues: Vec<(&'static str, Value)>,
    secure: bool,
    proxies: Vec<IpAddr>,
    vendor: String,
}

impl Admin {
    /// Loads the templates and catalogues (built in: they are the product's, not the
    /// vendor's to change).
    pub fn load(config: &Config) -> Result<Admin> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.add_filter("when", when);
        env.add_filter("urlencode", |v: String| query_escape(&v));
        env.set_formatter(html_formatter);
        for (name, text) in TEMPLATES {
            env.add_template(name, text)
                .map_err(|e| Error::internal(format!("back office template {name}: {e}")))?;
        }
        let catalogues = CATALOGUES
            .iter()
            .zip(LANGUAGES)
            .map(|((file, text), lang)| {
                let t: toml::Table = text
                    .parse()
                    .map_err(|e| Error::internal(format!("back office {file}: {e}")))?;
                Ok((*lang, serde_json::to_value(t).expect("catalogue")))
            })
            .collect::<Result<_>>()?;
        Ok(Admin {
            env,
            catalogues,
            secure: config.is_https(),
            proxies: config.trusted_proxy_list()?,
            vendor: config.vendor_name.clone(),
        })
    }

    fn texts(&self, lang: &str) -> &Value {
        self.catalogues
            .iter()
            .find(|(l, _)| *l == lang)
            .map_or(&self.catalogues[0].1, |(_, t)| t)
    }

    /// A text of the catalogue by its dotted name (the name itself if there is none).
    fn text(&self, lang: &str, name: &str) -> String {
        name.split('.')
            .try_fold(self.texts(lang), |v, k| v.get(k))
            .and_then(Value::as_str)
            .unwrap_or(name)
            .to_string()
    }

    /// A page: the template `name` with the visit's context and `body`.
    fn page(&self, v: &Visit, status: StatusCode, name: &str, body: Value) -> HttpResponse {
        let page = name.trim_end_matches(".html");
        let mut ctx = json!({
            "lang": v.lang,
            "t": self.texts(v.lang),
            "base": BASE,
            "vendor": self.vendor,
            "page": page,
            "path": v.path,
            "csrf": v.session.as_ref().map(|s| s.csrf()).unwrap_or_default(),
            "user": v.session.as_ref().map(|s| json!({
                "name": s.actor.name,
                "role": s.actor.role.as_str(),
                "may": may(s.actor.role),
            })),
            "languages": LANGUAGES.iter().map(|l| json!({
                "code": l,
                "current": *l == v.lang,
                "href": format!("{BASE}/language?lang={l}&next={}", query_escape(&v.path)),
            })).collect::<Vec<_>>(),
            "notice": v.notice.as_ref().map(|n| self.text(v.lang, &format!("notice.{n}"))),
            "error": null,
        });
        if let (Some(all), Value::Object(own)) = (ctx.as_object_mut(), body) {
            all.extend(own);
        }
        let rendered = self
            .env
            .get_template(name)
            .and_then(|t| t.render(minijinja::Value::from(minijinja::value::Serde(&ctx))));
        match rendered {
            Ok(html) => HttpResponse::build(status)
                .content_type("text/html; charset=utf-8")
                .body(html),
            Err(e) => {
                tracing::error!(cause = %e, page = name, "back office page");
                HttpResponse::InternalServerError()
                    .content_type("text/plain; charset=utf-8")
                    .body("internal error")
            }
        }
    }

    /// A page that says why an action or a page was refused, with a way back.
    fn refused(&self, v: &Visit, e: &Error) -> HttpResponse {
        if let Error::Internal(cause) = e {
            tracing::error!(%cause, "internal error");
        }
        let code = e.code();
        let title = match self.text(v.lang, &format!("error.{code}")) {
            t if t.starts_with("error.") => self.text(v.lang, "error.other"),
            t => t,
        };
        let detail = match e {
            Error::Internal(_) => String::new(),
            other => other.public_message(),
        };
        let status = super::status_of(e);
        self.page(
            v,
            status,
            "message.html",
            json!({
                "title": title,
                "error": {"code": code, "title": title, "detail": detail},
                "back": v.back.clone(),
            }),
        )
    }

    fn cookie(&self, name: &str, value: &str, max_age: i64) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{name}={value}; Path={BASE}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
        ))
        .expect("cookie text")
    }

    fn client(&self, req: &HttpRequest) -> IpAddr {
        super::client_addr(req, &self.proxies)
    }
}

/// HTML escaping of what `{{ … }}` writes: `&`, `<`, `>`, `"` and `'` (minijinja's own
/// also escapes `/`, which makes every link of the pages `&#x2f;admin&#x2f;…`).
fn html_formatter(
    out: &mut minijinja::Output,
    state: &mut minijinja::State,
    value: &minijinja::Value,
) -> std::result::Result<(), minijinja::Error> {
    use std::fmt::Write;
    if value.is_safe() || !matches!(state.auto_escape(), minijinja::AutoEscape::Html) {
        return minijinja::escape_formatter(out, state, value);
    }
    let text = if value.is_undefined() || value.is_none() {
        String::new()
    } else {
        value.to_string()
    };
    for c in text.chars() {
        let r = match c {
            '&' => out.write_str("&amp;"),
            '<' => out.write_str("&lt;"),
            '>' => out.write_str("&gt;"),
            '"' => out.write_str("&quot;"),
            '\'' => out.write_str("&#x27;"),
            c => out.write_char(c),
        };
        r.map_err(|_| minijinja::Error::new(minijinja::ErrorKind::WriteFailure, "write"))?;
    }
    Ok(())
}

/// A stored time (`2026-12-04T05:06:07.123`) as the tables show it, to the minute, UTC;
/// none as nothing.
fn when(v: minijinja::Value) -> String {
    match v.as_str() {
        Some(s) if s.len() >= 16 => s.get(..16).unwrap_or(s).replace('T', " "),
        Some(s) => s.to_string(),
        None => String::new(),
    }
}

/// Which pages and actions a role's pages offer (the service checks the role again on
/// every call: what is not offered is refused anyway).
fn may(role: Role) -> Value {
    let support = matches!(role, Role::Admin | Role::Support);
    let control = matches!(role, Role::Admin | Role::Sales);
    json!({
        "write_items": role == Role::Admin,
        "control": control,
        "push": support,
        "reset": role == Role::Admin,
        "blacklist": support,
        "approvals": support,
        "mail": support,
        "webhooks": role == Role::Admin,
        "unlist": role == Role::Admin,
        "users": role == Role::Admin,
        "settings": support,
        "write_settings": role == Role::Admin,
        "jobs": support,
        "run_jobs": role == Role::Admin,
        "history": support,
    })
}

pub use crate::api::portal::views::query_escape;

type Core_ = web::Data<Core>;
type Admin_ = web::Data<Admin>;

/// A path inside the back office to come back to; anything else becomes its start.
fn local_path(next: Option<&str>) -> String {
    super::portal::path_within(BASE, next).unwrap_or_else(|| BASE.to_string())
}

/// Back to `to` with a notice (a key of the catalogue's `notice` section).
fn done(to: &str, notice: &str) -> HttpResponse {
    let sep = if to.contains('?') { '&' } else { '?' };
    see_other(&format!("{to}{sep}notice={notice}"))
}

/// The request as the pages need it.
pub struct Visit {
    lang: &'static str,
    session: Option<StaffSession>,
    /// The page's own address (to come back to).
    path: String,
    /// Where a refusal page leads back to.
    back: String,
    notice: Option<String>,
}

impl Visit {
    async fn of(core: &Core, req: &HttpRequest) -> Result<Visit> {
        let session = match cookie(req, SESSION_COOKIE) {
            Some(token) => admin::session(core, &token).await?,
            None => None,
        };
        let accept = req
            .headers()
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok());
        let lang = super::portal::negotiate(cookie(req, LANG_COOKIE).as_deref(), accept);
        let path = match req.query_string() {
            "" => req.path().to_string(),
            q => format!("{}?{q}", req.path()),
        };
        let back = local_path(
            req.headers()
                .get(header::REFERER)
                .and_then(|r| r.to_str().ok())
                .and_then(|r| r.find("/admin").map(|i| &r[i..])),
        );
        let notice =
            web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
                .ok()
                .and_then(|q| q.get("notice").cloned())
                .filter(|n| n.len() < 40 && n.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
        Ok(Visit {
            lang,
            session,
            path,
            back,
            notice,
        })
    }

    /// The staff member of this visit.
    fn staff(&self) -> &StaffSession {
        self.session.as_ref().expect("checked by the staff! macro")
    }
}

/// The visit of a logged-in staff member, or the answer for a visitor without a session
/// (the login page, coming back here afterwards) or a database that did not answer.
macro_rules! staff {
    ($core:expr, $admin:expr, $req:expr) => {
        match $crate::api::admin::Visit::of(&$core, &$req).await {
            Ok(v) if v.session.is_some() => v,
            Ok(v) => return $crate::api::admin::to_login(&v),
            Err(e) => return $crate::api::admin::failed_visit(&$admin, &e),
        }
    };
}
use staff;

/// Answers with `$admin.refused` for an error.
macro_rules! tried {
    ($admin:expr, $v:expr, $e:expr) => {
        match $e {
            Ok(x) => x,
            Err(e) => return $admin.refused(&$v, &e.into()),
        }
    };
}
use tried;

fn to_login(v: &Visit) -> HttpResponse {
    see_other(&format!("{BASE}/login?next={}", query_escape(&v.path)))
}

fn failed_visit(admin: &Admin, e: &Error) -> HttpResponse {
    let v = Visit {
        lang: LANGUAGES[0],
        session: None,
        path: BASE.into(),
        back: BASE.into(),
        notice: None,
    };
    admin.refused(&v, e)
}

/// A posted form with its session's token checked: without it nothing is done.
fn posted(
    admin: &Admin,
    v: &Visit,
    req: &HttpRequest,
    body: &[u8],
) -> std::result::Result<Form, Box<HttpResponse>> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let form = Form::parse(ct, body).map_err(|e| Box::new(admin.refused(v, &e)))?;
    let ok = v
        .session
        .as_ref()
        .is_some_and(|s| s.csrf_matches(form.get("csrf").unwrap_or("")));
    if !ok {
        tracing::warn!(path = %req.path(), "back office form without its session's token refused");
        return Err(Box::new(admin.refused(
            v,
            &Error::Forbidden {
                role: "form".into(),
                action: "send a form without the token of this session (reload the page)",
            },
        )));
    }
    Ok(form)
}

/// Reads a posted form or answers with the refusal.
macro_rules! form {
    ($admin:expr, $v:expr, $req:expr, $body:expr) => {
        match $crate::api::admin::posted(&$admin, &$v, &$req, &$body) {
            Ok(f) => f,
            Err(r) => return *r,
        }
    };
}
use form;

/// A parameter of the query that names what a page is about (an id may hold any
/// character, `/` too, so ids travel in the query, never in the path).
fn param(req: &HttpRequest, name: &'static str) -> Result<String> {
    web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
        .ok()
        .and_then(|mut q| q.remove(name))
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Error::invalid(name, format!("missing (…?{name}=…)")))
}

/// A form field, trimmed; empty when missing.
fn field<'a>(f: &'a Form, name: &str) -> &'a str {
    f.get(name).map(str::trim).unwrap_or("")
}

/// A form field that must be a whole number.
fn number<T: std::str::FromStr>(f: &Form, name: &'static str) -> Result<Option<T>> {
    match field(f, name) {
        "" => Ok(None),
        s => s
            .parse()
            .map(Some)
            .map_err(|_| Error::invalid(name, format!("{s:?} is not a whole number"))),
    }
}

async fn login_page(core: Core_, admin: Admin_, req: HttpRequest) -> HttpResponse {
    let v = match Visit::of(&core, &req).await {
        Ok(v) => v,
        Err(e) => return failed_visit(&admin, &e),
    };
    let next =
        web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
            .ok()
            .and_then(|q| q.get("next").cloned());
    if v.session.is_some() {
        return see_other(&local_path(next.as_deref()));
    }
    let title = admin.text(v.lang, "login.title");
    let (token, fresh) = form_token(&req, LOGIN_COOKIE);
    let mut r = admin.page(
        &v,
        StatusCode::OK,
        "login.html",
        json!({"title": title, "next": local_path(next.as_deref()), "username": "",
            "login_token": token}),
    );
    if fresh {
        r.headers_mut()
            .append(header::SET_COOKIE, admin.cookie(LOGIN_COOKIE, &token, 3600));
    }
    r
}

async fn login(core: Core_, admin: Admin_, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let v = match Visit::of(&core, &req).await {
        Ok(v) => v,
        Err(e) => return failed_visit(&admin, &e),
    };
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let form = tried!(admin, v, Form::parse(ct, &body));
    let expected = cookie(&req, LOGIN_COOKIE).unwrap_or_default();
    if !token_matches(form.get("csrf").unwrap_or(""), &expected) {
        return admin.refused(
            &v,
            &Error::Forbidden {
                role: "form".into(),
                action: "send a form without the token of this session (reload the page)",
            },
        );
    }
    let next = local_path(form.get("next"));
    let username = field(&form, "username").to_string();
    let password = form.get("password").unwrap_or("");
    match admin::login(&core, admin.client(&req), &username, password).await {
        Ok((token, _)) => {
            let mut r = see_other(&next);
            let max_age = i64::from(core.config().admin_session_hours) * 3600;
            r.headers_mut().append(
                header::SET_COOKIE,
                admin.cookie(SESSION_COOKIE, &token, max_age),
            );
            r
        }
        Err(e) => {
            let status = super::status_of(&e);
            let title = admin.text(v.lang, "login.title");
            let message = match e {
                Error::Unauthenticated => admin.text(v.lang, "login.wrong"),
                Error::RateLimited { .. } => admin.text(v.lang, "login.held_back"),
                Error::Forbidden { .. } => admin.text(v.lang, "login.no_back_office"),
                other => {
                    return admin.refused(&v, &other);
                }
            };
            admin.page(
                &v,
                status,
                "login.html",
                json!({"title": title, "next": next, "username": username,
                    "login_token": expected,
                    "error": {"code": "login", "title": message, "detail": ""}}),
            )
        }
    }
}

async fn logout(core: Core_, admin: Admin_, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let v = staff!(core, admin, req);
    let _ = form!(admin, v, req, body);
    tried!(admin, v, admin::logout(&core, v.staff()).await);
    let mut r = see_other(&format!("{BASE}/login"));
    r.headers_mut()
        .append(header::SET_COOKIE, admin.cookie(SESSION_COOKIE, "", 0));
    r
}

async fn language(req: HttpRequest, admin: Admin_) -> HttpResponse {
    let q = web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default();
    let lang = q
        .get("lang")
        .and_then(|l| LANGUAGES.iter().find(|x| **x == l))
        .copied()
        .unwrap_or(LANGUAGES[0]);
    let mut r = see_other(&local_path(q.get("next").map(String::as_str)));
    r.headers_mut().append(
        header::SET_COOKIE,
        admin.cookie(LANG_COOKIE, lang, 365 * 86_400),
    );
    r
}

async fn style() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(STYLE)
}

async fn not_found(core: Core_, admin: Admin_, req: HttpRequest) -> HttpResponse {
    let v = staff!(core, admin, req);
    admin.refused(&v, &Error::not_found("page", req.path()))
}

fn headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((header::REFERRER_POLICY, "same-origin"))
        .add((header::CACHE_CONTROL, "no-store"))
}

pub fn configure(cfg: &mut web::ServiceConfig, admin: web::Data<Admin>) {
    let scope = web::scope(BASE)
        .app_data(admin)
        .wrap(headers())
        .route("", web::get().to(operations::dashboard))
        .route("/", web::get().to(operations::dashboard))
        .route("/login", web::get().to(login_page))
        .route("/login", web::post().to(login))
        .route("/logout", web::post().to(logout))
        .route("/language", web::get().to(language))
        .route("/static/admin.css", web::get().to(style))
        .configure(orders::routes)
        .configure(control::routes)
        .configure(customers::routes)
        .configure(operations::routes)
        .configure(webhooks::routes);
    cfg.service(scope.default_service(web::to(not_found)));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every text is in every language: a missing one would show its name on the page.
    #[test]
    fn the_catalogues_have_the_same_texts() {
        fn names(v: &Value, path: &str, out: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    for (k, v) in m {
                        names(v, &format!("{path}{k}."), out);
                    }
                }
                _ => out.push(path.to_string()),
            }
        }
        let mut all = vec![];
        for (file, text) in CATALOGUES {
            let t: toml::Table = text.parse().unwrap_or_else(|e| panic!("{file}: {e}"));
            let mut n = vec![];
            names(&serde_json::to_value(t).unwrap(), "", &mut n);
            n.sort();
            all.push(n);
        }
        assert_eq!(all[0], all[1]);
    }

    #[test]
    fn only_paths_inside_the_back_office_are_come_back_to() {
        assert_eq!(local_path(Some("/admin/orders?q=1")), "/admin/orders?q=1");
        assert_eq!(local_path(Some("/admin?notice=x")), "/admin?notice=x");
        for bad in [
            "https://evil.example/",
            "//evil",
            "/admin//x",
            "/portal",
            "/adminx",
        ] {
            assert_eq!(local_path(Some(bad)), "/admin", "{bad}");
        }
    }

    #[test]
    fn values_are_escaped_but_slashes_are_left() {
        let mut env = Environment::new();
        env.set_formatter(html_formatter);
        env.add_template("t.html", "<a href=\"{{ u }}\">{{ x }}</a>{{ n }}")
            .unwrap();
        let out = env
            .get_template("t.html")
            .unwrap()
            .render(minijinja::context! {u => "/admin/x?a=1&b=2", x => "<b>'\"", n => ()})
            .unwrap();
        assert_eq!(
            out,
            "<a href=\"/admin/x?a=1&amp;b=2\">&lt;b&gt;&#x27;&quot;</a>"
        );
    }
}
