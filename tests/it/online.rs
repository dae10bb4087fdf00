//! The portal's online transfer through the local helper (`licentia container serve-local`):
//! the helper's guards over plain HTTP (loopback host, the portal's origin, JSON bodies),
//! and in a real browser an activation and a return with no file in the customer's hands,
//! then the page's advice when the helper is not running.
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use licentia::client::Container;
use serde_json::{json, Value};

use crate::activation::{license, traits, FIRM};
use crate::crash::free_port;
use crate::harness::TestApp;
use crate::portal::{assert_screenshots, run_browser, ticket};

/// A running `licentia container serve-local`: `stop` ends it as Ctrl-C does; dropped, it is
/// killed.
struct LocalHelper {
    child: Option<Child>,
}

impl LocalHelper {
    fn start(portal: &str, port: u16, dir: &Path) -> LocalHelper {
        let traits_file = dir.with_extension("traits.json");
        let map: HashMap<String, String> = traits().into_iter().collect();
        std::fs::write(&traits_file, serde_json::to_string(&map).unwrap()).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_licentia"))
            .args(["container", "serve-local", "--portal", portal])
            .arg("--dir")
            .arg(dir)
            .args(["--port", &port.to_string()])
            .arg("--traits-file")
            .arg(&traits_file)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(
            line.starts_with("serving the container to "),
            "the helper's first line: {line:?}"
        );
        LocalHelper { child: Some(child) }
    }

    /// Stops it as a customer would (Ctrl-C): it must end by itself, successfully.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id() as libc::pid_t;
            unsafe { libc::kill(pid, libc::SIGINT) };
            let status = child.wait().unwrap();
            assert!(status.success(), "the helper ended with {status}");
        }
    }
}

impl Drop for LocalHelper {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

struct Answer {
    status: u16,
    headers: HashMap<String, String>,
    body: Value,
}

/// One HTTP/1.1 request with exactly the headers given (a browser's `Host` and `Origin`
/// among them, or not).
fn send(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Answer {
        status,
        headers,
        body: serde_json::from_str(body).unwrap_or(Value::Null),
    }
}

#[test]
fn the_local_helper_answers_only_the_portals_pages_on_loopback() {
    let app = TestApp::start();
    let origin = app.base.clone();
    let port = free_port();
    let dir = app.db.dir.join("helper-guards");
    let mut helper = LocalHelper::start(&format!("{}/portal", app.base), port, &dir);
    let host = format!("127.0.0.1:{port}");
    let page = |origin: &str| vec![("Host", host.clone()), ("Origin", origin.to_string())];
    let call = |method: &str, path: &str, headers: &[(&str, String)], ct: &str, body: &str| {
        let mut h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        if !ct.is_empty() {
            h.push(("Content-Type", ct));
        }
        send(port, method, path, &h, body)
    };
    let json_ct = "application/json";

    // The portal's page: hello, no container yet.
    let a = call("GET", "/v1/hello", &page(&origin), "", "");
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["helper"], "licentia");
    assert_eq!(a.body["container"], Value::Null);
    assert_eq!(a.headers["access-control-allow-origin"], origin);

    // Another site's page, a request with no Origin, a name pointed at 127.0.0.1: refused,
    // and nothing a browser would let the other page read.
    for (headers, status, code) in [
        (page("https://evil.example"), 403, "wrong_origin"),
        (page(&format!("{origin}.evil.example")), 403, "wrong_origin"),
        (vec![("Host", host.clone())], 403, "wrong_origin"),
        (
            vec![
                ("Host", format!("rebound.example:{port}")),
                ("Origin", origin.clone()),
            ],
            421,
            "wrong_host",
        ),
    ] {
        for (method, path, body) in [
            ("GET", "/v1/hello", ""),
            ("POST", "/v1/template", r#"{"firm_code":10}"#),
            ("OPTIONS", "/v1/apply", ""),
        ] {
            let a = call(method, path, &headers, json_ct, body);
            assert_eq!(a.status, status, "{method} {path} {headers:?}: {}", a.body);
            assert_eq!(a.body["error"], code);
            assert!(!a.headers.contains_key("access-control-allow-origin"));
        }
    }
    assert!(
        !Container::exists(&dir),
        "a refused request made no container"
    );

    // The browser's question before a JSON POST: answered for the portal only, also when it
    // asks for the private network.
    let mut ask = page(&origin);
    ask.push(("Access-Control-Request-Method", "POST".into()));
    ask.push(("Access-Control-Request-Private-Network", "true".into()));
    let a = call("OPTIONS", "/v1/request", &ask, "", "");
    assert_eq!(a.status, 204);
    assert_eq!(a.headers["access-control-allow-origin"], origin);
    assert_eq!(a.headers["access-control-allow-headers"], "Content-Type");
    assert_eq!(a.headers["access-control-allow-private-network"], "true");

    // A form post (no preflight in a browser) is not JSON: refused before anything is done.
    let a = call(
        "POST",
        "/v1/template",
        &page(&origin),
        "application/x-www-form-urlencoded",
        "firm_code=10",
    );
    assert_eq!(a.status, 415, "{}", a.body);
    assert!(!Container::exists(&dir));

    // Wrong bodies and unknown things, each with its reason.
    for (path, body, status, code) in [
        (
            "/v1/template",
            r#"{"firm_code":"ten"}"#,
            422,
            "invalid_input",
        ),
        (
            "/v1/template",
            r#"{"firm_code":10,"keys":{}}"#,
            422,
            "invalid_input",
        ),
        ("/v1/template", "{", 422, "invalid_input"),
        ("/v1/template", r#"{"firm_code":999}"#, 404, "not_found"),
        (
            "/v1/request",
            &format!(r#"{{"firm_code":{FIRM}}}"#),
            404,
            "not_found",
        ),
        ("/v1/nothing", "{}", 404, "not_found"),
    ] {
        let a = call("POST", path, &page(&origin), json_ct, body);
        assert_eq!(a.status, status, "{path} {body}: {}", a.body);
        assert_eq!(a.body["error"], code, "{path} {body}");
        assert!(!a.body["message"].as_str().unwrap().is_empty());
    }
    assert!(!Container::exists(&dir));

    // The template comes from the portal, not from the page: the container is made and
    // trusts the firm; a second time changes nothing.
    let t = format!(r#"{{"firm_code":{FIRM}}}"#);
    let a = call("POST", "/v1/template", &page(&origin), json_ct, &t);
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["created"], true);
    let made = std::fs::read(dir.join("container.json")).unwrap();
    let a = call("POST", "/v1/template", &page(&origin), json_ct, &t);
    assert_eq!(a.body["created"], false);
    assert_eq!(std::fs::read(dir.join("container.json")).unwrap(), made);
    let c = Container::load(&dir).unwrap();
    assert!(c.firms.contains_key(&FIRM));

    // The request is the container's signed context; an update it cannot verify is refused
    // and the container stays as it was.
    let a = call("POST", "/v1/request", &page(&origin), json_ct, &t);
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body["request"].as_str().unwrap().len() > 100);
    let before = std::fs::read(dir.join("container.json")).unwrap();
    let a = call(
        "POST",
        "/v1/apply",
        &page(&origin),
        json_ct,
        r#"{"update":"-----BEGIN LICENTIA UPDATE-----\nAAAA\n-----END LICENTIA UPDATE-----\n"}"#,
    );
    assert_eq!(a.status, 422, "{}", a.body);
    assert_eq!(a.body["error"], "invalid_message");
    assert_eq!(std::fs::read(dir.join("container.json")).unwrap(), before);

    helper.stop();
}

#[test]
fn an_online_transfer_in_a_browser_through_the_local_helper() {
    let started = std::time::SystemTime::now();
    let port = free_port();
    let app = TestApp::start_with(|c| {
        c.vendor_name = "Northwind Software".into();
        c.portal_local_helper_port = port;
    });
    let (t, l) = ticket(&app, "ON-1", "C-ONLINE", &[("SNP-FLOAT-5", 2)]);
    let portal = format!("{}/portal", app.base);
    // The computer's first container, then (after a reinstall) its second.
    let dirs = [
        app.db.dir.join("helper-container"),
        app.db.dir.join("helper-container-reinstalled"),
    ];
    let mut current = 0;
    let mut helper = Some(LocalHelper::start(&portal, port, &dirs[0]));
    let case = json!({
        "ticket": t, "l1": l[0], "l2": l[1],
        "texts": {
            "found_new": "makes a new container with the first transfer",
            "steps": ["Downloading license template", "Creating license request",
                "Importing license update", "Uploading receipt"],
            "missing": "The Licentia helper does not answer on this computer",
            "command": format!("licentia container serve-local --dir DIR --portal {portal} --port {port}"),
        },
    });
    run_browser(
        &app,
        "online.cjs",
        case,
        &mut |ask| match ask["ask"].as_str().unwrap_or_default() {
            "container" => {
                let c = Container::load(&dirs[current]).map_err(|e| e.to_string())?;
                Ok(json!({"serial": c.serial}))
            }
            // The system was reinstalled: the helper starts again with no container.
            "reinstall" => {
                if let Some(mut h) = helper.take() {
                    h.stop();
                }
                current = 1;
                helper = Some(LocalHelper::start(&portal, port, &dirs[1]));
                Ok(json!({}))
            }
            "stop-helper" => {
                if let Some(mut h) = helper.take() {
                    h.stop();
                }
                Ok(json!({}))
            }
            other => Err(format!("unknown ask {other}")),
        },
    );

    // Both licenses went into the first container online; the first came back; the
    // restore moved the second into the new container and blacklisted the old one.
    let first = Container::load(&dirs[0]).unwrap();
    let second = Container::load(&dirs[1]).unwrap();
    assert_eq!(license(&app, l[0]).0, "available");
    assert_eq!(
        license(&app, l[1]),
        ("activated".into(), Some(second.serial.clone()))
    );
    let held: Vec<i64> = second.firms[&FIRM]
        .content
        .entries
        .keys()
        .copied()
        .collect();
    assert_eq!(held, vec![l[1]], "the container holds what the server says");
    let (_, bl) = app.admin("GET", "/api/v1/reports/blacklist", None);
    assert!(bl["rows"].to_string().contains(&first.serial), "{bl}");
    assert_screenshots(
        started,
        &[
            "online-activate",
            "online-done",
            "online-return",
            "online-restore",
            "online-missing",
        ],
    );
}
