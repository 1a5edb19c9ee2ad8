//! A partition: one OS thread (pinned to a core when there are enough), one
//! `current_thread` tokio runtime with a `LocalSet`, one maslite-core
//! kernel.
//!
//! Agents live and die on their partition's thread, so they may be `!Send`
//! and may await tokio I/O and timers of that runtime. The runtime's handle
//! reaches a partition only through [`Cmd`]s — closures run on the thread
//! (to add, inspect, send) and runs — so nothing of a partition is ever
//! shared.

mod free;
pub mod lockstep;
mod replica;
mod thread;

pub(crate) use free::FreeRun;
pub(crate) use replica::Directory;
use replica::{Here, Replica};
pub(crate) use thread::PartitionThread;

use crate::config::{Config, Mode};
use crate::error::{Error, Result};
use crate::exchange::Wires;
use crate::report::{PartitionReport, StopReason};
use crate::route::{Counters, Router};
use maslite_core::{AgentId, Change, Driver, RemoteAlarms, RunOptions, Scheduler};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Work for a partition's thread, from the runtime's handle.
pub(crate) type Call = Box<dyn FnOnce(&mut Partition) + Send>;

/// A request to a partition's thread.
pub(crate) enum Cmd {
    /// Run on the thread, in order, between runs.
    Calls(Vec<Call>),
    /// Runs the partition's part of a run, until it ends or the run's token
    /// (a child of the runtime's) is cancelled; the next free ordering key
    /// comes along (see `Replica::next_key`).
    Run(RunOptions, CancellationToken, Option<Arc<FreeRun>>, u64, oneshot::Sender<Outcome>),
}

/// A partition's part of a run, sent back to the runtime's handle.
pub(crate) struct Outcome {
    pub result: Result<StopReason>,
    pub end_time: f64,
    pub steps: u64,
    pub report: PartitionReport,
    pub counters: Counters,
    /// Agents that joined (true) or left (false) a partition: this one,
    /// and, told by the lowest partition of a host, those of other hosts.
    pub joined: Vec<(AgentId, usize, bool)>,
    /// The next free ordering key after the run (the same on every
    /// partition).
    pub next_key: u64,
    /// Traffic measured: every agent here with its updates in the run.
    pub loads: Vec<(AgentId, u64)>,
}

/// The state of one partition, owned by its thread.
pub(crate) struct Partition {
    me: usize,
    count: usize,
    kernel: Driver,
    /// What this partition knows of every partition's agents.
    replica: Replica,
    wires: Wires,
    /// The current run's token: cancelled with the runtime's, when the run
    /// is abandoned by its caller, or when a partition fails (so peers
    /// waiting on the outside world stop waiting).
    stop: CancellationToken,
    config: Arc<Config>,
    router: Router,
    counters: Counters,
    changes: Vec<Change>,
    /// Agents made here for other partitions, taken from the kernel (a
    /// buffer kept between steps).
    starting: Vec<maslite_core::Start>,
    /// An error from between runs (a setup that panicked), reported by the
    /// next run.
    deferred: Option<Error>,
    /// Runs so far (this one included, during a run).
    runs: u64,
    /// This run's fingerprint (see [`Control::run`](crate::transport::Control::run)).
    fingerprint: u64,
    /// An agent asked to stop this run.
    paused: bool,
    /// Lockstep: the rounds that updated an agent on some partition, since
    /// the runtime was made (the same on every partition; see `Cx::round`).
    rounds_polled: u64,
    /// This partition's live figures.
    gauges: crate::progress::Gauges,
    /// A service's inlet, while the runtime serves.
    intake: Option<crate::service::InletQueue>,
    /// Messages taken from the intake, to be sent.
    taken: Vec<maslite_core::Envelope>,
    /// Traffic is measured (see [`traffic`](crate::traffic)).
    measuring: bool,
    /// Mail from other partitions in this step (kept between steps).
    incoming: Vec<(AgentId, maslite_core::Envelope)>,
    /// Emptied batch buffers, per partition they came from, to give back.
    spares: Vec<Vec<(AgentId, maslite_core::Envelope)>>,
    /// Emptied buffers of alarms, per partition they came from, to give
    /// back (lookahead windows).
    alarm_spares: Vec<Vec<(f64, maslite_core::Envelope)>>,
}

impl Partition {
    /// The partition's kernel (for the handle's calls between runs).
    pub(crate) fn kernel_mut(&mut self) -> &mut Driver {
        &mut self.kernel
    }

    /// Learns that agent `id` is on partition `at` (placed by the handle).
    pub(crate) fn place(&mut self, id: AgentId, at: usize) {
        self.replica.dir.insert(id, at);
    }

    /// Goes on from a snapshot: `rounds` rounds updated an agent before
    /// (what `Cx::round` counts on).
    pub(crate) fn resume_rounds(&mut self, rounds: u64) {
        self.rounds_polled = rounds;
    }

    /// Measures traffic from the next run on, or stops (see
    /// [`traffic`](crate::traffic)).
    pub(crate) fn measure(&mut self, on: bool) {
        self.measuring = on;
        self.kernel.measure_load(on);
    }

    /// The agents here with their updates since the last call, if traffic
    /// is measured.
    pub(crate) fn take_loads(&mut self) -> Vec<(AgentId, u64)> {
        let mut loads = Vec::new();
        if self.measuring {
            self.kernel.take_loads_into(&mut loads);
        }
        loads
    }

    /// Gives the thread to the tasks a service hosts here (see
    /// [`Service::host`](crate::Service::host)) at least every 128 calls,
    /// once a step, while the run has work to do (tokio's cooperative
    /// budget). A partition that hosts none pays a test: a simulation's
    /// steps never yield (each yield is a zero-timeout `epoll_wait`).
    pub(crate) async fn yield_to_hosted(&self) {
        if self.intake.as_ref().is_some_and(|i| i.hosting()) {
            tokio::task::coop::consume_budget().await;
        }
    }

    /// Drops the agents and endpoints (see `Runtime::retire`): the thread
    /// and its tokio runtime stay, for the tasks a service hosts here.
    pub(crate) fn retire(&mut self) {
        let empty = Driver::new(Scheduler::simulated(), RemoteAlarms::Kept);
        drop(std::mem::replace(&mut self.kernel, empty));
    }

    /// Serves: messages from outside come in through `intake` (its run is
    /// its only one).
    pub(crate) fn serve(&mut self, intake: crate::service::InletQueue) {
        self.intake = Some(intake);
    }
}

/// Messages a partition takes from a service's inlet per step, at most.
const INTAKE_PER_STEP: usize = 4096;

impl Partition {
    /// Takes what waits in a service's inlet into the kernel (as sent from
    /// outside); returns how many.
    pub fn take_intake(&mut self) -> usize {
        let Some(intake) = self.intake.as_mut() else { return 0 };
        intake.take(self.me, self.count, INTAKE_PER_STEP, &mut self.taken);
        let n = self.taken.len();
        for env in self.taken.drain(..) {
            self.kernel.send(env);
        }
        n
    }

    /// Whether nothing more can come in from a service's inlet (closed and
    /// emptied), or there is none.
    pub fn intake_exhausted(&self) -> bool {
        self.intake.as_ref().is_none_or(|i| i.exhausted())
    }

    /// Takes a mail batch from partition `q` into `incoming` (without a
    /// copy when it is the first), keeping the emptied buffer to give back.
    pub fn take_batch(&mut self, q: usize, mut batch: Vec<(AgentId, maslite_core::Envelope)>) {
        if self.incoming.is_empty() {
            std::mem::swap(&mut self.incoming, &mut batch);
        } else {
            self.incoming.append(&mut batch);
        }
        if batch.capacity() > self.spares[q].capacity() {
            self.spares[q] = batch;
        }
    }

    /// Publishes this partition's clock and counts (once per step).
    pub fn publish(&self) {
        self.gauges.of(self.me).publish(self.kernel.now(), &self.kernel.stats());
    }

    /// Routes the outbox (see [`Router::route`]).
    pub fn route_outbox(&mut self, may_cross: bool) -> crate::route::Routed {
        self.router.route(
            self.me,
            &mut self.kernel,
            &self.replica.dir,
            &mut self.counters,
            may_cross,
        )
    }

    /// Records an error from between runs.
    pub fn defer(&mut self, e: maslite_core::Error) {
        self.deferred.get_or_insert(e);
    }

    /// This partition's report on the run that just ended (`before`,
    /// `stats0` and `waited0`: its counters when the run started).
    pub fn report(
        &self,
        before: &Counters,
        stats0: maslite_core::Stats,
        waited0: std::time::Duration,
    ) -> PartitionReport {
        let s = self.kernel.stats();
        let c = &self.counters;
        PartitionReport {
            partition: self.me,
            agents: self.kernel.len(),
            rounds: s.rounds - stats0.rounds,
            updates: s.polls - stats0.polls,
            sent: c.sent - before.sent + self.router.outbox.len() as u64,
            delivered: c.delivered - before.delivered,
            dead_letters: c.dead - before.dead,
            // Mail not routed yet counts as sent and pending.
            pending: self.router.outbox.len() as u64,
            unread: self.kernel.mail_in_inboxes(),
            cross_partition: c.cross - before.cross,
            waiting_outside: self.kernel.waiting_outside(),
            waited: self.wires.waited - waited0,
        }
    }

    /// Applies the changes of every partition in one step (see
    /// [`Replica::apply_step_changes`]).
    fn apply_step_changes(&mut self, all: &[(usize, Arc<Vec<Change>>)]) -> Result<()> {
        let (replica, mut here) = self.replica_here();
        replica.apply_step_changes(&mut here, all)
    }

    /// Applies partition `from`'s changes (see [`Replica::apply_changes`]).
    fn apply_changes(&mut self, from: usize, changes: &[Change]) -> Result<()> {
        let (replica, mut here) = self.replica_here();
        replica.apply_changes(&mut here, from, changes)
    }

    /// Gives the agents created in this step their places (see
    /// [`Replica::place_new_agents`]).
    fn place_new_agents(&mut self, all: &[(usize, Arc<Vec<Change>>)]) {
        let (replica, mut here) = self.replica_here();
        replica.place_new_agents(&mut here, all)
    }

    /// The replica, and this partition as the replica needs it.
    fn replica_here(&mut self) -> (&mut Replica, Here<'_>) {
        let here = Here {
            me: self.me,
            kernel: &mut self.kernel,
            wires: &self.wires,
            free: self.config.mode == Mode::RealTime,
        };
        (&mut self.replica, here)
    }

    /// Removes the agents other partitions asked this one to remove (see
    /// [`Change::RemoveRequested`]); returns whether there were any (their
    /// teardowns may have sent mail).
    pub fn remove_requested(&mut self) -> Result<bool> {
        if self.replica.to_remove.is_empty() {
            return Ok(false);
        }
        for id in std::mem::take(&mut self.replica.to_remove) {
            // PeerGone already (it left, or two asked) is fine.
            if self.kernel.contains(id) {
                self.kernel.remove(id)?;
            }
        }
        Ok(true)
    }
}

/// What a partition's thread starts from (all `Send`).
pub(crate) struct Seed {
    pub me: usize,
    pub count: usize,
    pub wires: Wires,
    pub cancel: CancellationToken,
    pub config: Arc<Config>,
    pub cmds: mpsc::UnboundedReceiver<Cmd>,
    pub gauges: crate::progress::Gauges,
}

/// The body of a partition's thread: serves commands until the handle
/// closes the command channel.
pub(crate) fn thread_main(seed: Seed) {
    let Seed { me, count, wires, cancel, config, mut cmds, gauges } = seed;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread tokio runtime");
    let local = tokio::task::LocalSet::new();
    // As the task `maslite-partition-{me}` (for tokio-console, see `named`).
    crate::named::run_partition(&local, &rt, me, async move {
        let (kernel, remote_alarms) = match config.mode {
            Mode::RealTime => (Scheduler::real_time(), RemoteAlarms::Kept),
            Mode::Lockstep => (Scheduler::simulated(), RemoteAlarms::Kept),
            Mode::Lookahead(_) => (Scheduler::simulated(), RemoteAlarms::HandedOut),
        };
        let mut kernel = Driver::new(kernel, remote_alarms);
        kernel.set_partition(me);
        let mut p = Partition {
            me,
            count,
            kernel,
            replica: Replica::new(count),
            wires,
            stop: cancel.child_token(),
            router: Router::new(count),
            counters: Counters::new(count, false),
            measuring: false,
            config,
            changes: Vec::new(),
            starting: Vec::new(),
            deferred: None,
            runs: 0,
            fingerprint: 0,
            paused: false,
            rounds_polled: 0,
            gauges,
            intake: None,
            taken: Vec::new(),
            incoming: Vec::new(),
            spares: (0..count).map(|_| Vec::new()).collect(),
            alarm_spares: (0..count).map(|_| Vec::new()).collect(),
        };
        p.replica.tells_remote =
            (0..me).all(|q| p.wires.is_remote(q)) && (0..count).any(|q| p.wires.is_remote(q));
        let spin = p.config.spin;
        while let Some(cmd) = next_command(&mut cmds, spin).await {
            match cmd {
                Cmd::Calls(calls) => {
                    for f in calls {
                        // A panic in a closure from the handle (an agent's
                        // constructor) is that call's failure, not the
                        // thread's.
                        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| f(&mut p))) {
                            let message = panic_message(panic.as_ref());
                            p.defer(Error::AgentPanicked {
                                agent: AgentId::OUTSIDE,
                                phase: maslite_core::Phase::Setup,
                                message,
                            });
                        }
                    }
                }
                Cmd::Run(opts, stop, free, next_key, reply) => {
                    p.stop = stop;
                    p.replica.next_key = next_key;
                    let outcome = p.run(opts, free).await;
                    let _ = reply.send(outcome);
                }
            }
        }
    });
    // Before the last word (see `thread`): the agents' local tasks go with
    // the set, the runtime's own tasks and its blocking pool with it.
    drop(local);
    drop(rt);
}

/// The next command: polled for up to `spin` (the handle's next call
/// often follows at once), then awaited. The polls yield the core between
/// them: the handle's thread may be waiting for it.
async fn next_command(cmds: &mut mpsc::UnboundedReceiver<Cmd>, spin: Duration) -> Option<Cmd> {
    let start = Instant::now();
    while start.elapsed() < spin {
        match cmds.try_recv() {
            Ok(cmd) => return Some(cmd),
            Err(mpsc::error::TryRecvError::Disconnected) => return None,
            Err(mpsc::error::TryRecvError::Empty) => std::thread::yield_now(),
        }
    }
    cmds.recv().await
}

pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_string()
    }
}
