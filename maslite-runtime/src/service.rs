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

use crate::endpoint::Backpressure;
use crate::error::{Error, Result};
use crate::progress::Gauges;
use crate::report::RuntimeReport;
use crate::runtime::Runtime;
use maslite_core::{AgentId, Envelope, Origin, RunOptions};
use rustc_hash::FxHashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

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

/// What a partition keeps of a service: its end of the inlet.
pub(crate) struct InletQueue {
    rx: mpsc::Receiver<Envelope>,
    draining: CancellationToken,
    pressure: Arc<Backpressure>,
    seq: u64,
    /// Closed, and everything sent before was taken.
    exhausted: bool,
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
        if self.draining.is_cancelled() && !self.exhausted {
            self.rx.close();
        }
        if self.pressure.holding() && !self.draining.is_cancelled() {
            return;
        }
        for _ in 0..max.min(self.rx.max_capacity()) {
            match self.rx.try_recv() {
                Ok(env) => out.push(self.stamp(me, count, env)),
                Err(mpsc::error::TryRecvError::Empty) => {
                    if self.rx.is_closed() {
                        self.exhausted = true;
                    }
                    return;
                }
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

    /// Looks for a message a little while (`SPIN`) before the partition
    /// parks its thread: under load the next one is usually microseconds
    /// away, and waking a parked thread costs far more on a busy machine.
    fn spin(&mut self, me: usize, count: usize) -> Option<Envelope> {
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
    /// a message (returned, stamped), the stop, or endpoints relieved.
    pub async fn wait(&mut self, me: usize, count: usize) -> Option<Envelope> {
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
            else => std::future::pending().await,
        }
    }
}

/// Shared by a service's handle, its inlets and its partitions.
#[derive(Debug)]
struct Shared {
    draining: CancellationToken,
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
        if self.shared.draining.is_cancelled() {
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
        !self.shared.draining.is_cancelled() && !self.txs[0].is_closed()
    }

    /// The service's live figures (as [`Service::stats`]; `running` here
    /// says whether the run still takes messages).
    pub fn stats(&self) -> ServiceStats {
        self.shared.stats(!self.txs[0].is_closed())
    }
}

impl Shared {
    fn stats(&self, running: bool) -> ServiceStats {
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
    /// `None` once awaited.
    task: Option<tokio::task::JoinHandle<Result<RuntimeReport>>>,
}

impl Drop for Service {
    /// A service dropped without [`shutdown`](Service::shutdown) or
    /// [`join`](Service::join) is cancelled (its threads stop and are
    /// joined in the background).
    fn drop(&mut self) {
        if self.task.is_some() {
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
            accepted: AtomicU64::new(0),
            pressure: self.pressure(),
            gauges: self.gauges(),
            started: Instant::now(),
        });
        let mut txs = Vec::with_capacity(self.partitions());
        for q in 0..self.partitions() {
            let (tx, rx) = mpsc::channel(options.capacity);
            let intake = InletQueue {
                rx,
                draining: shared.draining.clone(),
                pressure: shared.pressure.clone(),
                seq: 0,
                exhausted: false,
            };
            self.post_call(q, move |p| p.serve(intake))?;
            txs.push(tx);
        }
        let inlet = Inlet { txs: txs.into(), dir: Arc::new(self.directory()), shared };
        let cancel = self.cancel_token();
        let run = options.run;
        // As the task `maslite-service` (for tokio-console, see `named`).
        let task = crate::named::spawn_service(&handle, async move {
            let report = self.run_async(run).await;
            // Joining the partitions' threads blocks: not on a worker.
            let _ = tokio::task::spawn_blocking(move || drop(self)).await;
            report
        });
        Ok(Service { inlet, cancel, task: Some(task) })
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

    /// The token that stops the service at once (at the end of the current
    /// step): messages still in the inlets are not taken.
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Live figures, read without stopping anything.
    pub fn stats(&self) -> ServiceStats {
        let running = self.task.as_ref().is_some_and(|t| !t.is_finished());
        self.inlet.shared.stats(running)
    }

    /// Stops gracefully: new messages are refused at once
    /// ([`Error::Stopped`]), those already taken in are carried through
    /// until no mail is left anywhere, and then the run ends — or, after
    /// `grace`, is cancelled. Returns the run's report.
    pub async fn shutdown(mut self, grace: Duration) -> Result<RuntimeReport> {
        self.inlet.shared.draining.cancel();
        let mut task = self.task.take().expect("awaited once");
        match tokio::time::timeout(grace, &mut task).await {
            Ok(joined) => flatten(joined),
            Err(_) => {
                self.cancel.cancel();
                flatten(task.await)
            }
        }
    }

    /// Awaits the end of the run (its time limit, an agent's pause, the
    /// cancel token, or a failure) without stopping it.
    pub async fn join(mut self) -> Result<RuntimeReport> {
        flatten(self.task.take().expect("awaited once").await)
    }
}

fn flatten(
    joined: std::result::Result<Result<RuntimeReport>, tokio::task::JoinError>,
) -> Result<RuntimeReport> {
    match joined {
        Ok(r) => r,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(Error::Stopped),
    }
}
