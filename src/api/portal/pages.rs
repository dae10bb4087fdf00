//! The portal's templates, message catalogues and style sheets: built into the binary from
//! `templates/portal/`, each replaceable by a file of the same name in
//! `portal_templates_dir`, and all checked at start: every page is rendered in every
//! language with example values, so a broken override stops the start with its name.
use std::collections::HashMap;

use minijinja::{Environment, UndefinedBehavior};
use serde_json::Value;

use super::views;
use crate::config::{parse_color, Config};
use crate::error::{Error, Result};

/// The languages of the portal, the first is the default.
pub const LANGUAGES: &[&str] = &["en", "de"];

macro_rules! built_in {
    ($($name:literal),+ $(,)?) => {
        &[$(($name, include_str!(concat!("../../../templates/portal/", $name)))),+]
    };
}

/// The templates (pages and the parts they include).
const TEMPLATES: &[(&str, &str)] = built_in!(
    "base.html",
    "steps.html",
    "online.html",
    "login.html",
    "register.html",
    "register_verify.html",
    "overview.html",
    "activate.html",
    "return.html",
    "reactivate.html",
    "updates.html",
    "restore.html",
    "transfer.html",
    "split.html",
    "history.html",
    "message.html",
    "sso_post.html",
);

/// The message catalogues, one per language.
const CATALOGUES: &[(&str, &str)] = built_in!("messages.en.toml", "messages.de.toml");

const STYLE: &str = include_str!("../../../templates/portal/portal.css");
/// The script is not replaceable: the security policy lets the pages run only what the
/// binary serves, and that should be what was reviewed.
pub const SCRIPT: &str = include_str!("../../../templates/portal/portal.js");

/// What the pages show of the vendor.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Brand {
    pub name: String,
    pub logo_url: String,
}

pub struct Pages {
    env: Environment<'static>,
    /// The texts per language (`t` in the templates).
    catalogues: HashMap<&'static str, Value>,
    pub style: String,
    /// The vendor's colours as CSS variables.
    pub brand_css: String,
    /// The pages' icon: the vendor's initial on its colour.
    pub icon: String,
    pub brand: Brand,
    pub columns: Vec<String>,
    /// The address of the local helper the pages use for online transfers (empty: none),
    /// and the command that starts it on the customer's computer.
    pub local_helper: String,
    pub local_helper_command: String,
}

fn setting_error(msg: String) -> Error {
    Error::invalid("portal_templates_dir", msg)
}

/// How the customer starts the local helper for this portal.
fn helper_command(config: &Config) -> String {
    let port = match config.portal_local_helper_port {
        crate::client::local::DEFAULT_PORT => String::new(),
        p => format!(" --port {p}"),
    };
    format!(
        "licentia container serve-local --dir DIR --portal {}{port}",
        config.portal_url
    )
}

/// A built-in file, or the file of the same name in `dir` if there is one.
fn source(dir: &str, name: &str, built_in: &str) -> Result<String> {
    if dir.is_empty() {
        return Ok(built_in.to_string());
    }
    let path = std::path::Path::new(dir).join(name);
    match std::fs::read_to_string(&path) {
        Ok(s) => Ok(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(built_in.to_string()),
        Err(e) => Err(setting_error(format!("{}: {e}", path.display()))),
    }
}

fn template_error(name: &str, e: &minijinja::Error) -> Error {
    let mut msg = format!("portal template {name}: {e}");
    let mut cause = std::error::Error::source(e);
    while let Some(s) = cause {
        msg.push_str(&format!(": {s}"));
        cause = s.source();
    }
    setting_error(msg)
}

/// Lays the texts of `over` onto `base`: a text it names replaces the built-in one; a
/// name the built-in catalogue does not have is a mistake (a misspelt key would otherwise
/// change nothing, silently).
fn merge(base: &mut toml::Table, over: toml::Table, file: &str, path: &str) -> Result<()> {
    for (key, value) in over {
        let name = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o, file, &name)?,
            (Some(b @ toml::Value::String(_)), v @ toml::Value::String(_)) => *b = v,
            (Some(_), _) => {
                return Err(setting_error(format!(
                    "{file}: {name} must be {}",
                    if base[&key].is_table() {
                        "a section"
                    } else {
                        "a text"
                    }
                )))
            }
            (None, _) => {
                return Err(setting_error(format!(
                    "{file}: {name} is not a text of the portal"
                )))
            }
        }
    }
    Ok(())
}

fn catalogue(dir: &str, file: &str, built_in: &str) -> Result<Value> {
    let mut base: toml::Table = built_in
        .parse()
        .map_err(|e| setting_error(format!("built-in {file}: {e}")))?;
    if !dir.is_empty() {
        let path = std::path::Path::new(dir).join(file);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let over: toml::Table = text
                    .parse()
                    .map_err(|e| setting_error(format!("{}: {e}", path.display())))?;
                merge(&mut base, over, file, "")?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(setting_error(format!("{}: {e}", path.display()))),
        }
    }
    serde_json::to_value(&base).map_err(|e| setting_error(format!("{file}: {e}")))
}

impl Pages {
    /// The built-in templates, catalogues and style sheet, each replaced by a file of the
    /// same name in `portal_templates_dir`; every page rendered in every language.
    pub fn load(config: &Config) -> Result<Pages> {
        let dir = config.portal_templates_dir.trim();
        if !dir.is_empty() && !std::path::Path::new(dir).is_dir() {
            return Err(setting_error(format!("{dir} is not a folder")));
        }
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        for (name, built_in) in TEMPLATES {
            env.add_template_owned(name.to_string(), source(dir, name, built_in)?)
                .map_err(|e| template_error(name, &e))?;
        }
        let mut catalogues = HashMap::new();
        for ((file, built_in), lang) in CATALOGUES.iter().zip(LANGUAGES) {
            catalogues.insert(*lang, catalogue(dir, file, built_in)?);
        }
        let primary = parse_color(&config.portal_color).expect("checked with the config");
        let accent = parse_color(&config.portal_accent_color).expect("checked with the config");
        let pages = Pages {
            env,
            catalogues,
            style: source(dir, "portal.css", STYLE)?,
            brand_css: brand_css(primary, accent),
            icon: icon(&config.vendor_name, primary),
            brand: Brand {
                name: config.vendor_name.clone(),
                logo_url: config.logo_url.clone(),
            },
            columns: config
                .portal_column_list()
                .into_iter()
                .map(str::to_string)
                .collect(),
            local_helper: match config.portal_local_helper_port {
                0 => String::new(),
                port => format!("http://127.0.0.1:{port}"),
            },
            local_helper_command: helper_command(config),
        };
        for lang in LANGUAGES {
            for (name, ctx) in views::samples(&pages, lang) {
                pages.render(name, ctx)?;
            }
        }
        Ok(pages)
    }

    /// The texts of a language.
    pub fn texts(&self, lang: &str) -> &Value {
        &self.catalogues[lang]
    }

    /// One text by its dotted name (`error.blacklisted`), if the catalogue has it.
    pub fn text(&self, lang: &str, name: &str) -> Option<&str> {
        name.split_once('.')
            .and_then(|(section, key)| self.texts(lang)[section][key].as_str())
    }

    /// Renders a page; `ctx` carries `lang` and the page's values (`views::page`).
    pub fn render(&self, name: &str, ctx: Value) -> Result<String> {
        self.env
            .get_template(name)
            .and_then(|t| t.render(minijinja::Value::from(minijinja::value::Serde(&ctx))))
            .map_err(|e| template_error(name, &e))
    }
}

/// The language a visitor sees: the one they chose (cookie), else the first of their
/// browser's (Accept-Language, by quality) that the portal speaks, else English.
pub fn negotiate(chosen: Option<&str>, accept_language: Option<&str>) -> &'static str {
    if let Some(lang) = chosen.and_then(|c| LANGUAGES.iter().find(|l| **l == c)) {
        return lang;
    }
    let mut best: Option<(f32, usize, &'static str)> = None;
    for (order, part) in accept_language.unwrap_or("").split(',').enumerate() {
        let mut fields = part.split(';');
        let tag = fields.next().unwrap_or("").trim().to_ascii_lowercase();
        let primary = tag.split('-').next().unwrap_or("");
        let q = fields
            .filter_map(|f| f.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let Some(lang) = LANGUAGES.iter().find(|l| **l == primary) else {
            continue;
        };
        if q <= 0.0 {
            continue;
        }
        // The highest quality wins; among equals, the one the browser named first.
        if best.is_none_or(|(bq, _, _)| q > bq) {
            best = Some((q, order, lang));
        }
    }
    best.map_or(LANGUAGES[0], |(_, _, l)| l)
}

/// WCAG relative luminance of an sRGB colour.
fn luminance(c: [u8; 3]) -> f64 {
    let lin = |v: u8| {
        let s = f64::from(v) / 255.0;
        if s <= 0.03928 {
            s / 12.92
        } else {
            ((s + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * lin(c[0]) + 0.7152 * lin(c[1]) + 0.0722 * lin(c[2])
}

fn contrast(a: [u8; 3], b: [u8; 3]) -> f64 {
    let (la, lb) = (luminance(a), luminance(b));
    (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
}

const WHITE: [u8; 3] = [255, 255, 255];
const BLACK: [u8; 3] = [0, 0, 0];

/// White or black, whichever reads better on `bg` (one of them always reaches 4.5:1).
fn text_on(bg: [u8; 3]) -> [u8; 3] {
    if contrast(bg, WHITE) >= contrast(bg, BLACK) {
        WHITE
    } else {
        BLACK
    }
}

/// `c` darkened until it reads as text on white (4.5:1), for links and outlined buttons.
fn ink(c: [u8; 3]) -> [u8; 3] {
    let mut x = c;
    let mut factor = 1.0;
    while contrast(x, WHITE) < 4.5 && factor > 0.0 {
        factor -= 0.05;
        x = c.map(|v| (f64::from(v) * factor).round() as u8);
    }
    x
}

fn hex(c: [u8; 3]) -> String {
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

/// The pages' icon (SVG): the vendor's initial in its colour.
pub fn icon(vendor: &str, primary: [u8; 3]) -> String {
    let initial = vendor
        .chars()
        .find(|c| c.is_alphanumeric())
        .map_or('L', |c| c.to_uppercase().next().unwrap_or(c));
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 32 32\"><rect width=\"32\" \
         height=\"32\" rx=\"7\" fill=\"{}\"/><text x=\"16\" y=\"22.5\" font-family=\"sans-serif\" \
         font-size=\"19\" font-weight=\"700\" text-anchor=\"middle\" fill=\"{}\">{initial}</text></svg>",
        hex(primary),
        hex(text_on(primary))
    )
}

/// The vendor's colours as the CSS variables `portal.css` uses, each with a text colour
/// that keeps the contrast accessibility asks for whatever colour the vendor chose.
pub fn brand_css(primary: [u8; 3], accent: [u8; 3]) -> String {
    let brand_ink = ink(primary);
    let text = text_on(primary);
    // Hover: a step darker (or lighter, on a dark colour whose text is white … still
    // darker keeps white text readable).
    let dark = if text == WHITE {
        primary.map(|v| (f64::from(v) * 0.82).round() as u8)
    } else {
        primary.map(|v| (f64::from(v) * 0.9).round() as u8)
    };
    format!(
        "/* The vendor's colours (portal_color, portal_accent_color). */\n:root {{\n  \
         --brand: {};\n  --brand-dark: {};\n  --brand-text: {};\n  --brand-ink: {};\n  \
         --accent: {};\n  --accent-text: {};\n}}\n",
        hex(primary),
        hex(dark),
        hex(text),
        hex(brand_ink),
        hex(accent),
        hex(text_on(accent)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(v: &Value, path: &str, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    keys(v, &format!("{path}{k}."), out)
                }
            }
            _ => out.push(path.trim_end_matches('.').to_string()),
        }
    }

    #[test]
    fn every_language_has_every_text() {
        let mut all = vec![];
        for (file, built_in) in CATALOGUES {
            let mut k = vec![];
            keys(&catalogue("", file, built_in).unwrap(), "", &mut k);
            k.sort();
            all.push((file, k));
        }
        for (file, k) in &all[1..] {
            assert_eq!(k, &all[0].1, "{file} and {} differ", all[0].0);
        }
        let en = catalogue("", CATALOGUES[0].0, CATALOGUES[0].1).unwrap();
        for code in views::ERROR_CODES {
            assert!(en["error"][code].is_string(), "error.{code} is missing");
        }
        for col in crate::config::PORTAL_COLUMNS {
            assert!(en["column"][col].is_string(), "column.{col} is missing");
        }
        for s in crate::domain::LicenseState::ALL {
            assert!(en["state"][s.as_str()].is_string(), "state.{s} is missing");
        }
    }

    #[test]
    fn an_override_replaces_texts_and_names_a_misspelt_one() {
        let dir = std::env::temp_dir().join(format!("licentia-portal-cat-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.to_str().unwrap();
        std::fs::write(
            dir.join("messages.en.toml"),
            "[login]\ntitle = \"Sign in\"\n",
        )
        .unwrap();
        let c = catalogue(d, "messages.en.toml", CATALOGUES[0].1).unwrap();
        assert_eq!(c["login"]["title"], "Sign in");
        assert_eq!(c["login"]["submit"], "Log in");
        std::fs::write(dir.join("messages.en.toml"), "[login]\ntitel = \"x\"\n").unwrap();
        let e = catalogue(d, "messages.en.toml", CATALOGUES[0].1).unwrap_err();
        assert!(e.to_string().contains("login.titel"), "{e}");
        std::fs::write(dir.join("messages.en.toml"), "login = \"x\"\n").unwrap();
        let e = catalogue(d, "messages.en.toml", CATALOGUES[0].1).unwrap_err();
        assert!(e.to_string().contains("login must be a section"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_built_in_pages_render_and_a_broken_override_stops_naming_it() {
        let cfg = Config::default();
        Pages::load(&cfg).unwrap();
        let dir = std::env::temp_dir().join(format!("licentia-portal-tpl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("overview.html"),
            "{% extends \"base.html\" %}{% block content %}{{ no_such_value }}{% endblock %}",
        )
        .unwrap();
        let cfg = Config {
            portal_templates_dir: dir.to_str().unwrap().into(),
            ..Config::default()
        };
        let e = Pages::load(&cfg)
            .err()
            .expect("a broken template stops the start");
        assert!(e.to_string().contains("overview.html"), "{e}");
        std::fs::write(dir.join("overview.html"), "{% if %}").unwrap();
        let e = Pages::load(&cfg)
            .err()
            .expect("a syntax error stops the start");
        assert!(e.to_string().contains("overview.html"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_language_is_the_chosen_one_else_the_browsers() {
        assert_eq!(negotiate(None, None), "en");
        assert_eq!(negotiate(None, Some("de-DE,de;q=0.9,en;q=0.8")), "de");
        assert_eq!(negotiate(None, Some("fr-FR, en;q=0.5, de;q=0.7")), "de");
        assert_eq!(negotiate(None, Some("fr, it")), "en");
        assert_eq!(negotiate(None, Some("de;q=0, en;q=0.1")), "en");
        assert_eq!(negotiate(Some("de"), Some("en")), "de");
        assert_eq!(negotiate(Some("xx"), Some("de")), "de");
    }

    #[test]
    fn brand_colours_keep_their_text_readable() {
        for c in [
            [0xff, 0xff, 0x00],
            [0x1d, 0x4f, 0x73],
            [0x80, 0x80, 0x80],
            [0, 0, 0],
        ] {
            assert!(contrast(c, text_on(c)) >= 4.5, "{c:?}");
            assert!(contrast(ink(c), WHITE) >= 4.5, "{c:?}");
        }
        let css = brand_css([0x1d, 0x4f, 0x73], [0xe8, 0xa3, 0x3d]);
        assert!(css.contains("--brand: #1d4f73;") && css.contains("--brand-text: #ffffff;"));
        assert!(css.contains("--accent-text: #000000;"), "{css}");
    }
}
