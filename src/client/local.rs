//! The local helper's work: what the portal's page asks of the container on the customer's
//! own computer during an online transfer (`licentia container serve-local`). The page may
//! ask for nothing the protocol does not already sign: it gets the container's serial and
//! its signed request, hands over an update the container verifies itself, and takes back
//! the signed receipt. The firm's keys come from the portal the helper was started for, not
//! from the page. The HTTP side (loopback only, the portal's origin only) is the CLI's.
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::{cerr, hashed_traits, unix_now, CResult, Container};
use crate::domain::ContainerType;
use crate::protocol::{Template, Trait};

/// The helper's port when none is given, and the portal's default for it.
pub const DEFAULT_PORT: u16 = 27_480;

/// The one container the helper serves, and the portal it serves it for.
pub struct Desk {
    pub dir: PathBuf,
    /// The kind of container made when the folder holds none yet.
    pub kind: ContainerType,
    pub traits: Vec<(String, String)>,
    pub tolerance: u32,
    /// The portal's address (`https://licenses.example.com/portal`).
    pub portal: String,
    agent: ureq::Agent,
}

/// The container as the page may see it.
#[derive(Debug, Clone, Serialize)]
pub struct Held {
    pub serial: String,
    #[serde(rename = "type")]
    pub kind: ContainerType,
}

#[derive(Debug, Serialize)]
pub struct Hello {
    pub helper: &'static str,
    pub version: &'static str,
    /// None until the first template makes it.
    pub container: Option<Held>,
}

#[derive(Debug, Serialize)]
pub struct Trusted {
    pub serial: String,
    pub firm_code: i64,
    pub firm_name: String,
    /// The folder held no container: the helper made one.
    pub created: bool,
}

#[derive(Debug, Serialize)]
pub struct Requested {
    pub serial: String,
    pub request: String,
}

#[derive(Debug, Serialize)]
pub struct Imported {
    pub serial: String,
    pub counter: u64,
    pub receipt: String,
}

impl Desk {
    pub fn new(
        dir: PathBuf,
        kind: ContainerType,
        traits: Vec<(String, String)>,
        tolerance: u32,
        portal: &str,
    ) -> CResult<Desk> {
        if kind == ContainerType::Cloud {
            return Err(cerr(
                "invalid_input",
                "cloud containers are kept on the server; serve an act or dongle container",
            ));
        }
        let portal = portal.trim_end_matches('/').to_string();
        let o = origin(&portal)?;
        // The firm's keys are trusted from what the portal sends: only over https, unless
        // the portal runs on this very computer.
        let host = o.strip_prefix("http://").map(|h| {
            h.rsplit_once(':')
                .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
                .map_or(h, |(n, _)| n)
        });
        if let Some(host) = host {
            if !matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
                return Err(cerr(
                    "invalid_input",
                    format!(
                        "{portal} is not https: the helper takes the firm's keys only from a \
                         portal reached over https (or on this computer)"
                    ),
                ));
            }
        }
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(10))
            .timeout_read(Duration::from_secs(30))
            .redirects(0)
            .build();
        Ok(Desk {
            dir,
            kind,
            traits,
            tolerance,
            portal,
            agent,
        })
    }

    /// The origin (`scheme://host[:port]`) whose pages may use the helper.
    pub fn origin(&self) -> String {
        origin(&self.portal).expect("checked in new")
    }

    pub fn hello(&self) -> CResult<Hello> {
        let container = if Container::exists(&self.dir) {
            let c = Container::load(&self.dir)?;
            Some(Held {
                serial: c.serial,
                kind: c.kind,
            })
        } else {
            None
        };
        Ok(Hello {
            helper: "licentia",
            version: env!("CARGO_PKG_VERSION"),
            container,
        })
    }

    /// Downloads the firm's license template from the portal and trusts it, making the
    /// container first if the folder holds none. A firm the container trusts already keeps
    /// its keys: new ones arrive endorsed by the old, in updates.
    pub fn template(&self, firm_code: i64) -> CResult<Trusted> {
        let t = self.download(firm_code)?;
        if t.firm_code != firm_code {
            return Err(cerr(
                "invalid_message",
                format!(
                    "the portal sent the template of firm {} for firm {firm_code}",
                    t.firm_code
                ),
            ));
        }
        let created = !Container::exists(&self.dir);
        let mut c = if created {
            Container::create(self.kind, None, &self.traits, self.tolerance)?
        } else {
            Container::load(&self.dir)?
        };
        if !c.firms.contains_key(&firm_code) {
            c.trust_template(&t);
        }
        c.save(&self.dir)?;
        Ok(Trusted {
            serial: c.serial,
            firm_code,
            firm_name: t.firm_name,
            created,
        })
    }

    fn download(&self, firm_code: i64) -> CResult<Template> {
        let url = format!("{}/template/{firm_code}", self.portal);
        let unreachable = |e: String| {
            cerr(
                "server_unreachable",
                format!("cannot get the license template from {url}: {e}"),
            )
        };
        match self.agent.get(&url).call() {
            Ok(r) => r
                .into_json::<Template>()
                .map_err(|e| cerr("invalid_message", format!("{url}: {e}"))),
            Err(ureq::Error::Status(404, _)) => Err(cerr(
                "not_found",
                format!("the portal knows no firm {firm_code}"),
            )),
            Err(ureq::Error::Status(s, _)) => Err(unreachable(format!("answered {s}"))),
            Err(e) => Err(unreachable(e.to_string())),
        }
    }

    /// The container's signed request for the firm (it must trust the firm already).
    pub fn request(&self, firm_code: i64) -> CResult<Requested> {
        let mut c = self.load()?;
        if !c.firms.contains_key(&firm_code) {
            return Err(cerr(
                "not_found",
                format!(
                    "container {} does not know firm {firm_code}: download its template first",
                    c.serial
                ),
            ));
        }
        let request = c.request(firm_code, unix_now())?;
        c.save(&self.dir)?;
        Ok(Requested {
            serial: c.serial,
            request,
        })
    }

    /// This computer's traits hashed with an old container's salt, for a restore: the
    /// server compares hashes, it never learns the values.
    pub fn traits(&self, salt: &str) -> CResult<Vec<Trait>> {
        if salt.is_empty() || salt.len() > 128 {
            return Err(cerr("invalid_input", "the salt: 1 to 128 characters"));
        }
        Ok(hashed_traits(salt, &self.traits))
    }

    /// Verifies and imports an update (the container refuses what the firm did not sign for
    /// it), saves the container, and gives the receipt to upload.
    pub fn apply(&self, update: &str) -> CResult<Imported> {
        let mut c = self.load()?;
        let applied = c.apply(update, unix_now())?;
        c.save(&self.dir)?;
        Ok(Imported {
            serial: applied.serial,
            counter: applied.counter,
            receipt: applied.receipt,
        })
    }

    fn load(&self) -> CResult<Container> {
        if !Container::exists(&self.dir) {
            return Err(cerr(
                "not_found",
                format!(
                    "{} holds no container yet: download a license template first",
                    self.dir.display()
                ),
            ));
        }
        Container::load(&self.dir)
    }
}

/// `scheme://host[:port]` of an http(s) address, as a browser writes it in `Origin`
/// (lower case, no default port, no path).
pub fn origin(url: &str) -> CResult<String> {
    let bad = || {
        cerr(
            "invalid_input",
            format!("{url:?} is not an http(s) address of the portal"),
        )
    };
    let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => ":80",
        "https" => ":443",
        _ => return Err(bad()),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') || authority.contains(char::is_whitespace) {
        return Err(bad());
    }
    let authority = authority.to_ascii_lowercase();
    let authority = authority.strip_suffix(default_port).unwrap_or(&authority);
    Ok(format!("{scheme}://{authority}"))
}

/// Whether a request's `Host` names the helper itself (`127.0.0.1:PORT`, `localhost:PORT`,
/// `[::1]:PORT`): a page of another site whose name was pointed at 127.0.0.1 (DNS
/// rebinding) sends its own name and is refused.
pub fn host_is_loopback(host: &str, port: u16) -> bool {
    let Some((name, p)) = host.rsplit_once(':') else {
        return false;
    };
    p.parse::<u16>() == Ok(port)
        && matches!(
            name.to_ascii_lowercase().as_str(),
            "127.0.0.1" | "localhost" | "[::1]"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_origin_is_what_a_browser_sends() {
        for (url, want) in [
            (
                "https://Licenses.Example.com/portal",
                "https://licenses.example.com",
            ),
            (
                "https://licenses.example.com:443/portal/",
                "https://licenses.example.com",
            ),
            ("http://127.0.0.1:8080/portal", "http://127.0.0.1:8080"),
            ("http://portal.example:80", "http://portal.example"),
            ("https://[::1]:8443/portal", "https://[::1]:8443"),
        ] {
            assert_eq!(origin(url).unwrap(), want, "{url}");
        }
        for bad in [
            "licenses.example.com/portal",
            "ftp://licenses.example.com",
            "https://",
            "https://user@evil.example/portal",
            "https://a b/portal",
        ] {
            assert_eq!(origin(bad).unwrap_err().code, "invalid_input", "{bad}");
        }
    }

    #[test]
    fn only_the_loopback_names_with_the_helpers_port_are_its_host() {
        for ok in [
            "127.0.0.1:27480",
            "localhost:27480",
            "LOCALHOST:27480",
            "[::1]:27480",
        ] {
            assert!(host_is_loopback(ok, 27_480), "{ok}");
        }
        for bad in [
            "127.0.0.1:27481",
            "127.0.0.1",
            "evil.example:27480",
            "127.0.0.1.evil.example:27480",
            "",
        ] {
            assert!(!host_is_loopback(bad, 27_480), "{bad}");
        }
    }

    #[test]
    fn a_folder_without_a_container_asks_for_the_template_first() {
        let dir = std::env::temp_dir().join(format!("licentia-desk-{}", std::process::id()));
        let desk = Desk::new(
            dir.clone(),
            ContainerType::Act,
            vec![],
            2,
            "http://127.0.0.1:9/portal",
        )
        .unwrap();
        assert!(desk.hello().unwrap().container.is_none());
        assert_eq!(desk.request(10).unwrap_err().code, "not_found");
        assert_eq!(desk.apply("x").unwrap_err().code, "not_found");
        // Nothing listens on port 9: the template cannot be fetched, no container is made.
        assert_eq!(desk.template(10).unwrap_err().code, "server_unreachable");
        assert!(!Container::exists(&dir));
        assert!(Desk::new(
            dir.clone(),
            ContainerType::Cloud,
            vec![],
            2,
            "http://x/portal"
        )
        .is_err());
        // Keys only over https, unless the portal is on this computer.
        let plain = Desk::new(
            dir.clone(),
            ContainerType::Act,
            vec![],
            2,
            "http://licenses.example.com/portal",
        );
        assert_eq!(plain.err().unwrap().code, "invalid_input");
        for ok in [
            "https://licenses.example.com/portal",
            "http://localhost:8080/portal",
            "http://[::1]:8080/portal",
        ] {
            assert!(
                Desk::new(dir.clone(), ContainerType::Act, vec![], 2, ok).is_ok(),
                "{ok}"
            );
        }
    }
}
