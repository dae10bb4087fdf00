//! The license portal: in a real browser (Debian's Chromium driven by playwright-core, the
//! script in tests/browser/portal.cjs) with the client runtime making the files, and over
//! plain HTTP for what a browser does not show (the login limit across addresses and nodes,
//! refused forgeries, cookies, sessions, a broken template).
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use licentia::client::{unix_now, Container};
use licentia::domain::ContainerType;
use licentia::protocol::Template;
use serde_json::{json, Value};

use crate::activation::{license, traits, FIRM};
use crate::harness::{order, TestApp};

/// The folder of the browser test's npm packages (scripts/test.sh installs them from
/// tests/browser/package-lock.json).
pub(crate) fn node_modules() -> PathBuf {
    let dir = std::env::var("TEST_BROWSER_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/browser/node_modules")
        });
    assert!(
        dir.join("playwright-core").is_dir() && dir.join("axe-core").is_dir(),
        "{} has no playwright-core and axe-core: scripts/test.sh installs them (npm ci of \
         tests/browser/) and Debian's chromium",
        dir.display()
    );
    dir
}

/// Where the screenshots of the main pages go (README, "License portal").
pub fn screenshot_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots/portal")
}

/// Each page was saved as a screenshot (`NN-<page>.png`) since `since` (by this run).
pub fn assert_screenshots(since: std::time::SystemTime, pages: &[&str]) {
    for page in pages {
        let found = std::fs::read_dir(screenshot_dir())
            .unwrap()
            .filter_map(|e| e.ok())
            .any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .ends_with(&format!("-{page}.png"))
                    && e.metadata()
                        .and_then(|m| m.modified())
                        .is_ok_and(|t| t >= since)
            });
        assert!(
            found,
            "a screenshot of {page} in {}, made by this run",
            screenshot_dir().display()
        );
    }
}

/// A ticket of `lines` for customer `customer`; its code and license ids.
pub fn ticket(
    app: &TestApp,
    erp: &str,
    customer: &str,
    lines: &[(&str, i64)],
) -> (String, Vec<i64>) {
    let (s, v) = app.admin("POST", "/api/v1/orders", Some(order(erp, customer, lines)));
    assert_eq!(s, 201, "{v}");
    let code = v["ticket"].as_str().unwrap().to_string();
    let (_, t) = app.admin("GET", &format!("/api/v1/tickets/{code}"), None);
    let ids = t["licenses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["license_id"].as_i64().unwrap())
        .collect();
    (code, ids)
}

/// The ticket with one wrong character: the check character catches it.
fn typo(ticket: &str) -> String {
    let first = ticket.chars().next().unwrap();
    format!("{}{}", if first == 'B' { 'C' } else { 'B' }, &ticket[1..])
}

/// The customer's computer, as the browser script asks for it: containers made, trusting
/// the template the browser downloaded, writing request files, importing update files and
/// writing receipts, all with the client runtime (`licentia::client::Container`).
struct Computer<'a> {
    app: &'a TestApp,
    containers: HashMap<String, Container>,
}

impl Computer<'_> {
    fn answer(&mut self, ask: &Value) -> Result<Value, String> {
        let name = ask["container"].as_str().unwrap_or_default().to_string();
        let now = unix_now();
        match ask["ask"].as_str().unwrap_or_default() {
            "create" => {
                let kind = ContainerType::parse(ask["kind"].as_str().unwrap()).unwrap();
                let mut c =
                    Container::create(kind, None, &traits(), 2).map_err(|e| e.to_string())?;
                let text = std::fs::read_to_string(ask["template"].as_str().unwrap())
                    .map_err(|e| e.to_string())?;
                let t: Template = serde_json::from_str(&text).map_err(|e| e.to_string())?;
                c.trust(t.firm_code, &t.firm_name, &t.keys);
                let serial = c.serial.clone();
                self.containers.insert(name, c);
                Ok(json!({"serial": serial}))
            }
            "request" => {
                let c = self.containers.get_mut(&name).ok_or("no such container")?;
                let r = c.request(FIRM, now).map_err(|e| e.to_string())?;
                std::fs::write(ask["file"].as_str().unwrap(), r).map_err(|e| e.to_string())?;
                Ok(json!({"serial": c.serial}))
            }
            "apply" => {
                let c = self.containers.get_mut(&name).ok_or("no such container")?;
                let update = std::fs::read_to_string(ask["update"].as_str().unwrap())
                    .map_err(|e| e.to_string())?;
                let applied = c.apply(&update, now).map_err(|e| e.to_string())?;
                std::fs::write(ask["receipt"].as_str().unwrap(), &applied.receipt)
                    .map_err(|e| e.to_string())?;
                Ok(json!({"serial": applied.serial, "counter": applied.counter}))
            }
            "push" => {
                let serial = self.containers[&name].serial.clone();
                let (s, v) = self.app.admin(
                    "POST",
                    &format!("/api/v1/containers/{serial}/licenses"),
                    Some(json!({"license_id": ask["license"]})),
                );
                if s != 202 {
                    return Err(format!("push answered {s}: {v}"));
                }
                Ok(json!({}))
            }
            other => Err(format!("unknown ask {other}")),
        }
    }
}

/// Runs the browser script `tests/browser/<script>` against `app`, answering its asks;
/// panics with its reason if it fails.
pub fn run_browser(
    app: &TestApp,
    script: &str,
    case: Value,
    answer: &mut dyn FnMut(&Value) -> Result<Value, String>,
) {
    let modules = node_modules();
    let work = app.db.dir.join("browser");
    std::fs::create_dir_all(&work).unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/browser")
        .join(script);
    let mut child = Command::new("node")
        .arg(script)
        .env("NODE_PATH", &modules)
        .env("PORTAL_BASE", &app.base)
        .env("PORTAL_CASE", case.to_string())
        .env("SCREENSHOTS", screenshot_dir())
        .env("WORK", &work)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start node: {e} (scripts/test.sh installs it)"));
    let mut stdin = child.stdin.take().unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut log = vec![];
    let mut done = false;
    for line in stdout.lines() {
        let line = line.unwrap();
        if let Some(ask) = line.strip_prefix("ASK ") {
            let ask: Value = serde_json::from_str(ask).unwrap();
            let answer = answer(&ask).unwrap_or_else(|e| json!({"error": format!("{ask}: {e}")}));
            writeln!(stdin, "{answer}").unwrap();
            stdin.flush().unwrap();
        } else if line == "DONE" {
            done = true;
        } else {
            log.push(line);
        }
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && done,
        "the browser script failed:\n{}\n{}",
        log.join("\n"),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_portal_in_a_browser() {
    let started = std::time::SystemTime::now();
    // Nothing listens on the local helper's port: the pages offer the offline transfer.
    let helper_port = crate::crash::free_port();
    let app = TestApp::start_with(|c| {
        c.portal_local_helper_port = helper_port;
        c.vendor_name = "Northwind Software".into();
        c.portal_color = "#0f4c81".into();
        c.portal_accent_color = "#f2a900".into();
    });
    // Ticket 1: two floating licenses (computer or dongle: the binding is asked). Ticket 2:
    // a floating license of 5 users to split, and one the vendor pushes to a container.
    let (t1, l1) = ticket(&app, "P-1", "C-PORTAL", &[("SNP-FLOAT-5", 2)]);
    let (t2, l2) = ticket(
        &app,
        "P-2",
        "C-PORTAL",
        &[("SNP-FLOAT-5", 1), ("SNP-SINGLE", 1)],
    );
    let case = json!({
        "t1": t1, "t1_typo": typo(&t1), "t2": t2,
        "l1": l1[0], "l2": l1[1], "l_float": l2[0], "l_push": l2[1],
        "firm_code": FIRM,
        "helper": format!("http://127.0.0.1:{helper_port}"),
        "texts": {
            "request_step": "Upload Request",
            "download_step": "Download Update",
            "receipt_step": "Upload Receipt",
            "binding_title": "Select the binding for your licenses",
            "invalid_ticket_en": "This is not a valid ticket. Please check it for typos.",
            "conditions_title": "Conditions for license restoration",
            "conditions_blacklist": "will be marked as invalid (blacklisted)",
            "blacklisted_en": "This container is blocked.",
            "split_done": "The license was split into licenses",
            "history": ["Activation requested", "Activated", "Return requested", "Returned",
                "Restored into another container"],
        },
    });
    let mut computer = Computer {
        app: &app,
        containers: HashMap::new(),
    };
    run_browser(&app, "portal.cjs", case, &mut |ask| computer.answer(ask));

    // What the pages did is what the server believes.
    let b = computer.containers["B"].serial.clone();
    let a = computer.containers["A"].serial.clone();
    assert_eq!(license(&app, l1[0]), ("activated".into(), Some(b.clone())));
    assert_eq!(license(&app, l1[1]).0, "available");
    assert_eq!(license(&app, l2[1]), ("activated".into(), Some(b.clone())));
    assert_eq!(license(&app, l2[0]).0, "deleted", "split");
    let (_, bl) = app.admin("GET", "/api/v1/reports/blacklist", None);
    assert!(
        bl["rows"].to_string().contains(&a),
        "A is blacklisted: {bl}"
    );
    let (_, h) = app.admin("GET", &format!("/api/v1/history?serial={b}"), None);
    assert!(
        h.as_array()
            .unwrap()
            .iter()
            .any(|e| e["interface"] == "portal"),
        "the history says the portal did it: {h}"
    );
    assert_screenshots(
        started,
        &[
            "login",
            "overview",
            "activate-download",
            "reactivate",
            "overview-de",
        ],
    );
}

// ---- over plain HTTP ----

/// A browser-like client of the portal: keeps its cookies, follows no redirect, may say
/// it comes through a proxy for an address.
pub(crate) struct Visitor {
    base: String,
    agent: ureq::Agent,
    pub(crate) cookies: HashMap<String, String>,
    forwarded_for: Option<String>,
}

pub(crate) struct Page {
    pub(crate) status: u16,
    pub(crate) body: String,
    pub(crate) location: String,
    pub(crate) set_cookies: Vec<String>,
    pub(crate) headers: HashMap<String, String>,
}

impl Visitor {
    pub(crate) fn new(base: &str) -> Visitor {
        Visitor {
            base: base.to_string(),
            agent: ureq::AgentBuilder::new().redirects(0).build(),
            cookies: HashMap::new(),
            forwarded_for: None,
        }
    }

    pub(crate) fn from(base: &str, address: &str) -> Visitor {
        let mut v = Visitor::new(base);
        v.forwarded_for = Some(address.to_string());
        v
    }

    pub(crate) fn send(&mut self, method: &str, path: &str, form: Option<&[(&str, &str)]>) -> Page {
        let mut req = self.agent.request(method, &format!("{}{path}", self.base));
        if !self.cookies.is_empty() {
            let c: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            req = req.set("Cookie", &c.join("; "));
        }
        if let Some(a) = &self.forwarded_for {
            req = req.set("X-Forwarded-For", a);
        }
        let res = match form {
            Some(f) => req.send_form(f),
            None => req.call(),
        };
        let resp = match res {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {path}: {e}"),
        };
        let set_cookies = self.keep_cookies(&resp);
        let headers = resp
            .headers_names()
            .into_iter()
            .map(|n| (n.clone(), resp.header(&n).unwrap_or_default().to_string()))
            .collect();
        Page {
            status: resp.status(),
            location: resp.header("location").unwrap_or_default().to_string(),
            set_cookies,
            headers,
            body: resp.into_string().unwrap(),
        }
    }

    /// Keeps the cookies an answer sets (or ends); returns their headers.
    fn keep_cookies(&mut self, resp: &ureq::Response) -> Vec<String> {
        let set_cookies: Vec<String> = resp
            .all("set-cookie")
            .iter()
            .map(|s| s.to_string())
            .collect();
        for c in &set_cookies {
            let (k, rest) = c.split_once('=').unwrap();
            let v = rest.split(';').next().unwrap();
            if rest.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_string(), v.to_string());
            }
        }
        set_cookies
    }

    pub(crate) fn get(&mut self, path: &str) -> Page {
        self.send("GET", path, None)
    }

    /// Posts a form of the page at `page` with the token that page's forms carry.
    pub(crate) fn post_from(&mut self, page: &str, path: &str, fields: &[(&str, &str)]) -> Page {
        let p = self.get(page);
        let csrf = token_of(&p.body);
        let mut all: Vec<(&str, &str)> = vec![("csrf", &csrf)];
        all.extend_from_slice(fields);
        self.send("POST", path, Some(&all))
    }

    pub(crate) fn login(&mut self, tickets: &str) -> Page {
        self.post_from(
            "/portal/login",
            "/portal/login",
            &[("ticket", tickets), ("next", "/portal/tickets")],
        )
    }
}

/// The form token in a page.
pub(crate) fn token_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with its token");
    let rest = &html[at + 19..];
    rest[..rest.find('"').unwrap()].to_string()
}

fn unknown_ticket() -> String {
    licentia::domain::ticket::TicketCode::generate().to_string()
}

#[test]
fn the_login_limit_holds_back_an_address_and_a_ticket_on_every_node() {
    let app = TestApp::start_with(|c| {
        c.portal_login_limit = 3;
        c.portal_login_window_secs = 600;
        c.trusted_proxies = "127.0.0.1".into();
    });
    let (t, _) = ticket(&app, "LIM-1", "C-LIM", &[("SNP-SINGLE", 1)]);

    // Typos are caught before any lookup and do not count.
    let mut typist = Visitor::from(&app.base, "198.51.100.9");
    for _ in 0..5 {
        let p = typist.login(&typo(&t));
        assert_eq!(p.status, 400);
        assert!(
            p.body.contains("data-code=\"invalid_ticket\""),
            "{}",
            p.body
        );
    }
    assert_eq!(app.count("portal_login_failures"), 0);
    assert_eq!(typist.login(&t).status, 303, "the typist is not held back");

    // An address: three unknown tickets, then even the right one is held back.
    let mut guesser = Visitor::from(&app.base, "198.51.100.7");
    for _ in 0..3 {
        let p = guesser.login(&unknown_ticket());
        assert_eq!(p.status, 404);
        assert!(p.body.contains("This ticket is not known."), "{}", p.body);
    }
    let p = guesser.login(&t);
    assert_eq!(p.status, 429, "{}", p.body);
    assert!(
        p.body
            .contains("Too many failed attempts from your address"),
        "{}",
        p.body
    );
    assert!(
        !p.set_cookies
            .iter()
            .any(|c| c.starts_with("licentia_portal=")),
        "no session"
    );
    // Another address is not.
    assert_eq!(
        Visitor::from(&app.base, "198.51.100.8").login(&t).status,
        303
    );

    // A ticket: named in three failed logins from three addresses, it is held back from
    // any address, on the second node too (counted in the shared database).
    for i in 1..=3 {
        let mut v = Visitor::from(&app.base, &format!("203.0.113.{i}"));
        assert_eq!(v.login(&format!("{t}; {}", unknown_ticket())).status, 404);
    }
    let node = app.second_node();
    for base in [app.base.as_str(), node.base.as_str()] {
        let p = Visitor::from(base, "203.0.113.99").login(&t);
        assert_eq!(p.status, 429, "{base}: {}", p.body);
        assert!(
            p.body
                .contains(&format!("Too many failed attempts with ticket {t}")),
            "{}",
            p.body
        );
    }
    // The address held back above stays held back on the second node.
    assert_eq!(
        Visitor::from(&node.base, "198.51.100.7").login(&t).status,
        429
    );
    // Each failed login counted against its address and every ticket it named.
    assert_eq!(app.count("portal_login_failures"), 3 * 2 + 3 * 3);

    // A node that trusts no proxy believes no forwarded address: the peer is the client,
    // however many addresses its requests claim to come from.
    let strict = app.second_node_with(|c| c.trusted_proxies = String::new());
    for i in 1..=3 {
        let p = Visitor::from(&strict.base, &format!("192.0.2.{i}")).login(&unknown_ticket());
        assert_eq!(p.status, 404);
    }
    let p = Visitor::from(&strict.base, "192.0.2.200").login(&t);
    assert_eq!(p.status, 429, "{}", p.body);
}

#[test]
fn forms_without_their_token_change_nothing() {
    let app = TestApp::start();
    let (t, ids) = ticket(&app, "CSRF-1", "C-CSRF", &[("SNP-FLOAT-5", 1)]);
    let mut v = Visitor::new(&app.base);
    assert_eq!(v.login(&t).status, 303);
    let split = format!("/portal/licenses/{}/split", ids[0]);

    // A page elsewhere posting with the customer's cookies but without the token.
    let p = v.send("POST", &split, Some(&[("quantities", "2, 3")]));
    assert_eq!(p.status, 403);
    assert!(p.body.contains("data-code=\"csrf\""), "{}", p.body);
    let p = v.send(
        "POST",
        &split,
        Some(&[("quantities", "2, 3"), ("csrf", &"0".repeat(64))]),
    );
    assert_eq!(p.status, 403);
    assert_eq!(license(&app, ids[0]).0, "available", "not split");
    let p = v.send("POST", "/portal/logout", Some(&[]));
    assert_eq!(p.status, 403);
    assert_eq!(v.get("/portal/tickets").status, 200, "still logged in");
    // The login form's token is bound to its cookie: without the cookie, refused.
    let mut other = Visitor::new(&app.base);
    let p = other.send(
        "POST",
        "/portal/login",
        Some(&[("ticket", &t), ("csrf", &"a".repeat(64))]),
    );
    assert_eq!(p.status, 403);
    assert!(!p
        .set_cookies
        .iter()
        .any(|c| c.starts_with("licentia_portal=")));

    // With the token the same post does it.
    let p = v.post_from("/portal/tickets", &split, &[("quantities", "2, 3")]);
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(license(&app, ids[0]).0, "deleted");
    let p = v.post_from("/portal/tickets", "/portal/logout", &[]);
    assert_eq!(
        (p.status, p.location.as_str()),
        (303, "/portal/login?out=1")
    );
}

#[test]
fn sessions_live_in_the_database_with_strict_cookies_and_headers() {
    let app = TestApp::start();
    let (t, _) = ticket(&app, "SES-1", "C-SES", &[("SNP-SINGLE", 1)]);
    let mut v = Visitor::new(&app.base);
    let p = v.get("/portal/login");
    let csp = &p.headers["content-security-policy"];
    for part in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(p.headers["x-content-type-options"], "nosniff");
    assert_eq!(p.headers["referrer-policy"], "no-referrer");
    let p = v.login(&t);
    let cookie = p
        .set_cookies
        .iter()
        .find(|c| c.starts_with("licentia_portal="))
        .unwrap();
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/portal", "Max-Age=7200"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
    // Stored by its hash only: the token itself is nowhere in the database.
    let token = v.cookies["licentia_portal"].clone();
    assert_eq!(app.count("portal_sessions"), 1);
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        id: String,
    }
    use diesel::RunQueryDsl;
    let rows: Vec<Row> = diesel::sql_query("SELECT id FROM portal_sessions")
        .load(&mut app.db.connect())
        .unwrap();
    assert_ne!(rows[0].id, token);
    // Any node serves it.
    let node = app.second_node();
    let mut there = Visitor::new(&node.base);
    there.cookies = v.cookies.clone();
    assert_eq!(there.get("/portal/tickets").status, 200);
    // Expired: back to the login (coming back to the page afterwards).
    diesel::sql_query("UPDATE portal_sessions SET expires_at = '2000-01-01 00:00:00'")
        .execute(&mut app.db.connect())
        .unwrap();
    let p = v.get("/portal/tickets");
    assert_eq!(
        (p.status, p.location.as_str()),
        (303, "/portal/login?next=/portal/tickets")
    );
    app.admin("POST", "/api/v1/jobs/housekeeping/run", None);
    assert_eq!(app.count("portal_sessions"), 0, "housekeeping removed it");

    // Over https the cookie is Secure; the logo's origin is the only other image source.
    let https = TestApp::start_with(|c| {
        c.public_url = "https://licenses.example.com".into();
        c.logo_url = "https://cdn.example.com/logo.svg".into();
    });
    let (t2, _) = ticket(&https, "SES-2", "C-SES", &[("SNP-SINGLE", 1)]);
    let mut s = Visitor::new(&https.base);
    let p = s.login(&t2);
    assert!(
        p.set_cookies.iter().all(|c| c.contains("; Secure")),
        "{:?}",
        p.set_cookies
    );
    let p = Visitor::new(&https.base).get("/portal/login");
    assert!(
        p.headers["content-security-policy"].contains("img-src 'self' https://cdn.example.com;")
    );
    // (minijinja writes the slashes of an attribute as &#x2f;, which the browser reads as /)
    assert!(
        p.body
            .contains("class=\"logo\" src=\"https:&#x2f;&#x2f;cdn.example.com&#x2f;logo.svg\""),
        "{}",
        p.body
    );
}

#[test]
fn a_broken_template_override_stops_the_start_naming_it() {
    let db = crate::harness::TestDb::new();
    let dir = db.dir.join("portal-templates");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("history.html"),
        "{% extends \"base.html\" %}{% block content %}{{ t.history.titel }}{% endblock %}",
    )
    .unwrap();
    let mut config = db.config();
    config.portal_templates_dir = dir.to_str().unwrap().into();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let e = rt
        .block_on(licentia::app::start(config.clone()))
        .err()
        .expect("refused");
    assert!(e.to_string().contains("history.html"), "{e}");
    // A catalogue with a misspelt text is named as well; a good override is served.
    std::fs::remove_file(dir.join("history.html")).unwrap();
    std::fs::write(
        dir.join("messages.de.toml"),
        "[login]\ntitel = \"Einloggen\"\n",
    )
    .unwrap();
    let e = rt
        .block_on(licentia::app::start(config.clone()))
        .err()
        .expect("refused");
    assert!(
        e.to_string().contains("messages.de.toml: login.titel"),
        "{e}"
    );
    std::fs::write(
        dir.join("messages.de.toml"),
        "[login]\ntitle = \"Einloggen bei Northwind\"\n",
    )
    .unwrap();
    drop(rt);
    let app = TestApp::start_on(db, |c| {
        c.portal_templates_dir = config.portal_templates_dir.clone()
    });
    let mut v = Visitor::new(&app.base);
    v.cookies.insert("licentia_lang".into(), "de".into());
    assert!(v
        .get("/portal/login")
        .body
        .contains("Einloggen bei Northwind"));
}

/// A `multipart/form-data` body as a browser sends a form with files.
fn multipart(fields: &[(&str, &str)], files: &[(&str, &str, &str)]) -> (String, Vec<u8>) {
    let boundary = "----licentia-test-7MA4YWxkTrZu0gW";
    let mut body = String::new();
    for (name, value) in fields {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    for (name, file, text) in files {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n{text}\r\n"
        ));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    (
        format!("multipart/form-data; boundary={boundary}"),
        body.into_bytes(),
    )
}

impl Visitor {
    /// Posts the form of the page at `page` with files, as its `enctype` says.
    fn upload(
        &mut self,
        page: &str,
        path: &str,
        fields: &[(&str, &str)],
        files: &[(&str, &str, &str)],
    ) -> Page {
        let csrf = token_of(&self.get(page).body);
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        let (ct, body) = multipart(&all, files);
        let c: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let res = self
            .agent
            .post(&format!("{}{path}", self.base))
            .set("Cookie", &c.join("; "))
            .set("Content-Type", &ct)
            .send_bytes(&body);
        let resp = match res {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("POST {path}: {e}"),
        };
        let set_cookies = self.keep_cookies(&resp);
        Page {
            status: resp.status(),
            location: resp.header("location").unwrap_or_default().to_string(),
            set_cookies,
            headers: HashMap::new(),
            body: resp.into_string().unwrap(),
        }
    }
}

#[test]
fn the_activation_follows_the_tickets_rules() {
    let app = TestApp::start();
    // All licenses of a ticket together; the trial allows computers only.
    let (s, v) = app.admin(
        "PUT",
        "/api/v1/settings",
        Some(json!({"activation_mode": "all"})),
    );
    assert_eq!(s, 200, "{v}");
    let (t, ids) = ticket(&app, "RULE-1", "C-RULE", &[("SNP-TRIAL-30", 2)]);
    let mut v = Visitor::new(&app.base);
    assert_eq!(v.login(&t).status, 303);
    let page = format!("/portal/tickets/{t}/activate");
    let p = v.get(&page);
    assert_eq!(p.status, 200);
    // Only one binding is possible: its step is skipped.
    assert!(
        p.body.contains("name=\"binding\" value=\"act\""),
        "{}",
        p.body
    );
    assert!(!p.body.contains("value=\"dongle\""), "{}", p.body);
    assert!(
        p.body.contains("all available licenses are selected"),
        "{}",
        p.body
    );
    assert_eq!(p.body.matches("name=\"license\"").count(), 2);
    assert_eq!(
        p.body.matches(" checked disabled>").count(),
        2,
        "{}",
        p.body
    );

    let template: Template =
        serde_json::from_str(&v.get(&format!("/portal/template/{FIRM}")).body).unwrap();
    let trusted = |kind| {
        let mut c = Container::create(kind, None, &traits(), 2).unwrap();
        c.trust(template.firm_code, &template.firm_name, &template.keys);
        c
    };
    // A request of the other kind than the binding chosen is refused, saying so.
    let mut dongle = trusted(ContainerType::Dongle);
    let r = dongle.request(FIRM, unix_now()).unwrap();
    let p = v.upload(
        &page,
        &page,
        &[("binding", "act")],
        &[("request", "d.lcr", &r)],
    );
    assert_eq!(p.status, 403, "{}", p.body);
    assert!(p.body.contains("data-code=\"not_allowed\""), "{}", p.body);
    assert!(
        p.body.contains("comes from a dongle container"),
        "{}",
        p.body
    );
    // No license named (the boxes are disabled): all of them, into this computer.
    let mut c = trusted(ContainerType::Act);
    let r = c.request(FIRM, unix_now()).unwrap();
    let p = v.upload(
        &page,
        &page,
        &[("binding", "act")],
        &[("request", "r.lcr", &r)],
    );
    assert_eq!(
        (p.status, p.location.as_str()),
        (303, "/portal/transfer"),
        "{}",
        p.body
    );
    let p = v.get("/portal/transfer/update");
    assert_eq!(p.status, 200);
    let applied = c.apply(&p.body, unix_now()).unwrap();
    for id in &ids {
        assert_eq!(
            license(&app, *id),
            ("pending".into(), Some(applied.serial.clone()))
        );
    }
    // The request file where the receipt belongs is refused, saying what it is.
    let p = v.upload(
        "/portal/transfer?step=receipt",
        "/portal/transfer/receipt",
        &[],
        &[("receipt", "r.lcr", &r)],
    );
    assert_eq!(p.status, 400, "{}", p.body);
    assert!(
        p.body.contains("data-code=\"invalid_message\""),
        "{}",
        p.body
    );
    assert!(p.body.contains("expected a receipt"), "{}", p.body);
    let p = v.upload(
        "/portal/transfer?step=receipt",
        "/portal/transfer/receipt",
        &[],
        &[("receipt", "r.lcr", &applied.receipt)],
    );
    assert_eq!(p.status, 303, "{}", p.body);
    let done = v.get("/portal/transfer").body;
    for id in &ids {
        let listed = format!(
            "<li data-license=\"{id}\"><span class=\"lic-name\">SampleNotePad 30-day trial</span>"
        );
        assert!(done.contains(&listed), "{done}");
    }
    for id in &ids {
        assert_eq!(
            license(&app, *id),
            ("activated".into(), Some(applied.serial.clone()))
        );
    }
}

#[test]
fn automatic_updates_need_no_ticket_only_the_containers_request() {
    let app = TestApp::start();
    let (_, ids) = ticket(&app, "UPD-1", "C-UPD", &[("SNP-SINGLE", 1)]);
    let gw = licentia::client::online::Gateway::new(&app.base);
    let mut c = crate::activation::new_act(&gw);
    // The container becomes known to the server with a first (empty-handed) contact.
    let (t0, _) = ticket(&app, "UPD-0", "C-UPD", &[("SNP-SINGLE", 1)]);
    let mut keep = |_: &Container| Ok(());
    licentia::client::online::activate(&gw, &mut c, &t0, &[], &mut keep).unwrap();
    let mut v = Visitor::new(&app.base);
    // Nothing waits: the page says so and no session is made.
    let r = c.request(FIRM, unix_now()).unwrap();
    let p = v.upload(
        "/portal/updates",
        "/portal/updates",
        &[("serial", &c.serial)],
        &[("request", "r.lcr", &r)],
    );
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(
        p.body.contains(&format!(
            "No license updates are waiting for container {}",
            c.serial
        )),
        "{}",
        p.body
    );
    assert!(!v.cookies.contains_key("licentia_portal"));
    // The request of another container than the serial named is refused.
    let p = v.upload(
        "/portal/updates",
        "/portal/updates",
        &[("serial", "130-1111111111")],
        &[("request", "r.lcr", &r)],
    );
    assert_eq!(p.status, 400, "{}", p.body);
    assert!(p.body.contains("not from 130-1111111111"), "{}", p.body);

    // The vendor pushes a license: the container's request brings it, in a session of its
    // own that sees no ticket.
    let (s, body) = app.admin(
        "POST",
        &format!("/api/v1/containers/{}/licenses", c.serial),
        Some(json!({"license_id": ids[0]})),
    );
    assert_eq!(s, 202, "{body}");
    let r = c.request(FIRM, unix_now()).unwrap();
    let csrf = token_of(&v.get("/portal/updates").body);
    let (ct, body) = multipart(
        &[("csrf", &csrf), ("serial", &c.serial)],
        &[("request", "r.lcr", &r)],
    );
    let cookie: Vec<String> = v.cookies.iter().map(|(k, x)| format!("{k}={x}")).collect();
    let resp = v
        .agent
        .post(&format!("{}/portal/updates", app.base))
        .set("Cookie", &cookie.join("; "))
        .set("Content-Type", &ct)
        .send_bytes(&body)
        .unwrap();
    assert_eq!(resp.status(), 303);
    let session = resp
        .all("set-cookie")
        .into_iter()
        .find(|c| c.starts_with("licentia_portal="))
        .unwrap()
        .to_string();
    let token = session["licentia_portal=".len()..]
        .split(';')
        .next()
        .unwrap()
        .to_string();
    v.cookies.insert("licentia_portal".into(), token);
    assert_eq!(
        v.get("/portal/tickets").status,
        303,
        "the session sees no ticket"
    );
    let update = v.get("/portal/transfer/update");
    assert_eq!(update.status, 200);
    let applied = c.apply(&update.body, unix_now()).unwrap();
    let p = v.upload(
        "/portal/transfer?step=receipt",
        "/portal/transfer/receipt",
        &[],
        &[("receipt", "r.lcr", &applied.receipt)],
    );
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(
        license(&app, ids[0]),
        ("activated".into(), Some(c.serial.clone()))
    );
}

#[test]
fn a_container_is_restored_on_the_same_computer_without_a_ticket() {
    use licentia::client::hashed_traits;
    use licentia::client::online::{self, Gateway};

    let app = TestApp::start();
    let gw = Gateway::new(&app.base);
    let (t, ids) = crate::activation::ticket_with(&app, "R-1", "SNP-SINGLE", 2);
    let mut old = crate::activation::new_act(&gw);
    online::activate(&gw, &mut old, &t, &ids, &mut |_| Ok(())).unwrap();
    let mut v = Visitor::new(&app.base);

    // First the old container's serial; an unknown one is refused with its reason.
    let p = v.get("/portal/restore");
    assert_eq!(p.status, 200);
    assert!(!p.body.contains("licentia container traits"));
    let p = v.get("/portal/restore?serial=130-0000000001");
    assert_eq!(p.status, 404, "{}", p.body);
    assert!(
        p.body.contains("data-code=\"unknown_container\""),
        "{}",
        p.body
    );
    let page = format!("/portal/restore?serial={}", old.serial);
    let p = v.get(&page);
    assert_eq!(p.status, 200);
    let salt = p
        .body
        .split("licentia container traits --salt ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .expect("the page gives the command with the salt")
        .to_string();

    // The new container on this computer; another computer's traits are refused, nothing
    // changes and no session is made.
    let mut new = crate::activation::new_act(&gw);
    let elsewhere: Vec<(String, String)> = traits()
        .into_iter()
        .map(|(n, val)| (n, format!("{val}-elsewhere")))
        .collect();
    let request = new.request(FIRM, unix_now()).unwrap();
    for (traits_file, code) in [
        (
            serde_json::to_string(&hashed_traits(&salt, &elsewhere)).unwrap(),
            "not_allowed",
        ),
        ("[{\"name\": 1}]".to_string(), "invalid_input"),
    ] {
        let p = v.upload(
            &page,
            "/portal/restore",
            &[("serial", old.serial.as_str())],
            &[
                ("request", "request.lcr", request.as_str()),
                ("traits", "traits.json", traits_file.as_str()),
            ],
        );
        assert!(p.status >= 400, "{}", p.status);
        assert!(
            p.body.contains(&format!("data-code=\"{code}\"")),
            "{code}: {}",
            p.body
        );
        assert!(!v.cookies.contains_key("licentia_portal"));
        assert_eq!(license(&app, ids[0]).1, Some(old.serial.clone()));
    }

    // This computer: the three steps move both licenses; the old container is blacklisted.
    let traits_file = serde_json::to_string(&hashed_traits(&salt, &traits())).unwrap();
    let request = new.request(FIRM, unix_now()).unwrap();
    let p = v.upload(
        &page,
        "/portal/restore",
        &[("serial", old.serial.as_str())],
        &[
            ("request", "request.lcr", request.as_str()),
            ("traits", "traits.json", traits_file.as_str()),
        ],
    );
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(p.location, "/portal/transfer");
    // The session made for this visitor carries the transfer.
    let transfer = v.get("/portal/transfer");
    assert_eq!(transfer.status, 200, "{}", transfer.body);
    assert!(
        transfer.body.contains("Container restore"),
        "{}",
        transfer.body
    );
    let update = v.get("/portal/transfer/update").body;
    let applied = new.apply(&update, unix_now()).unwrap();
    let p = v.upload(
        "/portal/transfer?step=receipt",
        "/portal/transfer/receipt",
        &[],
        &[("receipt", "receipt.lcr", applied.receipt.as_str())],
    );
    assert_eq!(p.status, 303, "{}", p.body);
    for id in &ids {
        assert_eq!(
            license(&app, *id),
            ("activated".into(), Some(new.serial.clone()))
        );
    }
    let (_, bl) = app.admin("GET", "/api/v1/reports/blacklist", None);
    assert!(bl["rows"].to_string().contains(&old.serial), "{bl}");
}
