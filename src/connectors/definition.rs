//! A connector definition (`connectors/<name>.toml`): its kind, how its notifications are
//! read, checked and answered, and where an ERP wants the ticket posted back. Parsed and
//! checked from its text; reading the folder is the service's.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::check_id;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The GenericConnector: `user`, `password`, `orderid`, `customerid`, `item_count`,
    /// `item1_id`, `item1_quantity` … as GET or POST parameters.
    Generic,
    /// SAP ORDERS05 IDoc XML over HTTP.
    Idoc,
    /// A web shop's order notification (JSON or form), mapped by the definition's `[shop]`.
    Shop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyFormat {
    Xml,
    Json,
}

/// Where an ERP wants the ticket posted back.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteBack {
    pub url: String,
    #[serde(default = "xml")]
    pub format: BodyFormat,
    #[serde(default)]
    pub user: String,
    /// The password for `user`; better `password_env`, the name of an environment variable
    /// that holds it. With a `user` and no password (or a `change-me` placeholder) the
    /// connector is off.
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub password_env: String,
}

fn xml() -> BodyFormat {
    BodyFormat::Xml
}

/// A connector definition (`connectors/<name>.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    #[serde(skip)]
    pub name: String,
    pub kind: Kind,
    /// What the connector is, for people.
    #[serde(default)]
    pub description: String,
    /// The order source its orders are recorded under (default: the connector's name).
    #[serde(default)]
    pub source: String,
    /// The shop's product id or the ERP's material number → our item id. Ids not listed
    /// are taken as item ids.
    #[serde(default)]
    pub items: BTreeMap<String, String>,
    pub writeback: Option<WriteBack>,
    pub shop: Option<Shop>,
    /// Why the connector refuses everything (not set up), if it does.
    #[serde(skip)]
    pub off: Option<String>,
}

/// How a shop's notification is read, checked and answered.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shop {
    /// `json` or `form`.
    pub format: ShopFormat,
    /// Path to a list of notifications in one body (FastSpring sends several events).
    #[serde(default)]
    pub orders: Option<String>,
    /// Only notifications whose `event` path has one of `events` place orders; the rest
    /// are acknowledged and recorded as ignored.
    #[serde(default)]
    pub event: Option<String>,
    #[serde(default)]
    pub events: Vec<String>,
    /// Further conditions, path → accepted values (Paddle: only first purchases, not
    /// subscription renewals); the rest are acknowledged and recorded as ignored.
    #[serde(default)]
    pub only: BTreeMap<String, Vec<String>>,
    pub order_id: String,
    pub customer_id: String,
    #[serde(default)]
    pub customer_email: Option<String>,
    /// Paths joined with a space (first and last name).
    #[serde(default)]
    pub customer_name: Vec<String>,
    /// Path to the list of items (or to one item); without it `item_product` and
    /// `item_quantity` are parallel lists (form fields like `IPN_PID[]`).
    #[serde(default)]
    pub items: Option<String>,
    pub item_product: String,
    #[serde(default)]
    pub item_quantity: Option<String>,
    pub auth: ShopAuth,
    /// What the shop expects back: `json` (order ids and tickets), `text` (the tickets, a
    /// line each, for the buyer), `2checkout` (the IPN read receipt).
    pub reply: ShopReply,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShopFormat {
    Json,
    Form,
    /// Elements become fields, repeated elements lists, attributes `@name` fields (and an
    /// element's text beside attributes `#text`).
    Xml,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShopAuth {
    /// `hmac-sha256-base64` or `hmac-sha256-hex` of the body in `header`; `paddle`
    /// (`ts=…;h1=…`, HMAC-SHA256 of `ts:body`); `2checkout` (the IPN's HASH field,
    /// HMAC-MD5 over every field's byte length and value).
    pub scheme: AuthScheme,
    #[serde(default)]
    pub header: String,
    /// The shared secret; better `secret_env`, the name of an environment variable that
    /// holds it. A connector without one (or with a `change-me` placeholder) is off.
    #[serde(default)]
    pub secret: String,
    #[serde(default)]
    pub secret_env: String,
    /// For `paddle`: how old a signature's timestamp may be.
    #[serde(default = "five_minutes")]
    pub max_age_secs: i64,
}

fn five_minutes() -> i64 {
    300
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthScheme {
    HmacSha256Base64,
    HmacSha256Hex,
    Paddle,
    #[serde(rename = "2checkout")]
    TwoCheckout,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShopReply {
    Json,
    Text,
    #[serde(rename = "2checkout")]
    TwoCheckout,
}

/// Checks a connector's name (its file's name, and its URL `/connect/<name>`); the reason
/// if it is not one.
pub fn check_name(name: &str) -> Result<(), String> {
    check_id("connector name", name).map_err(|e| e.to_string())?;
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err("letters, digits, - and _ only (it is the URL /connect/<name>)".into());
    }
    Ok(())
}

/// Reads and checks the definition `name` from its TOML `text`; `env` looks up the
/// environment variable a shop may name for its secret. A shop without a usable secret is
/// returned switched off (`off` says why); anything else wrong is `Err((field, why))`.
pub fn parse(
    name: &str,
    text: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Definition, (String, String)> {
    let bad = |field: &str, why: String| (field.to_string(), why);
    let mut def: Definition = toml::from_str(text).map_err(|e| {
        let field = e
            .span()
            .map(|s| format!("at byte {}", s.start))
            .unwrap_or_else(|| "definition".into());
        bad(&field, e.message().to_string())
    })?;
    def.name = name.to_string();
    if def.source.is_empty() {
        def.source = name.to_string();
    }
    check_id("source", &def.source).map_err(|e| bad("source", e.to_string()))?;
    for (from, to) in &def.items {
        check_id("items", from).map_err(|e| bad("items", e.to_string()))?;
        check_id("items", to).map_err(|e| bad(&format!("items.{from}"), e.to_string()))?;
    }
    match (def.kind, &def.shop) {
        (Kind::Shop, None) => return Err(bad("shop", "a shop connector needs [shop]".into())),
        (Kind::Shop, Some(_)) => {
            let shop = def.shop.as_mut().expect("matched");
            if !shop.auth.secret_env.is_empty() {
                if let Some(v) = env(&shop.auth.secret_env) {
                    shop.auth.secret = v;
                }
            }
            if shop.auth.secret.is_empty() || shop.auth.secret.contains("change-me") {
                let why = if shop.auth.secret_env.is_empty() {
                    "shop.auth.secret is not set".to_string()
                } else {
                    format!(
                        "the environment variable {} is not set",
                        shop.auth.secret_env
                    )
                };
                def.off = Some(why);
            } else if shop.auth.secret.len() < 8 {
                return Err(bad("shop.auth.secret", "at least 8 characters".into()));
            }
            if shop.auth.max_age_secs < 1 {
                return Err(bad("shop.auth.max_age_secs", "at least 1".into()));
            }
            let shop = def.shop.as_ref().expect("matched");
            if matches!(
                shop.auth.scheme,
                AuthScheme::HmacSha256Base64 | AuthScheme::HmacSha256Hex | AuthScheme::Paddle
            ) && shop.auth.header.is_empty()
            {
                return Err(bad(
                    "shop.auth.header",
                    "name the signature's header".into(),
                ));
            }
            if (shop.auth.scheme == AuthScheme::TwoCheckout) != (shop.format == ShopFormat::Form) {
                return Err(bad(
                    "shop.auth.scheme",
                    "2checkout goes with format = \"form\" and only with it".into(),
                ));
            }
            if shop.items.is_some() == (shop.format == ShopFormat::Form) && shop.items.is_some() {
                return Err(bad(
                    "shop.items",
                    "form notifications carry parallel item fields; leave items out".into(),
                ));
            }
        }
        (_, Some(_)) => return Err(bad("shop", "only kind = \"shop\" takes [shop]".into())),
        _ => {}
    }
    if let Some(w) = def.writeback.as_mut() {
        if !w.password_env.is_empty() {
            if let Some(v) = env(&w.password_env) {
                w.password = v;
            }
        }
        if !w.user.is_empty() && (w.password.is_empty() || w.password.contains("change-me")) {
            def.off = Some(if w.password_env.is_empty() {
                "writeback.password is not set".to_string()
            } else {
                format!("the environment variable {} is not set", w.password_env)
            });
        }
    }
    if let Some(w) = &def.writeback {
        if def.kind != Kind::Idoc {
            return Err(bad(
                "writeback",
                "only ERP (idoc) connectors post back".into(),
            ));
        }
        if !(w.url.starts_with("http://") || w.url.starts_with("https://")) {
            return Err(bad(
                "writeback.url",
                format!("{:?} is not an http(s) URL", w.url),
            ));
        }
    }
    Ok(def)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHOP: &str = r#"
kind = "shop"
[shop]
format = "json"
order_id = "id"
customer_id = "customer"
item_product = "sku"
reply = "json"
[shop.auth]
scheme = "hmac-sha256-hex"
header = "X-Signature"
secret_env = "SHOP_SECRET"
"#;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn a_shop_takes_its_secret_from_the_environment_or_is_off_saying_why() {
        let def = parse("shop-a", SHOP, no_env).unwrap();
        assert_eq!(
            def.off.as_deref(),
            Some("the environment variable SHOP_SECRET is not set")
        );
        assert_eq!(
            (def.name.as_str(), def.source.as_str()),
            ("shop-a", "shop-a")
        );
        let def = parse("shop-a", SHOP, |v| {
            (v == "SHOP_SECRET").then(|| "s3cret-long".into())
        })
        .unwrap();
        assert_eq!(def.off, None);
        assert_eq!(def.shop.unwrap().auth.secret, "s3cret-long");
        let short = parse("shop-a", SHOP, |_| Some("short".into())).unwrap_err();
        assert_eq!(short.0, "shop.auth.secret");
    }

    #[test]
    fn a_write_back_takes_its_password_from_the_environment_or_the_connector_is_off() {
        let erp = "kind = \"idoc\"\n[writeback]\nurl = \"http://erp.example/t\"\n\
                   user = \"LIC\"\npassword_env = \"ERP_PW\"\n";
        let def = parse("erp", erp, no_env).unwrap();
        assert_eq!(
            def.off.as_deref(),
            Some("the environment variable ERP_PW is not set")
        );
        let def = parse("erp", erp, |v| (v == "ERP_PW").then(|| "pw".into())).unwrap();
        assert_eq!(def.off, None);
        assert_eq!(def.writeback.unwrap().password, "pw");
        let placeholder = erp.replace("password_env = \"ERP_PW\"", "password = \"change-me\"");
        let def = parse("erp", &placeholder, no_env).unwrap();
        assert_eq!(def.off.as_deref(), Some("writeback.password is not set"));
        // No user: the ERP's endpoint takes the ticket without credentials.
        let open = "kind = \"idoc\"\n[writeback]\nurl = \"http://erp.example/t\"\n";
        assert_eq!(parse("erp", open, no_env).unwrap().off, None);
    }

    #[test]
    fn every_refusal_names_its_field() {
        let cases = [
            ("kind = \"shop\"\n", "shop"),
            (
                "kind = \"generic\"\n[writeback]\nurl = \"http://erp.example\"\n",
                "writeback",
            ),
            (
                "kind = \"idoc\"\n[writeback]\nurl = \"ftp://erp.example\"\n",
                "writeback.url",
            ),
            ("kind = \"idoc\"\nsource = \" padded\"\n", "source"),
            ("kind = \"idoc\"\n[items]\n\"A\" = \"\"\n", "items.A"),
        ];
        let generic_with_shop = SHOP.replace("kind = \"shop\"", "kind = \"generic\"");
        for (text, field) in cases
            .into_iter()
            .chain([(generic_with_shop.as_str(), "shop")])
        {
            let (got, why) = parse("c", text, no_env).unwrap_err();
            assert_eq!(got, field, "{text}: {why}");
        }
        let (field, _) = parse("c", "kind = \"nope\"\n", no_env).unwrap_err();
        assert!(field.starts_with("at byte"), "{field}");
        assert!(check_name("sap-orders05").is_ok());
        assert!(check_name("a/b").is_err());
    }
}
