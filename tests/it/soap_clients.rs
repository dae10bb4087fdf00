//! The SOAP Sales service from the clients integrators use besides zeep and suds: PHP's
//! SoapClient, Node.js's node-soap and C++ with gSOAP (its code generated from the served
//! WSDL by wsdl2h and soapcpp2), each reading the served WSDL unchanged and running the
//! program the README's "SOAP clients" section quotes (`tests/clients/`).
use licentia::domain::Role;
use serde_json::Value;

use crate::harness::TestApp;

/// Runs `program script` (a script of `tests/clients/`; none: the program alone) against
/// the app as `user`: whether it ended well, what it printed and what it complained of.
fn run(
    app: &TestApp,
    program: &str,
    script: &str,
    user: (&str, &str),
    order_id: &str,
) -> (bool, String, String) {
    let modules = std::env::var("TEST_BROWSER_MODULES").unwrap_or_default();
    let mut command = std::process::Command::new(program);
    if !script.is_empty() {
        command.arg(format!(
            "{}/tests/clients/{script}",
            env!("CARGO_MANIFEST_DIR")
        ));
    }
    let out = command
        .env("LICENTIA_URL", &app.base)
        .env("LICENTIA_USER", user.0)
        .env("LICENTIA_PASSWORD", user.1)
        .env("ORDER_ID", order_id)
        .env("NODE_PATH", modules)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot start {program}: {e} (scripts/test.sh installs PHP with its SOAP extension and node-soap)")
        });
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The JSON a client script printed (the test fails if it failed).
fn json_of(program: &str, (ok, stdout, stderr): (bool, String, String)) -> Value {
    match serde_json::from_str(stdout.trim()) {
        Ok(v) if ok => v,
        _ => panic!("{program}: {stdout}\n{stderr}"),
    }
}

/// A step of building the gSOAP client; its complaint if it fails.
fn step(dir: &std::path::Path, program: &str, args: &[&str]) {
    let out = std::process::Command::new(program)
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot start {program}: {e} (scripts/install-deps.sh --test installs gSOAP)")
        });
    assert!(
        out.status.success(),
        "{program} {args:?}:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Generates the C++ client's code from the WSDL the app serves (wsdl2h fetches it and the
/// XSD it imports), and compiles `tests/clients/sales.cpp` with it; the program's path.
fn gsoap_client(app: &TestApp, dir: &std::path::Path) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let wsdl = format!("{}/soap/Sales?wsdl", app.base);
    step(dir, "wsdl2h", &["-o", "sales.h", &wsdl]);
    step(
        dir,
        "soapcpp2",
        &["-j", "-C", "-x", "-I/usr/share/gsoap/import", "sales.h"],
    );
    let source = format!("{}/tests/clients/sales.cpp", env!("CARGO_MANIFEST_DIR"));
    step(
        dir,
        "g++",
        &[
            "-o",
            "sales",
            "-I.",
            &source,
            "soapC.cpp",
            "soapSalesSoap11Proxy.cpp",
            "-lgsoap++",
        ],
    );
    dir.join("sales").to_string_lossy().into_owned()
}

#[test]
fn php_soapclient_node_soap_and_gsoap_order_read_the_ticket_and_get_the_fault() {
    let app = TestApp::start();
    let pw = app.add_user("webshop", Role::Sales);
    let dir = std::env::temp_dir().join(format!("licentia-gsoap-{}", std::process::id()));
    let gsoap = gsoap_client(&app, &dir);
    for (program, script, source) in [
        ("php", "sales.php", "php-shop"),
        ("node", "sales.cjs", "node-shop"),
        (gsoap.as_str(), "", "gsoap-shop"),
    ] {
        let order_id = format!("{source}-1");
        let got = json_of(
            program,
            run(&app, program, script, ("webshop", &pw), &order_id),
        );
        assert_eq!(got["created"], true, "{program}: {got}");
        assert_eq!(got["lines"], 1, "{program}: {got}");
        assert_eq!(got["state"], "active", "{program}: {got}");
        // What the client read is what the server holds.
        let (s, order) = app.admin("GET", &format!("/api/v1/orders/{source}/{order_id}"), None);
        assert_eq!(s, 200, "{order}");
        assert_eq!(order["ticket"], got["ticket"], "{program}");
        let (_, ticket) = app.admin(
            "GET",
            &format!("/api/v1/tickets/{}", got["ticket"].as_str().unwrap()),
            None,
        );
        let customer = match source {
            "php-shop" => "PHP-1",
            "node-shop" => "NODE-1",
            _ => "GSOAP-1",
        };
        assert_eq!(ticket["customer_id"], customer);
        let (_, c) = app.admin("GET", &format!("/api/v1/customers/{customer}"), None);
        assert_eq!(c["name"], "Müller GmbH", "{program}: {c}");
        let ids: Vec<Value> = ticket["licenses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["license_id"].clone())
            .collect();
        assert_eq!(got["licenses"], Value::Array(ids), "{program}");
        // The fault's code and message reach the client.
        assert_eq!(got["fault"]["code"], "unknown_item", "{program}: {got}");
        assert!(
            got["fault"]["message"]
                .as_str()
                .unwrap()
                .contains("NO-SUCH-ITEM"),
            "{program}: {got}"
        );
        // A wrong password is refused, and the client says so.
        let (ok, stdout, stderr) = run(&app, program, script, ("webshop", "wrong"), "x");
        assert!(!ok, "{program} with a wrong password: {stdout}");
        assert!(
            stderr.contains("Unauthorized") || stderr.contains("401") || stderr.contains("wrong"),
            "{program}: {stderr}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(app.count("orders WHERE erp_order_id LIKE '%-BAD'"), 0);
}
