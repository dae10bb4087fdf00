//! The back office under `/admin` over HTTP: staff sessions (login, wrong passwords held
//! back, idle end, logout, a role changed or a user deactivated at the next request), the
//! form token, roles on pages and actions, every page rendered, orders made by hand in the
//! four ways, withdraw, items and settings through their forms, the order list paged by key;
//! and the whole of it in Chromium (`tests/browser/admin.cjs`).
use diesel::prelude::*;
use licentia::client::online::{self, Gateway};
use licentia::client::{CResult, Container};
use licentia::domain::Role;
use serde_json::{json, Value};

use crate::activation::{license, new_act, ticket_with};
use crate::harness::{order, TestApp, ADMIN_PW};
use crate::portal::{token_of, Page, Visitor};

fn keep(_: &Container) -> CResult<()> {
    Ok(())
}

/// Posts the login form (with its token, as the login page gives it).
fn log_in(v: &mut Visitor, fields: &[(&str, &str)]) -> Page {
    v.post_from("/admin/login", "/admin/login", fields)
}

/// A visitor logged in to the back office as `user`.
fn staff(app: &TestApp, user: &str, password: &str) -> Visitor {
    let mut v = Visitor::new(&app.base);
    let p = log_in(
        &mut v,
        &[
            ("username", user),
            ("password", password),
            ("next", "/admin"),
        ],
    );
    assert_eq!(
        (p.status, p.location.as_str()),
        (303, "/admin"),
        "{}",
        p.body
    );
    v
}

/// Posts a form of the page at `page` with its token.
fn post(v: &mut Visitor, page: &str, path: &str, fields: &[(&str, &str)]) -> Page {
    v.post_from(page, path, fields)
}

fn alert(p: &Page) -> String {
    let at = p.body.find("alert-detail").map_or(0, |i| i);
    p.body[at..].chars().take(300).collect()
}

#[test]
fn staff_log_in_and_out_and_their_role_holds_at_every_request() {
    let app = TestApp::start();
    let sales_pw = app.add_user("sam", Role::Sales);
    let erp_pw = app.add_user("erpy", Role::Erp);

    // Without a session every page leads to the login, coming back afterwards.
    let mut anon = Visitor::new(&app.base);
    let p = anon.get("/admin/orders?q=x");
    assert_eq!(p.status, 303);
    assert_eq!(p.location, "/admin/login?next=/admin/orders%3Fq%3Dx");
    let p = anon.get("/admin/login");
    assert_eq!(p.status, 200);
    assert!(p.body.contains("name=\"password\""));
    // A wrong password is a 401 page that does not say which of the two was wrong.
    let p = log_in(&mut anon, &[("username", "admin"), ("password", "nope")]);
    assert_eq!(p.status, 401);
    assert!(p.body.contains("The user name or the password is wrong."));
    assert!(!anon.cookies.contains_key("licentia_admin"));
    // A login form from elsewhere (without the login page's token) logs nobody in.
    let p = Visitor::new(&app.base).send(
        "POST",
        "/admin/login",
        Some(&[("username", "admin"), ("password", ADMIN_PW)]),
    );
    assert_eq!(p.status, 403);
    assert!(p
        .set_cookies
        .iter()
        .all(|c| !c.starts_with("licentia_admin=")));
    // ERP users have no back office.
    let p = log_in(&mut anon, &[("username", "erpy"), ("password", &erp_pw)]);
    assert_eq!(p.status, 403, "{}", p.body);
    // A return address elsewhere is not followed.
    let p = log_in(
        &mut anon,
        &[
            ("username", "admin"),
            ("password", ADMIN_PW),
            ("next", "//evil.example/"),
        ],
    );
    assert_eq!((p.status, p.location.as_str()), (303, "/admin"));
    let cookie = p
        .set_cookies
        .iter()
        .find(|c| c.starts_with("licentia_admin="))
        .unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    assert!(cookie.contains("Path=/admin"));

    // Every page renders for the admin, with the policy that lets it run no script.
    let mut admin = staff(&app, "admin", ADMIN_PW);
    for page in [
        "/admin",
        "/admin/orders",
        "/admin/orders/new",
        "/admin/customers",
        "/admin/customers?q=nobody",
        "/admin/items",
        "/admin/items/new",
        "/admin/items/view?id=SNP-SINGLE",
        "/admin/containers",
        "/admin/blacklist",
        "/admin/blacklist?all=1",
        "/admin/approvals",
        "/admin/approvals?state=all",
        "/admin/reports",
        "/admin/reports/blacklist",
        "/admin/reports/expiring?days=30",
        "/admin/mail",
        "/admin/mail?state=failed",
        "/admin/users",
        "/admin/settings",
        "/admin/jobs",
        "/admin/history",
        "/admin/history?ticket=&serial=&order_id=&verify=1",
    ] {
        let p = admin.get(page);
        assert_eq!(p.status, 200, "{page}: {}", p.body);
        let csp = &p.headers["content-security-policy"];
        assert!(
            csp.contains("default-src 'none'") && !csp.contains("script-src"),
            "{csp}"
        );
    }
    // In German too.
    admin.get("/admin/language?lang=de&next=/admin/orders");
    let p = admin.get("/admin/orders");
    assert!(p.body.contains("Aufträge") && p.body.contains("lang=\"de\""));
    admin.get("/admin/language?lang=en&next=/admin");
    // An unknown page, a report with a bad parameter: a page that says why.
    assert_eq!(admin.get("/admin/nothing-here").status, 404);
    let p = admin.get("/admin/reports/expiring?days=0");
    assert_eq!(p.status, 400);
    assert!(alert(&p).contains("between 1 and 3650"), "{}", alert(&p));

    // Sales sees orders and may not read the blacklist, the users or the settings, by
    // page or by form; the navigation does not offer them.
    let mut sam = staff(&app, "sam", &sales_pw);
    let p = sam.get("/admin/orders");
    assert_eq!(p.status, 200);
    assert!(!p.body.contains("href=\"/admin/blacklist\""));
    for page in [
        "/admin/blacklist",
        "/admin/users",
        "/admin/settings",
        "/admin/mail",
    ] {
        let p = sam.get(page);
        assert_eq!(p.status, 403, "{page}");
        assert!(p.body.contains("Your role does not allow this."), "{page}");
    }
    let p = post(
        &mut sam,
        "/admin/orders",
        "/admin/blacklist",
        &[("serial", "130-1234567890"), ("description", "x")],
    );
    assert_eq!(p.status, 403);
    assert_eq!(app.count("blacklist"), 0);

    // A form without its session's token changes nothing.
    let p = admin.send(
        "POST",
        "/admin/blacklist",
        Some(&[("serial", "130-1234567890"), ("description", "stolen")]),
    );
    assert_eq!(p.status, 403);
    let p = admin.send(
        "POST",
        "/admin/blacklist",
        Some(&[
            ("csrf", &token_of(&sam.get("/admin/orders").body)),
            ("serial", "130-1234567890"),
            ("description", "stolen"),
        ]),
    );
    assert_eq!(p.status, 403, "another session's token is no token");
    assert_eq!(app.count("blacklist"), 0);

    // The admin makes sam support: sam's next request reads the blacklist.
    let p = post(
        &mut admin,
        "/admin/users",
        "/admin/users/change?name=sam",
        &[("role", "support"), ("active", "1")],
    );
    assert_eq!(
        (p.status, p.location.as_str()),
        (303, "/admin/users?notice=user_saved")
    );
    assert_eq!(sam.get("/admin/blacklist").status, 200);
    // Made an ERP user: no back office any more, from the next request on.
    post(
        &mut admin,
        "/admin/users",
        "/admin/users/change?name=sam",
        &[("role", "erp"), ("active", "1")],
    );
    assert_eq!(sam.get("/admin/orders").status, 303);
    // Deactivated: out at the next request, and no new login.
    post(
        &mut admin,
        "/admin/users",
        "/admin/users/change?name=sam",
        &[("role", "support")],
    );
    assert_eq!(sam.get("/admin/blacklist").status, 303);
    let p = log_in(
        &mut Visitor::new(&app.base),
        &[("username", "sam"), ("password", &sales_pw)],
    );
    assert_eq!(p.status, 401);

    // A session idle for longer than admin_idle_minutes is over.
    let mut idle = staff(&app, "admin", ADMIN_PW);
    assert_eq!(idle.get("/admin/orders").status, 200);
    {
        use licentia::store::admin::admin_sessions;
        let mut c = app.db.connect();
        let long_ago = chrono::Utc::now().naive_utc() - chrono::Duration::minutes(31);
        diesel::update(admin_sessions::table)
            .set(admin_sessions::last_seen_at.eq(long_ago))
            .execute(&mut c)
            .unwrap();
    }
    assert_eq!(idle.get("/admin/orders").status, 303);
    assert_eq!(admin.get("/admin/orders").status, 303, "both were idle");

    // Logout ends the session for every node.
    let mut a = staff(&app, "admin", ADMIN_PW);
    let token = a.cookies["licentia_admin"].clone();
    let p = post(&mut a, "/admin", "/admin/logout", &[]);
    assert_eq!((p.status, p.location.as_str()), (303, "/admin/login"));
    let mut replay = Visitor::new(&app.base);
    replay.cookies.insert("licentia_admin".into(), token);
    assert_eq!(replay.get("/admin").status, 303);

    // Failed logins hold the address and the user name back (portal_login_limit, 5 by
    // default; this test failed a few already).
    let mut guesser = Visitor::new(&app.base);
    let mut failed = 0;
    loop {
        let p = log_in(
            &mut guesser,
            &[("username", "admin"), ("password", "guess")],
        );
        if p.status == 429 {
            break;
        }
        assert_eq!(p.status, 401);
        failed += 1;
        assert!(failed <= 5, "held back at the fifth failure");
    }
    let p = log_in(
        &mut guesser,
        &[("username", "admin"), ("password", ADMIN_PW)],
    );
    assert_eq!(p.status, 429, "held back even with the right password");
}

/// The licenses of a ticket as the JSON API shows them.
fn licenses_of(app: &TestApp, ticket: &str) -> Vec<Value> {
    let (s, v) = app.admin("GET", &format!("/api/v1/tickets/{ticket}"), None);
    assert_eq!(s, 200, "{v}");
    v["licenses"].as_array().unwrap().clone()
}

#[test]
fn orders_are_made_by_hand_in_four_ways_and_licenses_withdrawn() {
    let app = TestApp::start();
    let gw = Gateway::new(&app.base);
    let mut v = staff(&app, "admin", ADMIN_PW);
    let form = "/admin/orders/new";

    // A new ticket for a new customer.
    let p = post(
        &mut v,
        form,
        "/admin/orders",
        &[
            ("way", "new"),
            ("customer_id", "C-HAND"),
            ("customer_name", "Hand Made GmbH"),
            ("erp_order_id", "BO-1"),
            ("item_id", "SNP-SINGLE"),
            ("quantity", "2"),
            ("item_id", ""),
            ("quantity", "1"),
        ],
    );
    assert_eq!(p.status, 303, "{}", alert(&p));
    let first = p.location.clone();
    assert!(first.ends_with("?notice=order_saved"), "{first}");
    let page = v.get(&first);
    assert!(page.body.contains("The order was saved."));
    let (_, o) = app.admin("GET", "/api/v1/orders/backoffice/BO-1", None);
    let ticket = o["ticket"].as_str().unwrap().to_string();
    assert!(page.body.contains(&ticket));
    assert_eq!(licenses_of(&app, &ticket).len(), 2);
    let order_id = o["order_id"].as_i64().unwrap().to_string();

    // The ticket of that order, and the ticket itself: lines append to the same ticket.
    let p = post(
        &mut v,
        form,
        "/admin/orders",
        &[
            ("way", "order"),
            ("order_id", &order_id),
            ("item_id", "SNP-FLOAT-5"),
            ("quantity", "1"),
        ],
    );
    assert_eq!(p.status, 303, "{}", alert(&p));
    let p = post(
        &mut v,
        form,
        "/admin/orders",
        &[
            ("way", "ticket"),
            ("ticket", &ticket),
            ("item_id", "SNP-SINGLE"),
            ("quantity", "1"),
        ],
    );
    assert_eq!(p.status, 303, "{}", alert(&p));
    assert_eq!(licenses_of(&app, &ticket).len(), 4);
    // Bad input says what was wrong and makes nothing.
    let before = app.count("orders");
    for (fields, says) in [
        (
            vec![
                ("way", "ticket"),
                ("ticket", "nonsense"),
                ("item_id", "SNP-SINGLE"),
            ],
            "ticket",
        ),
        // A customer's id is no ticket: never read as one.
        (
            vec![
                ("way", "ticket"),
                ("ticket", "C-HAND"),
                ("item_id", "SNP-SINGLE"),
            ],
            "ticket",
        ),
        (
            vec![
                ("way", "new"),
                ("customer_id", "C-X"),
                ("item_id", "NO-SUCH"),
            ],
            "NO-SUCH",
        ),
        (
            vec![("way", "new"), ("customer_id", "C-X"), ("item_id", "")],
            "choose at least one item",
        ),
        (
            vec![
                ("way", "new"),
                ("customer_id", "C-X"),
                ("item_id", "SNP-SINGLE"),
                ("quantity", "zwei"),
            ],
            "not a whole number",
        ),
        (
            vec![("way", "elsewhere"), ("item_id", "SNP-SINGLE")],
            "choose new, order, ticket or container",
        ),
    ] {
        let p = post(&mut v, form, "/admin/orders", &fields);
        assert!(matches!(p.status, 400 | 404), "{fields:?}: {}", p.status);
        assert!(p.body.contains(says), "{fields:?}: {}", alert(&p));
    }
    assert_eq!(app.count("orders"), before);
    assert_eq!(licenses_of(&app, &ticket).len(), 4);

    // An assigned container: the new licenses go to it as automatic updates.
    let (t0, ids0) = ticket_with(&app, "BO-0", "SNP-SINGLE", 1);
    let mut c = new_act(&gw);
    online::activate(&gw, &mut c, &t0, &ids0, &mut keep).unwrap();
    let serial = c.serial.clone();
    let p = post(
        &mut v,
        form,
        "/admin/orders",
        &[
            ("way", "container"),
            ("serial", "130-0000000000"),
            ("item_id", "SNP-SINGLE"),
        ],
    );
    assert_eq!(p.status, 404, "{}", alert(&p));
    // Sales may order but not push: refused before anything is made.
    let sales_pw = app.add_user("sam", Role::Sales);
    let mut sam = staff(&app, "sam", &sales_pw);
    let before = app.count("orders");
    let p = post(
        &mut sam,
        form,
        "/admin/orders",
        &[
            ("way", "container"),
            ("serial", &serial),
            ("item_id", "SNP-SINGLE"),
        ],
    );
    assert_eq!(p.status, 403, "{}", alert(&p));
    assert_eq!(app.count("orders"), before);
    let p = post(
        &mut v,
        &format!("/admin/containers?serial={serial}"),
        &format!("/admin/containers/{serial}/customer"),
        &[("customer_id", "C-HAND")],
    );
    assert_eq!(p.status, 303, "{}", alert(&p));
    let p = post(
        &mut v,
        form,
        "/admin/orders",
        &[
            ("way", "container"),
            ("serial", &serial),
            ("item_id", "SNP-SINGLE"),
            ("quantity", "1"),
        ],
    );
    assert_eq!(p.status, 303, "{}", alert(&p));
    let pulled = online::update(&gw, &mut c, &mut keep).unwrap();
    assert_eq!(pulled.iter().map(|r| r.added.len()).sum::<usize>(), 1);
    let page = v.get(&format!("/admin/containers?serial={serial}"));
    assert_eq!(page.status, 200);
    assert_eq!(
        page.body.matches("state-activated").count(),
        2,
        "two licenses in it"
    );
    // Each with its ticket, order and number of activations (the first from BO-0).
    let (_, o0) = app.admin("GET", "/api/v1/orders/erp/BO-0", None);
    assert!(page
        .body
        .contains(&format!("/admin/orders/{}\">", o0["order_id"])));
    assert!(page.body.contains(o0["ticket"].as_str().unwrap()));
    let row = &page.body[page
        .body
        .find(&format!("data-license=\"{}\"", ids0[0]))
        .unwrap()..];
    assert!(row.contains("<td class=\"num\">1</td>"), "activated once");

    // Withdraw one license of the first order from its page: it leaves the ticket.
    let lic = licenses_of(&app, &ticket)[0]["license_id"]
        .as_i64()
        .unwrap();
    let page = format!("/admin/orders/{order_id}");
    let p = post(
        &mut v,
        &page,
        &format!("{page}/withdraw"),
        &[("reason", "refund")],
    );
    assert_eq!(p.status, 400, "nothing checked: {}", alert(&p));
    let p = post(
        &mut v,
        &page,
        &format!("{page}/withdraw"),
        &[("license", &lic.to_string()), ("reason", "refund")],
    );
    assert_eq!(p.status, 303, "{}", alert(&p));
    assert_eq!(license(&app, lic).0, "deleted");
    assert_eq!(licenses_of(&app, &ticket).len(), 3);
    // Twice: nothing more changes.
    post(
        &mut v,
        &page,
        &format!("{page}/withdraw"),
        &[("license", &lic.to_string())],
    );
    assert_eq!(licenses_of(&app, &ticket).len(), 3);
    assert_eq!(app.count("events WHERE action = 'license.withdrawn'"), 1);
    // Add an item that replaces a license.
    let other = licenses_of(&app, &ticket)[0]["license_id"]
        .as_i64()
        .unwrap();
    let p = post(
        &mut v,
        &page,
        &format!("{page}/lines"),
        &[("item_id", "SNP-FLOAT-5"), ("replaces", &other.to_string())],
    );
    assert_eq!(p.status, 303, "{}", alert(&p));
    assert_eq!(license(&app, other).0, "deleted");

    // The ticket mail again: the customer has no address yet, then one.
    let p = post(&mut v, &page, &format!("{page}/mail"), &[]);
    assert_eq!(p.status, 409, "{}", alert(&p));
    assert!(p.body.contains("has no e-mail address"));
    let p = post(
        &mut v,
        "/admin/customers/view?id=C-HAND",
        "/admin/customers/view?id=C-HAND",
        &[
            ("name", "Hand Made GmbH"),
            ("email", "hand@example.com"),
            ("locale", "de"),
        ],
    );
    assert_eq!(p.status, 303, "{}", alert(&p));
    let mails = app.count("outbox");
    let p = post(&mut v, &page, &format!("{page}/mail"), &[]);
    assert_eq!(p.status, 303, "{}", alert(&p));
    assert_eq!(app.count("outbox"), mails + 1);
    assert_eq!(
        app.count(&format!(
            "outbox WHERE recipient = 'hand@example.com' AND kind = 'ticket' AND locale = 'de' \
             AND params LIKE '%{ticket}%'"
        )),
        1
    );
    // The customer's page: contact, tickets, containers.
    let p = v.get("/admin/customers/view?id=C-HAND");
    assert!(p.body.contains("hand@example.com") && p.body.contains(&ticket));
    assert!(p.body.contains(&serial), "the assigned container is listed");
    let p = v.get("/admin/customers?q=Hand%20Made");
    assert!(p.body.contains("/admin/customers/view?id=C-HAND"));
    // Ids travel in the query: any character works, and none leads elsewhere.
    let (s, c) = app.admin(
        "PUT",
        "/api/v1/customers",
        Some(json!({"external_id": "K/../users/admin", "name": "Slash & Dot"})),
    );
    assert_eq!(s, 200, "{c}");
    let p = v.get("/admin/customers?q=slash");
    assert!(
        p.body.contains("/admin/customers/view?id=K/../users/admin"),
        "case ignored"
    );
    let p = v.get("/admin/customers/view?id=K%2F..%2Fusers%2Fadmin");
    assert_eq!(p.status, 200);
    assert!(p
        .body
        .contains("action=\"/admin/customers/view?id=K/../users/admin\""));
    let p = v.get("/admin/customers?q=100%25");
    assert!(
        p.body.contains("No customers found."),
        "a % is searched as itself"
    );

    // The history of the order's ticket names the back office.
    let p = v.get(&format!("/admin/history?ticket={ticket}&verify=1"));
    let table = &p.body[p.body.find("<table").unwrap_or(0)..];
    assert!(
        table.contains("order.lines_added") && table.contains("<td>admin</td><td>admin</td>"),
        "{table}"
    );
    assert!(p.body.contains("id=\"chain-ok\""), "the chain verified");
    // And the withdrawn license's own history says who withdrew it and why.
    let p = v.get(&format!("/admin/history?license_id={lic}"));
    let table = &p.body[p.body.find("<table").unwrap_or(0)..];
    assert!(
        table.contains("license.withdrawn") && table.contains("refund"),
        "{table}"
    );
    assert!(
        !table.contains("order.created"),
        "only that license's events"
    );
}

#[test]
fn the_order_list_pages_by_key_and_searches_by_index() {
    let app = TestApp::start();
    for i in 0..120 {
        let (s, v) = app.admin(
            "POST",
            "/api/v1/orders",
            Some(order(
                &format!("PG-{i:03}"),
                &format!("C-{}", i % 7),
                &[("SNP-SINGLE", 1)],
            )),
        );
        assert_eq!(s, 201, "{v}");
    }
    let mut v = staff(&app, "admin", ADMIN_PW);
    let mut seen = vec![];
    let mut page = "/admin/orders".to_string();
    loop {
        let p = v.get(&page);
        assert_eq!(p.status, 200);
        let ids: Vec<String> = p
            .body
            .match_indices("<td>PG-")
            .map(|(i, _)| p.body[i + 4..i + 10].to_string())
            .collect();
        assert!(ids.len() <= 50);
        seen.extend(ids);
        match p.body.find("rel=\"next\"") {
            None => break,
            Some(_) => {
                let at = p.body.find("href=\"/admin/orders?q=&amp;before=").unwrap();
                let rest = &p.body[at + 6..];
                page = rest[..rest.find('"').unwrap()].replace("&amp;", "&");
            }
        }
    }
    assert_eq!(seen.len(), 120, "every order once");
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(seen, sorted, "newest first");
    // By ERP order id, by customer, by ticket.
    let p = v.get("/admin/orders?q=PG-042");
    assert_eq!(p.body.matches("<td>PG-").count(), 1);
    // A customer whose id is that ERP order id: the orders of both.
    let (s, o) = app.admin(
        "POST",
        "/api/v1/orders",
        Some(order("OTHER-1", "PG-042", &[("SNP-SINGLE", 1)])),
    );
    assert_eq!(s, 201, "{o}");
    let p = v.get("/admin/orders?q=PG-042");
    assert_eq!(p.body.matches("<td>PG-042</td>").count(), 1);
    assert_eq!(p.body.matches("<td>OTHER-1</td>").count(), 1);
    let p = v.get("/admin/orders?q=C-3");
    assert_eq!(p.body.matches("<td>PG-").count(), 17);
    let (_, o) = app.admin("GET", "/api/v1/orders/erp/PG-007", None);
    let p = v.get(&format!(
        "/admin/orders?q={}",
        o["ticket"].as_str().unwrap()
    ));
    assert_eq!(p.body.matches("<td>PG-").count(), 1);
    assert!(p.body.contains("PG-007"));
    let p = v.get("/admin/orders?q=nothing-like-it");
    assert!(p.body.contains("No orders found."));
}

#[test]
fn items_and_settings_are_edited_through_their_forms() {
    let app = TestApp::start();
    let mut v = staff(&app, "admin", ADMIN_PW);
    let p = post(
        &mut v,
        "/admin/items/new",
        "/admin/items",
        &[
            ("item_id", "BO-ITEM"),
            ("name", "Made in the back office"),
            ("kind", "license"),
            ("product_code", "4242"),
            ("active", "1"),
            ("container_types", "act"),
            ("container_types", "cloud"),
            ("license_quantity", "5"),
            ("feature_map", "3"),
            ("expiration_time", "2030-01-31T12:00"),
            ("deactivation_allowed", "no"),
            ("reactivation", "approval"),
            ("seat_counting", "per_station"),
            ("lease_seconds", "600"),
            ("activation_limit.activations", "2"),
            ("activation_limit.days", "30"),
            ("text", "Hallo Welt"),
        ],
    );
    assert_eq!(p.status, 303, "{}", alert(&p));
    assert_eq!(p.location, "/admin/items/view?id=BO-ITEM&notice=item_saved");
    let (_, item) = app.admin("GET", "/api/v1/items/BO-ITEM", None);
    let o = &item["options"];
    assert_eq!(o["container_types"], json!(["act", "cloud"]));
    assert_eq!(o["license_quantity"], 5);
    assert_eq!(o["expiration_time"], "2030-01-31T12:00:00Z");
    assert_eq!(o["deactivation_allowed"], false);
    assert_eq!(o["reactivation"], "approval");
    assert_eq!(o["seat_counting"], "per_station");
    assert_eq!(o["activation_limit"], json!({"activations": 2, "days": 30}));
    assert_eq!(item["product_code"], 4242);
    // The edit page shows what is stored; saving it unchanged changes nothing but the
    // version.
    let page = v.get("/admin/items/view?id=BO-ITEM");
    assert!(page.body.contains("value=\"2030-01-31T12:00\""));
    assert!(page.body.contains("value=\"per_station\" selected"));
    // Bad values are refused with the option named, and nothing changes.
    for (name, value, says) in [
        ("license_quantity", "-1", "license_quantity"),
        ("expiration_time", "tomorrow", "expiration_time"),
        ("reactivation", "sometimes", "unknown variant"),
        ("activation_limit.days", "", "give both"),
    ] {
        let p = post(
            &mut v,
            "/admin/items/view?id=BO-ITEM",
            "/admin/items/view?id=BO-ITEM",
            &[
                // The first value of a name counts.
                (name, value),
                ("version", &item["version"].to_string()),
                ("kind", "license"),
                ("name", "x"),
                ("container_types", "act"),
                ("activation_limit.activations", "2"),
                ("activation_limit.days", "30"),
            ],
        );
        assert_eq!(p.status, 400, "{name}");
        assert!(p.body.contains(says), "{name}: {}", alert(&p));
    }
    let (_, same) = app.admin("GET", "/api/v1/items/BO-ITEM", None);
    assert_eq!(same, item);
    let p = post(
        &mut v,
        "/admin/items/view?id=BO-ITEM",
        "/admin/items/view?id=BO-ITEM",
        &[
            ("version", &item["version"].to_string()),
            ("kind", "license"),
            ("name", "Renamed"),
            ("container_types", "act"),
        ],
    );
    assert_eq!(p.status, 303, "{}", alert(&p));
    let (_, changed) = app.admin("GET", "/api/v1/items/BO-ITEM", None);
    assert_eq!(changed["name"], "Renamed");
    assert_eq!(changed["active"], false, "unchecked: deactivated");
    // An old version: someone else changed it meanwhile.
    let p = post(
        &mut v,
        "/admin/items/view?id=BO-ITEM",
        "/admin/items/view?id=BO-ITEM",
        &[
            ("version", &item["version"].to_string()),
            ("kind", "license"),
            ("name", "y"),
            ("container_types", "act"),
        ],
    );
    assert_eq!(p.status, 409, "{}", alert(&p));

    // The settings form stores what the JSON API reads, every field.
    let (_, before) = app.admin("GET", "/api/v1/settings", None);
    let p = post(
        &mut v,
        "/admin/settings",
        "/admin/settings",
        &[
            ("deactivation_allowed", "1"),
            ("duplicate_check", "1"),
            ("reactivation", "approval"),
            ("restore", "allowed"),
            ("reactivation_behaviour", "withdraw"),
            ("blocking_period_days", "7"),
            ("self_service_count", "2"),
            ("monthly_activation_quota", "100"),
            ("activation_mode", "selected"),
            ("fingerprint_tolerance", "1"),
            ("update_validity_days", "14"),
            ("lock_item", ""),
        ],
    );
    assert_eq!(p.status, 303, "{}", alert(&p));
    let (_, after) = app.admin("GET", "/api/v1/settings", None);
    assert_ne!(before, after);
    assert_eq!(after["reactivation"], "approval");
    assert_eq!(after["reactivation_behaviour"], "withdraw");
    assert_eq!(after["monthly_activation_quota"], 100);
    assert_eq!(after["automatic_update_handling"], false);
    assert_eq!(after["activation_mode"], "selected");
    let p = post(
        &mut v,
        "/admin/settings",
        "/admin/settings",
        &[
            ("reactivation", "allowed"),
            ("restore", "allowed"),
            ("reactivation_behaviour", "none"),
            ("activation_mode", "all"),
            ("blocking_period_days", "a week"),
        ],
    );
    assert_eq!(p.status, 400);
    let (_, unchanged) = app.admin("GET", "/api/v1/settings", None);
    assert_eq!(unchanged, after);
}

/// The whole back office in Chromium: the admin logs in, makes an item and an order by
/// hand, withdraws a license, blacklists a container and sees its lock sent and validated
/// after the container's next contact, approves the re-activation a customer asked for in
/// the portal, downloads a report as CSV (the same as the JSON API's) and sends a failed
/// mail again; a sales user is refused the blacklist and the users. Screenshots land in
/// `target/screenshots/portal/admin-*.png`; axe-core finds nothing serious.
#[test]
fn the_back_office_in_a_browser() {
    use crate::harness::SmtpSink;
    let started = std::time::SystemTime::now();
    let mut sink = SmtpSink::stopped();
    let app = TestApp::start_with(|c| {
        c.smtp_host = "127.0.0.1".into();
        c.smtp_port = sink.port;
        c.smtp_timeout_secs = 2;
        c.mail_max_attempts = 1;
        c.vendor_name = "Northwind Software".into();
    });
    let gw = Gateway::new(&app.base);
    let sales_pw = app.add_user("sam", Role::Sales);
    // A ticket mail that cannot be sent: failed after its one attempt.
    let (s, v) = app.admin(
        "POST",
        "/api/v1/orders",
        Some(json!({"source": "shop", "erp_order_id": "M-1",
            "customer": {"external_id": "C-MAIL", "email": "late@example.com"},
            "lines": [{"item_id": "SNP-SINGLE", "quantity": 1}]})),
    );
    assert_eq!(s, 201, "{v}");
    app.run_pending_workers();
    let (_, failed) = app.admin("GET", "/api/v1/mail?state=failed", None);
    let mail = failed[0]["id"].as_i64().expect("a failed mail");
    // The customer's license in container A, lost; B is the new computer. Re-activation
    // needs an approval.
    let (s, v) = app.admin(
        "PUT",
        "/api/v1/settings",
        Some(json!({"reactivation": "approval"})),
    );
    assert_eq!(s, 200, "{v}");
    let (ticket, ids) = ticket_with(&app, "BR-1", "SNP-SINGLE", 1);
    let mut a = new_act(&gw);
    online::activate(&gw, &mut a, &ticket, &ids, &mut keep).unwrap();
    let mut b = new_act(&gw);
    // Container C is stolen: the admin blacklists it.
    let (t2, ids2) = ticket_with(&app, "BR-2", "SNP-SINGLE", 1);
    let mut c = new_act(&gw);
    online::activate(&gw, &mut c, &t2, &ids2, &mut keep).unwrap();

    let case = json!({
        "admin_password": ADMIN_PW, "sales_password": sales_pw,
        "ticket": ticket, "license": ids[0], "lost": a.serial, "stolen": c.serial,
        "mail": mail,
    });
    crate::portal::run_browser(&app, "admin.cjs", case, &mut |ask| {
        match ask["ask"].as_str().unwrap_or_default() {
            "request" => {
                let file = ask["file"].as_str().unwrap();
                let r = b
                    .request(crate::activation::FIRM, licentia::client::unix_now())
                    .map_err(|e| e.to_string())?;
                std::fs::write(file, r).map_err(|e| e.to_string())?;
                Ok(json!({"serial": b.serial}))
            }
            // A container's next contact: it takes what waits for it.
            "contact" => {
                let which = ask["container"].as_str().unwrap_or_default();
                let cont = match which {
                    "stolen" => &mut c,
                    "new" => &mut b,
                    other => return Err(format!("no container {other}")),
                };
                let got = online::update(&gw, cont, &mut keep).map_err(|e| e.to_string())?;
                let added: Vec<i64> = got.iter().flat_map(|r| r.added.clone()).collect();
                Ok(json!({"updates": got.len(), "added": added}))
            }
            // The downloaded CSV against the JSON API's report.
            "compare" => {
                let text = std::fs::read_to_string(ask["file"].as_str().unwrap())
                    .map_err(|e| e.to_string())?;
                let report = ask["report"].as_str().unwrap();
                let (s, json) = app.admin("GET", &format!("/api/v1/reports/{report}"), None);
                if s != 200 {
                    return Err(format!("JSON report {s}: {json}"));
                }
                let mut r = csv::Reader::from_reader(text.as_bytes());
                let header: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
                if header
                    != json["columns"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|c| c.as_str().unwrap().to_string())
                        .collect::<Vec<_>>()
                {
                    return Err(format!("columns {header:?} against {}", json["columns"]));
                }
                let rows: Vec<Vec<String>> = r
                    .records()
                    .map(|rec| rec.unwrap().iter().map(str::to_string).collect())
                    .collect();
                let expected: Vec<Vec<String>> = json["rows"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|row| {
                        header
                            .iter()
                            .map(|c| match &row[c] {
                                Value::Null => String::new(),
                                Value::String(s) => s.clone(),
                                other => other.to_string(),
                            })
                            .collect()
                    })
                    .collect();
                if rows != expected || rows.is_empty() {
                    return Err(format!("CSV rows {rows:?} against JSON {expected:?}"));
                }
                Ok(json!({"rows": rows.len()}))
            }
            // The mail server is back.
            "smtp_up" => {
                sink.run();
                Ok(json!({}))
            }
            // The requeued mail goes out once.
            "mail_sent" => {
                let mails = sink.wait_for(1, 20);
                // The outbox says so once the server heard the SMTP server's answer.
                let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
                loop {
                    let (_, list) = app.admin("GET", "/api/v1/mail", None);
                    let m = list
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|m| m["id"] == ask["id"])
                        .cloned()
                        .ok_or("no such mail")?;
                    if m["state"] == "sent" || std::time::Instant::now() > until {
                        return Ok(json!({"state": m["state"], "delivered": mails.len()}));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
            }
            other => Err(format!("unknown ask {other:?}")),
        }
    });
    // What the pages did is what the server holds.
    assert_eq!(
        license(&app, ids[0]),
        ("activated".into(), Some(b.serial.clone()))
    );
    assert_eq!(app.count("approvals WHERE state = 'approved'"), 1);
    assert_eq!(
        app.count("blacklist WHERE lock_validated_at IS NOT NULL"),
        1
    );
    assert_eq!(app.count("items WHERE item_id = 'BO-BROWSER'"), 1);
    assert_eq!(
        app.count("events WHERE action = 'license.withdrawn' AND interface = 'admin'"),
        1
    );
    crate::portal::assert_screenshots(
        started,
        &[
            "admin-login",
            "admin-dashboard",
            "admin-item",
            "admin-order",
            "admin-orders",
            "admin-blacklist",
            "admin-approvals",
            "admin-report",
            "admin-mail",
            "admin-container",
            "admin-users",
            "admin-settings",
            "admin-history",
            "admin-dashboard-de",
        ],
    );
}

#[test]
fn the_portals_colours_and_columns_are_set_in_the_back_office() {
    let app = TestApp::start();
    let mut v = staff(&app, "admin", ADMIN_PW);
    let (ticket, _) = ticket_with(&app, "LOOK-1", "SNP-SINGLE", 1);
    let mut customer = Visitor::new(&app.base);
    assert_eq!(customer.login(&ticket).status, 303);
    let columns = |c: &mut Visitor| -> Vec<String> {
        let page = c.get("/portal/tickets").body;
        let mut seen: Vec<String> = vec![];
        for (i, _) in page.match_indices("data-col=\"") {
            let rest = &page[i + 10..];
            let name = rest[..rest.find('"').unwrap()].to_string();
            if !seen.contains(&name) {
                seen.push(name);
            }
        }
        seen
    };
    let configured = columns(&mut customer);
    assert!(configured.contains(&"expiry".to_string()), "{configured:?}");
    let css = |c: &mut Visitor| c.get("/portal/static/brand.css").body;
    assert!(css(&mut customer).contains("--brand: #1d4f73;"));

    let p = post(
        &mut v,
        "/admin/settings",
        "/admin/settings/portal",
        &[
            ("color", "#AA3300"),
            ("accent_color", ""),
            ("columns", "state, name,license"),
        ],
    );
    assert_eq!(p.status, 303, "{}", alert(&p));
    // At the portal's next page, without a restart.
    assert!(css(&mut customer).contains("--brand: #aa3300;"));
    assert!(
        css(&mut customer).contains("--accent: #e8a33d;"),
        "the configured accent"
    );
    assert_eq!(columns(&mut customer), vec!["state", "name", "license"]);
    // Bad values change nothing.
    for (name, value, says) in [
        ("color", "#12345", "not a colour"),
        ("columns", "name,price", "&quot;price&quot; is not one of"),
    ] {
        let mut fields = vec![
            ("color", "#AA3300"),
            ("accent_color", ""),
            ("columns", "state"),
        ];
        fields.retain(|(n, _)| *n != name);
        fields.insert(0, (name, value));
        let p = post(&mut v, "/admin/settings", "/admin/settings/portal", &fields);
        assert_eq!(p.status, 400, "{name}");
        assert!(p.body.contains(says), "{name}: {}", alert(&p));
    }
    assert_eq!(columns(&mut customer), vec!["state", "name", "license"]);
    // Sales may not change it.
    let sales_pw = app.add_user("sam", Role::Sales);
    let mut sam = staff(&app, "sam", &sales_pw);
    let p = post(
        &mut sam,
        "/admin/orders",
        "/admin/settings/portal",
        &[("color", "#000000")],
    );
    assert_eq!(p.status, 403);
    // Empty: the configuration's again.
    let p = post(
        &mut v,
        "/admin/settings",
        "/admin/settings/portal",
        &[("color", ""), ("accent_color", ""), ("columns", "")],
    );
    assert_eq!(p.status, 303, "{}", alert(&p));
    assert!(css(&mut customer).contains("--brand: #1d4f73;"));
    assert_eq!(columns(&mut customer), configured);
    assert_eq!(
        app.count("events WHERE action = 'settings.portal_look_changed'"),
        2
    );
}
