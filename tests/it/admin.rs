//! The back office under `/admin` over HTTP: staff sessions (login, wrong passwords held
//! back, idle end, logout, a role changed or a user deactivated at the next request), the
//! form token, roles on pages and actions, every page rendered, orders made by hand in the
//! four ways, withdraw, items, customers and settings through their forms, the order list
//! paged by key, the portal's look. The same in Chromium: `admin_browser.rs`.
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
pub(crate) fn staff(app: &TestApp, user: &str, password: &str) -> Visitor {
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
pub(crate) fn post(v: &mut Visitor, page: &str, path: &str, fields: &[(&str, &str)]) -> Page {
    v.post_from(page, path, fields)
}

pub(crate) fn alert(p: &Page) -> String {
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
        "/admin/webhooks",
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
        "/admin/webhooks",
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
    // The ticket disabled from its order's page, then enabled again; a made-up state is
    // refused and changes nothing.
    let p = v.get(&page);
    assert!(p.body.contains("Disable the ticket"), "{}", p.body);
    let state = format!("{page}/ticket-state");
    let p = post(&mut v, &page, &state, &[("state", "paused")]);
    assert_eq!(p.status, 400, "{}", alert(&p));
    let p = post(
        &mut v,
        &page,
        &state,
        &[("state", "disabled"), ("reason", "refund")],
    );
    assert_eq!(p.status, 303, "{}", alert(&p));
    let (_, t) = app.admin("GET", &format!("/api/v1/tickets/{ticket}"), None);
    assert_eq!(t["state"], "disabled");
    let p = v.get(&page);
    assert!(p.body.contains("Enable the ticket again"), "{}", p.body);
    let p = post(&mut v, &page, &state, &[("state", "active")]);
    assert_eq!(p.status, 303, "{}", alert(&p));
    let (_, t) = app.admin("GET", &format!("/api/v1/tickets/{ticket}"), None);
    assert_eq!(t["state"], "active");
    assert_eq!(
        app.count("events WHERE action IN ('ticket.disabled', 'ticket.enabled')"),
        2
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
