//! The handle that owns the partitions (what Python maslite's
//! multiprocessing branch calls the main process), scoped.
//!
//! Partition threads start when the runtime is built and are stopped when
//! it is dropped (or [`stop`](Runtime::stop)ped, or a run fails), which
//! returns once every partition has dropped its agents, their tasks and its
//! tokio runtime: leaving the scope that owns a `Runtime` — normally, by `?`
//! or by a panic — never leaves a partition running. (The OS threads then
//! end on their own: see `partition::thread`.)

use crate::config::{Config, Mode};
use crate::endpoint::{Backpressure, Endpoint, EndpointCounts, Outbound, Overflow};
use crate::error::{rank, Error, Result};
use crate::partition::{panic_message, Call, Cmd, FreeRun, Outcome, Partition, PartitionThread};
use crate::progress::{Gauges, Progress};
use crate::report::{RuntimeReport, StopReason};
use crate::route::top_pairs;
use crate::transport::Placement;
use maslite_core::change::DERIVED;
use maslite_core::{
    Agent, AgentId, Alarm, Cx, Driver, Envelope, Origin, RunOptions, Scheduler, Subscription,
};
use rustc_hash::FxHashMap;
use std::future::Future;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

mod placement;

/// Calls queued for a partition are sent in batches of at most this many.
const BATCH: usize = 4096;

/// The handle's side of one partition.
pub(crate) struct Handle {
    /// Its command channel (`None`: on another host, or stopped).
    pub(crate) cmds: Option<mpsc::UnboundedSender<Cmd>>,
    pub(crate) queued: Vec<Call>,
    pub(crate) thread: Option<PartitionThread>,
}

/// What [`Builder::build`](crate::Builder::build) started, for the handle to own.
pub(crate) struct Started {
    pub(crate) config: Arc<Config>,
    pub(crate) placement: Option<Placement>,
    pub(crate) transport_thread: Option<JoinHandle<()>>,
    pub(crate) stopping: CancellationToken,
    pub(crate) parts: Vec<Handle>,
    pub(crate) cancel: CancellationToken,
    pub(crate) gauges: Gauges,
}

/// Partitions of maslite kernels on their own threads, run as one system.
///
/// See the [crate docs](crate) for a walk-through. The handle's tour:
///
/// ```
/// use maslite_core::{Agent, AgentId, Alarm, Cx, Envelope, RunOptions, Subscription};
/// use maslite_runtime::{Runtime, StopReason};
/// use std::{cell::RefCell, rc::Rc};
///
/// #[derive(Clone)]
/// struct News(&'static str);
///
/// /// Keeps what it reads; its `Rc` makes it `!Send`.
/// struct Reader { read: Rc<RefCell<Vec<&'static str>>> }
///
/// impl Agent for Reader {
///     async fn update(&mut self, cx: &Cx) {
///         while let Some(env) = cx.try_recv() {
///             self.read.borrow_mut().push(env.payload::<News>().unwrap().0);
///         }
///     }
/// }
///
/// let mut rt = Runtime::new(2).unwrap();
/// // A `!Send` agent is built on its partition's thread.
/// let reader = rt
///     .add_made(1, None, || Reader { read: Rc::new(RefCell::new(Vec::new())) })
///     .unwrap();
/// // Subscriptions and alarms from outside, wherever the agents are.
/// rt.subscribe(reader, Subscription::new().topic("news")).unwrap();
/// rt.set_alarm(Alarm::at(2.0, Envelope::new(News("late")).topic_is("news"))).unwrap();
/// rt.send(Envelope::new(News("early")).topic_is("news"));
/// let report = rt.run_with(RunOptions::new().seconds(10.0)).unwrap();
/// // Idle once the alarm at 2 has fired: the clock stays there.
/// assert_eq!(report.reason, StopReason::Idle);
/// assert_eq!(rt.now(), 2.0);
/// // Read an agent between runs, on its own thread.
/// let read = rt.with_agent(reader, |r: &Reader| r.read.borrow().clone()).unwrap();
/// assert_eq!(read, ["early", "late"]);
/// assert_eq!(rt.partition_of(reader), Some(1));
/// rt.stop().unwrap(); // or drop it: either stops the partitions' threads
/// # let _ = AgentId(0);
/// ```
pub struct Runtime {
    pub(crate) config: Arc<Config>,
    /// Which host runs which partition, when they are spread over hosts.
    pub(crate) placement: Option<Placement>,
    /// The transport's thread, then.
    transport_thread: Option<JoinHandle<()>>,
    /// Stops the transport.
    stopping: CancellationToken,
    pub(crate) parts: Vec<Handle>,
    cancel: CancellationToken,
    /// Where the agents added from here are (and those reported by runs).
    pub(crate) dir: FxHashMap<AgentId, usize>,
    /// Placements not yet told to the partitions.
    pub(crate) placed: Vec<(AgentId, usize)>,
    pub(crate) next_key: u64,
    pub(crate) next_id: u64,
    pub(crate) outside: u64,
    pub(crate) now: f64,
    pub(crate) stopped: bool,
    /// A run failed: the agents can be read, nothing more runs.
    pub(crate) failed: bool,
    gauges: Gauges,
    pressure: Arc<Backpressure>,
}

impl Runtime {
    /// The handle of what a builder started.
    pub(crate) fn started(started: Started) -> Runtime {
        let Started { config, placement, transport_thread, stopping, parts, cancel, gauges } =
            started;
        Runtime {
            placement,
            transport_thread,
            stopping,
            config,
            parts,
            cancel,
            dir: FxHashMap::default(),
            placed: Vec::new(),
            next_key: 1,
            next_id: 1,
            outside: 0,
            now: 0.0,
            stopped: false,
            failed: false,
            gauges,
            pressure: Arc::new(Backpressure::default()),
        }
    }

    fn spin(&self) -> Duration {
        self.config.spin
    }

    /// The number of partitions (on all hosts).
    pub fn partitions(&self) -> usize {
        self.parts.len()
    }

    /// Which host runs which partition, if they are spread over hosts
    /// ([`Builder::transport`](crate::Builder::transport)).
    pub fn placement(&self) -> Option<&Placement> {
        self.placement.as_ref()
    }

    /// Whether partition `p` runs in this process (all do, unless they are
    /// spread over hosts).
    pub fn is_local(&self, p: usize) -> bool {
        p < self.parts.len() && self.placement.as_ref().is_none_or(|pl| pl.is_local(p))
    }

    /// [`Error::NotLocal`] if partition `p` runs on another host.
    fn local(&self, p: usize) -> Result<()> {
        match &self.placement {
            Some(pl) if p < self.parts.len() && !pl.is_local(p) => {
                Err(Error::NotLocal { partition: p, host: pl.host_of(p) })
            }
            _ => Ok(()),
        }
    }

    /// A service's run has ended while tasks it hosts live on: ends now
    /// what the runtime's end would (its token is cancelled; the agents and
    /// endpoints are dropped, so the endpoints' streams end), keeping the
    /// partitions' threads and tokio runtimes for the hosted tasks. Returns
    /// once every partition has done it.
    pub(crate) async fn retire(&mut self) {
        self.cancel.cancel();
        let mut done = Vec::new();
        for q in 0..self.parts.len() {
            if self.check_open(q).is_err() || self.local(q).is_err() {
                continue;
            }
            let (tx, rx) = oneshot::channel();
            let posted = self.post(q, move |p| {
                // (An agent whose drop panics: the others still go.)
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| p.retire()));
                let _ = tx.send(());
            });
            if posted.is_ok() {
                done.push(rx);
            }
        }
        let _ = self.flush();
        for rx in done {
            let _ = rx.await;
        }
    }

    /// The token that stops every partition (see [`Builder::cancel_token`](crate::Builder::cancel_token)).
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// The clock at the end of the last run (0 before the first).
    pub fn now(&self) -> f64 {
        self.now
    }

    /// The partition an agent is on, as far as the handle knows (agents
    /// added here, and those added or removed by agents during runs).
    pub fn partition_of(&self, id: AgentId) -> Option<usize> {
        self.dir.get(&id).copied()
    }

    fn check(&self, partition: usize) -> Result<()> {
        if self.failed {
            return Err(Error::Stopped);
        }
        self.check_open(partition)
    }

    /// Like `check`, but a runtime whose run failed still opens its
    /// partitions to reading (a post-mortem).
    fn check_open(&self, partition: usize) -> Result<()> {
        if self.stopped {
            return Err(Error::Stopped);
        }
        if partition >= self.parts.len() {
            return Err(Error::NoPartition { partition, partitions: self.parts.len() });
        }
        Ok(())
    }

    fn claim(&mut self, partition: usize, id: Option<AgentId>) -> Result<(AgentId, u64)> {
        self.check(partition)?;
        let id = match id {
            Some(AgentId::OUTSIDE) => return Err(Error::ReservedId(AgentId::OUTSIDE)),
            // The top bit belongs to ids derived at run time.
            Some(id) if id.0 & DERIVED != 0 => return Err(Error::ReservedId(id)),
            Some(id) if self.dir.contains_key(&id) => return Err(Error::DuplicateAgent(id)),
            Some(id) => id,
            None => {
                while self.dir.contains_key(&AgentId(self.next_id)) {
                    self.next_id += 1;
                }
                self.next_id += 1;
                AgentId(self.next_id - 1)
            }
        };
        let key = self.next_key;
        self.next_key += 1;
        self.dir.insert(id, partition);
        self.placed.push((id, partition));
        Ok((id, key))
    }

    /// Queues `f` for partition `partition`'s thread; queued calls go in
    /// one batch at the next [`flush`](Self::flush) (waking a parked thread
    /// costs tens of microseconds: once per batch, not per call).
    fn post(
        &mut self,
        partition: usize,
        f: impl FnOnce(&mut Partition) + Send + 'static,
    ) -> Result<()> {
        let part = &mut self.parts[partition];
        let Some(cmds) = part.cmds.as_ref() else { return Err(Error::Stopped) };
        part.queued.push(Box::new(f));
        if part.queued.len() >= BATCH {
            // A long series of adds: the partition installs one batch while
            // the handle queues the next.
            let calls = std::mem::take(&mut part.queued);
            cmds.send(Cmd::Calls(calls))
                .map_err(|_| Error::PartitionDied { partition, message: "not running".into() })?;
        }
        Ok(())
    }

    /// Sends the queued calls (placements first).
    fn flush(&mut self) -> Result<()> {
        self.flush_placements()?;
        for (q, part) in self.parts.iter_mut().enumerate() {
            if part.queued.is_empty() {
                continue;
            }
            let calls = std::mem::take(&mut part.queued);
            let cmds = part.cmds.as_ref().ok_or(Error::Stopped)?;
            cmds.send(Cmd::Calls(calls)).map_err(|_| Error::PartitionDied {
                partition: q,
                message: "not running".into(),
            })?;
        }
        Ok(())
    }

    /// Adds `agent` to `partition` with an allocated id. Its `setup` runs
    /// on the partition's thread; a setup that panics fails the next run.
    ///
    /// Such an agent can move to another partition between runs
    /// ([`apply_placement`](Self::apply_placement)).
    pub fn add<A: Agent + Send>(&mut self, partition: usize, agent: A) -> Result<AgentId> {
        self.add_movable(partition, None, agent)
    }

    /// Adds `agent` to `partition` with the id `id` (unique across all
    /// partitions: a duplicate is an error here, before anything runs).
    pub fn add_with_id<A: Agent + Send>(
        &mut self,
        partition: usize,
        id: AgentId,
        agent: A,
    ) -> Result<AgentId> {
        self.add_movable(partition, Some(id), agent)
    }

    /// Adds the agent `make` builds on the partition's own thread — for
    /// agents that are not `Send` (they hold `Rc`s, tokio I/O of that
    /// partition...).
    pub fn add_made<A, F>(
        &mut self,
        partition: usize,
        id: Option<AgentId>,
        make: F,
    ) -> Result<AgentId>
    where
        A: Agent,
        F: FnOnce() -> A + Send + 'static,
    {
        let (id, key) = self.claim(partition, id)?;
        if !self.is_local(partition) {
            // Another host builds it (with the same id and key).
            return Ok(id);
        }
        self.post(partition, move |p| {
            let agent = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(make)) {
                Ok(agent) => agent,
                Err(panic) => {
                    let message = panic_message(panic.as_ref());
                    let phase = maslite_core::Phase::Setup;
                    p.defer(Error::AgentPanicked { agent: id, phase, message });
                    return;
                }
            };
            if let Err(e) = p.kernel_mut().add_placed(id, key, agent) {
                p.defer(e);
            }
        })?;
        Ok(id)
    }

    /// Starts an agent written as an async fn on `partition` (the closure
    /// must be `Send`; the future it makes need not be).
    pub fn spawn<F, Fut>(&mut self, partition: usize, body: F) -> Result<AgentId>
    where
        F: FnOnce(Cx) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        self.spawn_with_id_opt(partition, None, body)
    }

    /// Starts a process whose body returns a value on `partition`: the
    /// value is kept when the body returns, for
    /// [`take_result`](Self::take_result), as
    /// [`Scheduler::process`](maslite_core::Scheduler::process) does.
    pub fn process<F, Fut, T>(&mut self, partition: usize, body: F) -> Result<AgentId>
    where
        F: FnOnce(Cx) -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
        T: std::any::Any,
    {
        self.spawn(partition, move |cx| maslite_core::process::keeping(cx, body))
    }

    /// The value a process started with [`process`](Self::process)
    /// returned: `Some` once, after it ended, if it is a `T` (on this
    /// host's partitions).
    pub fn take_result<T: std::any::Any + Send>(&mut self, id: AgentId) -> Result<Option<T>> {
        for q in 0..self.parts.len() {
            if self.is_local(q) {
                if let Some(v) = self.with_partition(q, move |s| s.take_result::<T>(id))? {
                    return Ok(Some(v));
                }
            }
        }
        Ok(None)
    }

    /// Starts an async-fn agent with a chosen id.
    pub fn spawn_with_id<F, Fut>(
        &mut self,
        partition: usize,
        id: AgentId,
        body: F,
    ) -> Result<AgentId>
    where
        F: FnOnce(Cx) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        self.spawn_with_id_opt(partition, Some(id), body)
    }

    fn spawn_with_id_opt<F, Fut>(
        &mut self,
        partition: usize,
        id: Option<AgentId>,
        body: F,
    ) -> Result<AgentId>
    where
        F: FnOnce(Cx) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let (id, key) = self.claim(partition, id)?;
        if !self.is_local(partition) {
            return Ok(id);
        }
        self.post(partition, move |p| {
            if let Err(e) = p.kernel_mut().spawn_placed(id, key, body) {
                p.defer(e);
            }
        })?;
        Ok(id)
    }

    /// Adds an endpoint with id `id` on `partition`: what agents send to
    /// `id` (or what it subscribes to) comes out of the returned stream,
    /// in order. Room for 1 024 envelopes, then [`Overflow::Block`]: see
    /// [`endpoint_with`](Self::endpoint_with).
    ///
    /// ```
    /// use maslite_core::{AgentId, Envelope};
    /// use maslite_runtime::Runtime;
    ///
    /// let mut rt = Runtime::new(1).unwrap();
    /// let mut out = rt.endpoint(0, AgentId(100)).unwrap();
    /// rt.send(Envelope::new("hello").to(AgentId(100)));
    /// rt.run().unwrap();
    /// assert_eq!(*out.try_recv().unwrap().payload::<&str>().unwrap(), "hello");
    /// ```
    pub fn endpoint(&mut self, partition: usize, id: AgentId) -> Result<Outbound> {
        self.endpoint_with(partition, id, 1024, Overflow::Block)
    }

    /// Adds an endpoint whose stream holds `capacity` envelopes (at least
    /// 1), with the given [`Overflow`] policy for a reader that is behind.
    ///
    /// On a partition of another host (see [`transport`](crate::transport))
    /// the id is claimed here, as on every host, and the stream here is
    /// empty and closed: the endpoint's mail comes out on its own host.
    pub fn endpoint_with(
        &mut self,
        partition: usize,
        id: AgentId,
        capacity: usize,
        overflow: Overflow,
    ) -> Result<Outbound> {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let counts = Arc::new(EndpointCounts::default());
        let endpoint =
            Endpoint { tx, overflow, counts: counts.clone(), pressure: self.pressure.clone() };
        self.add_with_id(partition, id, endpoint)?;
        Ok(Outbound { rx, counts })
    }

    /// A stream of progress samples every `every` (clock, wall time, their
    /// ratio, messages/s), from a thread of its own that reads the
    /// partitions' gauges: the run does no work for it. Take it before
    /// [`run`](Self::run) and read it from another thread or task.
    pub fn progress(&self, every: Duration) -> Progress {
        Progress::start(self.gauges.clone(), every, self.cancel.clone())
    }

    pub(crate) fn gauges(&self) -> Gauges {
        self.gauges.clone()
    }

    pub(crate) fn pressure(&self) -> Arc<Backpressure> {
        self.pressure.clone()
    }

    /// Where the agents added from here are.
    pub(crate) fn directory(&self) -> FxHashMap<AgentId, usize> {
        self.dir.clone()
    }

    /// Runs `f` on partition `partition`'s thread before anything else
    /// queued later (sent at once).
    pub(crate) fn post_call(
        &mut self,
        partition: usize,
        f: impl FnOnce(&mut Partition) + Send + 'static,
    ) -> Result<()> {
        self.check(partition)?;
        self.local(partition)?;
        self.post(partition, f)?;
        self.flush()
    }

    /// Tells the partitions where the agents added since the last time are.
    fn flush_placements(&mut self) -> Result<()> {
        if self.placed.is_empty() {
            return Ok(());
        }
        let placed = Arc::new(std::mem::take(&mut self.placed));
        for part in &mut self.parts {
            if part.cmds.is_none() {
                // Another host's partition.
                continue;
            }
            let placed = placed.clone();
            // First in the batch: calls queued before (a send, say) may
            // need them.
            part.queued.insert(
                0,
                Box::new(move |p: &mut Partition| {
                    for &(id, at) in placed.iter() {
                        p.place(id, at);
                    }
                }),
            );
        }
        Ok(())
    }

    fn partition_for(&self, receiver: Option<AgentId>) -> usize {
        receiver.and_then(|r| self.dir.get(&r).copied()).unwrap_or(0)
    }

    fn stamp(&mut self, env: &mut Envelope) {
        self.outside += 1;
        env.set_origin(Origin { key: 0, seq: self.outside, ..Origin::default() });
    }

    /// Posts a message from outside; it is delivered when the next run
    /// starts (to its receiver and subscribers, wherever they are), as
    /// [`Scheduler::send`](maslite_core::Scheduler::send) does.
    ///
    /// A runtime that has stopped (cancelled, or its run failed) can
    /// deliver nothing more: the message is dropped with a `tracing`
    /// warning, and the next [`run`](Self::run) returns
    /// [`Error::Stopped`].
    pub fn send(&mut self, mut envelope: Envelope) {
        self.stamp(&mut envelope);
        let q = self.partition_for(envelope.receiver());
        if !self.is_local(q) {
            // The receiver's host posts it.
            return;
        }
        let posted =
            self.check(q).and_then(|()| self.post(q, move |p| p.kernel_mut().send(envelope)));
        if let Err(e) = posted {
            tracing::warn!(error = %e, "a message posted to a stopped runtime is dropped");
        }
    }

    /// Sets an alarm from outside (on its receiver's partition).
    pub fn set_alarm(&mut self, mut alarm: Alarm) -> Result<()> {
        self.check(0)?;
        self.stamp(alarm.envelope_mut());
        let q = self.partition_for(alarm.envelope_mut().receiver());
        if !self.is_local(q) {
            // Its host sets it; here the same answer, so that every host
            // goes on the same way.
            return alarm.due_time(self.now).map(|_| ());
        }
        self.with_driver(q, move |d| d.set_alarm_stamped(alarm))?
    }

    /// Subscribes an agent (on whichever partition) to a pattern; every
    /// partition knows from the next step on.
    pub fn subscribe(&mut self, subscriber: AgentId, pattern: Subscription) -> Result<()> {
        let q = self.dir.get(&subscriber).copied().ok_or(Error::UnknownAgent(subscriber))?;
        if !self.is_local(q) {
            // Its host subscribes it; every partition hears of it. Here the
            // same answer to a pattern that names too much or too little.
            return pattern.validate(subscriber);
        }
        self.with_partition(q, move |s| s.subscribe(subscriber, pattern))?
    }

    /// Runs `f` with partition `partition`'s kernel, on its thread, between
    /// runs, and returns what it returns.
    pub fn with_partition<R, F>(&mut self, partition: usize, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Scheduler) -> R + Send + 'static,
    {
        self.with_driver(partition, move |d| f(d))
    }

    /// [`with_partition`](Self::with_partition) with the partition's driver.
    pub(crate) fn with_driver<R, F>(&mut self, partition: usize, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Driver) -> R + Send + 'static,
    {
        self.call(partition, move |p| f(p.kernel_mut()))
    }

    /// Runs `f` with partition `partition` on its thread, between runs,
    /// and returns what it returns.
    pub(crate) fn call<R, F>(&mut self, partition: usize, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Partition) -> R + Send + 'static,
    {
        self.check_open(partition)?;
        self.local(partition)?;
        let (tx, rx) = oneshot::channel();
        self.post(partition, move |p| {
            // A panic in `f` is the caller's: it resumes on the caller's
            // thread, and the partition goes on.
            let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(p))));
        })?;
        self.flush()?;
        match crate::wait::block_on(rx, self.spin()) {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            Err(_) => Err(Error::PartitionDied {
                partition,
                message: "a call on it did not return".into(),
            }),
        }
    }

    /// Reads an agent (wherever it is) with `f`, between runs.
    pub fn with_agent<A, R, F>(&mut self, id: AgentId, f: F) -> Result<R>
    where
        A: Agent,
        R: Send + 'static,
        F: FnOnce(&A) -> R + Send + 'static,
    {
        let q = self.dir.get(&id).copied().ok_or(Error::UnknownAgent(id))?;
        self.with_partition(q, move |s| s.agent::<A>(id).map(|a| f(&a)))?
    }

    /// Runs until idle (see [`run_with`](Self::run_with)).
    pub fn run(&mut self) -> Result<RuntimeReport> {
        self.run_with(RunOptions::default())
    }

    /// Runs all partitions until a stop condition of `opts` holds, an agent
    /// pauses (which stops every partition), or the token is cancelled.
    /// Blocks the calling thread; in async code use
    /// [`run_async`](Self::run_async).
    ///
    /// A run that fails (an agent panicked, a partition's thread died, the
    /// lookahead was broken) returns the error naming the partition and the
    /// agent, and the runtime is spent: nothing more runs or is sent
    /// ([`Error::Stopped`]). Its agents can still be read for a post-mortem
    /// ([`with_agent`](Self::with_agent), [`with_partition`](Self::with_partition)),
    /// unless a partition's thread died or a host was lost: then every
    /// partition is stopped.
    pub fn run_with(&mut self, opts: RunOptions) -> Result<RuntimeReport> {
        let spin = self.spin();
        crate::wait::block_on(self.run_async(opts), spin)
    }

    /// [`run_with`](Self::run_with) for async code: awaits the partitions
    /// without blocking the caller's executor thread.
    pub async fn run_async(&mut self, opts: RunOptions) -> Result<RuntimeReport> {
        opts.end_from(self.now)?;
        self.check(0)?;
        let wall = Instant::now();
        self.flush()?;
        let start_time = self.now;
        let mut replies = Vec::with_capacity(self.parts.len());
        let free =
            (self.config.mode == Mode::RealTime).then(|| Arc::new(FreeRun::new(self.parts.len())));
        // If this future is dropped before the partitions answer, the run
        // is abandoned: its token stops them at the end of their step.
        let stop = self.cancel.child_token();
        let abandon = stop.clone().drop_guard();
        for q in 0..self.parts.len() {
            if !self.is_local(q) {
                continue;
            }
            let (tx, rx) = oneshot::channel();
            let cmd = Cmd::Run(opts, stop.clone(), free.clone(), self.next_key, tx);
            let sent = self.parts[q].cmds.as_ref().map(|c| c.send(cmd).is_ok());
            if sent != Some(true) {
                let e = self.died(q);
                self.shut_down();
                return Err(e);
            }
            replies.push((q, rx));
        }
        let mut outcomes: Vec<Outcome> = Vec::with_capacity(replies.len());
        let mut failure: Option<Error> = None;
        // Whether a failure leaves every partition's thread alive.
        let mut threads_alive = true;
        for (q, rx) in replies {
            match rx.await {
                Ok(outcome) => outcomes.push(outcome),
                Err(_) => {
                    threads_alive = false;
                    // The others stop, even one waiting on the outside world.
                    stop.cancel();
                    let e = self.died(q);
                    if failure.as_ref().is_none_or(|f| rank(&e) > rank(f)) {
                        failure = Some(e);
                    }
                }
            }
        }
        abandon.disarm();
        for o in &outcomes {
            if let Err(e) = &o.result {
                if failure.as_ref().is_none_or(|f| rank(e) > rank(f)) {
                    failure = Some(e.clone());
                }
            }
        }
        if let Some(e) = failure {
            let post_mortem = threads_alive
                && self.placement.is_none()
                && !matches!(e, Error::PartitionDied { .. } | Error::Transport { .. });
            if post_mortem {
                // The partitions wait between runs: their agents can still
                // be read (`with_agent`, `with_partition`), those made in
                // the run too; nothing else runs.
                self.learn_placements(&outcomes);
                self.now = outcomes.iter().map(|o| o.end_time).fold(self.now, f64::max);
                self.failed = true;
            } else {
                self.shut_down();
            }
            return Err(e);
        }
        Ok(self.settle(outcomes, start_time, wall))
    }

    /// What the handle learns from a run that went well: the clock, the
    /// next key, where agents made or removed in it are; and the run's
    /// report.
    fn settle(
        &mut self,
        mut outcomes: Vec<Outcome>,
        start_time: f64,
        wall: Instant,
    ) -> RuntimeReport {
        let end_time = outcomes.iter().map(|o| o.end_time).fold(f64::NEG_INFINITY, f64::max);
        // Agents created in the run took keys (the same on every partition).
        self.next_key = outcomes.iter().map(|o| o.next_key).fold(self.next_key, u64::max);
        self.now = end_time;
        self.learn_placements(&outcomes);
        let reason = outcomes[0].result.clone().unwrap_or(StopReason::Idle);
        let measured = self.measured(&mut outcomes, wall.elapsed());
        let counters: Vec<(usize, &crate::route::Counters)> =
            outcomes.iter().map(|o| (o.report.partition, &o.counters)).collect();
        let report = RuntimeReport {
            reason,
            start_time,
            end_time,
            wall: wall.elapsed(),
            steps: outcomes[0].steps,
            // A row per partition: zeros for other hosts' (their own
            // reports have them).
            traffic: {
                let mut rows = vec![vec![0; self.parts.len()]; self.parts.len()];
                for o in &outcomes {
                    rows[o.report.partition] = o.counters.row.clone();
                }
                rows
            },
            top_pairs: top_pairs(&counters, 10),
            untracked_crossings: outcomes.iter().map(|o| o.counters.untracked).sum(),
            partitions: outcomes.into_iter().map(|o| o.report).collect(),
            measured,
        };
        let waiting = report.waiting_outside();
        // (On the wall clock, waiting on the outside world is the point.)
        if !waiting.is_empty() && !matches!(self.config.mode, Mode::RealTime) {
            tracing::warn!(
                agents = ?waiting,
                reason = ?report.reason,
                "the run stopped with agents suspended on something the kernel does not drive \
                 (tokio I/O, a channel, a tokio timer: tokio's timers follow the wall clock; \
                 in simulated time use cx.sleep or cx.recv_timeout)"
            );
        }
        report
    }

    /// Learns where the agents made or removed in a run are. Each
    /// partition's last word on an id is where that id stands: an agent may
    /// leave a partition and come back within one run. Leaves first, then
    /// joins (at most one partition holds an id).
    fn learn_placements(&mut self, outcomes: &[Outcome]) {
        let mut last: FxHashMap<(AgentId, usize), bool> = FxHashMap::default();
        for o in outcomes {
            for &(id, q, joined) in &o.joined {
                last.insert((id, q), joined);
            }
        }
        for (&(id, q), &joined) in &last {
            if !joined && self.dir.get(&id) == Some(&q) {
                self.dir.remove(&id);
            }
        }
        for (&(id, q), &joined) in &last {
            if joined {
                self.dir.insert(id, q);
            }
        }
    }

    /// The error for partition `q`'s thread having died (its last word
    /// awaited, to read its panic).
    fn died(&mut self, q: usize) -> Error {
        self.parts[q].cmds = None;
        let spin = self.spin();
        let message = match self.parts[q].thread.take().map(|t| t.wait(spin)) {
            Some(Err(panic)) => panic,
            _ => "it stopped".to_string(),
        };
        Error::PartitionDied { partition: q, message }
    }

    /// Stops every partition and waits until each has dropped all it held.
    fn shut_down(&mut self) -> Option<Error> {
        self.stopped = true;
        self.cancel.cancel();
        for part in &mut self.parts {
            part.cmds = None;
        }
        let mut first = None;
        // Partitions waiting on other hosts stop waiting.
        self.stopping.cancel();
        let spin = self.spin();
        for (q, part) in self.parts.iter_mut().enumerate() {
            if let Some(Err(message)) = part.thread.take().map(|t| t.wait(spin)) {
                first.get_or_insert(Error::PartitionDied { partition: q, message });
            }
        }
        if let Some(Err(panic)) = self.transport_thread.take().map(|t| t.join()) {
            first.get_or_insert(Error::Transport {
                message: format!("the transport's thread panicked: {}", panic_message(&*panic)),
            });
        }
        first
    }

    /// Stops every partition, reporting a thread that had died. It returns
    /// once each partition has dropped all it held (its agents, their tokio
    /// tasks, its tokio runtime); the OS threads then end on their own.
    pub fn stop(mut self) -> Result<()> {
        self.shut_down().map_or(Ok(()), Err)
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.shut_down();
    }
}
