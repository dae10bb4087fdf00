//! The group-commit writers: one thread per writer connection (one on SQLite) takes the
//! writes waiting, runs them in one transaction and answers each only after the commit
//! (durable before delivered). A write that fails leaves nothing: the group is rolled back
//! and run again with each write in its own savepoint.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::r2d2::R2D2Connection;
use tokio::sync::oneshot;

use super::{history, Conn, Manager};
use crate::error::{Error, Result};

/// A write waiting for the writer.
type Job = Box<dyn Pending>;

/// Where writes are handed to the writer threads.
#[derive(Clone)]
pub(super) struct Writers(mpsc::SyncSender<Job>);

/// Starts one writer thread per connection, taking writes from the channel returned.
pub(super) fn start(
    conns: Vec<Conn>,
    manager: &Manager,
    batch_max: usize,
    stats: &Arc<WriterStats>,
) -> Result<Writers> {
    let (tx, rx) = mpsc::sync_channel::<Job>(4096);
    let rx = Arc::new(Mutex::new(rx));
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
    Ok(Writers(tx))
}

impl Writers {
    /// Hands `f` to the writers; the answer arrives once its group transaction has ended.
    pub(super) fn submit<T, F>(&self, f: F) -> Result<oneshot::Receiver<Result<T>>>
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
        self.0.try_send(job).map_err(|e| match e {
            mpsc::TrySendError::Full(_) => Error::Busy,
            mpsc::TrySendError::Disconnected(_) => Error::internal("the writer has stopped"),
        })?;
        Ok(rx)
    }
}

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
