//! TestApp: the real server on port 0 with its own fresh database (a SQLite file, or a
//! PostgreSQL database made for this test), driven over HTTP like a client.
use std::sync::atomic::{AtomicU32, Ordering};

use diesel::{Connection, RunQueryDsl};
use licentia::config::{Config, Secret};
use licentia::domain::{Actor, Interface, Role};
use licentia::service::{demo, users, Core};
use serde_json::Value;

static COUNTER: AtomicU32 = AtomicU32::new(0);
pub const ADMIN_PW: &str = "admin-password-for-tests";

/// The server's own actor (an admin acting through no interface of a person).
pub fn system() -> Actor {
    Actor::system(Interface::System)
}

pub fn backend() -> String {
    std::env::var("TEST_BACKEND").unwrap_or_else(|_| "sqlite".into())
}

/// For a test that cannot run on this backend: says so on the test output, so that the run
/// shows a skip with its reason rather than a silent pass (cargo counts it as passed; the
/// suite runs on both backends, so each such test runs on one of them).
pub fn skip(test: &str, why: &str) {
    use std::io::Write;
    // Straight to stderr: the test harness captures `eprintln!` of a passing test.
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
}

/// A folder of a test's own under the temp directory, removed with everything in it when
/// the test ends (passed or panicked).
pub struct Scratch(std::path::PathBuf);

impl Scratch {
    pub fn new(what: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "licentia-{what}-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl std::ops::Deref for Scratch {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn pg_admin_url() -> String {
    std::env::var("TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub struct TestDb {
    pub url: String,
    pg_name: Option<String>,
    pub dir: std::path::PathBuf,
}

impl TestDb {
    pub fn new() -> TestDb {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{}_{}_{}", std::process::id(), n, rand::random::<u32>());
        let dir = std::env::temp_dir().join(format!("licentia-test-{tag}"));
        std::fs::create_dir_all(&dir).unwrap();
        if backend() == "postgres" {
            let name = format!("licentia_t_{tag}");
            let mut c = diesel::PgConnection::establish(&pg_admin_url()).unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL at {} is needed for TEST_BACKEND=postgres: {e}",
                    pg_admin_url()
                )
            });
            diesel::sql_query(format!("CREATE DATABASE {name}"))
                .execute(&mut c)
                .unwrap();
            let base = pg_admin_url();
            let url = format!("{}/{name}", &base[..base.rfind('/').unwrap()]);
            TestDb {
                url,
                pg_name: Some(name),
                dir,
            }
        } else {
            TestDb {
                url: format!("sqlite://{}", dir.join("licentia.db").display()),
                pg_name: None,
                dir,
            }
        }
    }

    /// A direct connection, for the tests that check or tamper with what is stored.
    pub fn connect(&self) -> licentia::store::Conn {
        match &self.pg_name {
            Some(_) => {
                licentia::store::Conn::Pg(diesel::PgConnection::establish(&self.url).unwrap())
            }
            None => {
                let mut c = diesel::SqliteConnection::establish(
                    self.url.strip_prefix("sqlite://").unwrap(),
                )
                .unwrap();
                // The server's workers write too: wait for their transactions, as the
                // server's own connections do, instead of failing with "database is locked".
                diesel::sql_query("PRAGMA busy_timeout = 10000")
                    .execute(&mut c)
                    .unwrap();
                licentia::store::Conn::Sqlite(c)
            }
        }
    }

    pub fn config(&self) -> Config {
        Config {
            database_url: self.url.clone(),
            data_dir: self.dir.clone(),
            listen: "127.0.0.1:0".into(),
            master_key: Secret("11".repeat(32)),
            max_body_bytes: 64 * 1024,
            // The tests make many gateway lookups from one address; the limit has its own
            // test (`activation::the_gateway_holds_back_ticket_guessing`).
            gateway_ticket_lookups_per_minute: 0,
            ..Config::default()
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(name) = &self.pg_name {
            if let Ok(mut c) = diesel::PgConnection::establish(&pg_admin_url()) {
                let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut c);
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub struct TestApp {
    pub base: String,
    pub rt: tokio::runtime::Runtime,
    pub core: actix_web::web::Data<Core>,
    /// HTTP and the workers; taken by `drop`.
    running: Option<licentia::app::Running>,
    pub db: TestDb,
    /// The configuration it runs with (a second node gets the same).
    pub config: Config,
}

impl TestApp {
    /// A running server with the demo catalog and an admin user (password `ADMIN_PW`).
    pub fn start() -> TestApp {
        TestApp::start_with(|_| {})
    }

    /// The same with the configuration changed by `tweak`.
    pub fn start_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
        TestApp::start_on(TestDb::new(), tweak)
    }

    /// A server on an existing test database.
    pub fn start_on(db: TestDb, tweak: impl FnOnce(&mut Config)) -> TestApp {
        let mut config = db.config();
        tweak(&mut config);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let running = rt.block_on(licentia::app::start(config.clone())).unwrap();
        let core = running.core.clone();
        rt.block_on(async {
            demo::seed(&core).await.unwrap();
            let sys = Actor::system(Interface::System);
            users::change_user(
                &core,
                &sys,
                "admin".into(),
                users::UserChange {
                    password: Some(ADMIN_PW.into()),
                    role: None,
                    active: None,
                },
            )
            .await
            .unwrap();
        });
        TestApp {
            base: format!("http://{}", running.addr),
            rt,
            core,
            running: Some(running),
            db,
            config,
        }
    }

    /// Stops the server and hands back its database (to start it again with `start_on`).
    pub fn stop(mut self) -> TestDb {
        let placeholder = TestDb {
            url: String::new(),
            pg_name: None,
            dir: std::env::temp_dir().join("licentia-test-stopped-placeholder-never-made"),
        };
        std::mem::replace(&mut self.db, placeholder)
    }

    /// Runs the workers (scheduler, write-back sender, outbox sender) until nothing is due
    /// for any of them: what a test waits for instead of sleeping until a worker looked.
    pub fn run_pending_workers(&self) {
        let running = self.running.as_ref().expect("running");
        self.rt.block_on(running.run_pending_workers()).unwrap();
    }

    pub fn add_user(&self, name: &str, role: Role) -> String {
        let pw = format!("{name}-password-123");
        let sys = Actor::system(Interface::System);
        self.rt
            .block_on(users::add_user(
                &self.core,
                &sys,
                users::NewUser {
                    username: name.into(),
                    password: pw.clone(),
                    role,
                },
            ))
            .unwrap();
        pw
    }

    pub fn call(
        &self,
        method: &str,
        path: &str,
        auth: Option<(&str, &str)>,
        body: Option<Value>,
    ) -> (u16, Value) {
        call_at(&self.base, method, path, auth, body)
    }

    /// As the admin.
    pub fn admin(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call(method, path, Some(("admin", ADMIN_PW)), body)
    }

    /// The same call against another node.
    pub fn admin_at(
        &self,
        base: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        call_at(base, method, path, Some(("admin", ADMIN_PW)), body)
    }

    pub fn raw_post(&self, path: &str, content_type: &str, body: &[u8]) -> (u16, Value) {
        let req = with_auth(
            ureq::post(&format!("{}{path}", self.base)),
            Some(("admin", ADMIN_PW)),
        );
        answer(
            "POST",
            path,
            req.set("Content-Type", content_type).send_bytes(body),
        )
    }

    /// Makes every queued row of an outgoing queue (`outbox`, `writebacks`) due now, as if
    /// its retry delay had passed.
    pub fn make_due(&self, table: &str) {
        diesel::sql_query(format!(
            "UPDATE {table} SET next_attempt_at = '2000-01-01 00:00:00' WHERE state = 'queued'"
        ))
        .execute(&mut self.db.connect())
        .unwrap();
    }

    pub fn count(&self, table: &str) -> i64 {
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut c = self.db.connect();
        diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {table}"))
            .get_result::<N>(&mut c)
            .unwrap()
            .n
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            let _ = self.rt.block_on(running.stop());
        }
    }
}

/// A real SMTP server (aiosmtpd, `tests/smtp_sink.py`) on a free loopback port that keeps
/// each message as JSON. `TEST_PYTHON` names the Python with aiosmtpd
/// (scripts/test.sh makes one); default `python3`.
pub struct SmtpSink {
    pub port: u16,
    pub dir: std::path::PathBuf,
    child: Option<std::process::Child>,
}

impl SmtpSink {
    pub fn start() -> SmtpSink {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!(
            "licentia-smtp-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        let mut sink = SmtpSink {
            port,
            dir,
            child: None,
        };
        sink.run();
        sink
    }

    /// A port that nothing listens on yet (start the sink there later with `run`).
    pub fn stopped() -> SmtpSink {
        let mut s = SmtpSink::start();
        s.stop();
        s
    }

    pub fn run(&mut self) {
        use std::io::BufRead;
        let python = std::env::var("TEST_PYTHON").unwrap_or_else(|_| "python3".into());
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/smtp_sink.py");
        let mut child = std::process::Command::new(&python)
            .arg(script)
            .arg(self.port.to_string())
            .arg(&self.dir)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {python}: {e}"));
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(
            line.trim(),
            "READY",
            "the SMTP sink did not start: {python} needs aiosmtpd (scripts/test.sh installs \
             it in a virtual environment and sets TEST_PYTHON)"
        );
        self.child = Some(child);
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Every message received so far, oldest first.
    pub fn mails(&self) -> Vec<Value> {
        let mut files: Vec<_> = match std::fs::read_dir(&self.dir) {
            Ok(d) => d
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect(),
            Err(_) => vec![],
        };
        files.sort();
        files
            .iter()
            .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
            .collect()
    }

    /// Waits (up to `secs`) until at least `n` messages arrived.
    pub fn wait_for(&self, n: usize, secs: u64) -> Vec<Value> {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            let m = self.mails();
            if m.len() >= n || std::time::Instant::now() > until {
                return m;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn order(erp_id: &str, customer: &str, lines: &[(&str, i64)]) -> Value {
    serde_json::json!({
        "source": "erp",
        "erp_order_id": erp_id,
        "customer": {"external_id": customer, "name": "Customer", "email": "buyer@example.com", "locale": "de"},
        "lines": lines.iter().map(|(i, q)| serde_json::json!({"item_id": i, "quantity": q})).collect::<Vec<_>>(),
    })
}

/// A second server process-alike on the same database: its own pool, writer and HTTP server.
pub struct Node {
    pub base: String,
    rt: tokio::runtime::Runtime,
    running: Option<licentia::app::Running>,
}

impl TestApp {
    pub fn second_node(&self) -> Node {
        self.second_node_with(|_| {})
    }

    /// A second node whose configuration differs by `tweak`.
    pub fn second_node_with(&self, tweak: impl FnOnce(&mut Config)) -> Node {
        let mut config = self.config.clone();
        tweak(&mut config);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let running = rt.block_on(licentia::app::start(config)).unwrap();
        Node {
            base: format!("http://{}", running.addr),
            rt,
            running: Some(running),
        }
    }
}

impl Node {
    /// As `TestApp::run_pending_workers`, on this node.
    pub fn run_pending_workers(&self) {
        let running = self.running.as_ref().expect("running");
        self.rt.block_on(running.run_pending_workers()).unwrap();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            let _ = self.rt.block_on(running.stop());
        }
    }
}

fn with_auth(req: ureq::Request, auth: Option<(&str, &str)>) -> ureq::Request {
    use base64::Engine;
    match auth {
        Some((u, p)) => req.set(
            "Authorization",
            &format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            ),
        ),
        None => req,
    }
}

pub fn call_at(
    base: &str,
    method: &str,
    path: &str,
    auth: Option<(&str, &str)>,
    body: Option<Value>,
) -> (u16, Value) {
    let req = with_auth(ureq::request(method, &format!("{base}{path}")), auth);
    let res = match body {
        Some(b) => req.send_json(b),
        None => req.call(),
    };
    answer(method, path, res)
}

/// Status and body (JSON, or the text as a JSON string) of any answer, errors included.
fn answer(method: &str, path: &str, res: Result<ureq::Response, ureq::Error>) -> (u16, Value) {
    let resp = match res {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {path}: {e}"),
    };
    let status = resp.status();
    let text = resp.into_string().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}
