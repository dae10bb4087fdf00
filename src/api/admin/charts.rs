//! The dashboard's charts: SVG drawn on the server (no script, no inline style: colours are
//! presentation attributes). Each chart names itself for screen readers, and the page shows
//! the same figures as a table beside it.
use std::fmt::Write;

/// A series of a bar chart: its name (the legend) and colour.
pub struct Series<'a> {
    pub name: &'a str,
    pub color: &'a str,
}

const H: f64 = 220.0;
const LEFT: f64 = 40.0;
const BOTTOM: f64 = 36.0;
const TOP: f64 = 24.0;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The step of the value axis: 1, 2 or 5 times a power of ten, about four lines high.
fn step(max: i64) -> i64 {
    let raw = (max.max(1) as f64 / 4.0).max(1.0);
    let p = 10f64.powf(raw.log10().floor());
    let m = raw / p;
    let f = if m <= 1.0 {
        1.0
    } else if m <= 2.0 {
        2.0
    } else if m <= 5.0 {
        5.0
    } else {
        10.0
    };
    (f * p) as i64
}

/// Bars grouped per label, one bar per series; `values[i][s]` is label i's value of
/// series s. `width` is the drawing's (its height is fixed): a narrower one shows its
/// texts larger where the page gives it less room.
pub fn bars(
    title: &str,
    width: f64,
    labels: &[String],
    series: &[Series],
    values: &[Vec<i64>],
) -> String {
    let max = values.iter().flatten().copied().max().unwrap_or(0);
    let step = step(max);
    let top = ((max + step - 1) / step).max(1) * step;
    let plot_h = H - BOTTOM - TOP;
    let plot_w = width - LEFT - 8.0;
    let group = plot_w / labels.len().max(1) as f64;
    let bar = (group * 0.8) / series.len().max(1) as f64;
    let y = |v: i64| TOP + plot_h - plot_h * v as f64 / top as f64;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {H}" role="img" aria-label="{t}" class="chart"><title>{t}</title>"#,
        t = escape(title)
    );
    let mut v = 0;
    while v <= top {
        let _ = write!(
            s,
            r##"<line x1="{LEFT}" x2="{x2}" y1="{yy:.1}" y2="{yy:.1}" stroke="#d9dee6" stroke-width="1"/><text x="{tx}" y="{ty:.1}" font-size="11" text-anchor="end" fill="#545f6e">{v}</text>"##,
            x2 = width - 8.0,
            yy = y(v),
            tx = LEFT - 6.0,
            ty = y(v) + 4.0,
        );
        v += step;
    }
    for (i, label) in labels.iter().enumerate() {
        let gx = LEFT + group * i as f64 + group * 0.1;
        for (k, ser) in series.iter().enumerate() {
            let value = values.get(i).and_then(|r| r.get(k)).copied().unwrap_or(0);
            let _ = write!(
                s,
                r#"<rect x="{x:.1}" y="{yy:.1}" width="{bw:.1}" height="{h:.1}" fill="{c}"><title>{l}: {n} {value}</title></rect>"#,
                x = gx + bar * k as f64,
                yy = y(value),
                bw = (bar - 1.0).max(1.0),
                h = (TOP + plot_h - y(value)).max(0.0),
                c = ser.color,
                l = escape(label),
                n = escape(ser.name),
            );
        }
        // Every label when they fit, else every other one counted from the last (today's
        // is always named).
        if labels.len() <= 10 || (labels.len() - 1 - i) % 2 == 0 {
            let _ = write!(
                s,
                r##"<text x="{x:.1}" y="{yy}" font-size="11" text-anchor="middle" fill="#545f6e">{l}</text>"##,
                x = LEFT + group * (i as f64 + 0.5),
                yy = H - BOTTOM + 16.0,
                l = escape(label),
            );
        }
    }
    let mut lx = LEFT;
    for ser in series {
        let _ = write!(
            s,
            r##"<rect x="{lx}" y="{ly}" width="12" height="12" fill="{c}"/><text x="{tx}" y="{ty}" font-size="12" fill="#1c2430">{n}</text>"##,
            ly = H - 14.0,
            c = ser.color,
            tx = lx + 16.0,
            ty = H - 3.0,
            n = escape(ser.name),
        );
        lx += 28.0 + 7.0 * ser.name.chars().count() as f64;
    }
    s.push_str("</svg>");
    s
}

/// A horizontal gauge: `used` of `of` (none: no limit, the bar shows the count alone).
pub fn gauge(title: &str, used: i64, of: Option<i64>) -> String {
    let width = 400.0;
    let share = match of {
        Some(q) if q > 0 => (used as f64 / q as f64).min(1.0),
        _ => 0.0,
    };
    let color = if share >= 0.9 { "#a3201b" } else { "#1d6b3a" };
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} 28" role="img" aria-label="{t}" class="gauge"><title>{t}</title><rect x="0" y="4" width="{width}" height="20" rx="4" fill="#eef1f5"/><rect x="0" y="4" width="{w:.1}" height="20" rx="4" fill="{color}"/></svg>"##,
        t = escape(title),
        w = width * share,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_steps_are_round_numbers() {
        assert_eq!(step(0), 1);
        assert_eq!(step(3), 1);
        assert_eq!(step(7), 2);
        assert_eq!(step(17), 5);
        assert_eq!(step(40), 10);
        assert_eq!(step(950), 500);
    }

    #[test]
    fn a_chart_names_itself_and_escapes_its_labels() {
        let svg = bars(
            "Activations <per day>",
            640.0,
            &["a&b".into()],
            &[Series {
                name: "x",
                color: "#000",
            }],
            &[vec![3]],
        );
        assert!(svg.contains(r#"aria-label="Activations &lt;per day&gt;""#));
        assert!(svg.contains("a&amp;b"));
        assert!(!svg.contains("a&b<"));
        assert_eq!(
            svg.matches("<rect").count(),
            2,
            "one bar and one legend key"
        );
    }
}
