//! Mails: templates checked at start, a durable outbox written in the transaction of the
//! change that causes a mail, and a worker that sends through SMTP with growing delays.
use std::sync::Arc;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Message, SmtpTransport, Transport};
use minijinja::{Environment, UndefinedBehavior};
use serde_json::{json, Value};

use super::queue::{self, Failure, Recorded};
use super::workers::{Next, Stopping, Worker};
use super::Core;
use crate::config::Config;
use crate::domain::ticket::TicketCode;
use crate::domain::{Actor, QueueState, Role};
use crate::error::{Error, Result};
use crate::store::outbox::{self as store, MailToSend, Outbox};
use crate::store::Conn;

pub use crate::store::outbox::MailView;

/// The mails Licentia sends, with the parameters their templates get (besides the
/// vendor's `vendor_name`, `portal_url`, `logo_url`, `public_url`).
pub const KINDS: &[(&str, &[&str])] = &[
    ("ticket", &["en", "de"]),
    ("expiry_report", &["en"]),
    ("never_activated_report", &["en"]),
    ("approval_request", &["en"]),
    ("verify_email", &["en", "de"]),
];

/// The built-in templates (the files in `mail-templates/`).
const BUILT_IN: &[(&str, &str)] = &[
    (
        "ticket.en.txt",
        include_str!("../../mail-templates/ticket.en.txt"),
    ),
    (
        "ticket.en.html",
        include_str!("../../mail-templates/ticket.en.html"),
    ),
    (
        "ticket.de.txt",
        include_str!("../../mail-templates/ticket.de.txt"),
    ),
    (
        "ticket.de.html",
        include_str!("../../mail-templates/ticket.de.html"),
    ),
    (
        "expiry_report.en.txt",
        include_str!("../../mail-templates/expiry_report.en.txt"),
    ),
    (
        "never_activated_report.en.txt",
        include_str!("../../mail-templates/never_activated_report.en.txt"),
    ),
    (
        "approval_request.en.txt",
        include_str!("../../mail-templates/approval_request.en.txt"),
    ),
    (
        "verify_email.en.txt",
        include_str!("../../mail-templates/verify_email.en.txt"),
    ),
    (
        "verify_email.de.txt",
        include_str!("../../mail-templates/verify_email.de.txt"),
    ),
];

/// Example parameters of each kind: every template is rendered with them at start, so a
/// syntax error or an unknown variable stops the start instead of the first mail.
fn sample(kind: &str) -> Value {
    match kind {
        "ticket" => json!({"customer_name": "Jane Doe", "order_id": "4711",
            "ticket": "ABCDE-FGHJK-LMNPQ-RSTUV-WXZ23",
            "ticket_url": "https://example.com/portal/tickets/ABCDE-FGHJK-LMNPQ-RSTUV-WXZ23",
            "licenses": [{"item_id": "SKU-1", "name": "Product", "quantity": 2}]}),
        "expiry_report" => json!({"firm_code": 6000010, "customer_id": "C-1", "days": 30,
            "from": "2026-11-23T00:00:00Z", "until": "2026-12-23T00:00:00Z", "rows": 3,
            "columns": "license_id, ticket", "link": null, "link_days": 7}),
        "never_activated_report" => json!({"firm_code": 6000010, "rows": 3,
            "now": "2026-11-23T00:00:00Z", "columns": "license_id, ticket",
            "link": null, "link_days": 7}),
        "verify_email" => json!({"name": "Jane Doe", "email": "jane@example.com",
            "verify_url": "https://example.com/portal/register/verify?token=abc", "hours": 24}),
        _ => json!({"approval_id": 1, "kind": "reactivation", "license_id": 7,
            "old_serial": "130-1", "serial": "130-2", "why": "self-service count used up"}),
    }
}

pub struct Templates {
    env: Environment<'static>,
    vendor: Value,
}

/// A rendered mail.
#[derive(Debug)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

impl Templates {
    /// The built-in templates, each replaced by a file of the same name in `dir` (if set),
    /// all rendered once with example parameters.
    pub fn load(config: &Config) -> Result<Templates> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        let dir = config.mail_templates_dir.trim();
        for (name, built_in) in BUILT_IN {
            let source = if dir.is_empty() {
                built_in.to_string()
            } else {
                let path = std::path::Path::new(dir).join(name);
                match std::fs::read_to_string(&path) {
                    Ok(s) => s,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => built_in.to_string(),
                    Err(e) => {
                        return Err(Error::invalid(
                            "mail_templates_dir",
                            format!("{}: {e}", path.display()),
                        ))
                    }
                }
            };
            env.add_template_owned(name.to_string(), source)
                .map_err(|e| template_error(name, &e))?;
        }
        let t = Templates {
            env,
            vendor: json!({"vendor_name": config.vendor_name, "portal_url": config.portal_url,
                "logo_url": config.logo_url, "public_url": config.public_url}),
        };
        for (kind, langs) in KINDS {
            for lang in *langs {
                t.render(kind, lang, &sample(kind))?;
                // A report mailed as a link, and one from before links (none named).
                if kind.ends_with("_report") {
                    let link = "https://example.com/admin/downloads/0a1b";
                    let mut linked = sample(kind);
                    linked["link"] = json!(link);
                    if !t.render(kind, lang, &linked)?.text.contains(link) {
                        return Err(Error::invalid(
                            "mail_templates_dir",
                            format!(
                                "{kind}.{lang}.txt never shows {{{{ link }}}}: a report too \
                                 large to attach is mailed as a link instead"
                            ),
                        ));
                    }
                    let mut unlinked = sample(kind);
                    if let Some(o) = unlinked.as_object_mut() {
                        o.remove("link");
                        o.remove("link_days");
                    }
                    t.render(kind, lang, &unlinked)?;
                }
            }
        }
        Ok(t)
    }

    /// Renders a mail in the language of `locale` (`de`, `de-DE` …), English if there is no
    /// template in that language.
    pub fn render(&self, kind: &str, locale: &str, params: &Value) -> Result<Rendered> {
        let lang = locale.get(..2).unwrap_or("en").to_ascii_lowercase();
        let lang = if self.env.get_template(&format!("{kind}.{lang}.txt")).is_ok() {
            lang
        } else {
            "en".to_string()
        };
        let mut ctx = self.vendor.clone();
        if let (Some(c), Some(p)) = (ctx.as_object_mut(), params.as_object()) {
            c.extend(p.clone());
        }
        let ctx = minijinja::Value::from(minijinja::value::Serde(ctx));
        let render = |name: &str| -> Result<String> {
            self.env
                .get_template(name)
                .and_then(|t| t.render(ctx.clone()))
                .map_err(|e| template_error(name, &e))
        };
        let text_name = format!("{kind}.{lang}.txt");
        let text = render(&text_name)?;
        let (first, body) = text.split_once('\n').unwrap_or((&text, ""));
        let subject = first
            .strip_prefix("Subject:")
            .ok_or_else(|| {
                Error::invalid(
                    "mail_templates_dir",
                    format!("{text_name}: the first line must be `Subject: …`"),
                )
            })?
            .trim()
            .to_string();
        let html_name = format!("{kind}.{lang}.html");
        let html = match self.env.get_template(&html_name) {
            Ok(_) => Some(render(&html_name)?),
            Err(_) => None,
        };
        Ok(Rendered {
            subject,
            text: body.trim_start_matches('\n').to_string(),
            html,
        })
    }
}

fn template_error(name: &str, e: &minijinja::Error) -> Error {
    let mut msg = format!("mail template {name}: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(&format!(": {s}"));
        source = s.source();
    }
    Error::invalid("mail_templates_dir", msg)
}

/// A mail to queue.
pub struct NewMail<'a> {
    pub kind: &'a str,
    pub recipient: &'a str,
    pub locale: &'a str,
    pub params: Value,
    /// File name and CSV text (a `.gz` file: its bytes in base64).
    pub attachment: Option<(String, String)>,
}

/// Queues a mail in the current transaction: it leaves only if the change commits. It is
/// due at once on the clock the senders reckon with (see `queue`).
pub fn enqueue(c: &mut Conn, m: NewMail) -> Result<i64> {
    store::insert(
        c,
        &store::NewMail {
            kind: m.kind,
            recipient: m.recipient,
            locale: m.locale,
            params: &m.params.to_string(),
            attachment: m
                .attachment
                .as_ref()
                .map(|(name, body)| (name.as_str(), body.as_str())),
        },
    )
}

/// Whether orders from `source` send the customer a ticket mail.
pub fn ticket_mail_for(config: &Config, source: &str) -> bool {
    !config
        .ticket_mail_skip_sources
        .split(',')
        .any(|s| s.trim() == source)
}

const MAIL_ROLES: &[Role] = &[Role::Admin, Role::Support];

/// The outbox, newest first (at most 1,000), optionally in one state.
pub async fn list(core: &Core, actor: &Actor, state: Option<String>) -> Result<Vec<MailView>> {
    actor.require(MAIL_ROLES, "read the outbox")?;
    let state = state
        .map(|s| {
            QueueState::parse(&s)
                .map_err(|_| Error::invalid("state", "must be queued, sending, sent or failed"))
        })
        .transpose()?;
    core.db.read(move |c| store::newest(c, state, 1000)).await
}

/// Puts a failed mail back in the queue, attempts counted from zero.
pub async fn requeue(core: &Core, actor: &Actor, id: i64) -> Result<()> {
    actor.require(MAIL_ROLES, "re-queue mails")?;
    let actor = actor.clone();
    core.db
        .write(move |c| {
            queue::requeue::<Outbox>(c, id, "mail")?;
            super::audit::record(
                &actor,
                super::audit::Event {
                    action: "mail.requeued",
                    details: json!({ "mail_id": id }),
                    ..Default::default()
                },
            )
        })
        .await
}

/// SMTP as configured.
pub struct Mailer {
    transport: Option<SmtpTransport>,
    from: Mailbox,
}

impl Mailer {
    pub fn new(config: &Config) -> Result<Mailer> {
        let from: Mailbox = config
            .mail_from
            .parse()
            .map_err(|e| Error::invalid("mail_from", format!("{:?}: {e}", config.mail_from)))?;
        if config.smtp_host.is_empty() {
            return Ok(Mailer {
                transport: None,
                from,
            });
        }
        let host = config.smtp_host.as_str();
        let smtp = |e: lettre::transport::smtp::Error| Error::invalid("smtp_host", e.to_string());
        let mut b = match config.smtp_security.as_str() {
            "tls" => SmtpTransport::relay(host).map_err(smtp)?,
            "starttls" => SmtpTransport::starttls_relay(host).map_err(smtp)?,
            _ => SmtpTransport::builder_dangerous(host),
        }
        .port(config.smtp_port)
        .timeout(Some(Duration::from_secs(config.smtp_timeout_secs.max(1))));
        if !config.smtp_user.is_empty() {
            b = b.credentials(Credentials::new(
                config.smtp_user.clone(),
                config.smtp_password.0.clone(),
            ));
        }
        Ok(Mailer {
            transport: Some(b.build()),
            from,
        })
    }

    pub fn enabled(&self) -> bool {
        self.transport.is_some()
    }

    /// Sends one mail.
    fn send(
        &self,
        to: &str,
        message_id: String,
        r: &Rendered,
        attachment: Option<(String, String)>,
    ) -> std::result::Result<(), Failure> {
        let transport = self
            .transport
            .as_ref()
            .ok_or_else(|| Failure::passing("no SMTP server configured"))?;
        let to: Mailbox = to
            .parse()
            .map_err(|e| Failure::permanent(format!("recipient {to:?}: {e}")))?;
        let text = SinglePart::plain(r.text.clone());
        let body = match &r.html {
            Some(html) => MultiPart::alternative()
                .singlepart(text)
                .singlepart(SinglePart::html(html.clone())),
            None => MultiPart::mixed().singlepart(text),
        };
        let body = match attachment {
            // A compressed report is kept as base64 text in the outbox.
            Some((name, gz)) if name.ends_with(".gz") => {
                let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, gz)
                    .map_err(|e| Failure::permanent(format!("attachment {name}: {e}")))?;
                let kind = ContentType::parse("application/gzip").expect("content type");
                MultiPart::mixed()
                    .multipart(body)
                    .singlepart(Attachment::new(name).body(bytes, kind))
            }
            Some((name, csv)) => {
                let kind = ContentType::parse("text/csv; charset=utf-8").expect("content type");
                MultiPart::mixed()
                    .multipart(body)
                    .singlepart(Attachment::new(name).body(csv, kind))
            }
            None => body,
        };
        let msg = Message::builder()
            .from(self.from.clone())
            .to(to)
            .message_id(Some(message_id))
            .subject(r.subject.clone())
            .multipart(body)
            .map_err(|e| Failure::permanent(format!("building the mail: {e}")))?;
        transport.send(&msg).map(|_| ()).map_err(|e| {
            // A 5xx answer will not get better by waiting; anything else may.
            Failure {
                permanent: e.is_permanent(),
                why: e.to_string(),
            }
        })
    }
}

/// The outbox sender: sends the mails that are due, then looks again every half second
/// (other nodes and the CLI queue mails too; the outbox is the only signal they share).
#[derive(Clone)]
pub struct OutboxSender {
    mailer: Arc<Mailer>,
}

impl OutboxSender {
    pub fn new(config: &Config) -> Result<OutboxSender> {
        Ok(OutboxSender {
            mailer: Arc::new(Mailer::new(config)?),
        })
    }

    /// Whether an SMTP server is configured (without one, mails stay queued).
    pub fn enabled(&self) -> bool {
        self.mailer.enabled()
    }

    /// Sends the mails that are due (at most one batch); returns how many were tried. Each
    /// mail is claimed by one node (see `queue::send_due`). Once `stop` is set no further
    /// mail is claimed.
    pub async fn send_due(&self, core: &Core, stop: &Stopping) -> Result<usize> {
        if !self.enabled() {
            return Ok(0);
        }
        queue::send_due(core, self, stop).await
    }
}

impl queue::Sender for OutboxSender {
    type Queue = Outbox;

    fn retries(&self, core: &Core) -> (i32, i64) {
        (
            core.config.mail_max_attempts as i32,
            core.config.mail_retry_secs as i64,
        )
    }

    /// Renders the mail (a template that fails will fail again: permanent) and sends it
    /// off the async executor.
    async fn send(&self, core: &Core, m: &MailToSend) -> std::result::Result<(), Failure> {
        let params: Value = serde_json::from_str(&m.params).unwrap_or(Value::Null);
        let r = core
            .templates
            .render(&m.kind, &m.locale, &params)
            .map_err(|e| Failure::permanent(e.to_string()))?;
        let mailer = self.mailer.clone();
        let attachment = m.attachment_name.clone().zip(m.attachment.clone());
        let to = m.recipient.clone();
        let message_id = m.message_id(mailer.from.email.domain());
        tokio::task::spawn_blocking(move || mailer.send(&to, message_id, &r, attachment))
            .await
            .unwrap_or_else(|e| Err(Failure::passing(format!("sender task: {e}"))))
    }

    /// A ticket mail sent is `ticket.mailed`, any other mail `mail.sent`; a mail given up
    /// is `mail.failed` (with the ticket of a ticket mail).
    fn outcome_event(
        &self,
        id: i64,
        m: &MailToSend,
        sent: bool,
        why: Option<&str>,
    ) -> Option<queue::OutcomeEvent> {
        let params: Value = serde_json::from_str(&m.params).unwrap_or(Value::Null);
        let ticket = params["ticket"]
            .as_str()
            .and_then(|t| TicketCode::parse(t).ok())
            .map(|t| t.as_stored().to_string());
        let action = match (sent, m.kind.as_str()) {
            (true, "ticket") => "ticket.mailed",
            (true, _) => "mail.sent",
            (false, _) => "mail.failed",
        };
        let mut details = json!({ "mail_id": id, "kind": m.kind, "recipient": m.recipient });
        if let Some(why) = why {
            details["error"] = json!(why.chars().take(300).collect::<String>());
        }
        Some(queue::OutcomeEvent {
            action,
            ticket,
            details,
        })
    }

    fn log(&self, id: i64, recorded: Recorded, why: Option<&str>) {
        match recorded {
            Recorded::Failed => tracing::warn!(mail = id, error = ?why, "mail failed for good"),
            Recorded::TakenOver => tracing::warn!(
                mail = id,
                "mail outcome not recorded: claimed by another node"
            ),
            Recorded::Sent | Recorded::Again => {}
        }
    }
}

impl Worker for OutboxSender {
    fn name(&self) -> &'static str {
        "outbox"
    }

    async fn step(&mut self, core: &Arc<Core>, stop: &Stopping) -> Result<Next> {
        if !self.enabled() {
            // Without an SMTP server nothing is ever due for this worker (the
            // configuration is read once, at start).
            return Ok(Next::After(Duration::from_secs(3600)));
        }
        Ok(match self.send_due(core, stop).await? {
            0 => Next::After(Duration::from_millis(500)),
            _ => Next::Now,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_with(dir: &std::path::Path) -> Config {
        Config {
            mail_templates_dir: dir.display().to_string(),
            vendor_name: "V".into(),
            ..Config::default()
        }
    }

    #[test]
    fn a_broken_or_unknown_variable_template_stops_the_start_naming_the_file() {
        let dir = std::env::temp_dir().join(format!("licentia-tpl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ticket.de.txt"), "Subject: {{ ticket }\n").unwrap();
        let e = Templates::load(&config_with(&dir))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("ticket.de.txt"), "{e}");
        std::fs::write(dir.join("ticket.de.txt"), "Subject: {{ tikcet }}\n").unwrap();
        let e = Templates::load(&config_with(&dir))
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("ticket.de.txt") && e.contains("undefined"),
            "{e}"
        );
        std::fs::write(dir.join("ticket.de.txt"), "no subject line\n").unwrap();
        let e = Templates::load(&config_with(&dir))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("Subject"), "{e}");
        // A good replacement is used; the others stay built in.
        std::fs::write(
            dir.join("ticket.de.txt"),
            "Subject: T {{ ticket }}\nHallo\n",
        )
        .unwrap();
        // A report template that would say "attached" to a mail carrying a link instead.
        std::fs::write(
            dir.join("expiry_report.en.txt"),
            "Subject: {{ rows }} expire\nThe attached CSV lists them.\n",
        )
        .unwrap();
        let e = Templates::load(&config_with(&dir))
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("expiry_report.en.txt") && e.contains("link"),
            "{e}"
        );
        std::fs::remove_file(dir.join("expiry_report.en.txt")).unwrap();
        let t = Templates::load(&config_with(&dir)).unwrap();
        let r = t.render("ticket", "de-AT", &sample("ticket")).unwrap();
        assert_eq!(r.subject, "T ABCDE-FGHJK-LMNPQ-RSTUV-WXZ23");
        assert_eq!(r.text, "Hallo");
        assert!(r.html.unwrap().contains("lang=\"de\""));
        let r = t.render("ticket", "fr", &sample("ticket")).unwrap();
        assert!(
            r.subject.starts_with("Your licenses from V"),
            "{}",
            r.subject
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
