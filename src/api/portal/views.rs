//! What the templates get: the service's answers turned into the values a page shows, in
//! the page's language (texts, dates, states), and the example values every template is
//! rendered with at start.
use chrono::NaiveDateTime;
use serde_json::{json, Value};

use super::pages::{Pages, LANGUAGES};
use crate::config::PORTAL_COLUMNS;
use crate::domain::{
    ActivationMode, ContainerType, ItemOptions, LicenseState, ReactivationBehaviour,
    ReactivationPolicy,
};
use crate::error::Error;
use crate::service::portal::register::TrialOffer;
use crate::service::portal::{
    Done, HistoryEntry, LicenseHistory, PortalLicense, TicketLicenses, Transfer, TransferKind,
};

/// Where the portal is served.
pub const BASE: &str = "/portal";

/// Every code a page may show a refusal under (`error.<code>` in each catalogue): the
/// domain error's codes, the request's own (`malformed_request`, `payload_too_large`), the
/// portal's (`csrf`, `page_not_found`) and `other` for a code a newer server may know.
/// The built-in catalogues are tested to have them all; a replaced catalogue keeps them.
#[cfg(test)]
pub const ERROR_CODES: &[&str] = &[
    "invalid_input",
    "malformed_request",
    "invalid_ticket",
    "unauthenticated",
    "forbidden",
    "unknown_item",
    "unknown_ticket",
    "unknown_order",
    "unknown_customer",
    "unknown_license",
    "unknown_user",
    "unknown_firm",
    "unknown_container",
    "not_found",
    "already_exists",
    "order_conflict",
    "conflict",
    "invalid_message",
    "context_mismatch",
    "manipulation_detected",
    "not_allowed",
    "blacklisted",
    "approval_required",
    "quota_exceeded",
    "payload_too_large",
    "busy",
    "rate_limited",
    "internal",
    "csrf",
    "page_not_found",
    "sso_refused",
    "sso_no_customer",
    "other",
];

/// The request a page is rendered for.
pub struct Cx {
    pub lang: &'static str,
    /// A session is open.
    pub logged_in: bool,
    /// The session sees tickets (the license overview exists for it).
    pub has_tickets: bool,
    /// The token the page's forms carry.
    pub csrf: String,
    /// The page's path and query (the language links come back to it).
    pub path: String,
}

fn text(p: &Pages, lang: &str, name: &str) -> String {
    p.text(lang, name).unwrap_or(name).to_string()
}

pub fn query_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A whole page's values: what every page shows (language, vendor, session, links to the
/// other languages) and the page's own `body`.
pub fn page(p: &Pages, cx: &Cx, page: &str, title: &str, body: Value) -> Value {
    let languages: Vec<Value> = LANGUAGES
        .iter()
        .map(|l| {
            json!({"code": l, "name": p.texts(l)["language_name"], "current": *l == cx.lang,
                "href": format!("{BASE}/language?lang={l}&next={}", query_escape(&cx.path))})
        })
        .collect();
    let mut v = json!({
        "lang": cx.lang,
        "t": p.texts(cx.lang),
        "brand": p.brand,
        "base": BASE,
        "helper": p.local_helper,
        "helper_command": p.local_helper_command,
        "languages": languages,
        "session": {"active": cx.logged_in, "tickets": cx.has_tickets},
        "csrf": cx.csrf,
        "page": page,
        "title": title,
        "error": null,
        "notice": null,
    });
    if let (Some(all), Value::Object(own)) = (v.as_object_mut(), body) {
        all.extend(own);
    }
    v
}

/// A refusal as a page shows it: the text of its stable code in the page's language, and
/// the detail as the service gave it (never an internal cause).
pub fn refusal(p: &Pages, lang: &str, e: &Error) -> Value {
    let code = e.code();
    let title = p
        .text(lang, &format!("error.{code}"))
        .map(str::to_string)
        .unwrap_or_else(|| text(p, lang, "error.other"));
    let detail = match e {
        Error::Internal(_) => String::new(),
        other => other.public_message(),
    };
    json!({"code": code, "title": title, "detail": detail})
}

/// A refusal the portal itself makes (an expired form, an unknown page).
pub fn portal_refusal(p: &Pages, lang: &str, code: &str) -> Value {
    json!({"code": code, "title": text(p, lang, &format!("error.{code}")), "detail": ""})
}

pub fn when(lang: &str, t: NaiveDateTime) -> String {
    match lang {
        "de" => t.format("%d.%m.%Y %H:%M UTC").to_string(),
        _ => t.format("%Y-%m-%d %H:%M UTC").to_string(),
    }
}

fn quantity(p: &Pages, lang: &str, o: &ItemOptions) -> String {
    match o.license_quantity {
        0 => text(p, lang, "value.single_user"),
        n => text(p, lang, "value.users").replace("{n}", &n.to_string()),
    }
}

fn expiry(p: &Pages, lang: &str, o: &ItemOptions) -> String {
    match (o.expiration_time, o.usage_period_days) {
        (Some(t), _) => when(lang, t.naive_utc()),
        (None, Some(days)) => {
            text(p, lang, "value.usage_period").replace("{days}", &days.to_string())
        }
        (None, None) => text(p, lang, "value.never"),
    }
}

/// One license with the cell of every column the vendor may choose.
pub fn license(p: &Pages, lang: &str, l: &PortalLicense) -> Value {
    let none = text(p, lang, "value.none");
    json!({
        "id": l.license_id,
        "ticket": l.ticket,
        "state": l.state.as_str(),
        "serial": l.serial,
        "firm_code": l.firm_code,
        "quantity": l.options.license_quantity,
        "can_split": l.can_split(),
        "cells": {
            "name": l.name,
            "item": l.item_id,
            "license": l.license_id,
            "quantity": quantity(p, lang, &l.options),
            "activated_on": l.activated_at.filter(|_| l.state.in_container()).map_or(none.to_string(), |t| when(lang, t)),
            "container": l.serial.clone().unwrap_or_else(|| none.to_string()),
            "state": text(p, lang, &format!("state.{}", l.state.as_str())),
            "expiry": expiry(p, lang, &l.options),
            "features": l.options.feature_map,
        },
    })
}

/// The license overview with the `columns` in force (the back office may have set them).
pub fn overview(p: &Pages, lang: &str, groups: &[TicketLicenses], columns: &[String]) -> Value {
    overview_with(p, lang, groups, columns)
}

fn overview_with(p: &Pages, lang: &str, groups: &[TicketLicenses], columns: &[String]) -> Value {
    let tickets: Vec<Value> = groups
        .iter()
        .map(|g| {
            json!({
                "ticket": g.ticket,
                "mode_all": g.activation_mode == ActivationMode::All,
                "single_container": g.single_container,
                "licenses": g.licenses.iter().map(|l| license(p, lang, l)).collect::<Vec<_>>(),
                "can_activate": g.licenses.iter().any(PortalLicense::can_activate),
                "can_return": g.licenses.iter().any(PortalLicense::can_return),
                "can_reactivate": g.licenses.iter().any(PortalLicense::can_reactivate),
            })
        })
        .collect();
    json!({"columns": columns, "tickets": tickets, "trials": [], "cloud_enabled": false, "cloud": []})
}

/// The trials on offer to a customer, for the overview.
pub fn trials(p: &Pages, lang: &str, offers: &[TrialOffer]) -> Value {
    offers
        .iter()
        .map(|o| {
            json!({"item_id": o.item_id, "name": o.name, "taken": o.taken,
                "expiry": expiry(p, lang, &o.options)})
        })
        .collect()
}

/// The binding a page names (`binding=act|dongle`), if it is one the portal offers.
pub fn binding_of(s: Option<&str>) -> Option<ContainerType> {
    match s? {
        "act" => Some(ContainerType::Act),
        "dongle" => Some(ContainerType::Dongle),
        _ => None,
    }
}

/// The activation page: the binding to choose when the available licenses allow both (the
/// step is skipped when they allow one), then the licenses for that binding.
pub fn activate(p: &Pages, lang: &str, g: &TicketLicenses, chosen: Option<ContainerType>) -> Value {
    let available: Vec<&PortalLicense> = g.licenses.iter().filter(|l| l.can_activate()).collect();
    let bindings: Vec<ContainerType> = [ContainerType::Act, ContainerType::Dongle]
        .into_iter()
        .filter(|b| available.iter().any(|l| l.bindings().contains(b)))
        .collect();
    let binding = chosen
        .filter(|b| bindings.contains(b))
        .or_else(|| (bindings.len() == 1).then(|| bindings[0]));
    let firm_code = g.licenses.first().map_or(0, |l| l.firm_code);
    let choices: Vec<Value> = bindings
        .iter()
        .map(|b| {
            let w = b.as_str();
            json!({"value": w, "title": text(p, lang, &format!("binding.{w}")),
                "detail": text(p, lang, &format!("binding.{w}_detail"))})
        })
        .collect();
    let binding_word = binding.unwrap_or(ContainerType::Act).as_str();
    let licenses: Vec<Value> = available
        .iter()
        .filter(|l| binding.is_some_and(|b| l.bindings().contains(&b)))
        .map(|l| license(p, lang, l))
        .collect();
    json!({
        "ticket": g.ticket,
        "choose_binding": binding.is_none() && bindings.len() > 1,
        "bindings": choices,
        "binding": binding_word,
        "binding_text": text(p, lang, &format!("activate.binding_{binding_word}")),
        "can_change_binding": bindings.len() > 1,
        "licenses": licenses,
        "mode_all": g.activation_mode == ActivationMode::All,
        "firm_code": firm_code,
    })
}

/// The return page: the licenses that may be returned, by the container they are in.
pub fn deactivate(p: &Pages, lang: &str, g: &TicketLicenses) -> Value {
    let mut containers: Vec<(String, i64, Vec<Value>)> = vec![];
    for l in g.licenses.iter().filter(|l| l.can_return()) {
        let serial = l.serial.clone().unwrap_or_default();
        match containers
            .iter_mut()
            .find(|(s, f, _)| *s == serial && *f == l.firm_code)
        {
            Some((_, _, list)) => list.push(license(p, lang, l)),
            None => containers.push((serial, l.firm_code, vec![license(p, lang, l)])),
        }
    }
    let containers: Vec<Value> = containers
        .into_iter()
        .map(|(serial, firm_code, licenses)| {
            json!({"serial": serial, "firm_code": firm_code, "licenses": licenses})
        })
        .collect();
    json!({"ticket": g.ticket, "containers": containers})
}

/// The re-activation page: the licenses that may be restored and the conditions that apply
/// to them (what happens to the old container, by the vendor's policy).
pub fn reactivate(p: &Pages, lang: &str, g: &TicketLicenses) -> Value {
    let listed: Vec<&PortalLicense> = g.licenses.iter().filter(|l| l.can_reactivate()).collect();
    let mut behaviours: Vec<&str> = vec![];
    for l in &listed {
        let w = l.behaviour.as_str();
        if !behaviours.contains(&w) {
            behaviours.push(w);
        }
    }
    let approval: Vec<i64> = listed
        .iter()
        .filter(|l| l.reactivation == ReactivationPolicy::Approval)
        .map(|l| l.license_id)
        .collect();
    json!({
        "ticket": g.ticket,
        "licenses": listed.iter().map(|l| license(p, lang, l)).collect::<Vec<_>>(),
        "behaviours": behaviours,
        "approval": approval,
        "firm_code": listed.first().map_or(0, |l| l.firm_code),
    })
}

fn ids(list: &[i64]) -> String {
    list.iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The transfer's step: 2 (download the update), 3 (upload the receipt), 4 (done).
pub fn transfer(p: &Pages, lang: &str, t: &Transfer, step: u8) -> Value {
    let done = t.done.as_ref().map(|d| {
        let named = |list: &[i64]| -> Vec<Value> {
            list.iter()
                .map(|id| json!({"id": id, "name": d.name_of(*id)}))
                .collect()
        };
        json!({"activated": named(&d.activated), "released": named(&d.released),
            "counter": d.counter})
    });
    json!({
        "step": step,
        "transfer": {
            "kind": t.kind.as_str(),
            "kind_text": text(p, lang, &format!("transfer.kind_{}", t.kind.as_str())),
            "ticket": t.ticket,
            "serial": t.serial,
            "firm_code": t.firm_code,
            "file_name": t.file_name(),
            "locked": t.locked,
            "licenses": ids(&t.licenses),
            "done": done,
        },
    })
}

pub fn history(p: &Pages, lang: &str, h: &LicenseHistory) -> Value {
    let none = text(p, lang, "value.none");
    let events: Vec<Value> = h
        .events
        .iter()
        .map(|e: &HistoryEntry| {
            json!({
                "at": when(lang, e.at),
                "action": p.text(lang, &format!("action.{}", e.action)).unwrap_or(&e.action),
                "serial": e.serial.clone().unwrap_or_else(|| none.to_string()),
                "via": p.text(lang, &format!("interface.{}", e.interface)).unwrap_or(&e.interface),
                "generation": e.generation,
            })
        })
        .collect();
    json!({"license": license(p, lang, &h.license), "events": events})
}

pub fn split(p: &Pages, lang: &str, l: &PortalLicense, quantities: &str) -> Value {
    json!({"license": license(p, lang, l), "quantities": quantities})
}

/// `sso`: single sign-on is set up (the page offers it beside the ticket).
pub fn login(
    ticket: &str,
    next: &str,
    held: Option<(String, Option<String>)>,
    sso: bool,
    registration: bool,
) -> Value {
    let held = held.map(|(until, ticket)| json!({"until": until, "ticket": ticket}));
    json!({"ticket": ticket, "next": next, "held": held, "sso": sso,
        "registration": registration,
        "sso_href": format!("{BASE}/saml/login?next={}", query_escape(next))})
}

/// The registration form, as filled in, and until when the client is held back.
pub fn register(email: &str, name: &str, held: Option<String>) -> Value {
    json!({"email": email, "name": name, "held": held})
}

/// The page that posts a SAML message to the identity provider (the HTTP-POST binding):
/// the form is sent by the portal's script, or by the customer's click without one.
pub fn sso_post(url: &str, fields: &[(String, String)]) -> Value {
    let fields: Vec<Value> = fields
        .iter()
        .map(|(n, v)| json!({"name": n, "value": v}))
        .collect();
    json!({"url": url, "fields": fields})
}

// ---- the example values every template is rendered with at start ----

fn sample_license(id: i64, state: LicenseState, serial: Option<&str>) -> PortalLicense {
    let options: ItemOptions = serde_json::from_value(json!({
        "license_quantity": 5, "feature_map": 3, "container_types": ["act", "dongle"],
        "expiration_time": "2027-12-31T00:00:00Z"}))
    .expect("sample options");
    PortalLicense {
        license_id: id,
        ticket: "ABCDE-FGHJK-LMNPQ-RSTUV-WXZ23".into(),
        item_id: "SKU-1".into(),
        name: "Product – 5 users".into(),
        firm_code: 6_000_010,
        state,
        serial: serial.map(str::to_string),
        generation: 1,
        options,
        activated_at: Some(NaiveDateTime::default()),
        returnable: true,
        reactivation: ReactivationPolicy::Approval,
        behaviour: ReactivationBehaviour::Blacklist,
    }
}

fn sample_ticket() -> TicketLicenses {
    TicketLicenses {
        ticket: "ABCDE-FGHJK-LMNPQ-RSTUV-WXZ23".into(),
        activation_mode: ActivationMode::All,
        single_container: true,
        licenses: vec![
            sample_license(1, LicenseState::Available, None),
            sample_license(2, LicenseState::Activated, Some("130-1234567890")),
            sample_license(3, LicenseState::Pending, Some("130-1234567890")),
        ],
    }
}

fn sample_trials() -> Vec<TrialOffer> {
    let options = sample_license(1, LicenseState::Available, None).options;
    [false, true]
        .into_iter()
        .map(|taken| TrialOffer {
            item_id: "SKU-TRIAL".into(),
            name: "Product – 30-day trial".into(),
            options: options.clone(),
            taken,
        })
        .collect()
}

fn sample_transfer(done: bool) -> Transfer {
    Transfer {
        kind: TransferKind::Activate,
        ticket: Some("ABCDE-FGHJK-LMNPQ-RSTUV-WXZ23".into()),
        serial: "130-1234567890".into(),
        firm_code: 6_000_010,
        update_id: 7,
        counter_to: 2,
        licenses: vec![1, 2],
        locked: true,
        update: String::new(),
        done: done.then(|| Done {
            counter: 2,
            activated: vec![1],
            released: vec![2],
            names: vec![(1, "Product".into()), (2, "Product".into())],
        }),
    }
}

/// Every page with example values that reach each of its branches, in language `lang`.
pub fn samples(p: &Pages, lang: &'static str) -> Vec<(&'static str, Value)> {
    let cx = Cx {
        lang,
        logged_in: true,
        has_tickets: true,
        csrf: "0".repeat(64),
        path: format!("{BASE}/tickets"),
    };
    let page_of = |name: &'static str, body: Value| {
        let mut v = page(p, &cx, name, "Title", body);
        v["error"] = refusal(p, lang, &Error::NotAllowed("example".into()));
        v["notice"] = json!("Example");
        (name, v)
    };
    let g = sample_ticket();
    let all_columns: Vec<String> = PORTAL_COLUMNS.iter().map(|c| c.to_string()).collect();
    let hist = LicenseHistory {
        license: sample_license(1, LicenseState::Activated, Some("130-1234567890")),
        events: vec![HistoryEntry {
            at: NaiveDateTime::default(),
            action: "license.activated".into(),
            interface: "portal".into(),
            serial: Some("130-1234567890".into()),
            generation: Some(2),
        }],
    };
    let mut selected = g.clone();
    selected.activation_mode = ActivationMode::Selected;
    let mut out = vec![
        page_of(
            "login.html",
            login("", BASE, Some(("12:00".into(), None)), true, true),
        ),
        page_of(
            "login.html",
            login(
                "T",
                BASE,
                Some(("12:00".into(), Some("T".into()))),
                false,
                false,
            ),
        ),
        page_of("login.html", login("", BASE, None, false, false)),
        page_of("register.html", register("a@example.com", "A", None)),
        page_of("register.html", register("", "", Some("12:00".into()))),
        page_of("register_verify.html", json!({"token": "abc"})),
        page_of(
            "sso_post.html",
            sso_post(
                "https://idp.example/sso",
                &[("SAMLRequest".into(), "PHNhbWw+".into())],
            ),
        ),
        page_of("overview.html", {
            let mut v = overview_with(p, lang, std::slice::from_ref(&g), &all_columns);
            v["trials"] = trials(p, lang, &sample_trials());
            v
        }),
        page_of("activate.html", activate(p, lang, &g, None)),
        page_of(
            "activate.html",
            activate(p, lang, &selected, Some(ContainerType::Act)),
        ),
        page_of("return.html", deactivate(p, lang, &g)),
        page_of(
            "return.html",
            deactivate(
                p,
                lang,
                &TicketLicenses {
                    licenses: vec![],
                    ..g.clone()
                },
            ),
        ),
        page_of("reactivate.html", reactivate(p, lang, &g)),
        page_of(
            "reactivate.html",
            reactivate(
                p,
                lang,
                &TicketLicenses {
                    licenses: vec![],
                    ..g.clone()
                },
            ),
        ),
        page_of("updates.html", json!({"serial": "130-1234567890"})),
        page_of(
            "restore.html",
            json!({"serial": "", "salt": null, "firm_code": null}),
        ),
        page_of(
            "restore.html",
            json!({"serial": "130-1234567890", "salt": "0123abcd", "firm_code": 10}),
        ),
        page_of("split.html", split(p, lang, &g.licenses[0], "2, 3")),
        page_of("history.html", history(p, lang, &hist)),
        page_of("message.html", json!({"heading": "Example"})),
    ];
    for (step, done) in [(2, false), (3, false), (4, true)] {
        out.push(page_of(
            "transfer.html",
            transfer(p, lang, &sample_transfer(done), step),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_conditions_say_what_happens_to_the_old_container() {
        let pages = Pages::load(&crate::config::Config::default()).unwrap();
        let mut g = sample_ticket();
        for l in &mut g.licenses {
            l.behaviour = ReactivationBehaviour::Withdraw;
            l.reactivation = ReactivationPolicy::Allowed;
        }
        let cx = Cx {
            lang: "de",
            logged_in: true,
            has_tickets: true,
            csrf: String::new(),
            path: BASE.into(),
        };
        let v = page(&pages, &cx, "reactivate", "T", reactivate(&pages, "de", &g));
        let html = pages.render("reactivate.html", v).unwrap();
        assert!(
            html.contains("aus dem Container, in dem sie aktiviert waren, gelöscht"),
            "{html}"
        );
        assert!(!html.contains("gesperrt) wird"), "{html}");
        assert!(!html.contains("muss unser Support freigeben"), "{html}");
        // A license whose policy forbids re-activation is not offered.
        g.licenses[1].reactivation = ReactivationPolicy::Never;
        let listed = reactivate(&pages, "de", &g)["licenses"]
            .as_array()
            .unwrap()
            .len();
        assert_eq!(listed, 1);
    }

    #[test]
    fn every_domain_error_has_a_text() {
        let errors = [
            Error::invalid("f", "r"),
            Error::InvalidTicket("t".into()),
            Error::not_found("ticket", 1),
            Error::not_found("license", 1),
            Error::not_found("container", 1),
            Error::not_found("firm", 1),
            Error::not_found("item", 1),
            Error::not_found("customer", 1),
            Error::not_found("order", 1),
            Error::not_found("user", 1),
            Error::not_found("something", 1),
            Error::AlreadyExists {
                kind: "x",
                id: "1".into(),
            },
            Error::Unauthenticated,
            Error::Forbidden {
                role: "customer".into(),
                action: "x",
            },
            Error::OrderConflict("x".into()),
            Error::Conflict("x".into()),
            Error::InvalidMessage("x".into()),
            Error::Mismatch("x".into()),
            Error::Manipulation("x".into()),
            Error::NotAllowed("x".into()),
            Error::Blacklisted {
                serial: "s".into(),
                description: "d".into(),
                lock: None,
            },
            Error::ApprovalRequired {
                id: 1,
                why: "w".into(),
            },
            Error::QuotaExceeded {
                firm_code: 1,
                quota: 1,
            },
            Error::RateLimited { retry_after: 1 },
            Error::Busy,
            Error::Retry,
            Error::internal("x"),
        ];
        for e in errors {
            assert!(ERROR_CODES.contains(&e.code()), "{}", e.code());
        }
    }
}
