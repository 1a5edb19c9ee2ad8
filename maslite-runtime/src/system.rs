//! One model, any host: the calls a model makes from outside, alike on a
//! bare [`Scheduler`] and on a [`Runtime`].
//!
//! Write the model's set-up once, against [`System`], and run it on one
//! kernel (to debug it, or where one core is enough) or on many partitions
//! (to go fast): the trace is the same (see the README, "One order"). A
//! bare kernel has one partition and ignores the partition it is given.
//!
//! ```
//! use maslite_core::{AgentId, Envelope, Result, RunOptions, Scheduler, StopReason};
//! use maslite_runtime::{Runtime, RunSummary, System};
//!
//! #[derive(Clone)]
//! struct Car(u32);
//!
//! /// A car wash: cars arrive one second apart; the wash takes 1.5 s each.
//! fn car_wash<S: System>(sys: &mut S) -> Result<Vec<(f64, u32)>> {
//!     let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
//!     let seen = log.clone();
//!     let wash = sys.spawn_on(sys.partitions() - 1, move |cx| async move {
//!         loop {
//!             let car = cx.recv().await.payload::<Car>().unwrap().0;
//!             cx.sleep(1.5).await;
//!             seen.lock().unwrap().push((cx.now(), car));
//!         }
//!     })?;
//!     sys.spawn_on(0, move |cx| async move {
//!         for n in 0..4 {
//!             cx.send(Envelope::new(Car(n)).to(wash));
//!             cx.sleep(1.0).await;
//!         }
//!     })?;
//!     let report = sys.run_with(RunOptions::new())?;
//!     assert_eq!(report.reason(), StopReason::Idle);
//!     let washed = log.lock().unwrap().clone();
//!     Ok(washed)
//! }
//!
//! let one = car_wash(&mut Scheduler::simulated()).unwrap();
//! let two = car_wash(&mut Runtime::new(2).unwrap()).unwrap();
//! assert_eq!(one, two);
//! assert_eq!(one, [(1.5, 0), (3.0, 1), (4.5, 2), (6.0, 3)]);
//! # let _ = AgentId(0);
//! ```

use crate::report::RuntimeReport;
use crate::runtime::Runtime;
use maslite_core::Result;
use maslite_core::{
    Agent, AgentId, Alarm, Cx, Envelope, RunOptions, Scheduler, StopReason, Subscription,
};
use std::any::Any;
use std::future::Future;

/// What a run reports, in the terms a bare kernel and a runtime share.
pub trait RunSummary {
    /// Why it stopped.
    fn reason(&self) -> StopReason;
    /// The clock when it started.
    fn start_time(&self) -> f64;
    /// The clock when it stopped.
    fn end_time(&self) -> f64;
}

impl RunSummary for maslite_core::RunReport {
    fn reason(&self) -> StopReason {
        self.reason
    }
    fn start_time(&self) -> f64 {
        self.start_time
    }
    fn end_time(&self) -> f64 {
        self.end_time
    }
}

impl RunSummary for RuntimeReport {
    fn reason(&self) -> StopReason {
        self.reason
    }
    fn start_time(&self) -> f64 {
        self.start_time
    }
    fn end_time(&self) -> f64 {
        self.end_time
    }
}

/// The calls a model makes from outside, alike on a [`Scheduler`] and a
/// [`Runtime`] (see the [module](self)). Agents must be `Send`, as a
/// runtime needs (build `!Send` ones on their partition with
/// [`Runtime::add_made`]). Both return the one [`Error`](maslite_core::Error): the same
/// program fails with the same value on either.
pub trait System {
    /// What a run reports.
    type Report: RunSummary;

    /// The number of partitions (1 for a bare kernel).
    fn partitions(&self) -> usize;

    /// Adds `agent` with an allocated id on `partition` (a bare kernel has
    /// one).
    fn add_on<A: Agent + Send>(&mut self, partition: usize, agent: A) -> Result<AgentId>;

    /// Adds `agent` with id `id` on `partition`.
    fn add_with_id_on<A: Agent + Send>(
        &mut self,
        partition: usize,
        id: AgentId,
        agent: A,
    ) -> Result<AgentId>;

    /// Starts an async-fn agent on `partition`.
    fn spawn_on<F, Fut>(&mut self, partition: usize, body: F) -> Result<AgentId>
    where
        F: FnOnce(Cx) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + 'static;

    /// Starts a process whose body returns a value on `partition`; read the
    /// value with [`take_result`](Self::take_result) after it ended.
    fn process_on<F, Fut, T>(&mut self, partition: usize, body: F) -> Result<AgentId>
    where
        F: FnOnce(Cx) -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
        T: Any + Send;

    /// The value of a process started with
    /// [`process_on`](Self::process_on), once it ended.
    fn take_result<T: Any + Send>(&mut self, id: AgentId) -> Result<Option<T>>;

    /// Posts a message from outside, delivered when the next run starts.
    fn send(&mut self, envelope: Envelope);

    /// Sets an alarm from outside.
    fn set_alarm(&mut self, alarm: Alarm) -> Result<()>;

    /// Subscribes an agent to a pattern.
    fn subscribe(&mut self, subscriber: AgentId, pattern: Subscription) -> Result<()>;

    /// Runs until a stop condition of `opts` holds.
    fn run_with(&mut self, opts: RunOptions) -> Result<Self::Report>;

    /// Reads agent `id` (of type `A`) with `f`, between runs.
    fn with_agent<A, R, F>(&mut self, id: AgentId, f: F) -> Result<R>
    where
        A: Agent,
        R: Send + 'static,
        F: FnOnce(&A) -> R + Send + 'static;
}

impl System for Scheduler {
    type Report = maslite_core::RunReport;

    fn partitions(&self) -> usize {
        1
    }
    fn add_on<A: Agent + Send>(&mut self, _: usize, agent: A) -> Result<AgentId> {
        self.add(agent)
    }
    fn add_with_id_on<A: Agent + Send>(
        &mut self,
        _: usize,
        id: AgentId,
        agent: A,
    ) -> Result<AgentId> {
        self.add_with_id(id, agent)
    }
    fn spawn_on<F, Fut>(&mut self, _: usize, body: F) -> Result<AgentId>
    where
        F: FnOnce(Cx) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        self.spawn(body)
    }
    fn process_on<F, Fut, T>(&mut self, _: usize, body: F) -> Result<AgentId>
    where
        F: FnOnce(Cx) -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
        T: Any + Send,
    {
        self.process(body)
    }
    fn take_result<T: Any + Send>(&mut self, id: AgentId) -> Result<Option<T>> {
        Ok(Scheduler::take_result(self, id))
    }
    fn send(&mut self, envelope: Envelope) {
        Scheduler::send(self, envelope)
    }
    fn set_alarm(&mut self, alarm: Alarm) -> Result<()> {
        Scheduler::set_alarm(self, alarm)
    }
    fn subscribe(&mut self, subscriber: AgentId, pattern: Subscription) -> Result<()> {
        Scheduler::subscribe(self, subscriber, pattern)
    }
    fn run_with(&mut self, opts: RunOptions) -> Result<maslite_core::RunReport> {
        Scheduler::run_with(self, opts)
    }
    fn with_agent<A, R, F>(&mut self, id: AgentId, f: F) -> Result<R>
    where
        A: Agent,
        R: Send + 'static,
        F: FnOnce(&A) -> R + Send + 'static,
    {
        Scheduler::with_agent(self, id, f)
    }
}

impl System for Runtime {
    type Report = RuntimeReport;

    fn partitions(&self) -> usize {
        Runtime::partitions(self)
    }
    fn add_on<A: Agent + Send>(&mut self, partition: usize, agent: A) -> Result<AgentId> {
        self.add(partition, agent)
    }
    fn add_with_id_on<A: Agent + Send>(
        &mut self,
        partition: usize,
        id: AgentId,
        agent: A,
    ) -> Result<AgentId> {
        self.add_with_id(partition, id, agent)
    }
    fn spawn_on<F, Fut>(&mut self, partition: usize, body: F) -> Result<AgentId>
    where
        F: FnOnce(Cx) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        self.spawn(partition, body)
    }
    fn process_on<F, Fut, T>(&mut self, partition: usize, body: F) -> Result<AgentId>
    where
        F: FnOnce(Cx) -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
        T: Any + Send,
    {
        self.process(partition, body)
    }
    fn take_result<T: Any + Send>(&mut self, id: AgentId) -> Result<Option<T>> {
        Runtime::take_result(self, id)
    }
    fn send(&mut self, envelope: Envelope) {
        Runtime::send(self, envelope)
    }
    fn set_alarm(&mut self, alarm: Alarm) -> Result<()> {
        Runtime::set_alarm(self, alarm)
    }
    fn subscribe(&mut self, subscriber: AgentId, pattern: Subscription) -> Result<()> {
        Runtime::subscribe(self, subscriber, pattern)
    }
    fn run_with(&mut self, opts: RunOptions) -> Result<RuntimeReport> {
        Runtime::run_with(self, opts)
    }
    fn with_agent<A, R, F>(&mut self, id: AgentId, f: F) -> Result<R>
    where
        A: Agent,
        R: Send + 'static,
        F: FnOnce(&A) -> R + Send + 'static,
    {
        Runtime::with_agent(self, id, f)
    }
}
