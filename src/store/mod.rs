//! Storage: one pool of readers and one writer thread that commits the writes of many
//! concurrent requests in one transaction (group commit), on SQLite or PostgreSQL.
//!
//! Named queries live in one file per table family; services call them and build no diesel
//! queries of their own.
pub mod admin;
pub mod approvals;
pub mod blacklist;
pub mod checkpoints;
pub mod cloud;
pub mod contact;
pub mod containers;
pub mod customers;
pub mod downloads;
pub mod firms;
pub mod generated;
pub mod history;
pub mod items;
pub mod job_runs;
pub mod licenses;
pub mod mirrors;
pub mod nonces;
pub mod notifications;
pub mod orders;
pub mod outbox;
pub mod portal;
pub mod production;
pub mod queue;
pub mod quota;
pub mod reports;
pub mod requests;
pub mod retention;
pub mod saml;
pub mod schema;
pub mod settings;
pub mod tickets;
pub mod units;
pub mod updates;
pub mod users;
pub mod webhooks;
pub mod withdrawals;
pub mod writebacks;
mod writer;

use writer::Writers;
pub use writer::{finish_writers, writer_tag, WriterStats};

use std::sync::Arc;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection, R2D2Connection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::error::{Error, Result};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("diesel-migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("diesel-migrations/postgres");

#[derive(diesel::MultiConnection)]
pub enum Conn {
    Sqlite(diesel::SqliteConnection),
    Pg(diesel::PgConnection),
}

/// Runs `f` in one read-only transaction that sees a single snapshot of the database, so
/// that facts gathered by several queries belong together (PostgreSQL: REPEATABLE READ;
/// SQLite: one transaction, which in WAL mode reads one snapshot from its first read on).
/// Without it, a write committed between two of the queries makes facts that never held
/// at once.
pub fn snapshot<T>(c: &mut Conn, f: impl FnOnce(&mut Conn) -> Result<T>) -> Result<T> {
    use diesel::connection::Connection;
    use diesel::RunQueryDsl;
    c.transaction(|c| {
        if matches!(c, Conn::Pg(_)) {
            diesel::sql_query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(c)?;
        }
        f(c)
    })
}

/// Runs `$body` with `$x` bound to the backend's own connection (the body is compiled for
/// both). The multi-backend connection writes the SQL text of every query anew, even of one
/// it keeps prepared; on the backend's own connection a query whose type fixes its text is
/// found in the statement cache by that type. Used for the statements of every activation
/// and order.
#[macro_export]
macro_rules! on_backend {
    ($conn:expr, $x:ident => $body:expr) => {
        match $conn {
            $crate::store::Conn::Sqlite($x) => $body,
            $crate::store::Conn::Pg($x) => $body,
        }
    };
}

/// An UPDATE or INSERT kept prepared, under its SQL text, like a SELECT. Diesel prepares
/// those anew on every run because a changeset with optional fields can change the text
/// without changing the type; keyed by the text itself, a kept statement always fits.
/// Run it with `load` or `get_result` (an UPDATE with a RETURNING clause): `execute` hands
/// the statement on by reference, and the reference does not keep it prepared.
#[derive(Debug, Clone, Copy)]
pub struct Reused<Q>(pub Q);

impl<Q> diesel::query_builder::QueryId for Reused<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q, DB> diesel::query_builder::QueryFragment<DB> for Reused<Q>
where
    DB: diesel::backend::Backend,
    Q: diesel::query_builder::QueryFragment<DB>,
{
    fn walk_ast<'b>(
        &'b self,
        pass: diesel::query_builder::AstPass<'_, 'b, DB>,
    ) -> diesel::QueryResult<()> {
        self.0.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &DB) -> diesel::QueryResult<bool> {
        Ok(true)
    }
}

impl<Q: diesel::query_builder::Query> diesel::query_builder::Query for Reused<Q> {
    type SqlType = Q::SqlType;
}

impl<Q, C> RunQueryDsl<C> for Reused<Q> {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where the database is: `postgres://…`, `sqlite://path`, or a bare path (SQLite).
#[derive(Debug, Clone)]
pub struct DbUrl {
    pub backend: Backend,
    pub target: String,
}

impl DbUrl {
    pub fn parse(url: &str) -> Result<DbUrl> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(DbUrl {
                backend: Backend::Postgres,
                target: url.to_string(),
            })
        } else if let Some(path) = url.strip_prefix("sqlite://") {
            Ok(DbUrl {
                backend: Backend::Sqlite,
                target: path.to_string(),
            })
        } else if url.contains("://") {
            Err(Error::invalid(
                "database_url",
                "scheme must be sqlite:// or postgres://",
            ))
        } else if url.is_empty() {
            Err(Error::invalid("database_url", "must not be empty"))
        } else {
            Ok(DbUrl {
                backend: Backend::Sqlite,
                target: url.to_string(),
            })
        }
    }
}

/// Establishes connections of the backend the URL names (the derived `establish` would try
/// every backend and hide the real error) and sets SQLite's pragmas on each.
#[derive(Clone)]
struct Manager {
    url: DbUrl,
    writer: bool,
}

impl Manager {
    fn connect(&self) -> std::result::Result<Conn, diesel::ConnectionError> {
        match self.url.backend {
            Backend::Postgres => {
                let mut c = diesel::PgConnection::establish(&self.url.target)?;
                // Writers look rows up one at a time. On the few rows a new database's
                // statistics show, the planner puts a Memoize cache under the one-row inner
                // side of the contact query, built and dropped on every run: measured as about
                // 3% of the PostgreSQL processes' CPU per activation round trip.
                if self.writer {
                    c.batch_execute("SET enable_memoize = off")
                        .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                }
                Ok(Conn::Pg(c))
            }
            Backend::Sqlite => {
                stable_sqlite_plans();
                let mut c = diesel::SqliteConnection::establish(&self.url.target)?;
                // synchronous=FULL on the writer: an update, ticket or lock never leaves the
                // server before the commit it depends on is on disk. temp_store=MEMORY keeps
                // the job savepoints' sub-journals in memory: otherwise SQLite spills them to
                // a temporary file it creates and writes during the transaction.
                let sync = if self.writer { "FULL" } else { "NORMAL" };
                c.batch_execute(&format!(
                    "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; \
                     PRAGMA foreign_keys = ON; PRAGMA synchronous = {sync}; \
                     PRAGMA temp_store = MEMORY;"
                ))
                .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                Ok(Conn::Sqlite(c))
            }
        }
    }
}

/// Makes every SQLite connection this process opens keep its query plans whatever values
/// are bound (SQLITE_DBCONFIG_ENABLE_QPSG). Without it a statement whose plan could depend
/// on a bound value (any `LIMIT ?`, which diesel writes for `.first()`) is compiled again
/// on every execution, and the statement cache saves nothing: measured as a fifth of the
/// writer's time in the activation benchmark.
fn stable_sqlite_plans() {
    use libsqlite3_sys as ffi;
    use std::ffi::{c_char, c_int};
    unsafe extern "C" fn on_open(
        db: *mut ffi::sqlite3,
        _err: *mut *mut c_char,
        _api: *const ffi::sqlite3_api_routines,
    ) -> c_int {
        // SAFETY: SQLite calls this with the connection it is opening; the option takes an
        // int and a nullable int pointer for the previous value.
        unsafe {
            ffi::sqlite3_db_config(
                db,
                ffi::SQLITE_DBCONFIG_ENABLE_QPSG,
                1 as c_int,
                std::ptr::null_mut::<c_int>(),
            )
        }
    }
    static ONCE: std::sync::Once = std::sync::Once::new();
    // SAFETY: registers a function with the signature SQLite expects for auto extensions;
    // it holds no state and lives for the whole process.
    ONCE.call_once(|| unsafe {
        ffi::sqlite3_auto_extension(Some(on_open));
    });
}

impl ManageConnection for Manager {
    type Connection = Conn;
    type Error = r2d2::Error;
    fn connect(&self) -> std::result::Result<Conn, r2d2::Error> {
        Manager::connect(self).map_err(r2d2::Error::ConnectionError)
    }
    fn is_valid(&self, conn: &mut Conn) -> std::result::Result<(), r2d2::Error> {
        conn.ping().map_err(r2d2::Error::QueryError)
    }
    fn has_broken(&self, conn: &mut Conn) -> bool {
        conn.is_broken()
    }
}

/// The database handle shared by every request: readers from a pool, writes through the
/// group-commit writer.
#[derive(Clone)]
pub struct Db {
    pub backend: Backend,
    readers: r2d2::Pool<Manager>,
    writer: Writers,
    pub writer_stats: Arc<WriterStats>,
}

pub struct DbOptions {
    pub pool_size: u32,
    pub writer_batch_max: usize,
    /// Writer threads (connections) for PostgreSQL; SQLite always has one.
    pub pg_writers: usize,
    /// Most jobs in one group transaction on PostgreSQL (`writer_batch_max` is SQLite's).
    pub pg_writer_batch_max: usize,
}

impl Db {
    /// Connects, runs the migrations, builds the pool and starts the writer thread.
    pub fn open(url: &str, opts: &DbOptions) -> Result<Db> {
        let url = DbUrl::parse(url)?;
        if url.backend == Backend::Sqlite {
            if let Some(dir) = std::path::Path::new(&url.target).parent() {
                if !dir.as_os_str().is_empty() {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        Error::internal(format!("cannot create {}: {e}", dir.display()))
                    })?;
                }
            }
        }
        let manager = Manager {
            url: url.clone(),
            writer: true,
        };
        let connect = || {
            manager
                .connect()
                .map_err(|e| Error::internal(format!("cannot connect to the database: {e}")))
        };
        let mut first = connect()?;
        run_migrations(&mut first)?;
        let readers = r2d2::Pool::builder()
            .max_size(opts.pool_size)
            .connection_timeout(Duration::from_secs(10))
            .build(Manager {
                url: url.clone(),
                writer: false,
            })
            .map_err(|e| Error::internal(format!("cannot build the connection pool: {e}")))?;
        let batch_max = match url.backend {
            Backend::Sqlite => opts.writer_batch_max,
            Backend::Postgres => opts.pg_writer_batch_max,
        }
        .max(1);
        let writers = match url.backend {
            Backend::Sqlite => 1,
            Backend::Postgres => opts.pg_writers.max(1),
        };
        let stats = Arc::new(WriterStats {
            writers: writers as u64,
            ..Default::default()
        });
        let mut conns = vec![first];
        for _ in 1..writers {
            conns.push(connect()?);
        }
        let tx = writer::start(conns, &manager, batch_max, &stats)?;
        Ok(Db {
            backend: url.backend,
            readers,
            writer: tx,
            writer_stats: stats,
        })
    }

    /// Whether the database answers (for the health check).
    pub async fn ping(&self) -> Result<()> {
        self.read(|c| Ok(c.ping()?)).await
    }

    /// Runs `f` on a pooled reader connection, off the async executor.
    pub async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Conn) -> Result<T> + Send + 'static,
    {
        let pool = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool
                .get()
                .map_err(|e| Error::internal(format!("pool: {e}")))?;
            f(&mut conn)
        })
        .await
        .map_err(|e| Error::internal(format!("reader task: {e}")))?
    }

    /// Runs `f` inside the writer's next group transaction; the answer comes back only after
    /// that transaction is committed (durable before delivered). A failing `f` leaves
    /// nothing: the group is rolled back and run again with each write in its own savepoint
    /// (see `group_transaction`), so `f` may run more than once; also again if the database
    /// reports a serialization conflict.
    pub async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnMut(&mut Conn) -> Result<T> + Send + 'static,
    {
        let rx = self.writer.submit(f)?;
        match rx.await {
            Ok(Err(Error::Retry)) => Err(Error::Busy),
            Ok(r) => r,
            // The batch never ran (its transaction could not begin): nothing was written.
            Err(_) => Err(Error::Busy),
        }
    }
}

pub fn run_migrations(conn: &mut Conn) -> Result<()> {
    let failed = |e: &dyn std::fmt::Display| Error::internal(format!("migrations failed: {e}"));
    match conn {
        // A migration that makes a table again (SQLite cannot drop a column's constraint)
        // drops a table others refer to: as SQLite's procedure for such changes says, they
        // run with foreign keys off, in one transaction with the check of every reference
        // that follows, so that a migration that broke one is undone; then they are on again.
        Conn::Sqlite(c) => {
            // Nothing to run (every start but the first of a version): no check of every row.
            if !c
                .has_pending_migration(SQLITE_MIGRATIONS)
                .map_err(|e| failed(&e))?
            {
                return Ok(());
            }
            c.batch_execute("PRAGMA foreign_keys = OFF")?;
            let ran = c.transaction::<_, Error, _>(|c| {
                c.run_pending_migrations(SQLITE_MIGRATIONS)
                    .map_err(|e| failed(&e))?;
                let broken =
                    diesel::sql_query("SELECT COUNT(*) AS n FROM pragma_foreign_key_check")
                        .get_result::<Count>(c)?;
                match broken.n {
                    0 => Ok(()),
                    n => Err(failed(&format!(
                        "{n} row(s) would refer to rows that are gone; nothing was changed"
                    ))),
                }
            });
            c.batch_execute("PRAGMA foreign_keys = ON")?;
            ran
        }
        Conn::Pg(c) => c
            .run_pending_migrations(POSTGRES_MIGRATIONS)
            .map(|_| ())
            .map_err(|e| failed(&e)),
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Now on the database's clock, in UTC. On PostgreSQL that is the one clock every node
/// sharing the database reads, so a lease one node takes is reckoned the same way by all of
/// them whatever their own clocks say; a SQLite file is used on one machine, whose clock
/// this process reads.
pub fn db_now(conn: &mut Conn) -> Result<chrono::NaiveDateTime> {
    match conn {
        Conn::Sqlite(_) => Ok(crate::service::now()),
        Conn::Pg(c) => Ok(
            diesel::select(diesel::dsl::sql::<diesel::sql_types::Timestamp>(
                "clock_timestamp() AT TIME ZONE 'UTC'",
            ))
            .get_result(c)?,
        ),
    }
}

/// Whether a database error is a unique-constraint violation (a concurrent insert won).
pub fn is_unique_violation(e: &diesel::result::Error) -> bool {
    matches!(
        e,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
    )
}

/// The outcome of an insert that another writer may have made first (the same key at the
/// same time): a unique violation asks for the whole write to run again (`Error::Retry`),
/// which then finds the other writer's row.
pub fn unique_or_retry<T>(r: diesel::QueryResult<T>) -> Result<T> {
    match r {
        Err(e) if is_unique_violation(&e) => Err(Error::Retry),
        r => Ok(r?),
    }
}

/// Reads the audit chain head. Writers hold its row lock for the whole group transaction
/// (taken in `group_transaction`), so the chain is appended by one transaction at a time.
pub fn audit_head(conn: &mut Conn) -> Result<(i64, String)> {
    use schema::audit_head::dsl::*;
    Ok(audit_head
        .filter(id.eq(1))
        .select((last_event_id, last_hash))
        .first::<(i64, String)>(conn)?)
}
