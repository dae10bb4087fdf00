//! Storage: one pool of readers and one writer thread that commits the writes of many
//! concurrent requests in one transaction (group commit), on SQLite or PostgreSQL.
//!
//! Named queries live in one file per table family; services call them and build no diesel
//! queries of their own.
pub mod approvals;
pub mod blacklist;
pub mod contact;
pub mod containers;
pub mod customers;
pub mod firms;
pub mod history;
pub mod items;
pub mod licenses;
pub mod mirrors;
pub mod nonces;
pub mod orders;
pub mod quota;
pub mod reports;
pub mod requests;
pub mod schema;
pub mod settings;
pub mod tickets;
pub mod unique;
pub mod updates;
pub mod users;
pub mod withdrawals;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection, R2D2Connection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use tokio::sync::oneshot;

use crate::error::{Error, Result};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("diesel-migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("diesel-migrations/postgres");

#[derive(diesel::MultiConnection)]
pub enum Conn {
    Sqlite(diesel::SqliteConnection),
    Pg(diesel::PgConnection),
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

/// A write waiting for the writer.
type Job = Box<dyn Pending>;

/// How a write ran.
enum Ran {
    Done,
    /// It failed, and its writes must be undone; `retry` if it asked to run again.
    Failed {
        retry: bool,
    },
}

trait Pending: Send {
    /// Runs the write in the writer's open group transaction. `alone` gives it its own
    /// savepoint: a failure then undoes its own writes only, and it always reports `Done`.
    fn run(&mut self, conn: &mut Conn, alone: bool) -> Ran;
    /// Answers the caller once the group's commit is known.
    fn answer(self: Box<Self>, commit_error: Option<&Error>);
    /// When the write was handed to the writers.
    fn queued(&self) -> Instant;
}

struct Write<T, F> {
    queued: Instant,
    f: F,
    outcome: Option<Result<T>>,
    tx: oneshot::Sender<Result<T>>,
}

impl<T, F> Pending for Write<T, F>
where
    T: Send,
    F: FnMut(&mut Conn) -> Result<T> + Send,
{
    fn run(&mut self, conn: &mut Conn, alone: bool) -> Ran {
        if !alone {
            let outcome = unpanicked(|| (self.f)(conn));
            let ran = match &outcome {
                Ok(_) => Ran::Done,
                Err(e) => Ran::Failed {
                    retry: matches!(e, Error::Retry),
                },
            };
            self.outcome = Some(outcome);
            return ran;
        }
        let mut outcome = run_in_savepoint(conn, &mut self.f);
        for _ in 0..3 {
            match &outcome {
                Err(Error::Retry) => outcome = run_in_savepoint(conn, &mut self.f),
                _ => break,
            }
        }
        self.outcome = Some(outcome);
        Ran::Done
    }

    fn answer(self: Box<Self>, commit_error: Option<&Error>) {
        let answer = match (commit_error, self.outcome) {
            // Nothing was committed, and trying again may work.
            (Some(Error::Busy | Error::Retry), _) => Err(Error::Busy),
            (Some(e), _) => Err(Error::internal(format!("commit failed: {e}"))),
            (None, Some(outcome)) => outcome,
            (None, None) => Err(Error::internal("the write did not run")),
        };
        let _ = self.tx.send(answer);
    }

    fn queued(&self) -> Instant {
        self.queued
    }
}

/// What the writers did, for `/metrics`: writes and group transactions, and where a write's
/// time went (waiting for a writer, then in its group until the commit). Times are summed
/// in microseconds.
#[derive(Debug, Default)]
pub struct WriterStats {
    pub writers: u64,
    pub writes: AtomicU64,
    pub groups: AtomicU64,
    /// Over writes: from being handed over until a writer began their group.
    pub queue_us: AtomicU64,
    /// Over writes: from their group's begin until its commit (or rollback).
    pub in_group_us: AtomicU64,
    /// Over groups: begin to commit, the writers' busy time.
    pub group_us: AtomicU64,
}

impl WriterStats {
    fn group(&self, jobs: &[Job], began: Instant) {
        let took = began.elapsed().as_micros() as u64;
        let waited: u64 = jobs
            .iter()
            .map(|j| began.saturating_duration_since(j.queued()).as_micros() as u64)
            .sum();
        let n = jobs.len() as u64;
        self.writes.fetch_add(n, Ordering::Relaxed);
        self.groups.fetch_add(1, Ordering::Relaxed);
        self.queue_us.fetch_add(waited, Ordering::Relaxed);
        self.in_group_us.fetch_add(took * n, Ordering::Relaxed);
        self.group_us.fetch_add(took, Ordering::Relaxed);
    }
}

/// The database handle shared by every request: readers from a pool, writes through the
/// group-commit writer.
#[derive(Clone)]
pub struct Db {
    pub backend: Backend,
    readers: r2d2::Pool<Manager>,
    writer: mpsc::SyncSender<Job>,
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
        let (tx, rx) = mpsc::sync_channel::<Job>(4096);
        let rx = Arc::new(Mutex::new(rx));
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
        for (n, conn) in conns.into_iter().enumerate() {
            let (rx, manager, stats) = (rx.clone(), manager.clone(), stats.clone());
            let handle = thread::Builder::new()
                .name(format!("licentia-writer-{n}"))
                .spawn(move || {
                    WRITER.with(|w| w.set(Some(n)));
                    writer_loop(conn, &manager, rx, batch_max, &stats)
                })
                .map_err(|e| Error::internal(format!("cannot start the writer: {e}")))?;
            WRITER_THREADS.lock().expect("writer threads").push(handle);
        }
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
        let (tx, rx) = oneshot::channel::<Result<T>>();
        let job: Job = Box::new(Write {
            queued: Instant::now(),
            f,
            outcome: None,
            tx,
        });
        self.writer.try_send(job).map_err(|e| match e {
            mpsc::TrySendError::Full(_) => Error::Busy,
            mpsc::TrySendError::Disconnected(_) => Error::internal("the writer has stopped"),
        })?;
        match rx.await {
            Ok(Err(Error::Retry)) => Err(Error::Busy),
            Ok(r) => r,
            // The batch never ran (its transaction could not begin): nothing was written.
            Err(_) => Err(Error::Busy),
        }
    }
}

/// The writer threads started by this process (see `finish_writers`).
static WRITER_THREADS: Mutex<Vec<thread::JoinHandle<()>>> = Mutex::new(Vec::new());

/// Waits (up to `limit`) for the writer threads of databases no longer in use to close
/// their connections, so that a command-line process does not exit while a thread is still
/// inside the database client library (seen: a PostgreSQL client killed by a signal at exit).
pub fn finish_writers(limit: Duration) {
    let until = std::time::Instant::now() + limit;
    let handles: Vec<_> = WRITER_THREADS
        .lock()
        .expect("writer threads")
        .drain(..)
        .collect();
    for h in handles {
        while !h.is_finished() && std::time::Instant::now() < until {
            thread::sleep(Duration::from_millis(5));
        }
        if h.is_finished() {
            let _ = h.join();
        }
    }
}

thread_local! {
    static WRITER: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// A number for the writer thread running the current job that no other writer, of this
/// process or of another node, is likely to have: rows only this writer updates (counter
/// shards) never wait for another writer's open transaction.
pub fn writer_tag() -> i64 {
    static NODE: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    let node = *NODE.get_or_init(|| {
        let mut b = [0u8; 4];
        openssl::rand::rand_bytes(&mut b).expect("CSPRNG");
        i64::from(u32::from_le_bytes(b) % 1_000_000)
    });
    node * 64 + WRITER.with(|w| w.get()).unwrap_or(63) as i64
}

thread_local! {
    /// Whether the job savepoint of the group this writer runs again (opened with the
    /// transaction, see `group_transaction`) holds the previous job's writes; rolled back
    /// to, it holds nothing.
    static SAVEPOINT_USED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs one job of a group in its own savepoint, so that a job that fails leaves nothing
/// and the others go on. The first savepoint opens with the transaction and each next one
/// in the round trip that releases the previous (on PostgreSQL every statement is one
/// round trip).
/// Runs a write's closure; a panic in it becomes that write's error, so the group goes on
/// without it (rolled back and run again, each write in its savepoint) and the writer thread,
/// the only one on SQLite, lives on.
fn unpanicked<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|p| {
        let why = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(Error::internal(format!("a write panicked: {why}")))
    })
}

fn run_in_savepoint<T>(conn: &mut Conn, f: &mut impl FnMut(&mut Conn) -> Result<T>) -> Result<T> {
    let mark = history::mark();
    if SAVEPOINT_USED.get() {
        conn.batch_execute("RELEASE SAVEPOINT job; SAVEPOINT job")?;
    }
    SAVEPOINT_USED.set(true);
    let outcome = unpanicked(|| f(conn));
    if outcome.is_err() {
        history::cut_back(mark);
        // The savepoint stays open, empty, after it is rolled back to.
        if let Err(e) = conn.batch_execute("ROLLBACK TO SAVEPOINT job") {
            return Err(Error::internal(format!("cannot undo a failed write: {e}")));
        }
        SAVEPOINT_USED.set(false);
    }
    outcome
}

fn writer_loop(
    mut conn: Conn,
    manager: &Manager,
    rx: Arc<Mutex<mpsc::Receiver<Job>>>,
    batch_max: usize,
    stats: &WriterStats,
) {
    loop {
        let mut batch = Vec::new();
        {
            let rx = match rx.lock() {
                Ok(rx) => rx,
                Err(_) => return,
            };
            match rx.recv() {
                Ok(first) => batch.push(first),
                Err(_) => return,
            }
            while batch.len() < batch_max {
                match rx.try_recv() {
                    Ok(j) => batch.push(j),
                    Err(_) => break,
                }
            }
        }
        let began = Instant::now();
        let committed = group_transaction(&mut conn, &mut batch);
        stats.group(&batch, began);
        let err = committed.err();
        if let Some(e) = &err {
            tracing::error!(error = %e, jobs = batch.len(), "group commit failed");
        }
        for job in batch {
            job.answer(err.as_ref());
        }
        // A lost connection (database restarted, network cut) is made anew before the next
        // group, rather than failing every write from now on.
        while err.is_some() && conn.ping().is_err() {
            match manager.connect() {
                Ok(c) => conn = c,
                Err(e) => {
                    tracing::error!(error = %e, "writer cannot reconnect; retrying");
                    thread::sleep(Duration::from_secs(1));
                }
            }
        }
    }
}

/// One transaction around a batch of jobs. They run first one after the other with no
/// savepoint between them (on PostgreSQL each savepoint is one more round trip per job). If
/// one fails, the transaction is rolled back and the batch runs again with each job in its
/// own savepoint, so that the failing one leaves nothing and the others go on (a batch of
/// one that failed is just rolled back). SQLite begins IMMEDIATE, so that another process
/// writing the same file (a second node, the CLI) waits on busy_timeout instead of failing
/// on a lock upgrade.
fn group_transaction(conn: &mut Conn, jobs: &mut [Job]) -> Result<()> {
    begin(conn, false)?;
    history::begin();
    let mut failed = None;
    for job in jobs.iter_mut() {
        if let Ran::Failed { retry } = job.run(conn, false) {
            failed = Some(retry);
            break;
        }
    }
    if let Some(retry) = failed {
        history::end();
        rollback(conn)?;
        if jobs.len() == 1 && !retry {
            return Ok(());
        }
        begin(conn, true)?;
        SAVEPOINT_USED.set(false);
        history::begin();
        for job in jobs.iter_mut() {
            job.run(conn, true);
        }
        // On SQLite the last job's savepoint is released before the events are appended, so
        // that the append does not copy every page it touches into that savepoint's
        // sub-journal (on PostgreSQL that would be one more round trip; the commit releases it).
        let released = match conn {
            Conn::Sqlite(c) => c.batch_execute("RELEASE SAVEPOINT job"),
            Conn::Pg(_) => Ok(()),
        };
        if let Err(e) = released {
            history::end();
            rollback(conn)?;
            return Err(e.into());
        }
    }
    let appended = history::append(conn);
    history::end();
    let committed = appended.and_then(|_| {
        use diesel::connection::{AnsiTransactionManager, TransactionManager};
        match conn {
            Conn::Sqlite(c) => AnsiTransactionManager::commit_transaction(c),
            Conn::Pg(c) => AnsiTransactionManager::commit_transaction(c),
        }
        .map_err(Error::from)
    });
    if let Err(e) = committed {
        let _ = rollback(conn);
        return Err(e);
    }
    Ok(())
}

/// Begins a group transaction; `with_savepoint` opens the first job's savepoint in the
/// same round trip.
fn begin(conn: &mut Conn, with_savepoint: bool) -> Result<()> {
    use diesel::connection::AnsiTransactionManager;
    let sql = match (&conn, with_savepoint) {
        (Conn::Sqlite(_), false) => "BEGIN IMMEDIATE",
        (Conn::Sqlite(_), true) => "BEGIN IMMEDIATE; SAVEPOINT job",
        (Conn::Pg(_), false) => "BEGIN",
        (Conn::Pg(_), true) => "BEGIN; SAVEPOINT job",
    };
    let begun = match conn {
        Conn::Sqlite(c) => AnsiTransactionManager::begin_transaction_sql(c, sql),
        Conn::Pg(c) => AnsiTransactionManager::begin_transaction_sql(c, sql),
    };
    // Another process (a second node, the CLI) held SQLite's write lock for longer than
    // busy_timeout: the writes may be sent again, so they are answered busy.
    begun.map_err(|e| match e {
        diesel::result::Error::DatabaseError(_, ref info)
            if info.message().contains("database is locked") =>
        {
            Error::Busy
        }
        e => e.into(),
    })
}

fn rollback(conn: &mut Conn) -> Result<()> {
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    match conn {
        Conn::Sqlite(c) => AnsiTransactionManager::rollback_transaction(c)?,
        Conn::Pg(c) => AnsiTransactionManager::rollback_transaction(c)?,
    }
    Ok(())
}

pub fn run_migrations(conn: &mut Conn) -> Result<()> {
    let res = match conn {
        Conn::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|_| ()),
        Conn::Pg(c) => c.run_pending_migrations(POSTGRES_MIGRATIONS).map(|_| ()),
    };
    res.map_err(|e| Error::internal(format!("migrations failed: {e}")))
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
