//! The SOAP Sales service from the clients integrators use besides zeep and suds: PHP's
//! SoapClient and Node.js's node-soap, each reading the served WSDL unchanged and running
//! the script the README's "SOAP clients" section quotes (`tests/clients/`).
use licentia::domain::Role;
use serde_json::Value;

use crate::harness::TestApp;

/// Runs `program script` against the app as `user`: whether it ended well, what it
/// printed and what it complained of.
fn run(
    app: &TestApp,
    program: &str,
    script: &str,
    user: (&str, &str),
    order_id: &str,
) -> (bool, String, String) {
    let modules = std::env::var("TEST_BROWSER_MODULES").unwrap_or_default();
    let out = std::process::Command::new(program)
        .arg(format!("{}/tests/clients/{script}", env!("CARGO_MANIFEST_DIR")))
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

#[test]
fn php_soapclient_and_node_soap_order_read_the_ticket_and_get_the_fault() {
    let app = TestApp::start();
    let pw = app.add_user("webshop", Role::Sales);
    for (program, script, source) in [
        ("php", "sales.php", "php-shop"),
        ("node", "sales.cjs", "node-shop"),
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
        assert_eq!(
            ticket["customer_id"],
            if program == "php" { "PHP-1" } else { "NODE-1" }
        );
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
    assert_eq!(app.count("orders WHERE erp_order_id LIKE '%-BAD'"), 0);
}
