//! Self-registration by e-mail through a real SMTP server, and trial licenses: at most one
//! per customer and item, also when two takes race.
use serde_json::Value;

use crate::harness::{SmtpSink, TestApp};
use crate::portal::{ticket, token_of, Visitor};

fn registration_on(sink: &SmtpSink, limit: u32) -> impl FnOnce(&mut licentia::config::Config) + '_ {
    move |c| {
        c.smtp_host = "127.0.0.1".into();
        c.smtp_port = sink.port;
        c.smtp_timeout_secs = 2;
        c.mail_retry_secs = 1;
        c.mail_from = "Licentia Test <licenses@vendor.example>".into();
        c.vendor_name = "Sample Vendor".into();
        c.portal_self_registration = true;
        c.portal_login_limit = limit;
        c.portal_login_window_secs = 600;
        c.trusted_proxies = "127.0.0.1".into();
    }
}

fn register(v: &mut Visitor, email: &str, name: &str) -> crate::portal::Page {
    v.post_from(
        "/portal/register",
        "/portal/register",
        &[("email", email), ("name", name)],
    )
}

/// The link in a verification mail, as its path and query on this server.
fn link_of(mail: &Value) -> String {
    let text = mail["parts"][0]["text"].as_str().unwrap();
    let at = text.find("/portal/register/verify?token=").expect("a link");
    let rest = &text[at..];
    rest[..rest.find(char::is_whitespace).unwrap()].to_string()
}

/// Follows a mail's link in `v`'s browser and confirms it.
fn follow(v: &mut Visitor, link: &str) -> crate::portal::Page {
    let page = v.get(link);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.set_cookies
            .iter()
            .all(|c| !c.starts_with("licentia_portal=")),
        "opening the link alone signs nobody in"
    );
    let token = link.split("token=").nth(1).unwrap();
    let csrf = token_of(&page.body);
    v.send(
        "POST",
        "/portal/register/verify",
        Some(&[("csrf", &csrf), ("token", token)]),
    )
}

fn mails_to(sink: &SmtpSink, to: &str) -> Vec<Value> {
    sink.mails()
        .into_iter()
        .filter(|m| m["to"][0].as_str() == Some(to))
        .collect()
}

#[test]
fn a_visitor_registers_by_email_and_takes_each_trial_once() {
    let sink = SmtpSink::start();
    let app = TestApp::start_with(registration_on(&sink, 5));
    let mut v = Visitor::from(&app.base, "198.51.100.20");
    let login = v.get("/portal/login");
    assert!(login.body.contains("data-register"), "{}", login.body);

    // Bad input: refused with its reason, nothing sent or kept.
    for (email, why) in [
        ("not-an-address", "not an email address"),
        ("", "enter your e-mail address"),
        ("kim@example..com@x", "not an email address"),
    ] {
        let p = register(&mut v, email, "Kim");
        assert_eq!(p.status, 400, "{email}: {}", p.body);
        assert!(p.body.contains(why), "{email}: {}", p.body);
    }
    let no_token = v.send(
        "POST",
        "/portal/register",
        Some(&[("email", "kim@example.com")]),
    );
    assert_eq!(no_token.status, 403);
    assert_eq!(app.count("portal_registrations"), 0);
    assert_eq!(app.count("outbox"), 0);

    // The form: the same answer for any address; a link goes to the address.
    let p = register(&mut v, "Kim.Kunde@Example.com", "Kim Kunde");
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(p.body.contains("Check your mailbox"), "{}", p.body);
    let mails = sink.wait_for(1, 20);
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(
        mails[0]["subject"]
            .as_str()
            .unwrap()
            .contains("Confirm your e-mail address for Sample Vendor"),
        "{}",
        mails[0]
    );
    let link = link_of(&mails[0]);

    // Opened in another browser (the mail client's): the click signs in, once.
    let mut reader = Visitor::from(&app.base, "198.51.100.21");
    let done = follow(&mut reader, &link);
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location, "/portal/tickets");
    let overview = reader.get("/portal/tickets");
    assert_eq!(overview.status, 200);
    assert!(overview
        .body
        .contains("There are no tickets here for you yet."));
    assert!(
        overview.body.contains("data-trial=\"SNP-TRIAL-30\""),
        "{}",
        overview.body
    );
    assert!(!overview.body.contains("data-trial=\"SNP-SINGLE\""));
    let mut again = Visitor::from(&app.base, "198.51.100.22");
    let reused = follow(&mut again, &link);
    assert_eq!(reused.status, 403, "{}", reused.body);
    assert!(
        reused.body.contains("this link is not valid"),
        "{}",
        reused.body
    );
    assert!(!again.cookies.contains_key("licentia_portal"));
    let forged = follow(
        &mut again,
        "/portal/register/verify?token=AAAAAAAAAAAAAAAAAAAAAA",
    );
    assert_eq!(forged.status, 403);

    // The customer made from the address.
    let customer = licentia::service::portal::register::customer_id_for("kim.kunde@example.com");
    let (s, c) = app.admin("GET", &format!("/api/v1/customers/{customer}"), None);
    assert_eq!(s, 200, "{c}");
    assert_eq!(c["email"], "Kim.Kunde@Example.com");
    assert_eq!(c["name"], "Kim Kunde");

    // A trial: a ticket of one license, its mail, and the overview shows it taken.
    let csrf = token_of(&overview.body);
    let took = reader.send(
        "POST",
        "/portal/trials",
        Some(&[("csrf", &csrf), ("item", "SNP-TRIAL-30")]),
    );
    assert_eq!(took.status, 303, "{}", took.body);
    assert!(took.location.ends_with("?trial=1"), "{}", took.location);
    let ticket_page = reader.get(&took.location);
    assert!(ticket_page.body.contains("Your trial license is on ticket"));
    assert!(ticket_page.body.contains("SampleNotePad 30-day trial"));
    let code = took
        .location
        .split('/')
        .nth(3)
        .unwrap()
        .split('?')
        .next()
        .unwrap();
    let (_, t) = app.admin("GET", &format!("/api/v1/tickets/{code}"), None);
    assert_eq!(t["licenses"].as_array().unwrap().len(), 1, "{t}");
    let ticket_mail = sink.wait_for(2, 20);
    assert!(
        ticket_mail
            .iter()
            .any(|m| m["subject"].as_str().unwrap().contains(code)),
        "{ticket_mail:?}"
    );
    let overview = reader.get("/portal/tickets");
    assert!(overview.body.contains("Taken"), "{}", overview.body);

    // Once only; not an item that is no trial; not an unknown one.
    let orders = app.count("orders");
    for (item, status, why) in [
        (
            "SNP-TRIAL-30",
            403,
            "you have taken the trial of SampleNotePad 30-day trial already",
        ),
        ("SNP-SINGLE", 404, "unknown item"),
        ("NO-SUCH-ITEM", 404, "unknown item"),
    ] {
        let p = reader.send(
            "POST",
            "/portal/trials",
            Some(&[("csrf", &csrf), ("item", item)]),
        );
        assert_eq!(p.status, status, "{item}: {}", p.body);
        assert!(p.body.contains(why), "{item}: {}", p.body);
    }
    let p = reader.send("POST", "/portal/trials", Some(&[("item", "SNP-TRIAL-30")]));
    assert_eq!(p.status, 403, "no token");
    assert_eq!(app.count("orders"), orders);

    // Registering again with the address in another case signs in to the same customer.
    let p = register(&mut v, "kim.kunde@example.com", "");
    assert_eq!(p.status, 200);
    let mails = sink.wait_for(3, 20);
    let link = link_of(mails.last().unwrap());
    let mut later = Visitor::from(&app.base, "198.51.100.23");
    assert_eq!(follow(&mut later, &link).status, 303);
    let overview = later.get("/portal/tickets");
    assert!(overview.body.contains(code), "{}", overview.body);
    assert!(overview.body.contains("Taken"));
    let customers: Vec<Value> = app
        .admin("GET", "/api/v1/customers", None)
        .1
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(
        customers
            .iter()
            .filter(|c| c["external_id"].as_str().unwrap().starts_with("self-"))
            .count(),
        1
    );

    // A ticket login is no customer's: it sees no trials and may take none.
    let (t, _) = ticket(&app, "REG-1", "C-REG", &[("SNP-SINGLE", 1)]);
    let mut holder = Visitor::from(&app.base, "198.51.100.24");
    assert_eq!(holder.login(&t).status, 303);
    let page = holder.get("/portal/tickets");
    assert!(!page.body.contains("data-trial="), "{}", page.body);
    let csrf = token_of(&page.body);
    let p = holder.send(
        "POST",
        "/portal/trials",
        Some(&[("csrf", &csrf), ("item", "SNP-TRIAL-30")]),
    );
    assert_eq!(p.status, 403);
    assert!(
        p.body
            .contains("trial licenses are for registered customers"),
        "{}",
        p.body
    );
}

#[test]
fn two_takes_of_a_trial_at_once_make_one_license() {
    let sink = SmtpSink::start();
    let app = TestApp::start_with(registration_on(&sink, 5));
    let mut v = Visitor::from(&app.base, "198.51.100.30");
    assert_eq!(register(&mut v, "race@example.com", "Race").status, 200);
    let link = link_of(&sink.wait_for(1, 20)[0]);
    assert_eq!(follow(&mut v, &link).status, 303);
    let csrf = token_of(&v.get("/portal/tickets").body);
    for round in 0..4 {
        // A new trial item each round: both takes race for it.
        let item = format!("TRY-{round}");
        let (s, b) = app.admin(
            "POST",
            "/api/v1/items",
            Some(
                serde_json::json!({"item_id": item, "name": format!("Trial {round}"),
                "product_code": 3000 + round, "options": {"trial": true, "usage_period_days": 14}}),
            ),
        );
        assert_eq!(s, 201, "{b}");
        let results: Vec<u16> = std::thread::scope(|sc| {
            let hands: Vec<_> = (0..2)
                .map(|_| {
                    let mut twin = Visitor::new(&app.base);
                    twin.cookies = v.cookies.clone();
                    let (csrf, item) = (csrf.clone(), item.clone());
                    sc.spawn(move || {
                        twin.send(
                            "POST",
                            "/portal/trials",
                            Some(&[("csrf", &csrf), ("item", &item)]),
                        )
                        .status
                    })
                })
                .collect();
            hands.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut sorted = results.clone();
        sorted.sort();
        assert_eq!(sorted, vec![303, 403], "round {round}: {results:?}");
    }
    // One order of one license per item.
    assert_eq!(app.count("orders"), 4);
    assert_eq!(app.count("licenses"), 4);
}

#[test]
fn registration_is_held_back_per_address_and_sends_a_mailbox_no_more_than_its_share() {
    let sink = SmtpSink::start();
    let app = TestApp::start_with(registration_on(&sink, 3));
    // A mailbox gets at most three links in the window, whoever asks.
    for i in 0..5 {
        let mut v = Visitor::from(&app.base, &format!("198.51.100.{}", 40 + i));
        let p = register(&mut v, "victim@example.com", "");
        assert_eq!(p.status, 200, "the answer is the same: {}", p.body);
        assert!(p.body.contains("Check your mailbox"));
    }
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(mails_to(&sink, "victim@example.com").len(), 3);
    assert_eq!(app.count("portal_registrations"), 3);

    // An address: three requests, then it is held back and nothing more is sent.
    let mut v = Visitor::from(&app.base, "203.0.113.5");
    for i in 0..3 {
        assert_eq!(
            register(&mut v, &format!("a{i}@example.com"), "").status,
            200
        );
    }
    let p = register(&mut v, "a9@example.com", "");
    assert_eq!(p.status, 429, "{}", p.body);
    assert!(
        p.body
            .contains("Too many failed attempts from your address"),
        "{}",
        p.body
    );
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(mails_to(&sink, "a9@example.com").is_empty());
}

#[test]
fn without_self_registration_there_is_no_such_page() {
    let app = TestApp::start();
    let mut v = Visitor::new(&app.base);
    let login = v.get("/portal/login");
    assert!(!login.body.contains("data-register"), "{}", login.body);
    for path in ["/portal/register", "/portal/register/verify?token=x"] {
        assert_eq!(v.get(path).status, 404, "{path}");
    }
    let p = v.post_from(
        "/portal/login",
        "/portal/register",
        &[("email", "kim@example.com")],
    );
    assert_eq!(p.status, 404);
    assert_eq!(app.count("portal_registrations"), 0);
}

#[test]
fn registration_and_a_trial_in_a_browser() {
    let started = std::time::SystemTime::now();
    let sink = SmtpSink::start();
    let app = TestApp::start_with(registration_on(&sink, 5));
    let case = serde_json::json!({"email": "browser@example.com", "name": "Bea Browser",
        "trial": "SNP-TRIAL-30", "trial_name": "SampleNotePad 30-day trial"});
    crate::portal::run_browser(
        &app,
        "register.cjs",
        case,
        &mut |ask| match ask["ask"].as_str() {
            Some("link") => {
                let to = ask["email"].as_str().unwrap_or_default();
                let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
                loop {
                    if let Some(m) = mails_to(&sink, to).first() {
                        return Ok(serde_json::json!({"link": link_of(m)}));
                    }
                    if std::time::Instant::now() > until {
                        return Err(format!("no mail to {to}"));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
            }
            other => Err(format!("unknown ask {other:?}")),
        },
    );
    // What the pages did is what the server believes: one trial order for the new customer.
    assert_eq!(app.count("orders"), 1);
    // And one cloud container with one credential in force.
    assert_eq!(app.count("containers WHERE kind = 'cloud'"), 1);
    assert_eq!(app.count("cloud_credentials WHERE revoked_at IS NULL"), 1);
    for name in ["form", "sent", "confirm", "trials", "trial-ticket", "cloud"] {
        let file = crate::portal::screenshot_dir().join(format!("register-{name}.png"));
        let made = std::fs::metadata(&file)
            .and_then(|m| m.modified())
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(made >= started, "{} made by this run", file.display());
    }
}

/// A registered customer's cloud containers in the portal: made, licenses activated into
/// one, a credential file downloaded (a second replaces the first) and revoked; a ticket
/// login sees none, and another customer cannot touch it.
#[test]
fn a_customer_makes_a_cloud_container_and_its_credential_file_in_the_portal() {
    use licentia::client::cloud::{Cloud, Credential};
    use licentia::protocol::cloud::OpenRequest;
    let sink = SmtpSink::start();
    let app = TestApp::start_with(registration_on(&sink, 20));
    let (s, v) = app.admin(
        "POST",
        "/api/v1/items",
        Some(
            serde_json::json!({"item_id": "CLOUD-PORTAL", "name": "Cloud seats",
            "product_code": 7101, "options": {"license_quantity": 2, "feature_map": 1,
            "container_types": ["cloud"]}}),
        ),
    );
    assert_eq!(s, 201, "{v}");
    let mut v = Visitor::from(&app.base, "198.51.100.40");
    assert_eq!(
        register(&mut v, "cloud@example.com", "Cloud Kunde").status,
        200
    );
    let link = link_of(
        &mails_to(&sink, "cloud@example.com")
            .pop()
            .unwrap_or_else(|| {
                sink.wait_for(1, 20);
                mails_to(&sink, "cloud@example.com").pop().unwrap()
            }),
    );
    assert_eq!(follow(&mut v, &link).status, 303);
    let customer = format!(
        "self-{}",
        &hex::encode(openssl::sha::sha256(b"cloud@example.com"))[..32]
    );
    let (ticket, ids) = ticket(&app, "CLOUD-P-1", &customer, &[("CLOUD-PORTAL", 1)]);

    let overview = v.get("/portal/tickets");
    assert!(overview.body.contains("id=\"cloud\""), "{}", overview.body);
    let made = v.post_from("/portal/tickets", "/portal/cloud", &[]);
    assert_eq!(
        (made.status, made.location.as_str()),
        (303, "/portal/tickets#cloud")
    );
    let overview = v.get("/portal/tickets");
    let at = overview
        .body
        .find("data-cloud=\"")
        .expect("a cloud container");
    let serial = overview.body[at + 12..at + 26].to_string();
    assert!(serial.starts_with("150-"), "{serial}");
    let done = v.post_from(
        "/portal/tickets",
        &format!("/portal/cloud/{serial}/activate"),
        &[("ticket", &ticket)],
    );
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(
        crate::activation::license(&app, ids[0]),
        ("activated".into(), Some(serial.clone()))
    );
    let overview = v.get("/portal/tickets");
    assert!(
        overview.body.contains("data-col=\"seats\">2<"),
        "{}",
        overview.body
    );
    assert!(
        overview.body.contains("data-credential=\"no\""),
        "{}",
        overview.body
    );

    // The credential file: downloaded, used; a second one replaces it at once.
    let credential_path = format!("/portal/cloud/{serial}/credential");
    let file = v.post_from("/portal/tickets", &credential_path, &[]);
    assert_eq!(file.status, 200);
    let first = Cloud::new(
        &app.base,
        Credential::from_bytes(file.body.as_bytes(), None).unwrap(),
    );
    let open = OpenRequest {
        firm_code: crate::activation::FIRM,
        product_code: 7101,
        features: 1,
        station: "desk".into(),
    };
    first.open(&open).unwrap();
    let file = v.post_from("/portal/tickets", &credential_path, &[]);
    let second = Cloud::new(
        &app.base,
        Credential::from_bytes(file.body.as_bytes(), None).unwrap(),
    );
    assert_eq!(first.status().unwrap_err().code, "not_allowed");
    second.open(&open).unwrap();
    assert!(v
        .get("/portal/tickets")
        .body
        .contains("data-credential=\"yes\""));
    // Stolen: revoked in the portal.
    let revoked = v.post_from(
        "/portal/tickets",
        &format!("/portal/cloud/{serial}/revoke"),
        &[],
    );
    assert_eq!(revoked.status, 303, "{}", revoked.body);
    assert_eq!(second.status().unwrap_err().code, "not_allowed");
    assert!(v
        .get("/portal/tickets")
        .body
        .contains("data-credential=\"no\""));

    // A ticket login is no customer: no cloud card, and its forms are refused.
    let mut t = Visitor::from(&app.base, "198.51.100.41");
    assert_eq!(t.login(&ticket).status, 303);
    let page = t.get("/portal/tickets");
    assert!(!page.body.contains("id=\"cloud\""), "{}", page.body);
    let refused = t.post_from("/portal/tickets", "/portal/cloud", &[]);
    assert_eq!(refused.status, 403, "{}", refused.body);
    // Another customer does not see this container.
    let mut other = Visitor::from(&app.base, "198.51.100.42");
    assert_eq!(
        register(&mut other, "other@example.com", "Other").status,
        200
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mail = loop {
        if let Some(m) = mails_to(&sink, "other@example.com").pop() {
            break m;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no mail to other@example.com"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let link = link_of(&mail);
    assert_eq!(follow(&mut other, &link).status, 303);
    assert!(!other.get("/portal/tickets").body.contains(&serial));
    let refused = other.post_from("/portal/tickets", &credential_path, &[]);
    assert_eq!(refused.status, 404, "{}", refused.body);
}
