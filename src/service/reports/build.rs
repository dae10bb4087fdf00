//! One page of a report from the database: the license reports' rows by key, the others
//! whole, each cell as JSON.
use serde_json::{json, Value};

use super::reading::Key;
use super::{Report, Table};
use crate::domain::ticket::TicketCode;
use crate::domain::{check_id, check_serial, ItemOptions};
use crate::error::{Error, Result};
use crate::store::reports::{self as store, LicenseLine};
use crate::store::{cloud, containers, customers, history, licenses, tickets, Conn};

/// ISO 8601 in UTC.
fn iso(t: chrono::NaiveDateTime) -> Value {
    Value::String(t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}
fn iso_opt(t: Option<chrono::NaiveDateTime>) -> Value {
    t.map(iso).unwrap_or(Value::Null)
}

fn expiration(o: &ItemOptions) -> Value {
    o.expiration_time
        .map(|t| iso(t.naive_utc()))
        .unwrap_or(Value::Null)
}

const LICENSE_COLUMNS: &[&str] = &[
    "license_id",
    "ticket",
    "item_id",
    "firm_code",
    "product_code",
    "state",
    "generation",
    "serial",
    "quantity",
    "feature_map",
    "expiration_time",
    "activated_at",
    "created_at",
    "customer_id",
    "customer_scope",
];

fn license_cells(l: LicenseLine) -> Result<Vec<Value>> {
    let o = l.options()?;
    Ok(vec![
        json!(l.id),
        json!(TicketCode::parse(&l.ticket)?.to_string()),
        json!(l.item_id),
        json!(l.firm_code),
        json!(l.product_code),
        json!(l.state.as_str()),
        json!(l.generation),
        json!(l.serial),
        json!(o.license_quantity),
        json!(o.feature_map),
        expiration(&o),
        iso_opt(l.activated_at),
        iso(l.created_at),
        json!(l.customer_id),
        json!(l.customer_scope),
    ])
}

/// The license report `report` of `rows`.
fn license_table(report: &'static str, rows: Vec<LicenseLine>) -> Result<Table> {
    Ok(Table {
        report,
        columns: LICENSE_COLUMNS,
        rows: rows.into_iter().map(license_cells).collect::<Result<_>>()?,
    })
}

/// A page of license report `report`: its rows, and where the next page begins when this
/// one was full.
fn license_page(
    report: &'static str,
    rows: Vec<LicenseLine>,
    limit: i64,
) -> Result<(Table, Option<Key>)> {
    let next = match rows.last() {
        Some(l) if rows.len() as i64 >= limit => Some(Key::License(l.id)),
        _ => None,
    };
    Ok((license_table(report, rows)?, next))
}

/// A page of `report` after `after` with at most `limit` rows (the license reports), or the
/// whole report (the others); and where the next page begins, if one may follow.
pub(super) fn build(
    c: &mut Conn,
    report: &Report,
    now: chrono::NaiveDateTime,
    after: Option<&Key>,
    limit: i64,
) -> Result<(Table, Option<Key>)> {
    let after_id = after.map_or(0, Key::license);
    let table = match report {
        Report::ContainerLicenses { serial } => {
            check_serial("serial", serial)?;
            containers::get(c, serial)?;
            let rows = store::licenses_in(c, serial, after_id, limit)?;
            return license_page("container-licenses", rows, limit);
        }
        Report::TicketLicenses { ticket } => {
            let code = TicketCode::parse(ticket)?;
            let tid = tickets::id_of(c, &code)?;
            let rows = store::licenses_of_ticket(c, tid, after_id, limit)?;
            return license_page("ticket-licenses", rows, limit);
        }
        Report::Expiring { days } => {
            let until = now + chrono::Duration::days(i64::from(*days));
            let key = match after {
                Some(Key::Expiry(k)) => Some(k),
                _ => None,
            };
            let rows = store::expiring(c, now, until, key, limit)?;
            let next = match rows.last() {
                Some((t, l)) if rows.len() as i64 >= limit => {
                    Some(Key::Expiry((store::expiry_second(*t), l.id)))
                }
                _ => None,
            };
            // The page is read to the second; the report's bounds are exact.
            let rows = rows
                .into_iter()
                .filter(|(t, _)| *t >= now && *t <= until)
                .map(|(_, l)| l)
                .collect();
            return Ok((license_table("expiring", rows)?, next));
        }
        Report::NeverActivated => {
            let rows = store::never_activated(c, after_id, limit)?;
            return license_page("never-activated", rows, limit);
        }
        Report::CustomerContainers { scope, customer_id } => {
            check_id("customer_id", customer_id)?;
            crate::service::catalog::check_scope("scope", scope)?;
            let cust = customers::id_of(c, scope, customer_id)?;
            let rows = store::containers_of_customer(c, cust)?;
            let serials: Vec<&str> = rows.iter().map(|r| r.serial.as_str()).collect();
            let counts = store::license_counts(c, &serials)?;
            let listed = store::blacklisted_among(c, &serials)?;
            Table {
                report: "customer-containers",
                columns: &[
                    "serial",
                    "type",
                    "state",
                    "blacklisted",
                    "licenses",
                    "created_at",
                ],
                rows: rows
                    .into_iter()
                    .map(|r| {
                        vec![
                            json!(r.serial),
                            json!(r.kind.as_str()),
                            json!(r.state.as_str()),
                            json!(listed.contains(&r.serial)),
                            json!(counts.get(&r.serial).copied().unwrap_or(0)),
                            iso(r.created_at),
                        ]
                    })
                    .collect(),
            }
        }
        Report::LicenseHistory { license_id } => {
            licenses::find(c, *license_id)?;
            let rows = history::of_license(c, *license_id)?;
            Table {
                report: "license-history",
                columns: &[
                    "event_id",
                    "at",
                    "actor",
                    "interface",
                    "action",
                    "serial",
                    "details",
                ],
                rows: rows
                    .into_iter()
                    .map(|e| {
                        vec![
                            json!(e.id),
                            iso(e.at),
                            json!(e.actor),
                            json!(e.interface),
                            json!(e.action),
                            json!(e.serial),
                            json!(e.details),
                        ]
                    })
                    .collect(),
            }
        }
        Report::Blacklist => {
            let rows = store::blacklist_entries(c)?;
            Table {
                report: "blacklist",
                columns: &[
                    "serial",
                    "firm_code",
                    "description",
                    "placed_at",
                    "placed_by",
                    "lock_sent_at",
                    "lock_validated_at",
                    "removed_at",
                    "removed_by",
                    "removed_reason",
                    "lock_update_id",
                ],
                rows: rows
                    .into_iter()
                    .map(|r| {
                        vec![
                            json!(r.serial),
                            json!(r.firm_code),
                            json!(r.description),
                            iso(r.placed_at),
                            json!(r.placed_by),
                            iso_opt(r.lock_sent_at),
                            iso_opt(r.lock_validated_at),
                            iso_opt(r.removed_at),
                            json!(r.removed_by),
                            json!(r.removed_reason),
                            json!(r.lock_update_id),
                        ]
                    })
                    .collect(),
            }
        }
        Report::ActivationsPerMonth => {
            let out = store::activations_per_month(c)?
                .into_iter()
                .map(|m| {
                    let quota = if m.quota == 0 {
                        Value::Null
                    } else {
                        json!(m.quota)
                    };
                    vec![
                        json!(m.firm_code),
                        json!(m.month),
                        json!(m.activations),
                        json!(m.refused),
                        quota,
                    ]
                })
                .collect();
            Table {
                report: "activations",
                columns: &["firm_code", "month", "activations", "refused", "quota"],
                rows: out,
            }
        }
        Report::Duplicates => Table {
            report: "duplicates",
            columns: &["serial", "firm_code", "license_id", "lives_in", "state"],
            rows: store::duplicates(c)?
                .into_iter()
                .map(|d| {
                    vec![
                        json!(d.serial),
                        json!(d.firm_code),
                        json!(d.license_id),
                        json!(d.lives_in),
                        json!(d.state),
                    ]
                })
                .collect(),
        },
        Report::CloudSeats => Table {
            report: "cloud-seats",
            columns: &[
                "serial",
                "license_id",
                "item_id",
                "firm_code",
                "product_code",
                "seats",
                "in_use",
                "borrowed",
            ],
            rows: cloud::seats_report(c, now)?
                .into_iter()
                .map(|r| {
                    let seats = serde_json::from_str::<ItemOptions>(&r.options)
                        .map(|o| crate::domain::cloud::seats(o.license_quantity))
                        .map_err(|e| Error::internal(format!("license {} options: {e}", r.id)))?;
                    Ok(vec![
                        json!(r.serial),
                        json!(r.id),
                        json!(r.item_id),
                        json!(r.firm_code),
                        json!(r.product_code),
                        json!(seats),
                        json!(r.in_use),
                        json!(r.borrowed),
                    ])
                })
                .collect::<Result<_>>()?,
        },
        Report::CloudUse { days } => {
            let since = (now - chrono::Duration::days((*days).into()))
                .format("%Y-%m-%d")
                .to_string();
            Table {
                report: "cloud-use",
                columns: &[
                    "day",
                    "serial",
                    "license_id",
                    "item_id",
                    "opened",
                    "peak",
                    "denials",
                ],
                rows: cloud::use_report(c, &since)?
                    .into_iter()
                    .map(|d| {
                        vec![
                            json!(d.day),
                            json!(d.serial),
                            json!(d.license_id),
                            json!(d.item_id),
                            json!(d.opened),
                            json!(d.peak),
                            json!(d.denials),
                        ]
                    })
                    .collect(),
            }
        }
        Report::CheckIn => {
            let mut rows = store::must_check_in(c)?;
            // Overdue or never checked in first, the oldest deadline first.
            rows.sort_by_key(|r| (r.check_in_until.unwrap_or(i64::MIN), r.license.id));
            let at = |t: i64| {
                chrono::DateTime::from_timestamp(t, 0)
                    .map(|t| iso(t.naive_utc()))
                    .unwrap_or(Value::Null)
            };
            let now_s = now.and_utc().timestamp();
            Table {
                report: "check-in",
                columns: &[
                    "license_id",
                    "item_id",
                    "serial",
                    "customer_id",
                    "check_in_days",
                    "last_check_in",
                    "check_in_until",
                    "overdue",
                ],
                rows: rows
                    .into_iter()
                    .map(|r| {
                        let days = r.license.options()?.check_in_days;
                        Ok(vec![
                            json!(r.license.id),
                            json!(r.license.item_id),
                            json!(r.license.serial),
                            json!(r.license.customer_id),
                            json!(days),
                            iso_opt(r.confirmed_at),
                            r.check_in_until.map(at).unwrap_or(Value::Null),
                            json!(r.check_in_until.is_some_and(|t| t <= now_s)),
                        ])
                    })
                    .collect::<Result<_>>()?,
            }
        }
        Report::Units => Table {
            report: "units",
            columns: &[
                "license_id",
                "item_id",
                "serial",
                "customer_id",
                "unit_counter",
                "used",
                "reported_at",
            ],
            rows: store::pay_per_use(c)?
                .into_iter()
                .map(|r| {
                    let counter = r.license.options()?.unit_counter;
                    Ok(vec![
                        json!(r.license.id),
                        json!(r.license.item_id),
                        json!(r.license.serial),
                        json!(r.license.customer_id),
                        json!(counter),
                        json!(r.used.map_or(0, |u| u.0)),
                        iso_opt(r.used.map(|u| u.1)),
                    ])
                })
                .collect::<Result<_>>()?,
        },
        Report::Production => Table {
            report: "production",
            columns: &["day", "production_order_id", "programmed", "failed"],
            rows: crate::service::production::report_rows(c)?,
        },
    };
    Ok((table, None))
}
