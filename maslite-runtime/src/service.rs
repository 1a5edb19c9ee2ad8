//! A runtime hosted in the background of a tokio application.
//!
//! [`Runtime::serve`] hands the runtime to a task of the application's
//! tokio runtime and returns a [`Service`]: the application sends messages
//! in from any task ([`Inlet::send`], bounded: a flood waits instead of
//! growing memory; [`Inlet::send_timeout`] gives up after a deadline), reads what agents address to its endpoints (each an
//! [`Outbound`](crate::Outbound) stream from
//! [`Runtime::endpoint`]), reads live [`ServiceStats`], and stops it
//! gracefully ([`Service::shutdown`]) or at once (its
//! [`CancellationToken`]), awaiting the final [`RuntimeReport`].
//!
//! Messages from outside enter each partition through a bounded channel of
//! its own: a partition takes what is there at the start of each step (free
//! mode: each time round its loop; at most the channel's capacity, so what
//! waits inside stays bounded by it too), and waits on it when the whole system
//! is idle (looking for 50 µs before it parks its thread: under load the
//! next request is that close, and waking a parked thread costs more). A
//! stop is graceful in three moves: the inlet refuses new messages, each
//! partition closes its channel and takes what was already in it, and the
//! system runs until no mail is left anywhere (alarms set for later do not
//! hold it up); then the run ends and the endpoints' streams end.
//!
//! [`Service::host`] runs a task of the application on a partition's own
//! thread, beside its agents: thread per core, as a server that accepts its
//! connections on each of its threads. A request handled there reaches an
//! agent on the same partition, and its answer comes back, without a thread
//! hand-off. While a partition hosts tasks it does not spin for messages
//! (its tasks run when it waits), and a busy partition yields to them at
//! least every 128 steps (tokio's cooperative budget). Hosted tasks outlive
//! the run, so that a server drains after the agents stop: at the run's end
//! the agents and endpoints are dropped (the endpoints' streams end) and the
//! runtime's token is cancelled, as when the runtime is dropped, but the
//! partitions' threads go on until every hosted task has ended.

use crate::endpoint::Backpressure;
use crate::error::{Error, Result};
use crate::progress::Gauges;
use crate::report::RuntimeReport;
use crate::runtime::Runtime;
use maslite_core::{AgentId, Envelope, Origin, RunOptions};
use rustc_hash::FxHashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Origins of messages taken from a service's inlet: the outside's key 0,
/// and sequence numbers above those of the handle's own sends.
const INLET_SEQ: u64 = 1 << 62;

/// How long a partition with nothing to do looks for a message from outside
/// before it parks its thread (see `InletQueue::spin`).
const SPIN: Duration = Duration::from_micros(50);

/// How a [`Service`] is set up (see [`Runtime::serve`]).
#[derive(Clone, Copy, Debug)]
pub struct ServeOptions {
    capacity: usize,
    run: RunOptions,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            capacity: 1024,
            run: RunOptions::new().pause_if_idle(false).clear_alarms_at_end(false),
        }
    }
}

impl ServeOptions {
    /// The defaults: 1 024 messages of room per partition, no time limit.
    pub fn new() -> ServeOptions {
        ServeOptions::default()
    }

    /// How many messages from outside each partition holds before
    /// [`Inlet::send`] waits (default 1 024; at least 1).
    pub fn capacity(mut self, messages: usize) -> ServeOptions {
        self.capacity = messages.max(1);
        self
    }

    /// Stops the service after this many seconds of its clock.
    pub fn seconds(mut self, seconds: f64) -> ServeOptions {
        self.run = self.run.seconds(seconds);
        self
    }
}

/// Starts a hosted task on a partition's thread (see [`Service::host`]),
/// counting it in the partition's hosted tasks while it lives.
type HostJob = Box<dyn FnOnce(&Arc<AtomicUsize>) + Send>;

/// Counts a hosted task among its partition's while it lives.
struct Hosting(Arc<AtomicUsize>);

impl Hosting {
    fn new(count: &Arc<AtomicUsize>) -> Hosting {
        count.fetch_add(1, Ordering::Relaxed);
        Hosting(count.clone())
    }
}

impl Drop for Hosting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What a partition keeps of a service: its end of the inlet, and of the
/// channel of tasks to host.
pub(crate) struct InletQueue {
    rx: mpsc::Receiver<Envelope>,
    draining: CancellationToken,
    pressure: Arc<Backpressure>,
    seq: u64,
    /// Closed, and everything sent before was taken.
    exhausted: bool,
    jobs: mpsc::UnboundedReceiver<HostJob>,
    /// Tasks hosted on this partition and not yet ended.
    hosted: Arc<AtomicUsize>,
}

impl InletQueue {
    /// Takes up to `max` messages waiting in the inlet, and no more than
    /// its capacity (none while an endpoint is stalled), stamped with
    /// origins of the outside: `(me, count)` spread so that partitions
    /// never give the same one. (At most a capacity a step: with senders
    /// waiting, the channel refills while it is read, and a step that took
    /// all it could find would let a slow agent's inbox grow far past the
    /// inlet's bound.)
    pub fn take(&mut self, me: usize, count: usize, max: usize, out: &mut Vec<Envelope>) {
        self.start_hosted();
        if self.draining.is_cancelled() && !self.exhausted {
            self.rx.close();
        }
        if self.pressure.holding() && !self.draining.is_cancelled() {
            return;
        }
        for _ in 0..max.min(self.rx.max_capacity()) {
            match self.rx.try_recv() {
                Ok(env) => out.push(self.stamp(me, count, env)),
                // (Closed and empty is not the end yet: a sender that had
                // room before the close may still put its message in.)
                Err(mpsc::error::TryRecvError::Empty) => return,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    self.exhausted = true;
                    return;
                }
            }
        }
    }

    fn stamp(&mut self, me: usize, count: usize, mut env: Envelope) -> Envelope {
        self.seq += 1;
        env.set_origin(Origin {
            key: 0,
            seq: INLET_SEQ + self.seq * count as u64 + me as u64,
            ..Origin::default()
        });
        env
    }

    /// Whether the service is stopping.
    pub fn draining(&self) -> bool {
        self.draining.is_cancelled()
    }

    /// Closed and emptied: nothing more can come in.
    pub fn exhausted(&self) -> bool {
        self.exhausted
    }

    /// Whether this partition hosts tasks now.
    pub fn hosting(&self) -> bool {
        self.hosted.load(Ordering::Relaxed) > 0
    }

    /// Starts the tasks handed to this partition to host (on its thread:
    /// here, within its `LocalSet`).
    fn start_hosted(&mut self) {
        while let Ok(job) = self.jobs.try_recv() {
            job(&self.hosted);
        }
    }

    /// Waits for a task to host and starts it (pending for good once the
    /// service's handle is gone).
    pub async fn host_next(&mut self) {
        next_job(&mut self.jobs, &self.hosted).await
    }

    /// Looks for a message a little while (`SPIN`) before the partition
    /// parks its thread: under load the next one is usually microseconds
    /// away, and waking a parked thread costs far more on a busy machine.
    /// Not while the partition hosts tasks: they run on its thread only
    /// when it waits, and their requests are what it would wait for.
    fn spin(&mut self, me: usize, count: usize) -> Option<Envelope> {
        if self.hosting() {
            return None;
        }
        let until = Instant::now() + SPIN;
        while !self.exhausted && !self.draining.is_cancelled() && !self.pressure.holding() {
            match self.rx.try_recv() {
                Ok(env) => return Some(self.stamp(me, count, env)),
                Err(mpsc::error::TryRecvError::Empty) if Instant::now() < until => {
                    std::thread::yield_now()
                }
                Err(_) => return None,
            }
        }
        None
    }

    /// Waits for something that may change what the partition should do:
    /// a message (returned, stamped), the stop, endpoints relieved, or a
    /// task to host (started here).
    pub async fn wait(&mut self, me: usize, count: usize) -> Option<Envelope> {
        self.start_hosted();
        if let Some(env) = self.spin(me, count) {
            return Some(env);
        }
        // (Registered before `holding` is read: no wake-up is missed.)
        let relieved = self.pressure.relieved.notified();
        let stalling = self.pressure.stalling.notified();
        let holding = self.pressure.holding();
        tokio::select! {
            got = self.rx.recv(), if !holding && !self.exhausted => match got {
                Some(env) => Some(self.stamp(me, count, env)),
                None => {
                    self.exhausted = true;
                    None
                }
            },
            _ = self.draining.cancelled(), if !self.exhausted => None,
            _ = relieved, if holding => None,
            _ = stalling, if !holding => None,
            _ = next_job(&mut self.jobs, &self.hosted) => None,
            else => std::future::pending().await,
        }
    }
}

/// Waits for a task to host and starts it, counted in `hosted` (see
/// [`InletQueue::host_next`]).
async fn next_job(jobs: &mut mpsc::UnboundedReceiver<HostJob>, hosted: &Arc<AtomicUsize>) {
    match jobs.recv().await {
        Some(job) => job(hosted),
        None => std::future::pending().await,
    }
}

/// Shared by a service's handle, its inlets and its partitions.
#[derive(Debug)]
struct Shared {
    draining: CancellationToken,
    /// Cancelled once the run has ended, every partition's intake gone
    /// (the inlet refuses from then on; nothing more is hosted).
    ended: CancellationToken,
    accepted: AtomicU64,
    pressure: Arc<Backpressure>,
    gauges: Gauges,
    started: Instant,
}

/// Where an application's messages enter a [`Service`]: cheap to clone,
/// `Send` and `Sync`, one per task if you like.
#[derive(Clone, Debug)]
pub struct Inlet {
    txs: Arc<[mpsc::Sender<Envelope>]>,
    dir: Arc<FxHashMap<AgentId, usize>>,
    shared: Arc<Shared>,
}

impl Inlet {
    fn channel(&self, env: &Envelope) -> Result<&mpsc::Sender<Envelope>> {
        if self.shared.draining.is_cancelled() || self.shared.ended.is_cancelled() {
            return Err(Error::Stopped);
        }
        // To the receiver's partition when it is known (one hop less); the
        // router takes it on from anywhere.
        let q = env.receiver().and_then(|r| self.dir.get(&r).copied()).unwrap_or(0);
        Ok(&self.txs[q])
    }

    /// Sends a message into the system, waiting while the partition's
    /// channel is full. Fails with [`Error::Stopped`] once the service is
    /// stopping or stopped — never hangs on a stopped system.
    pub async fn send(&self, envelope: Envelope) -> Result<()> {
        let tx = self.channel(&envelope)?;
        tx.send(envelope).await.map_err(|_| Error::Stopped)?;
        self.shared.accepted.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Sends a message, waiting at most `timeout` for room: [`Error::Full`]
    /// if none came in time (the message was not sent), [`Error::Stopped`]
    /// once the service is stopping or stopped. What a request handler
    /// calls under overload: a request that waits too long is refused
    /// (say a 503) instead of hanging, and the messages waiting for room
    /// stay bounded by the inlet's capacity.
    ///
    /// ```
    /// use maslite_core::{AgentId, Envelope, Error};
    /// use maslite_runtime::{Overflow, Runtime, ServeOptions};
    /// use std::time::Duration;
    ///
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let mut rt = Runtime::builder().real_time().build()?;
    /// // An endpoint nobody reads, with room for one message: once it is
    /// // full, the intake waits for it, and the inlet (room for 1) fills.
    /// let out = rt.endpoint_with(0, AgentId(1), 1, Overflow::Block)?;
    /// let service = rt.serve(ServeOptions::new().capacity(1))?;
    /// let inlet = service.inlet();
    /// let mut sent = 0;
    /// let refused = loop {
    ///     assert!(sent < 10_000, "the intake is held back: the inlet fills");
    ///     let note = Envelope::new(sent).to(AgentId(1));
    ///     match inlet.send_timeout(note, Duration::from_millis(20)).await {
    ///         Ok(()) => sent += 1,
    ///         Err(e) => break e,
    ///     }
    /// };
    /// assert_eq!(refused, Error::Full);
    /// drop(out); // the endpoint drops (and counts) what it was holding
    /// service.shutdown(Duration::from_secs(5)).await?;
    /// # Ok::<(), Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn send_timeout(&self, envelope: Envelope, timeout: Duration) -> Result<()> {
        let tx = self.channel(&envelope)?;
        // Room now (the usual case): no deadline to set up. (Room is never
        // free while others wait for it: a permit given back goes to the
        // first waiter, so this does not overtake anyone.)
        let envelope = match tx.try_send(envelope) {
            Ok(()) => {
                self.shared.accepted.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(Error::Stopped),
            Err(mpsc::error::TrySendError::Full(envelope)) => envelope,
        };
        tx.send_timeout(envelope, timeout).await.map_err(|e| match e {
            mpsc::error::SendTimeoutError::Timeout(_) => Error::Full,
            mpsc::error::SendTimeoutError::Closed(_) => Error::Stopped,
        })?;
        self.shared.accepted.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Sends a message if there is room now: [`Error::Full`] if not,
    /// [`Error::Stopped`] once the service is stopping or stopped.
    pub fn try_send(&self, envelope: Envelope) -> Result<()> {
        let tx = self.channel(&envelope)?;
        tx.try_send(envelope).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Error::Full,
            mpsc::error::TrySendError::Closed(_) => Error::Stopped,
        })?;
        self.shared.accepted.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Whether the service still takes messages.
    pub fn is_open(&self) -> bool {
        !self.shared.draining.is_cancelled()
            && !self.shared.ended.is_cancelled()
            && !self.txs.iter().any(|tx| tx.is_closed())
    }

    /// The service's live figures (as [`Service::stats`]; `running` here
    /// says whether the run still takes messages).
    pub fn stats(&self) -> ServiceStats {
        self.shared.stats()
    }
}

impl Shared {
    fn stats(&self) -> ServiceStats {
        let running = !self.ended.is_cancelled();
        let (now, messages, updates) = self.gauges.read();
        ServiceStats {
            now,
            uptime: self.started.elapsed(),
            accepted: self.accepted.load(Ordering::Relaxed),
            messages,
            updates,
            held_back: self.pressure.holding(),
            running,
        }
    }
}

/// Live figures of a [`Service`] (see [`Service::stats`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ServiceStats {
    /// The system's clock, in seconds.
    pub now: f64,
    /// Wall time since the service started.
    pub uptime: Duration,
    /// Messages taken in by the inlets.
    pub accepted: u64,
    /// Messages delivered inside the system (all partitions).
    pub messages: u64,
    /// Agent updates (all partitions).
    pub updates: u64,
    /// Some endpoint's reader is behind: the intake waits for it.
    pub held_back: bool,
    /// The run is still going.
    pub running: bool,
}

/// A runtime running in the background of a tokio application (see the
/// [module docs](self) and [`Runtime::serve`]).
#[derive(Debug)]
pub struct Service {
    inlet: Inlet,
    cancel: CancellationToken,
    /// Each partition's channel of tasks to host.
    hosts: Vec<mpsc::UnboundedSender<HostJob>>,
    /// The hosted tasks, all partitions'.
    hosted: TaskTracker,
    /// The run's report, once it ends (`None` once awaited).
    report: Option<oneshot::Receiver<Result<RuntimeReport>>>,
    /// The task that runs the run, then waits for the hosted tasks and
    /// drops the runtime.
    task: Option<JoinHandle<()>>,
}

impl Drop for Service {
    /// A service dropped without [`shutdown`](Service::shutdown) or
    /// [`join`](Service::join) is cancelled (its threads stop and are
    /// joined in the background, once its hosted tasks have ended).
    fn drop(&mut self) {
        if self.report.is_some() {
            self.cancel.cancel();
        }
    }
}

impl Runtime {
    /// Hands the runtime to a task of the current tokio runtime and starts
    /// a run that goes on until the service is stopped (or reaches
    /// [`ServeOptions::seconds`]). Must be called within a tokio runtime.
    ///
    /// Services normally run on the real-time clock
    /// ([`Builder::real_time`](crate::Builder::real_time)); on the simulated
    /// clock the system jumps from alarm to alarm and, when it has nothing
    /// left to do, waits for messages from outside.
    pub fn serve(mut self, options: ServeOptions) -> Result<Service> {
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::Config("serve must be called within a tokio runtime".into()))?;
        if self.placement().is_some() {
            return Err(Error::Config("a service runs on one host: its partitions too".into()));
        }
        let shared = Arc::new(Shared {
            draining: CancellationToken::new(),
            ended: CancellationToken::new(),
            accepted: AtomicU64::new(0),
            pressure: self.pressure(),
            gauges: self.gauges(),
            started: Instant::now(),
        });
        let mut txs = Vec::with_capacity(self.partitions());
        let mut hosts = Vec::with_capacity(self.partitions());
        for q in 0..self.partitions() {
            let (tx, rx) = mpsc::channel(options.capacity);
            let (host, jobs) = mpsc::unbounded_channel();
            let intake = InletQueue {
                rx,
                draining: shared.draining.clone(),
                pressure: shared.pressure.clone(),
                seq: 0,
                exhausted: false,
                jobs,
                hosted: Arc::default(),
            };
            self.post_call(q, move |p| p.serve(intake))?;
            txs.push(tx);
            hosts.push(host);
        }
        let inlet = Inlet { txs: txs.into(), dir: Arc::new(self.directory()), shared };
        let cancel = self.cancel_token();
        let run = options.run;
        let hosted = TaskTracker::new();
        let (report_tx, report) = oneshot::channel();
        let (ending, tracker) = (inlet.shared.clone(), hosted.clone());
        // As the task `maslite-service` (for tokio-console, see `named`).
        let task = crate::named::spawn_service(&handle, async move {
            // The run's end, even if this task panics or is dropped.
            let ended = ending.ended.clone().drop_guard();
            let report = self.run_async(run).await;
            // No task is hosted from now on: the partitions' ends of the
            // channel went with the run.
            drop(ended);
            tracker.close();
            if tracker.is_empty() {
                // The report once the runtime is gone, threads and all
                // (joining them blocks: not on a worker).
                let _ = tokio::task::spawn_blocking(move || drop(self)).await;
                let _ = report_tx.send(report);
            } else {
                // Hosted tasks (a server draining) run on, on its threads;
                // the rest ends now, as the runtime's drop would end it.
                self.retire().await;
                let _ = report_tx.send(report);
                tracker.wait().await;
                let _ = tokio::task::spawn_blocking(move || drop(self)).await;
            }
        });
        Ok(Service { inlet, cancel, hosts, hosted, report: Some(report), task: Some(task) })
    }
}

impl Service {
    /// A [`Builder`](crate::Builder) for a runtime to serve: on the
    /// real-time clock, as services normally are (call
    /// [`simulated`](crate::Builder::simulated) for the simulated one).
    /// Build it, add agents and endpoints, then [`Runtime::serve`].
    pub fn builder() -> crate::Builder {
        Runtime::builder().real_time()
    }

    /// An inlet for sending messages in (clone it into as many tasks as
    /// you like).
    pub fn inlet(&self) -> Inlet {
        self.inlet.clone()
    }

    /// Sends a message in (see [`Inlet::send`]).
    pub async fn send(&self, envelope: Envelope) -> Result<()> {
        self.inlet.send(envelope).await
    }

    /// Runs a task of the application on `partition`'s thread, beside its
    /// agents, on the partition's tokio runtime: `make` is called there,
    /// so the task may be `!Send` (it may share `Rc`s with what it builds,
    /// and use the partition's tokio I/O and timers). Returns the task's
    /// handle once it is spawned there. The partition starts it between two
    /// steps or while it waits, so `host` waits for that (on the simulated
    /// clock, a step of all partitions), and a slow `make` holds the
    /// partition up.
    ///
    /// What it is for: thread per core. A server that accepts connections
    /// on a partition's thread (one listener, one accept loop per
    /// partition) hands each request to an agent there, and gets its answer
    /// back, with no thread hand-off either way. The partition runs its
    /// hosted tasks whenever it waits, and yields to them at least every
    /// 128 steps while it is busy (tokio's cooperative budget); while it
    /// hosts any, it does not spin looking for messages.
    ///
    /// A hosted task outlives the run: it goes on after
    /// [`shutdown`](Self::shutdown) returns (a server drains, answering
    /// its last requests). By then the agents and endpoints are gone (the
    /// endpoints' streams have ended, the inlet refuses) and the runtime's
    /// token is cancelled; the partitions' threads stop once every hosted
    /// task has ended. A task that never ends keeps them to the end of the
    /// application's tokio runtime. Tasks that a hosted task spawns are
    /// not waited for (join them in it, as with a `JoinSet`), and a
    /// partition whose thread dies ends every hosted task with the run. A
    /// panic in the task is its handle's
    /// [`JoinError`](tokio::task::JoinError); the partition goes on.
    ///
    /// Fails with [`Error::NoPartition`] for a partition the service does
    /// not have, and [`Error::Stopped`] once the run has ended.
    ///
    /// ```
    /// use futures::StreamExt;
    /// use maslite_core::{Agent, AgentId, Cx, Envelope, Error};
    /// use maslite_runtime::{ServeOptions, Service};
    /// use std::{cell::Cell, rc::Rc};
    ///
    /// /// Doubles each number and answers its sender.
    /// struct Doubler;
    /// impl Agent for Doubler {
    ///     async fn update(&mut self, cx: &Cx) {
    ///         while let Some(mut env) = cx.try_recv() {
    ///             let n = *env.payload::<u64>().unwrap();
    ///             env.reply().unwrap();
    ///             cx.send(Envelope::new(2 * n).from(cx.id()).to(env.receiver().unwrap()));
    ///         }
    ///     }
    /// }
    ///
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let mut rt = Service::builder().build()?;
    /// let doubler = rt.add(0, Doubler)?;
    /// let asker = AgentId(1000);
    /// let mut answers = rt.endpoint(0, asker)?;
    /// let service = rt.serve(ServeOptions::new())?;
    /// let inlet = service.inlet();
    /// // On partition 0's thread, beside the doubler: an `Rc` is fine there.
    /// let task = service.host(0, move || async move {
    ///     let asked = Rc::new(Cell::new(0));
    ///     let mut sum = 0;
    ///     for n in 1..=3u64 {
    ///         inlet.send(Envelope::new(n).from(asker).to(doubler)).await?;
    ///         sum += *answers.next().await.expect("an answer").payload::<u64>()?;
    ///         asked.set(asked.get() + 1);
    ///     }
    ///     Ok::<_, Error>((asked.get(), sum))
    /// }).await?;
    /// assert_eq!(task.await.expect("no panic")?, (3, 12));
    /// service.shutdown(std::time::Duration::from_secs(5)).await?;
    /// # Ok::<(), Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn host<F, Fut>(&self, partition: usize, make: F) -> Result<JoinHandle<Fut::Output>>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        let partitions = self.hosts.len();
        let host = self.hosts.get(partition).ok_or(Error::NoPartition { partition, partitions })?;
        let tracker = self.hosted.clone();
        let (started, handle) = oneshot::channel();
        let job: HostJob = Box::new(move |count| {
            // A panic in `make` is the caller's (resumed in `host`), not
            // the partition's.
            let made = std::panic::catch_unwind(std::panic::AssertUnwindSafe(make));
            let sent = started.send(made.map(|task| {
                let hosting = Hosting::new(count);
                let task = tracker.track_future(async move {
                    let _hosting = hosting;
                    task.await
                });
                crate::named::spawn_hosted(partition, task)
            }));
            // The caller gave up: its panic's payload is dropped here, and
            // a payload whose drop panics must not unwind into the run.
            if let Err(Err(panic)) = sent {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(panic)));
            }
        });
        // Refused, or dropped unstarted, once the run has ended.
        host.send(job).map_err(|_| Error::Stopped)?;
        let mut handle = handle;
        let started = tokio::select! {
            biased;
            started = &mut handle => started.ok(),
            // Every partition's end of the channel is gone: a job sent as
            // it closed is never started.
            _ = self.inlet.shared.ended.cancelled() => handle.try_recv().ok(),
        };
        match started {
            Some(Ok(task)) => Ok(task),
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => Err(Error::Stopped),
        }
    }

    /// The token that stops the service at once (at the end of the current
    /// step): messages still in the inlets are not taken.
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Live figures, read without stopping anything.
    pub fn stats(&self) -> ServiceStats {
        self.inlet.shared.stats()
    }

    /// Stops gracefully: new messages are refused at once
    /// ([`Error::Stopped`]), those already taken in are carried through
    /// until no mail is left anywhere, and then the run ends — or, after
    /// `grace`, is cancelled. Returns the run's report (with no hosted
    /// task, once the runtime's threads have stopped too).
    pub async fn shutdown(mut self, grace: Duration) -> Result<RuntimeReport> {
        self.inlet.shared.draining.cancel();
        let mut report = self.report.take().expect("awaited once");
        match tokio::time::timeout(grace, &mut report).await {
            Ok(ended) => self.ended(ended).await,
            Err(_) => {
                self.cancel.cancel();
                let ended = report.await;
                self.ended(ended).await
            }
        }
    }

    /// Awaits the end of the run (its time limit, an agent's pause, the
    /// cancel token, or a failure) without stopping it.
    pub async fn join(mut self) -> Result<RuntimeReport> {
        let ended = self.report.take().expect("awaited once").await;
        self.ended(ended).await
    }

    /// The report, or the run's task's panic resumed here.
    async fn ended(
        &mut self,
        report: std::result::Result<Result<RuntimeReport>, oneshot::error::RecvError>,
    ) -> Result<RuntimeReport> {
        match report {
            Ok(report) => report,
            // No report: the task panicked or its runtime shut down.
            Err(_) => match self.task.take().expect("awaited once").await {
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                _ => Err(Error::Stopped),
            },
        }
    }
}
