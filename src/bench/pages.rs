//! `licentia bench pages`: logs in to the back office of a running server and opens its
//! pages one after the other, each `rounds` times: the order list (its first page, a page
//! deep in it by key, a search by ERP order id, by customer and by ticket), the customer
//! list, the blacklist, the outbox and the dashboard. Prints p50/p99 per page, the bytes of
//! a page, and the server's CPU per page. Fill the database first (`licentia bench orders
//! --count 100000`): the figures are about how the pages hold up with many rows.
use std::time::{Duration, Instant};

use super::{metric, server_metrics};

pub struct PagesBench {
    pub url: String,
    pub user: String,
    pub password: String,
    pub rounds: usize,
}

/// One page's figures.
pub struct PageFigures {
    pub name: String,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub bytes: usize,
    pub server_cpu_us: Option<f64>,
}

pub struct PagesReport {
    pub orders_shown: usize,
    pub pages: Vec<PageFigures>,
    pub server_rss_mib: Option<f64>,
}

impl std::fmt::Display for PagesReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{:<28} {:>9} {:>9} {:>9} {:>12}",
            "page", "p50 ms", "p99 ms", "KiB", "server µs"
        )?;
        for p in &self.pages {
            writeln!(
                f,
                "{:<28} {:>9.2} {:>9.2} {:>9.1} {:>12}",
                p.name,
                p.p50_ms,
                p.p99_ms,
                p.bytes as f64 / 1024.0,
                p.server_cpu_us
                    .map_or("-".to_string(), |c| format!("{c:.0}"))
            )?;
        }
        write!(
            f,
            "orders per list page: {}; server resident: {}",
            self.orders_shown,
            self.server_rss_mib
                .map_or("-".to_string(), |m| format!("{m:.1} MiB"))
        )
    }
}

/// The text of each cell of the first row of the first table body in `html`.
fn first_row(html: &str) -> Vec<String> {
    let Some(body) = html.find("<tbody>").map(|i| &html[i..]) else {
        return vec![];
    };
    let Some(row) = body.find("<tr").map(|i| &body[i..]) else {
        return vec![];
    };
    let row = &row[..row.find("</tr>").unwrap_or(row.len())];
    row.split("<td")
        .skip(1)
        .map(|cell| {
            let cell = &cell[cell.find('>').map_or(0, |i| i + 1)..];
            let cell = &cell[..cell.find("</td>").unwrap_or(cell.len())];
            // Without the tags inside (a link).
            let mut text = String::new();
            let mut in_tag = false;
            for ch in cell.chars() {
                match ch {
                    '<' => in_tag = true,
                    '>' => in_tag = false,
                    c if !in_tag => text.push(c),
                    _ => {}
                }
            }
            text.trim().to_string()
        })
        .collect()
}

pub fn run_pages(b: &PagesBench) -> anyhow::Result<PagesReport> {
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    // The login page gives the form's token and its cookie.
    let page = agent.get(&format!("{}/admin/login", b.url)).call()?;
    let login_cookie = page
        .all("set-cookie")
        .into_iter()
        .find(|c| c.starts_with("licentia_admin_login="))
        .and_then(|c| c.split(';').next())
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("the login page set no form cookie"))?;
    let token = login_cookie["licentia_admin_login=".len()..].to_string();
    let login = agent
        .post(&format!("{}/admin/login", b.url))
        .set("Cookie", &login_cookie)
        .send_form(&[
            ("csrf", token.as_str()),
            ("username", b.user.as_str()),
            ("password", b.password.as_str()),
            ("next", "/admin"),
        ]);
    let resp = match login {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => anyhow::bail!("login: {e}"),
    };
    let cookie = resp
        .all("set-cookie")
        .into_iter()
        .find(|c| c.starts_with("licentia_admin="))
        .and_then(|c| c.split(';').next())
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("the login was refused ({})", resp.status()))?;
    let get = |path: &str| -> anyhow::Result<String> {
        let r = agent
            .get(&format!("{}{path}", b.url))
            .set("Cookie", &cookie)
            .call()
            .map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
        Ok(r.into_string()?)
    };
    // What the searches look for: the newest order's number, ERP order id, customer and
    // ticket, and the number of an order half way down.
    let first = get("/admin/orders")?;
    let row = first_row(&first);
    if row.len() < 5 {
        anyhow::bail!("no orders to page through: fill the database first (bench orders)");
    }
    let newest: i64 = row[0].parse().unwrap_or(0);
    let customer = row[3].split(" · ").next().unwrap_or_default().to_string();
    let orders_shown = first.matches("href=\"/admin/orders/").count();
    let esc = crate::api::admin::query_escape;
    let pages = [
        ("orders, first page", "/admin/orders".to_string()),
        (
            "orders, half way by key",
            format!("/admin/orders?before={}", newest / 2),
        ),
        (
            "orders, by ERP order id",
            format!("/admin/orders?q={}", esc(&row[2])),
        ),
        (
            "orders, by customer",
            format!("/admin/orders?q={}", esc(&customer)),
        ),
        (
            "orders, by ticket",
            format!("/admin/orders?q={}", esc(&row[4])),
        ),
        ("customers", "/admin/customers".to_string()),
        ("blacklist", "/admin/blacklist".to_string()),
        ("outbox", "/admin/mail".to_string()),
        ("dashboard", "/admin".to_string()),
    ];
    let mut out = vec![];
    for (name, path) in pages {
        let cpu_before =
            server_metrics(&b.url).and_then(|m| metric(&m, "process_cpu_seconds_total"));
        let mut lat = vec![];
        let mut bytes = 0;
        for _ in 0..b.rounds.max(1) {
            let t = Instant::now();
            bytes = get(&path)?.len();
            lat.push(t.elapsed());
        }
        let cpu_after =
            server_metrics(&b.url).and_then(|m| metric(&m, "process_cpu_seconds_total"));
        lat.sort();
        let pct = |p: f64| -> f64 {
            lat.get(((lat.len() as f64 * p) as usize).min(lat.len() - 1))
                .copied()
                .unwrap_or(Duration::ZERO)
                .as_secs_f64()
                * 1000.0
        };
        out.push(PageFigures {
            name: name.to_string(),
            p50_ms: pct(0.5),
            p99_ms: pct(0.99),
            bytes,
            // Two /metrics reads are in the difference too: small against a page.
            server_cpu_us: cpu_before
                .zip(cpu_after)
                .map(|(a, z)| (z - a) / lat.len() as f64 * 1e6),
        });
    }
    Ok(PagesReport {
        orders_shown,
        pages: out,
        server_rss_mib: server_metrics(&b.url)
            .and_then(|m| metric(&m, "process_resident_memory_bytes"))
            .map(|b| b / 1048576.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_row_is_read_without_its_tags() {
        let html = "<table><tbody><tr><td><a href=\"/admin/orders/7\">7</a></td>\
            <td>erp</td><td class=\"code\">A-1</td></tr><tr><td>6</td></tr></tbody></table>";
        assert_eq!(first_row(html), vec!["7", "erp", "A-1"]);
        assert!(first_row("<p>none</p>").is_empty());
    }
}
