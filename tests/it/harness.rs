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

pub fn backend() -> String {
    std::env::var("TEST_BACKEND").unwrap_or_else(|_| "sqlite".into())
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
            None => licentia::store::Conn::Sqlite(
                diesel::SqliteConnection::establish(self.url.strip_prefix("sqlite://").unwrap())
                    .unwrap(),
            ),
        }
    }

    pub fn config(&self) -> Config {
        Config {
            database_url: self.url.clone(),
            data_dir: self.dir.clone(),
            listen: "127.0.0.1:0".into(),
            master_key: Secret("11".repeat(32)),
            max_body_bytes: 64 * 1024,
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
    handle: actix_web::dev::ServerHandle,
    pub db: TestDb,
}

impl TestApp {
    /// A running server with the demo catalog and an admin user (password `ADMIN_PW`).
    pub fn start() -> TestApp {
        let db = TestDb::new();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let running = rt.block_on(licentia::app::start(db.config())).unwrap();
        let handle = running.server.handle();
        rt.spawn(running.server);
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
            handle,
            db,
        }
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
        self.rt.block_on(self.handle.stop(false));
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
    handle: actix_web::dev::ServerHandle,
}

impl TestApp {
    pub fn second_node(&self) -> Node {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let running = rt.block_on(licentia::app::start(self.db.config())).unwrap();
        let handle = running.server.handle();
        rt.spawn(running.server);
        Node {
            base: format!("http://{}", running.addr),
            rt,
            handle,
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.rt.block_on(self.handle.stop(false));
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

fn call_at(
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
