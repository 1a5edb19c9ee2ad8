//! A partition's OS thread, how the handle learns that its work has ended,
//! and how the next runtime takes the thread up again.
//!
//! The handle waits for the thread's last word, sent once everything the
//! partition held (its kernel, its agents, their tokio tasks) has been
//! dropped, and not for the OS thread's exit. That exit frees the stack and
//! the allocator's thread cache, with a TLB shoot-down on every core. It
//! took 60–100 µs per thread on the 2-core machines here, more than the
//! whole run of a small model.
//!
//! Starting a thread costs 40–60 µs more here, so a thread whose
//! partition has ended waits for the next partition of the same name and
//! core, as tokio's blocking pool keeps its threads: for [`KEEP_ALIVE`],
//! then it ends. A program that runs many short simulations one after
//! another (a parameter sweep, replications) starts its partitions on warm
//! threads. Only the thread is kept: each partition builds its own tokio
//! runtime and drops it before its last word, which waits for the tasks of
//! its blocking pool (`tokio::fs`, `spawn_blocking`) and ends whatever was
//! spawned on it, so nothing of one runtime runs on into the next. What
//! agents leave in their own thread-locals stays with the thread until it
//! ends. A thread whose body panicked is not kept.
//!
//! A panic that ended the body is in its last word, so a partition that
//! died is still reported by name.

use crate::partition::panic_message;
use core_affinity::CoreId;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::oneshot;

/// How long a thread whose partition has ended waits for another.
pub(crate) const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// A partition's work and where its last word goes.
struct Job {
    body: Box<dyn FnOnce() + Send>,
    last_word: oneshot::Sender<Result<(), String>>,
}

/// A thread waiting for its next partition.
struct Idle {
    name: String,
    core: Option<CoreId>,
    /// Tells the waiting thread its next job.
    jobs: mpsc::Sender<Job>,
    /// Tells this entry from another of the same name and core.
    serial: u64,
}

/// The threads waiting for a partition. Touched twice per partition run
/// (taken at start, given back at the end), never on a message's path.
static IDLE: Mutex<Vec<Idle>> = Mutex::new(Vec::new());

/// Numbers the idle entries.
static SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A running partition's thread.
pub(crate) struct PartitionThread {
    /// `Err(message)` if the thread's body panicked.
    last_word: oneshot::Receiver<Result<(), String>>,
}

impl PartitionThread {
    /// Runs `body` on a thread named `name` pinned to `core` (quietly
    /// unpinned if the OS refuses): one waiting for such work if there is
    /// one, else a new one.
    pub fn spawn(
        name: String,
        core: Option<CoreId>,
        body: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<Self> {
        let (tx, last_word) = oneshot::channel();
        let mut job = Job { body: Box::new(body), last_word: tx };
        loop {
            let idle = {
                let mut idle = IDLE.lock().unwrap_or_else(|e| e.into_inner());
                let found = idle.iter().rposition(|i| i.name == name && i.core == core);
                found.map(|at| idle.swap_remove(at))
            };
            let Some(idle) = idle else { break };
            // Taken out of the list, the thread waits for this job (see
            // `wait_for_job`); only a thread that is gone refuses it.
            match idle.jobs.send(job) {
                Ok(()) => return Ok(PartitionThread { last_word }),
                Err(mpsc::SendError(back)) => job = back,
            }
        }
        // Dropping the join handle detaches the thread: its end is awaited
        // through `last_word`.
        drop(std::thread::Builder::new().name(name.clone()).spawn(move || {
            if let Some(core) = core {
                let _ = core_affinity::set_for_current(core);
            }
            serve(name, core, job);
        })?);
        Ok(PartitionThread { last_word })
    }

    /// Waits until the thread's body has ended and dropped all it held
    /// (spinning up to `spin`, then parked): `Err(message)` if it panicked.
    pub fn wait(self, spin: Duration) -> Result<(), String> {
        match crate::wait::block_on(self.last_word, spin) {
            Ok(ended) => ended,
            // Only if the thread was killed: the body's panic is caught,
            // told, and its payload dropped under a guard.
            Err(_) => Err("it ended without a word".to_string()),
        }
    }
}

/// A partition thread's life: runs its job, then waits for the next one.
fn serve(name: String, core: Option<CoreId>, mut job: Job) {
    let (jobs, next) = mpsc::channel();
    loop {
        let Job { body, last_word } = job;
        let ended = catch_unwind(AssertUnwindSafe(body)).map_err(|panic| {
            let message = panic_message(panic.as_ref());
            // A payload whose drop panics too must not take the word
            // with it.
            let _ = catch_unwind(AssertUnwindSafe(move || drop(panic)));
            message
        });
        let panicked = ended.is_err();
        // Waiting before the word goes: a program that starts its next
        // runtime as soon as the last one stopped finds this thread.
        let serial = (!panicked).then(|| {
            let serial = SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let entry = Idle { name: name.clone(), core, jobs: jobs.clone(), serial };
            IDLE.lock().unwrap_or_else(|e| e.into_inner()).push(entry);
            serial
        });
        let _ = last_word.send(ended);
        let Some(serial) = serial else { break };
        match wait_for_job(&next, serial) {
            Some(j) => job = j,
            None => break,
        }
    }
}

/// The next job, or `None` once [`KEEP_ALIVE`] has passed with no job and
/// this thread's entry is out of the idle list. (The channel stays open:
/// `serve` holds a sender of its own.)
fn wait_for_job(next: &mpsc::Receiver<Job>, serial: u64) -> Option<Job> {
    if let Ok(job) = next.recv_timeout(KEEP_ALIVE) {
        return Some(job);
    }
    let mut idle = IDLE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(at) = idle.iter().position(|i| i.serial == serial) {
        idle.swap_remove(at);
        return None;
    }
    drop(idle);
    // A runtime took the entry and is sending its job.
    next.recv().ok()
}
