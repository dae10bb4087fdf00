//! Background work: the outbox sender, the ERP write-back sender and the job scheduler are
//! workers behind one trait, run by one supervisor that owns their lifetimes. Each worker
//! runs in its own task; each step runs in a task of its own, so a panicking step is logged
//! and its worker made anew instead of silently ending that work until a restart. On
//! shutdown the supervisor stops every worker between steps and waits (bounded) for the
//! step in progress. Tests call `run_pending` instead of sleeping until a worker has looked.
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::Core;
use crate::error::Result;

/// What a step wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// It did something and more may be due: step again at once.
    Now,
    /// Nothing more is due now: step again after this long (or when woken).
    After(Duration),
}

/// A piece of background work.
pub trait Worker: Send + 'static {
    /// For the logs.
    fn name(&self) -> &'static str;

    /// Does what is due now. `stop` says whether the process is shutting down: a step that
    /// loops over many items checks it between items and returns early.
    fn step(
        &mut self,
        core: &Arc<Core>,
        stop: &Stopping,
    ) -> impl Future<Output = Result<Next>> + Send;
}

/// Whether the supervisor has asked its workers to stop.
#[derive(Clone)]
pub struct Stopping(Option<watch::Receiver<bool>>);

impl Stopping {
    /// For work run outside a supervisor (a job run by hand): never stops early.
    pub fn never() -> Stopping {
        Stopping(None)
    }

    pub fn is_set(&self) -> bool {
        self.0.as_ref().is_some_and(|r| *r.borrow())
    }

    async fn wait(&mut self) {
        match &mut self.0 {
            Some(r) => {
                // An error means the supervisor is gone: stop too.
                let _ = r.wait_for(|s| *s).await;
            }
            None => std::future::pending().await,
        }
    }
}

/// How long a worker waits after a failed step before it tries again.
const AFTER_FAILURE: Duration = Duration::from_secs(1);

/// A request to a worker's task.
enum Control {
    /// Step until nothing is due; answer whether any step did something, and the error of
    /// the last failing step.
    RunPending(oneshot::Sender<(bool, Option<String>)>),
}

struct Handle {
    name: &'static str,
    control: mpsc::UnboundedSender<Control>,
    task: JoinHandle<()>,
}

/// Owns the workers of this process: starts them, restarts a worker whose step panicked,
/// and stops them.
pub struct Supervisor {
    core: Arc<Core>,
    workers: Vec<Handle>,
    stop: watch::Sender<bool>,
}

impl Supervisor {
    /// A supervisor with no workers yet.
    pub fn new(core: Arc<Core>) -> Supervisor {
        Supervisor {
            core,
            workers: vec![],
            stop: watch::channel(false).0,
        }
    }

    /// The workers every node runs: the scheduler, the write-back sender, the outbox sender
    /// and the webhook sender (in that order, so that `run_pending` sends the mails a job
    /// queued and the events their sending recorded).
    pub fn start(core: Arc<Core>) -> Supervisor {
        let mut s = Supervisor::new(core);
        s.spawn(super::jobs::Scheduler::new);
        s.spawn(super::connectors::WriteBackSender::new);
        match super::mail::OutboxSender::new(&s.core.config) {
            // The mailer holds no state between mails: a worker made anew may share it.
            Ok(sender) => s.spawn(move || sender.clone()),
            Err(e) => tracing::error!(error = %e, "mail worker not started"),
        }
        s.spawn(super::webhooks::WebhookSender::new);
        s
    }

    /// Starts a worker made by `make`, which makes it anew after a panicking step.
    pub fn spawn<W: Worker>(&mut self, make: impl Fn() -> W + Send + Sync + 'static) {
        let worker = make();
        let name = worker.name();
        let (control, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(
            worker,
            make,
            self.core.clone(),
            rx,
            Stopping(Some(self.stop.subscribe())),
        ));
        self.workers.push(Handle {
            name,
            control,
            task,
        });
    }

    /// Runs every worker's steps until nothing is due for any of them (a job may queue a
    /// mail, so the round is repeated while any step did something). The error of a step
    /// that failed is returned after the round.
    pub async fn run_pending(&self) -> Result<()> {
        for _ in 0..50 {
            let mut worked = false;
            for w in &self.workers {
                let (tx, rx) = oneshot::channel();
                if w.control.send(Control::RunPending(tx)).is_err() {
                    return Err(crate::error::Error::internal(format!(
                        "worker {} has stopped",
                        w.name
                    )));
                }
                match rx.await {
                    Ok((did, None)) => worked |= did,
                    Ok((_, Some(e))) => {
                        return Err(crate::error::Error::internal(format!("{}: {e}", w.name)))
                    }
                    Err(_) => {
                        return Err(crate::error::Error::internal(format!(
                            "worker {} has stopped",
                            w.name
                        )))
                    }
                }
            }
            if !worked {
                return Ok(());
            }
        }
        Err(crate::error::Error::internal(
            "the workers still had work after 50 rounds",
        ))
    }

    /// Stops every worker: none starts another step; the steps in progress get `grace` to
    /// finish and are abandoned after it (a mail or write-back abandoned while being sent
    /// is taken up again when its lease runs out, as after a crash).
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.stop.send(true);
        let deadline = tokio::time::Instant::now() + grace;
        for mut w in self.workers {
            match tokio::time::timeout_at(deadline, &mut w.task).await {
                Ok(_) => tracing::debug!(worker = w.name, "worker stopped"),
                Err(_) => {
                    w.task.abort();
                    tracing::warn!(
                        worker = w.name,
                        grace_ms = grace.as_millis() as u64,
                        "worker step abandoned at shutdown"
                    );
                }
            }
        }
    }
}

/// A task that is aborted when its handle is dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A worker's task: step, wait until the step asked for, a stop or a control request.
async fn run<W: Worker>(
    mut worker: W,
    make: impl Fn() -> W + Send + Sync + 'static,
    core: Arc<Core>,
    mut control: mpsc::UnboundedReceiver<Control>,
    mut stop: Stopping,
) {
    let name = worker.name();
    // Run-pending requests waiting for a step that started after they came.
    let mut waiting: Vec<oneshot::Sender<(bool, Option<String>)>> = vec![];
    let mut worked = false;
    let mut failed: Option<String> = None;
    loop {
        if stop.is_set() {
            break;
        }
        // Its own task, so that a panic in it is caught here; aborted with this one, so that
        // a step abandoned at shutdown does not go on holding the core.
        let mut step = AbortOnDrop({
            let (core, stop) = (core.clone(), stop.clone());
            tokio::spawn(async move {
                let next = worker.step(&core, &stop).await;
                (worker, next)
            })
        });
        let next = match (&mut step.0).await {
            Ok((w, next)) => {
                worker = w;
                next.map_err(|e| e.to_string())
            }
            Err(e) if e.is_panic() => {
                tracing::error!(worker = name, error = %e, "worker step panicked; worker made anew");
                worker = make();
                Err(format!("step panicked: {e}"))
            }
            // Cancelled: the runtime is going away.
            Err(_) => return,
        };
        let wait = match next {
            Ok(Next::Now) => {
                worked = true;
                continue;
            }
            Ok(Next::After(d)) => d,
            Err(e) => {
                tracing::warn!(worker = name, error = %e, "worker step failed");
                failed = Some(e);
                AFTER_FAILURE
            }
        };
        for tx in waiting.drain(..) {
            let _ = tx.send((worked, failed.clone()));
        }
        worked = false;
        failed = None;
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait() => {}
            c = control.recv() => match c {
                Some(Control::RunPending(tx)) => waiting.push(tx),
                // The supervisor is gone.
                None => break,
            },
        }
    }
    tracing::debug!(worker = name, "worker stopping");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Steps each call: `Now` while it has items, then `After`; panics on request.
    struct Counting {
        items: Arc<std::sync::atomic::AtomicUsize>,
        done: Arc<std::sync::atomic::AtomicUsize>,
        panic_once: Arc<std::sync::atomic::AtomicBool>,
    }

    impl Worker for Counting {
        fn name(&self) -> &'static str {
            "counting"
        }

        async fn step(&mut self, _core: &Arc<Core>, _stop: &Stopping) -> Result<Next> {
            use std::sync::atomic::Ordering::SeqCst;
            if self.panic_once.swap(false, SeqCst) {
                panic!("on purpose");
            }
            if self.items.load(SeqCst) == 0 {
                return Ok(Next::After(Duration::from_secs(3600)));
            }
            self.items.fetch_sub(1, SeqCst);
            self.done.fetch_add(1, SeqCst);
            Ok(Next::Now)
        }
    }

    #[test]
    fn run_pending_steps_until_nothing_is_due_and_a_panicking_step_is_made_anew() {
        use std::sync::atomic::Ordering::SeqCst;
        let dir = std::env::temp_dir().join(format!("licentia-workers-{}", std::process::id()));
        let config = crate::config::Config {
            database_url: format!("sqlite://{}", dir.join("db").display()),
            data_dir: dir.clone(),
            master_key: crate::config::Secret("33".repeat(32)),
            connectors_dir: String::new(),
            ..Default::default()
        };
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let core = Arc::new(Core::open(config).await.unwrap());
            let items = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let panic_once = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let mut s = Supervisor::new(core);
            let (i, d, p) = (items.clone(), done.clone(), panic_once.clone());
            s.spawn(move || Counting {
                items: i.clone(),
                done: d.clone(),
                panic_once: p.clone(),
            });
            s.run_pending().await.unwrap();
            // The worker sleeps for an hour; run_pending does not wait for that.
            items.store(5, SeqCst);
            s.run_pending().await.unwrap();
            assert_eq!((items.load(SeqCst), done.load(SeqCst)), (0, 5));
            // A panicking step is reported once and the worker goes on, made anew.
            panic_once.store(true, SeqCst);
            let e = s.run_pending().await.unwrap_err().to_string();
            assert!(e.contains("panicked"), "{e}");
            items.store(2, SeqCst);
            s.run_pending().await.unwrap();
            assert_eq!(done.load(SeqCst), 7);
            let t = std::time::Instant::now();
            s.shutdown(Duration::from_secs(5)).await;
            assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        });
        drop(rt);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
