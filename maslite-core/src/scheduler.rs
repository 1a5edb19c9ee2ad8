//! The scheduler: the single-partition kernel loop.
//!
//! A run is a sequence of rounds. Each round:
//!
//! 1. polls the agents woken from outside the kernel (busy agents whose
//!    external future became ready);
//! 2. updates, in insertion order, every agent that got mail in the last
//!    delivery, was woken by an alarm, or is kept awake;
//! 3. moves the clock: the simulated clock jumps to the earliest alarm (capped
//!    at the run's end) if nothing is left to do — no mail, no agent to
//!    update, no busy agent; the real-time clock reads the wall;
//! 4. releases the due alarms (mail into the outbox, sleepers marked);
//! 5. delivers the outbox: each message, in the order sent, to its receiver
//!    and its subscribers;
//! 6. stops if paused, at the end time, out of iterations, or idle.
//!
//! # Delivery order (deterministic)
//!
//! Mail sent in a round is delivered after it, in the order it was sent:
//! agents are updated in insertion order and each agent's sends keep their
//! order; alarms released in the round follow, in (time, setting order).
//! So each inbox receives its mail in an order fixed by the program alone —
//! the order [`Origin`](crate::Origin) defines, which a multi-partition
//! runtime reproduces by sorting.
//!
//! # Cost
//!
//! A point-to-point message costs one id look-up (an index into a table for
//! ids below 2²¹, a hash above), one push into the receiver's inbox (see
//! [`registry`](crate::registry): it skips the outbox) and, in the next round,
//! one poll of the receiver's future. Nothing is allocated per message: the
//! inboxes and round lists keep their buffers and the envelope is one box,
//! made by the sender, that travels to the receiver. A subscriber's copy is a
//! clone, so one allocation each.
//!
//! Measured on the 2-core machines of this project (release build,
//! `cargo run --release --example pingpong`): about 16 M messages/s for the
//! ping-pong of two trait agents, ~440 instructions a message. A
//! hand-written loop with the same rounds and envelopes does ~165, and ~260
//! once each agent is an async future polled through `dyn Future` (the
//! `baseline` benches); the rest pays for the checks that make a run stop,
//! fail and account for its mail cleanly.

pub mod driver;
pub mod moving;
mod snapshot;

pub use driver::{Driver, RemoteAlarms};
pub use moving::MovingAgent;

use crate::agent::{Agent, Inspect, Installed, Installer};
use crate::alarms::{Alarm, AlarmInfo, Fired};
use crate::change::Change;
use crate::clock::{Clock, TimeSource};
use crate::context::{signal, Command, Cx, Shared};
use crate::envelope::Envelope;
use crate::error::{Error, Phase, Result};
use crate::id::AgentId;
use crate::mailing_list::Subscription;
use crate::registry::{AgentRecord, Mode, MAX_AGENTS, UPDATE_DUE};
use crate::topic::short_type_name;
use crate::wake::{PollSite, ThreadWaker, WakeQueue};
use std::any::Any;
use std::cell::{Ref, RefMut};
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// How long a `run` goes on. Defaults follow maslite: no time or round
/// limit, pause when idle, clear alarms at the end.
///
/// ```
/// use maslite_core::RunOptions;
/// let opts = RunOptions::new().seconds(2.0).clear_alarms_at_end(false);
/// # let _ = opts;
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RunOptions {
    seconds: Option<f64>,
    until: Option<f64>,
    iterations: Option<u64>,
    pause_if_idle: bool,
    clear_alarms_at_end: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            seconds: None,
            until: None,
            iterations: None,
            pause_if_idle: true,
            clear_alarms_at_end: true,
        }
    }
}

impl RunOptions {
    /// maslite's defaults.
    pub fn new() -> RunOptions {
        RunOptions::default()
    }

    /// Stop when the clock has moved this many seconds (simulated or wall).
    pub fn seconds(mut self, seconds: f64) -> RunOptions {
        self.seconds = Some(seconds);
        self
    }

    /// Stop when the clock reaches `t` (an absolute time; with
    /// [`seconds`](Self::seconds) too, whichever comes first). A time
    /// already past is [`Error::AlarmInPast`] from the run.
    pub fn until(mut self, t: f64) -> RunOptions {
        self.until = Some(t);
        self
    }

    /// The time the run stops at if it starts at `start`, or why it cannot
    /// run ([`Error::InvalidTime`] for a limit that is not a finite,
    /// non-negative time; [`Error::AlarmInPast`] for an end before `start`).
    pub fn end_from(&self, start: f64) -> Result<Option<f64>> {
        let after = match self.seconds {
            Some(s) if !s.is_finite() || s < 0.0 => return Err(Error::InvalidTime(s)),
            Some(s) => Some(start + s),
            None => None,
        };
        let at = match self.until {
            Some(t) if !t.is_finite() => return Err(Error::InvalidTime(t)),
            Some(t) if t < start => return Err(Error::AlarmInPast { at: t, now: start }),
            t => t,
        };
        Ok(match (after, at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    /// Stop after this many rounds (`0`: return at once).
    pub fn iterations(mut self, rounds: u64) -> RunOptions {
        self.iterations = Some(rounds);
        self
    }

    /// Stop when idle (default `true`): no mail waiting, no agent busy, and
    ///
    /// - simulated clock: no alarm left at all (the clock jumps to the next
    ///   alarm whatever its `ignore_if_idle` flag, as in maslite);
    /// - real-time clock: no alarm set with [`Alarm::keep_alive`] left (the
    ///   others, and kept-awake agents, do not hold an idle run up; a
    ///   sleeping agent's wake-up does).
    ///
    /// Kept-awake agents are updated every round while the run goes on, but
    /// do not by themselves keep it going. With `false`, a simulated run with
    /// nothing left to do jumps to its end time (or stops if it has none).
    pub fn pause_if_idle(mut self, on: bool) -> RunOptions {
        self.pause_if_idle = on;
        self
    }

    /// Clear the pending mail alarms when the run ends (default `true`, as
    /// in maslite; sleeping agents' wake-ups are kept). To run a model in
    /// slices (`seconds(2.0)` at a time) and keep its alarms, set `false`.
    /// How many were cleared is in [`RunReport::alarms_cleared`].
    pub fn clear_alarms_at_end(mut self, on: bool) -> RunOptions {
        self.clear_alarms_at_end = on;
        self
    }

    /// The time limit set by [`seconds`](Self::seconds).
    pub fn seconds_limit(&self) -> Option<f64> {
        self.seconds
    }

    /// The end set by [`until`](Self::until).
    pub fn until_limit(&self) -> Option<f64> {
        self.until
    }

    /// The round limit set by [`iterations`](Self::iterations).
    pub fn rounds_limit(&self) -> Option<u64> {
        self.iterations
    }

    /// Whether an idle run stops (see [`pause_if_idle`](Self::pause_if_idle)).
    pub fn pauses_if_idle(&self) -> bool {
        self.pause_if_idle
    }

    /// Whether mail alarms are cleared at the end.
    pub fn clears_alarms_at_end(&self) -> bool {
        self.clear_alarms_at_end
    }
}

/// Why a run stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// An agent called [`Cx::pause`].
    Paused,
    /// The clock reached the end given by [`RunOptions::seconds`].
    TimeLimit,
    /// The rounds given by [`RunOptions::iterations`] were run.
    Iterations,
    /// Nothing left to do (see [`RunOptions::pause_if_idle`]), or nothing can
    /// ever happen again (no mail, no alarm, no busy or kept-awake agent).
    Idle,
    /// The run was stopped from outside: a multi-partition runtime's
    /// cancellation token was cancelled (a lone `Scheduler` has none, so
    /// its runs never stop for this reason).
    Cancelled,
}

/// Counters of a scheduler since it was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Rounds run.
    pub rounds: u64,
    /// Agent polls (updates, wake-ups, setups, teardowns).
    pub polls: u64,
    /// Messages delivered from the outbox (each counted once).
    pub messages: u64,
    /// Envelopes put into inboxes (a message and its copies).
    pub deliveries: u64,
    /// Messages whose receiver did not exist, and mail left in the inbox of
    /// a removed agent.
    pub dead_letters: u64,
    /// Broadcasts that no subscriber matched.
    pub unheard: u64,
    /// Alarms and wake-ups fired.
    pub alarms_fired: u64,
}

/// What one `run` did.
#[derive(Clone, Debug, PartialEq)]
pub struct RunReport {
    /// Why it stopped.
    pub reason: StopReason,
    /// The clock when it started.
    pub start_time: f64,
    /// The clock when it stopped.
    pub end_time: f64,
    /// Wall time spent.
    pub wall: Duration,
    /// What happened during this run alone.
    pub stats: Stats,
    /// Alarms cleared at the end (see [`RunOptions::clear_alarms_at_end`]).
    pub alarms_cleared: usize,
    /// Agents suspended, when the run stopped, on something the kernel does
    /// not drive (tokio I/O, a channel, a tokio timer with no kernel wait
    /// beside it): they resume only when that comes. In a simulated run
    /// this is usually a mistake (tokio's timers follow the wall clock,
    /// never the simulated one: use `cx.sleep` or `cx.recv_timeout`); a
    /// `tracing` warning names them too.
    pub waiting_outside: Vec<AgentId>,
}

impl RunReport {
    /// Adds the report of the run that went on where this one stopped (a
    /// run cut into pieces, by checkpoints): counts add up; why it stopped,
    /// its end and who waits outside are the later run's.
    pub fn absorb(&mut self, next: RunReport) {
        self.reason = next.reason;
        self.end_time = next.end_time;
        self.wall += next.wall;
        let (a, b) = (&mut self.stats, next.stats);
        a.rounds += b.rounds;
        a.polls += b.polls;
        a.messages += b.messages;
        a.deliveries += b.deliveries;
        a.dead_letters += b.dead_letters;
        a.unheard += b.unheard;
        a.alarms_fired += b.alarms_fired;
        self.alarms_cleared += next.alarms_cleared;
        self.waiting_outside = next.waiting_outside;
    }
}

/// The kernel's side of an agent (its mail and flags are in the registry).
struct Slot {
    /// `None` once the agent has failed (kept for inspection).
    future: Option<Pin<Box<dyn Future<Output = ()>>>>,
    /// The `RefCell<A>` of a trait agent, for inspection; `None` for an
    /// async fn agent.
    agent: Option<Rc<dyn Inspect>>,
    /// What it is doing (for panic reports): `Setup` until a trait agent's
    /// setup is done, then `Update` (`Teardown` once removing); `Process`
    /// for async fn agents.
    phase: Phase,
    /// Pending on something outside the kernel.
    busy: bool,
    /// Its last poll left its waker with a future outside the kernel (a
    /// tokio timer beside a kernel wait, say): listed in
    /// `RunReport::waiting_outside` if the run stops so.
    kept_waker: bool,
    /// Being removed: teardown is due.
    removing: bool,
    /// What the kernel asked (`signal::UPDATE_DUE`, `FORCE_UPDATE`) while an
    /// update was suspended: asked again at its next poll.
    owed: u8,
    /// A trait agent resting between updates (not inside setup or update).
    at_rest: bool,
    /// How to take it out to move it (a `Send` trait agent; see `moving`).
    mover: Option<crate::agent::Mover>,
}

impl Slot {
    /// A newly installed agent's slot: about to start (`at_rest` false),
    /// or resting between updates (moved or restored).
    fn installed(installed: Installed, at_rest: bool) -> Slot {
        let Installed { agent, future, phase, mover } = installed;
        Slot {
            future: Some(future),
            agent,
            phase,
            busy: false,
            kept_waker: false,
            removing: false,
            owed: 0,
            at_rest,
            mover,
        }
    }
}

/// A single-partition kernel: agents, mail, subscriptions, alarms and a clock,
/// run on the calling thread.
///
/// ```
/// use maslite_core::{Envelope, Scheduler};
///
/// #[derive(Clone)]
/// struct Ping(u32);
///
/// let mut s = Scheduler::simulated();
/// let echo = s.spawn(|cx| async move {
///     loop {
///         let mut env = cx.recv().await;
///         cx.sleep(1.0).await;          // one simulated second
///         env.reply().unwrap();
///         cx.send(env);
///     }
/// }).unwrap();
/// let got = std::rc::Rc::new(std::cell::Cell::new(0.0));
/// let seen = got.clone();
/// let asker = s.spawn(move |cx| async move {
///     cx.send(Envelope::new(Ping(1)).to(echo));
///     let _ = cx.recv().await;
///     seen.set(cx.now());
/// }).unwrap();
/// s.run().unwrap();
/// assert_eq!(got.get(), 1.0);
/// assert!(!s.contains(asker)); // its body returned, so it left
/// ```
pub struct Scheduler {
    shared: Rc<Shared>,
    /// Trace-level spans are on (checked once per round): agent updates
    /// get spans of their own.
    traced: bool,
    clock: TimeSource,
    slots: Vec<Option<Slot>>,
    /// Slots of agents that left, to reuse.
    free: Vec<u32>,
    /// Slots freed during this round: reused from the next one on, so that
    /// an agent added mid-round never meets its predecessor's round entry.
    freed: Vec<u32>,
    live: usize,
    round: Vec<u32>,
    woken: Vec<u32>,
    mail: Vec<Envelope>,
    recipients: Vec<AgentId>,
    busy: usize,
    /// Agents whose last poll left their waker outside the kernel.
    kept_wakers: usize,
    /// Numbers the deliveries to subscribers (see `AgentRecord::copied`).
    copies: u64,
    site: PollSite,
    stats: Stats,
    failure: Option<Error>,
    /// The ordering key for the next agent added from outside.
    next_key: Option<u64>,
    /// Queued adds and removes are being carried out (see `run_commands`).
    in_commands: bool,
    /// The last round polled some agent.
    polled: bool,
}

impl Scheduler {
    /// A scheduler on the given clock.
    pub fn new(clock: Clock) -> Scheduler {
        let clock = TimeSource::new(clock);
        Scheduler {
            shared: Rc::new(Shared::new(clock.read())),
            clock,
            slots: Vec::new(),
            free: Vec::new(),
            freed: Vec::new(),
            live: 0,
            round: Vec::new(),
            woken: Vec::new(),
            traced: false,
            mail: Vec::new(),
            recipients: Vec::new(),
            busy: 0,
            kept_wakers: 0,
            copies: 0,
            site: PollSite {
                index: 0,
                queue: Arc::new(WakeQueue::default()),
                kept: std::sync::atomic::AtomicBool::new(false),
            },
            stats: Stats::default(),
            failure: None,
            next_key: None,
            in_commands: false,
            polled: false,
        }
    }

    /// How many agents are kept awake.
    pub(crate) fn kept_awake_count(&self) -> usize {
        self.shared.awake.get()
    }

    /// A scheduler on the simulated clock (starts at 0).
    pub fn simulated() -> Scheduler {
        Scheduler::new(Clock::Simulated)
    }

    /// A scheduler on the real-time clock.
    pub fn real_time() -> Scheduler {
        Scheduler::new(Clock::RealTime)
    }

    // ----- agents -------------------------------------------------------

    /// Adds an agent with an allocated id and runs its `setup`.
    pub fn add<A: Agent>(&mut self, agent: A) -> Result<AgentId> {
        self.add_installer(None, Installer::agent(agent))
    }

    /// Adds an agent with a chosen id and runs its `setup`.
    pub fn add_with_id<A: Agent>(&mut self, id: AgentId, agent: A) -> Result<AgentId> {
        self.add_installer(Some(id), Installer::agent(agent))
    }

    /// Starts an agent written as an async fn: `body` gets the agent's
    /// [`Cx`] and runs until its first wait now; the agent leaves the
    /// system when the future returns.
    pub fn spawn<F, Fut>(&mut self, body: F) -> Result<AgentId>
    where
        F: FnOnce(Cx) -> Fut + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        self.add_installer(None, Installer::process(body))
    }

    /// Starts a process whose body returns a value: the kernel keeps the
    /// value when the body returns, for [`take_result`](Self::take_result)
    /// (see [`process`](crate::process)).
    pub fn process<F, Fut, T>(&mut self, body: F) -> Result<AgentId>
    where
        F: FnOnce(Cx) -> Fut + 'static,
        Fut: Future<Output = T> + 'static,
        T: Any,
    {
        self.spawn(move |cx| crate::process::keeping(cx, body))
    }

    /// The value a process started with [`process`](Self::process)
    /// returned: `Some` once, after it ended, if it is a `T`.
    pub fn take_result<T: Any>(&mut self, id: AgentId) -> Option<T> {
        let mut results = self.shared.results.borrow_mut();
        match results.remove(&id)?.downcast::<T>() {
            Ok(value) => Some(*value),
            Err(other) => {
                // Not a `T`: left for a read of the right type.
                results.insert(id, other);
                None
            }
        }
    }

    /// Starts an async-fn agent with a chosen id.
    pub fn spawn_with_id<F, Fut>(&mut self, id: AgentId, body: F) -> Result<AgentId>
    where
        F: FnOnce(Cx) -> Fut + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        self.add_installer(Some(id), Installer::process(body))
    }

    fn add_installer(&mut self, id: Option<AgentId>, installer: Installer) -> Result<AgentId> {
        // Between runs the real clock has moved on: setup sees the time now.
        self.tick_real();
        self.free.append(&mut self.freed);
        let made = {
            let now = self.shared.now.get();
            self.shared.reg.borrow_mut().creation(None, now).0
        };
        let reserved = self.shared.reserve_id(id, made);
        // Only the agent added here may go unannounced, not those its setup
        // adds.
        self.shared.announce_adds.set(true);
        let id = reserved?;
        let key = self.next_key.take();
        self.install(id, installer, key, true);
        self.take_failure().map(|()| id)
    }

    /// Installs an agent whose id is claimed, to start in the next round.
    pub(crate) fn start_installer(&mut self, id: AgentId, installer: Installer) {
        self.free.append(&mut self.freed);
        self.install(id, installer, None, false);
    }

    /// Adds an agent with id `id` and ordering key `key`, unannounced (see
    /// [`Driver::add_placed`]).
    fn add_keyed(&mut self, id: AgentId, key: u64, installer: Installer) -> Result<AgentId> {
        self.next_key = Some(key);
        self.shared.announce_adds.set(false);
        let r = self.add_installer(Some(id), installer);
        self.shared.announce_adds.set(true);
        r
    }

    /// Installs an agent; `start_now`: its start (setup, or its body up to
    /// its first wait) runs now, else in the next round (see
    /// [`Start`](crate::Start)).
    fn install(&mut self, id: AgentId, installer: Installer, key: Option<u64>, start_now: bool) {
        // A slot freed by an agent that left is reused (a stale wake-up or
        // mark for it only costs its new owner a spurious poll); insertion
        // order is kept by the record's `order`, not by the slot.
        let index = match self.free.pop() {
            Some(index) => index,
            None => match u32::try_from(self.slots.len()).ok().filter(|&i| i < MAX_AGENTS) {
                Some(index) => {
                    self.slots.push(None);
                    self.shared.reg.borrow_mut().agents.push(AgentRecord::new(id, 0));
                    index
                }
                None => {
                    self.shared.reg.borrow_mut().ids.remove(&id);
                    self.shared.note_change(|| Change::Removed(id, Default::default()));
                    self.failure.get_or_insert(Error::TooManyAgents);
                    return;
                }
            },
        };
        {
            let mut reg = self.shared.reg.borrow_mut();
            // Agents are updated in the order of their keys: the order of
            // insertion here; on a partition the runtime gives an agent
            // created at run time its place at the end of the step, and
            // until then it comes after every placed agent.
            let order = key.unwrap_or_else(|| {
                reg.next_order += 1;
                let order = reg.next_order - 1;
                if reg.mode.is_partition() {
                    order | crate::change::PROVISIONAL
                } else {
                    order
                }
            });
            // A mark the slot still carries serves its new owner: the index
            // is in the marked list once, and must stay so.
            let marked = reg.agents[index as usize].marked;
            reg.agents[index as usize] = AgentRecord::new(id, order);
            reg.agents[index as usize].marked = marked;
            reg.ids.insert(id, index);
        }
        let installed = installer.install(&self.shared, id, index);
        self.slots[index as usize] = Some(Slot::installed(installed, false));
        self.live += 1;
        if !start_now {
            self.shared.reg.borrow_mut().mark(index);
            return;
        }
        // Outside a round (an add from outside), what the new agent's setup
        // does, and the agents it adds do, is on its own account (see
        // `Origin`): each agent's account is its own, whatever the
        // partition.
        self.poll_on_account(index, 0);
        // An agent whose start (setup, or an async body before its first
        // wait) panicked never joined.
        if self.slots[index as usize].as_ref().is_some_and(|s| s.future.is_none()) {
            self.shared.reg.borrow_mut().ids.remove(&id);
            self.retire(index);
        }
    }

    /// The failure recorded by the last operation, as its result.
    fn take_failure(&mut self) -> Result<()> {
        self.failure.take().map_or(Ok(()), Err)
    }

    /// Removes an agent: it gets no more mail, its subscriptions go, and its
    /// `teardown` runs now; an update or setup suspended at this moment is
    /// cancelled (dropped) first. An async-fn agent's future is dropped.
    pub fn remove(&mut self, id: AgentId) -> Result<()> {
        self.remove_now(id);
        self.take_failure()
    }

    fn remove_now(&mut self, id: AgentId) {
        let Some(index) = self.shared.index_of(id) else {
            self.failure.get_or_insert(Error::UnknownAgent(id));
            return;
        };
        {
            // Under maslite's rule, mail sent this round meets the removal
            // at delivery: route what went directly through the outbox.
            let mut reg = self.shared.reg.borrow_mut();
            self.shared.take_back_direct(&mut reg);
            reg.ids.remove(&id);
            reg.agents[index as usize].accepts = false;
        }
        self.shared.unsubscribe_all(id);
        self.shared.set_keep_awake(index, false);
        let Some(slot) = self.slots[index as usize].as_mut() else { return };
        slot.removing = true;
        slot.phase = Phase::Teardown;
        let Some(agent) = slot.agent.clone().filter(|_| slot.future.is_some()) else {
            // An async fn agent (its future is dropped) or a failed one.
            self.retire(index);
            return;
        };
        if !slot.at_rest {
            // Removal cancels a suspended setup or update; then teardown runs.
            let cancelled = slot.future.take();
            if slot.busy {
                slot.busy = false;
                self.busy -= 1;
            }
            if std::mem::take(&mut slot.kept_waker) {
                self.kept_wakers -= 1;
            }
            let _ = catch_unwind(AssertUnwindSafe(move || drop(cancelled)));
            let cx = Cx { shared: self.shared.clone(), index, id };
            slot.future = Some(agent.teardown(cx));
        }
        self.poll_on_account(index, 0);
    }

    /// Drops the agent in `index` and accounts for what it leaves.
    fn retire(&mut self, index: u32) {
        let Some(slot) = self.slots[index as usize].take() else { return };
        let (id, left) = {
            let mut reg = self.shared.reg.borrow_mut();
            // Mail sent to it this round meets its departure at delivery.
            self.shared.take_back_direct(&mut reg);
            let rec = &mut reg.agents[index as usize];
            rec.accepts = false;
            rec.visible = 0;
            let left = std::mem::take(&mut rec.inbox);
            let id = rec.id;
            if reg.ids.get(&id) == Some(&index) {
                reg.ids.remove(&id);
            }
            (id, left)
        };
        self.shared.unsubscribe_all(id);
        let shared = &self.shared;
        shared.note_change(|| {
            let now = shared.now.get();
            Change::Removed(
                id,
                shared.reg.borrow_mut().creation(shared.account(Some(index)), now).0,
            )
        });
        self.shared.set_keep_awake(index, false);
        self.shared.forget_foreign(index);
        if slot.busy {
            self.busy -= 1;
        }
        if slot.kept_waker {
            self.kept_wakers -= 1;
        }
        if !left.is_empty() {
            self.stats.dead_letters += left.len() as u64;
            tracing::warn!(agent = %id, messages = left.len(), "agent removed with unread mail: counted as dead letters");
        }
        self.live -= 1;
        self.freed.push(index);
        // A future or a payload that panics while dropped must not take the
        // kernel down.
        let _ = catch_unwind(AssertUnwindSafe(move || drop((slot, left))));
    }

    /// Whether an agent with this id is registered.
    pub fn contains(&self, id: AgentId) -> bool {
        self.shared.index_of(id).is_some()
    }

    /// The number of agents.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether there are no agents.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// The ids of all agents, in insertion order.
    pub fn agent_ids(&self) -> Vec<AgentId> {
        let reg = self.shared.reg.borrow();
        let mut agents: Vec<(u64, AgentId)> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.as_ref().is_some_and(|s| !s.removing))
            .map(|(i, _)| (reg.agents[i].order, reg.agents[i].id))
            .collect();
        agents.sort_unstable();
        agents.into_iter().map(|(_, id)| id).collect()
    }

    fn index_of(&self, id: AgentId) -> Result<u32> {
        self.shared.index_of(id).ok_or(Error::UnknownAgent(id))
    }

    fn slot(&self, id: AgentId) -> Result<&Slot> {
        let index = self.index_of(id)?;
        self.slots[index as usize].as_ref().ok_or(Error::UnknownAgent(id))
    }

    /// Removes an agent (as [`remove`](Self::remove): its teardown runs) and
    /// hands back its struct, to read its final state.
    ///
    /// If the teardown does not finish at once (it sleeps, waits for mail or
    /// for something outside), the agent is removed but its struct stays
    /// with the unfinished teardown: [`Error::AgentBusy`], and the agent is
    /// counted by [`len`](Self::len) until the teardown ends.
    ///
    /// ```
    /// use maslite_core::{Agent, Cx, Scheduler};
    ///
    /// struct Counter { torn_down: bool }
    /// impl Agent for Counter {
    ///     async fn update(&mut self, _cx: &Cx) {}
    ///     async fn teardown(&mut self, _cx: &Cx) { self.torn_down = true; }
    /// }
    ///
    /// let mut s = Scheduler::simulated();
    /// let id = s.add(Counter { torn_down: false }).unwrap();
    /// let counter: Counter = s.take_agent(id).unwrap();
    /// assert!(counter.torn_down);
    /// assert!(!s.contains(id));
    /// ```
    pub fn take_agent<A: Agent>(&mut self, id: AgentId) -> Result<A> {
        // The type is checked before anything is removed.
        inspectable::<A>(self.slot(id)?, id)?;
        let index = self.index_of(id)?;
        let owner = self.slots[index as usize].as_ref().and_then(|s| s.agent.clone());
        self.remove(id)?;
        let owner: Rc<dyn Any> = owner.ok_or(Error::NotInspectable(id))?;
        let cell =
            owner.downcast::<std::cell::RefCell<A>>().map_err(|_| Error::NotInspectable(id))?;
        // Still shared if its teardown waits on something outside the kernel.
        Rc::try_unwrap(cell).map(std::cell::RefCell::into_inner).map_err(|_| Error::AgentBusy(id))
    }

    /// The agents suspended on something the kernel does not drive (tokio
    /// I/O, a channel, a tokio timer — alone or beside a kernel wait, as in
    /// `tokio::time::timeout(d, cx.recv())`), in id order.
    pub fn waiting_outside(&self) -> Vec<AgentId> {
        if self.busy == 0 && self.kept_wakers == 0 {
            return Vec::new();
        }
        let reg = self.shared.reg.borrow();
        let mut ids: Vec<AgentId> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                s.as_ref().is_some_and(|s| s.future.is_some() && (s.busy || s.kept_waker))
            })
            .map(|(i, _)| reg.agents[i].id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Lends out an agent's struct for inspection between runs.
    pub fn agent<A: Agent>(&self, id: AgentId) -> Result<Ref<'_, A>> {
        let cell = inspectable::<A>(self.slot(id)?, id)?;
        cell.try_borrow().map_err(|_| Error::AgentBusy(id))
    }

    /// Reads an agent's struct with `f`, between runs: the same call as
    /// `Runtime::with_agent`, so that a model's checks read alike on both.
    pub fn with_agent<A: Agent, R>(&self, id: AgentId, f: impl FnOnce(&A) -> R) -> Result<R> {
        self.agent::<A>(id).map(|a| f(&a))
    }

    /// Lends out an agent's struct for changes between runs.
    pub fn agent_mut<A: Agent>(&self, id: AgentId) -> Result<RefMut<'_, A>> {
        let cell = inspectable::<A>(self.slot(id)?, id)?;
        cell.try_borrow_mut().map_err(|_| Error::AgentBusy(id))
    }

    /// How many messages wait in an agent's inbox.
    pub fn inbox_len(&self, id: AgentId) -> Result<usize> {
        let index = self.index_of(id)?;
        Ok(self.shared.reg.borrow().agents[index as usize].inbox.len())
    }

    /// Takes the mail out of an agent's inbox.
    pub fn take_inbox(&self, id: AgentId) -> Result<Vec<Envelope>> {
        let index = self.index_of(id)?;
        let mut reg = self.shared.reg.borrow_mut();
        reg.direct_log.clear();
        let rec = &mut reg.agents[index as usize];
        rec.visible = 0;
        Ok(rec.inbox.drain())
    }

    /// Puts a message straight into an agent's inbox (no subscribers, no
    /// round), as maslite's `agent.inbox.append(msg)`. The agent is updated in
    /// the next run.
    pub fn put_in_inbox(&mut self, id: AgentId, envelope: Envelope) -> Result<()> {
        let index = self.index_of(id)?;
        let mut reg = self.shared.reg.borrow_mut();
        reg.push(index, envelope).map_err(|_| Error::UnknownAgent(id))?;
        let rec = &mut reg.agents[index as usize];
        rec.visible = rec.inbox.len() as u32;
        Ok(())
    }

    /// Keeps an agent awake (updated every round) or lets it sleep.
    pub fn set_keep_awake(&mut self, id: AgentId, on: bool) -> Result<()> {
        let index = self.index_of(id)?;
        self.shared.set_keep_awake(index, on);
        Ok(())
    }

    // ----- mail, subscriptions, alarms from outside ----------------------

    /// Posts a message from outside; it is delivered when the next run starts
    /// (or by [`deliver_mail`](Self::deliver_mail)).
    pub fn send(&mut self, mut envelope: Envelope) {
        if envelope.origin().seq == 0 {
            let now = self.shared.now.get();
            self.shared.reg.borrow_mut().stamp(None, now, &mut envelope);
        }
        self.shared.post(envelope);
    }

    /// Delivers the posted mail now, without running any agent.
    pub fn deliver_mail(&mut self) -> Result<()> {
        self.order_posted_mail();
        self.deliver();
        self.between_runs();
        self.take_failure()
    }

    /// Subscribes an agent to a pattern. Errors: an unknown subscriber, a
    /// pattern naming none or all three fields, a topic that spells the id
    /// of an agent registered now (checked at subscription time only).
    pub fn subscribe(&mut self, subscriber: AgentId, pattern: Subscription) -> Result<()> {
        self.shared.subscribe(subscriber, pattern)
    }

    /// Unsubscribes an agent from a pattern. Not being subscribed (or not
    /// existing) is fine, as in maslite; a pattern naming none or all three
    /// fields is an error.
    pub fn unsubscribe(&mut self, subscriber: AgentId, pattern: &Subscription) -> Result<()> {
        self.shared.unsubscribe(subscriber, pattern)
    }

    /// Unsubscribes an agent from everything.
    pub fn unsubscribe_all(&mut self, subscriber: AgentId) {
        self.shared.unsubscribe_all(subscriber)
    }

    /// An agent's subscriptions, in the order made.
    pub fn subscriptions(&self, subscriber: AgentId) -> Vec<Subscription> {
        self.shared.mailing.borrow().subscriptions(subscriber)
    }

    /// The subscribers of exactly this pattern, in the order they subscribed.
    pub fn subscribers(&self, pattern: &Subscription) -> Vec<AgentId> {
        self.shared.mailing.borrow().subscribers(pattern)
    }

    /// The recipients a message would have now (receiver first).
    pub fn recipients(&self, envelope: &Envelope) -> Vec<AgentId> {
        self.shared.mailing.borrow().recipients(
            envelope.sender(),
            envelope.receiver(),
            envelope.topic(),
            envelope.is_direct(),
        )
    }

    /// Sets an alarm from outside.
    pub fn set_alarm(&mut self, mut alarm: Alarm) -> Result<()> {
        self.tick_real();
        let now = self.shared.now.get();
        self.shared.reg.borrow_mut().stamp(None, now, &mut alarm.envelope);
        self.shared.set_alarm(alarm)
    }

    /// The pending alarms for `receiver` (all if `None`), in firing order.
    pub fn alarms(&self, receiver: Option<AgentId>) -> Vec<AlarmInfo> {
        self.shared.alarms.borrow().list(receiver)
    }

    /// Clears alarms by receiver and/or topic (`None`: any); returns how many.
    pub fn clear_alarms(&mut self, receiver: Option<AgentId>, topic: Option<&str>) -> usize {
        self.shared.alarms_mut(|a| a.clear(receiver, topic))
    }

    /// The clock.
    pub fn now(&self) -> f64 {
        if self.clock.is_simulated() {
            self.shared.now.get()
        } else {
            self.clock.read()
        }
    }

    /// Counters since the scheduler was made.
    pub fn stats(&self) -> Stats {
        let mut stats = self.stats;
        let direct = self.shared.reg.borrow().direct_sent;
        stats.messages += direct;
        stats.deliveries += direct;
        stats
    }

    // ----- running ------------------------------------------------------

    /// Runs with maslite's defaults until idle: see [`RunOptions`].
    pub fn run(&mut self) -> Result<RunReport> {
        self.run_with(RunOptions::default())
    }

    /// Runs until a stop condition of `opts` holds. An agent that panics
    /// stops the run with [`Error::AgentPanicked`]; the scheduler stays
    /// usable and the failed agent inspectable.
    pub fn run_with(&mut self, opts: RunOptions) -> Result<RunReport> {
        let wall = Instant::now();
        let before = self.stats();
        self.tick_real();
        let start_time = self.shared.now.get();
        let end = opts.end_from(start_time)?;
        let mut rounds_left = opts.iterations;
        if rounds_left == Some(0) {
            return Ok(RunReport {
                reason: StopReason::Iterations,
                start_time,
                end_time: start_time,
                wall: wall.elapsed(),
                stats: Stats::default(),
                alarms_cleared: 0,
                waiting_outside: Vec::new(),
            });
        }
        self.shared.paused.set(false);
        self.failure = None;
        self.shared.reg.borrow_mut().begin_run();
        self.order_posted_mail();
        self.deliver();
        if let Some(e) = self.failure.take() {
            self.between_runs();
            return Err(e);
        }
        let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
        let simulated = self.clock.is_simulated();

        let outcome = loop {
            self.round();
            // (Asked before it is taken: a round without one pays a test,
            // not the move of an `Option<Error>`.)
            if self.failure.is_some() {
                break Err(self.failure.take().expect("there is one"));
            }
            self.stats.rounds += 1;
            if simulated && self.mail_waiting() {
                // Mail flows, so simulated time stands still: the general
                // path below with the tests that cannot fire left out.
                let now = self.shared.now.get();
                self.release_alarms(now);
                if let Some(stop) = self.finish_round(now, end, &mut rounds_left) {
                    break stop;
                }
                continue;
            }
            self.advance_clock(end, opts.pause_if_idle);
            let now = self.shared.now.get();
            self.release_alarms(now);
            let idle = !self.mail_waiting();
            if let Some(stop) = self.finish_round(now, end, &mut rounds_left) {
                break stop;
            }
            if !idle || self.site.queue.has_any() {
                continue;
            }
            if let Some(stop) = self.when_idle(&opts, end, &waker) {
                break Ok(stop);
            }
        };
        let mut alarms_cleared = 0;
        if opts.clear_alarms_at_end {
            alarms_cleared = self.shared.alarms_mut(|a| a.clear(None, None));
            if alarms_cleared > 0 {
                tracing::info!(
                    alarms = alarms_cleared,
                    "pending alarms cleared at the end of the run (clear_alarms_at_end)"
                );
            }
        }
        self.between_runs();
        let reason = outcome?;
        let waiting_outside = self.waiting_outside();
        if !waiting_outside.is_empty() && self.clock.is_simulated() {
            tracing::warn!(
                agents = ?waiting_outside,
                ?reason,
                "the run stopped with agents suspended on something the kernel does not drive \
                 (tokio I/O, a channel, a tokio timer: tokio's timers follow the wall clock; \
                 in simulated time use cx.sleep or cx.recv_timeout)"
            );
        }
        Ok(RunReport {
            reason,
            start_time,
            end_time: self.shared.now.get(),
            wall: wall.elapsed(),
            stats: self.stats_since(before),
            alarms_cleared,
            waiting_outside,
        })
    }

    /// Nothing to do after a round: waits for what holds time (busy agents,
    /// the real clock's next alarm), or says why the run stops idle.
    #[inline]
    fn when_idle(
        &mut self,
        opts: &RunOptions,
        end: Option<f64>,
        waker: &Waker,
    ) -> Option<StopReason> {
        let simulated = self.clock.is_simulated();
        let kept_awake = self.shared.awake.get() > 0;
        if self.busy > 0 {
            // Something outside the kernel holds time: wait for it (and, on
            // the real clock, for the next alarm).
            let until = if simulated { None } else { self.next_deadline(end) };
            self.park(waker, until);
            return None;
        }
        if simulated {
            let no_alarms = self.shared.alarms.borrow_mut().is_empty();
            let stop = no_alarms && (opts.pause_if_idle || !kept_awake);
            return stop.then_some(StopReason::Idle);
        }
        // Real-time clock, idle.
        if opts.pause_if_idle && !self.shared.alarms.borrow().has_required() {
            return Some(StopReason::Idle);
        }
        let mut until = self.next_deadline(end);
        if kept_awake {
            // Kept-awake agents are polled at 1 kHz, as in maslite.
            let pace = Instant::now() + Duration::from_millis(1);
            until = Some(until.map_or(pace, |u| u.min(pace)));
        }
        match until {
            Some(_) => {
                self.park(waker, until);
                None
            }
            None => Some(StopReason::Idle),
        }
    }

    /// The end of a round, once the due alarms are released: deliver the
    /// outbox, then tell whether the run stops (a failure, a pause, the end
    /// time, the last iteration).
    #[inline(always)]
    fn finish_round(
        &mut self,
        now: f64,
        end: Option<f64>,
        rounds_left: &mut Option<u64>,
    ) -> Option<Result<StopReason>> {
        self.deliver();
        if self.failure.is_some() {
            return self.failure.take().map(Err);
        }
        if self.shared.paused.get() {
            return Some(Ok(StopReason::Paused));
        }
        if end.is_some_and(|end| now >= end) {
            return Some(Ok(StopReason::TimeLimit));
        }
        if let Some(left) = rounds_left.as_mut() {
            *left -= 1;
            if *left == 0 {
                return Some(Ok(StopReason::Iterations));
            }
        }
        None
    }

    /// Puts the mail posted between runs in the canonical order (see
    /// [`Origin`](crate::Origin)): from outside first, then each setup's or
    /// teardown's on its agent's account — as a runtime merges it.
    fn order_posted_mail(&mut self) {
        let mut outbox = self.shared.outbox.borrow_mut();
        if outbox.len() > 1 && self.shared.reg.borrow().mode == Mode::Alone {
            outbox.sort_by_key(|env| env.origin());
        }
    }

    /// Between runs there are no rounds: the last round's direct mail counts
    /// as delivered (nothing to take back), and mail sent now (by a setup)
    /// goes through the outbox, to be delivered when the next run starts.
    fn between_runs(&mut self) {
        let mut reg = self.shared.reg.borrow_mut();
        reg.end_run();
        reg.direct_log.clear();
        reg.outbox_used = true;
    }

    /// Mail is in inboxes not yet seen or in the outbox (before this
    /// round's delivery, the outbox holds mail iff some was posted in it).
    #[inline(always)]
    fn mail_waiting(&self) -> bool {
        let reg = self.shared.reg.borrow();
        !reg.marked.is_empty() || reg.outbox_used
    }

    fn stats_since(&self, b: Stats) -> Stats {
        let a = self.stats();
        Stats {
            rounds: a.rounds - b.rounds,
            polls: a.polls - b.polls,
            messages: a.messages - b.messages,
            deliveries: a.deliveries - b.deliveries,
            dead_letters: a.dead_letters - b.dead_letters,
            unheard: a.unheard - b.unheard,
            alarms_fired: a.alarms_fired - b.alarms_fired,
        }
    }

    fn tick_real(&mut self) {
        if !self.clock.is_simulated() {
            self.shared.now.set(self.clock.read());
        }
    }

    fn advance_clock(&mut self, end: Option<f64>, pause_if_idle: bool) {
        if !self.clock.is_simulated() {
            self.tick_real();
            return;
        }
        let quiet = !self.mail_waiting() && self.busy == 0 && !self.site.queue.has_any();
        if !quiet {
            return;
        }
        let next = self.shared.alarms.borrow_mut().next_time();
        let target = match (next, end) {
            (Some(t), Some(e)) => Some(t.min(e)),
            (Some(t), None) => Some(t),
            // Nothing will ever happen: a run that is not to pause when idle
            // goes straight to its end.
            (None, Some(e)) if !pause_if_idle => Some(e),
            _ => None,
        };
        if let Some(t) = target {
            self.jump_to(t);
        }
    }

    /// Moves the simulated clock; at a new time rounds count from zero.
    /// (Not on a "jump" to the time it reads: the rounds at one time go on
    /// counting whether alarms due now fire after a round or after an idle
    /// moment, so one kernel and a runtime number them alike up to a shift,
    /// which keeps their order.)
    fn jump_to(&mut self, t: f64) {
        let before = self.shared.now.get();
        self.clock.jump_to(t);
        self.shared.now.set(self.clock.read());
        if self.shared.now.get() != before {
            self.shared.reg.borrow_mut().round = 0;
        }
    }

    fn next_deadline(&mut self, end: Option<f64>) -> Option<Instant> {
        let next = self.shared.alarms.borrow_mut().next_time();
        let t = match (next, end) {
            (Some(a), Some(e)) => Some(a.min(e)),
            (a, e) => a.or(e),
        };
        t.and_then(|t| self.clock.instant_of(t))
    }

    fn park(&self, waker: &Waker, until: Option<Instant>) {
        let queue = &self.site.queue;
        queue.set_notify(Some(waker.clone()));
        if !queue.has_any() {
            match until {
                Some(t) => {
                    let now = Instant::now();
                    if t > now {
                        std::thread::park_timeout(t - now);
                    }
                }
                None => std::thread::park(),
            }
        }
        queue.set_notify(None);
    }

    #[inline(always)]
    fn release_alarms(&mut self, now: f64) {
        self.release_alarms_to(now, Fire::ToOutbox);
    }

    /// Releases the alarms due at `now`: their mail to the outbox, or (see
    /// [`Fire::IntoInboxes`]) straight into this kernel's inboxes. Returns
    /// how many messages went straight in: sent and delivered at once.
    #[inline(always)]
    fn release_alarms_to(&mut self, now: f64, fire: Fire) -> u64 {
        if self.shared.next_alarm.get() > now {
            return 0;
        }
        self.release_due_alarms(now, fire)
    }

    fn release_due_alarms(&mut self, now: f64, fire: Fire) -> u64 {
        // Straight in only while nobody subscribes to anything: then a
        // fired alarm's mail has its receiver, or nobody, for recipient.
        let straight = fire == Fire::IntoInboxes && self.shared.mailing.borrow().is_empty();
        let shared = &*self.shared;
        let stats = &mut self.stats;
        let slots = &self.slots;
        let mut here = 0;
        let mut outbox = shared.outbox.borrow_mut();
        let mut reg = shared.reg.borrow_mut();
        shared.alarms_mut(|alarms| {
            alarms.release_due(now, |fired| {
                stats.alarms_fired += 1;
                match fired {
                    Fired::Mail(env) => {
                        let index = match env.receiver() {
                            Some(r) if straight => reg.ids.get(&r).copied(),
                            _ => None,
                        };
                        let env = match index {
                            Some(index) => match reg.push(index, env) {
                                Ok(()) => {
                                    here += 1;
                                    prefetch_agent(slots, index);
                                    return;
                                }
                                Err(env) => env,
                            },
                            None => env,
                        };
                        reg.outbox_used = true;
                        outbox.push(env);
                    }
                    Fired::Wake(index) => reg.mark(index),
                }
            })
        });
        stats.messages += here;
        stats.deliveries += here;
        here
    }

    /// One round: the marked agents' new mail becomes visible; agents woken
    /// from outside are polled, then the marked and kept-awake agents are
    /// updated in insertion order.
    fn round(&mut self) {
        // Spans at trace level, for rounds and updates. Whether that level
        // is on is asked every 1 024 rounds (the first included): with it
        // off (the default) a round and an update each cost a test of
        // `traced`, and no span object exists.
        if self.stats.rounds.is_multiple_of(1024) {
            self.traced = tracing::enabled!(tracing::Level::TRACE);
        }
        if self.traced {
            self.round_traced();
        } else {
            self.round_body();
        }
    }

    #[cold]
    #[inline(never)]
    fn round_traced(&mut self) {
        let _round =
            tracing::trace_span!("round", n = self.stats.rounds + 1, now = self.now()).entered();
        self.round_body();
    }

    #[inline]
    fn round_body(&mut self) {
        {
            let mut reg = self.shared.reg.borrow_mut();
            reg.round += 1;
            if self.shared.awake.get() > 0 {
                for &index in self.shared.keep_awake.borrow().iter() {
                    reg.mark(index);
                }
            }
            reg.start_round(&mut self.round);
        }
        self.site.queue.drain_into(&mut self.woken);
        self.polled = !self.round.is_empty() || !self.woken.is_empty();
        if self.polled && !self.shared.numbered_outside.get() {
            self.shared.round_no.set(self.shared.round_no.get() + 1);
        }
        // An agent polled for a wake-up may have taken the mail its round
        // entry was made for: then its update is checked against its inbox.
        let verify = if self.woken.is_empty() { 0 } else { signal::VERIFY };
        if !self.woken.is_empty() {
            let mut woken = std::mem::take(&mut self.woken);
            woken.sort_unstable();
            woken.dedup();
            for &index in &woken {
                if self.failure.is_none() {
                    self.poll_as_actor(index, 0);
                } else {
                    // Not polled because of a failure: keep the wake-up.
                    self.site.queue.push(index);
                }
            }
            woken.clear();
            self.woken = woken;
        }
        let mut i = 0;
        while i < self.round.len() && self.failure.is_none() {
            let entry = self.round[i];
            i += 1;
            let ask = if entry & UPDATE_DUE != 0 { signal::UPDATE_DUE | verify } else { 0 };
            self.poll_as_actor(entry & !UPDATE_DUE, ask | ROUND);
        }
        if self.failure.is_some() {
            // Leave the rest marked for the next run.
            let mut reg = self.shared.reg.borrow_mut();
            for &rest in &self.round[i..] {
                reg.mark(rest & !UPDATE_DUE);
            }
        }
        self.round.clear();
        if !self.freed.is_empty() {
            self.free.append(&mut self.freed);
        }
        self.prefetch_next_receiver();
    }

    /// Asks for the record and slot of the next alarm's receiver, which the
    /// alarm's release and the next round read (the message's header was
    /// asked for when this round's alarms were released; see
    /// [`prefetch`](crate::prefetch)).
    #[inline]
    fn prefetch_next_receiver(&self) {
        if self.shared.next_alarm.get() == f64::INFINITY {
            return;
        }
        let alarms = self.shared.alarms.borrow();
        let Some(receiver) = alarms.next_mail().and_then(Envelope::receiver) else { return };
        let reg = self.shared.reg.borrow();
        let Some(&index) = reg.ids.get(&receiver) else { return };
        let record: *const u8 = reg.agents.as_ptr().wrapping_add(index as usize).cast();
        crate::prefetch::prefetch(record);
        crate::prefetch::prefetch(record.wrapping_add(64));
        crate::prefetch::prefetch(self.slots.as_ptr().wrapping_add(index as usize));
    }

    /// Polls an agent at the top of a round: what it and the agents it adds
    /// or removes do meanwhile is on its account (see [`Origin`](crate::Origin)).
    #[inline]
    fn poll_as_actor(&mut self, index: u32, ask: u8) {
        self.shared.actor.set(Some(index));
        self.poll(index, ask);
        self.shared.actor.set(None);
    }

    /// Polls an agent outside a round's top (a setup or teardown): within a
    /// round's update it acts on the updated agent's account, outside one
    /// on its own.
    #[inline]
    fn poll_on_account(&mut self, index: u32, ask: u8) {
        if self.shared.actor.get().is_some() {
            self.poll(index, ask);
        } else {
            self.poll_as_actor(index, ask);
        }
    }

    /// Polls one agent's future, then carries out what it asked for. `ask`
    /// holds the `signal` bits the kernel asks of a trait agent
    /// (`UPDATE_DUE`, `FORCE_UPDATE`, `VERIFY`) and [`ROUND`] for a poll with
    /// a reason (mail, an alarm, kept awake), which also wakes the wakers of
    /// its waits held by combinators. A poll for an outside wake-up does not:
    /// a combinator woken that way would wake the agent again, and again.
    fn poll(&mut self, index: u32, ask: u8) {
        if self.traced {
            self.poll_traced(index, ask);
        } else {
            self.poll_body(index, ask);
        }
    }

    /// [`poll`](Self::poll) in an `update` span (agent id and topic).
    #[cold]
    #[inline(never)]
    fn poll_traced(&mut self, index: u32, ask: u8) {
        let Some(slot) = self.slots[index as usize].as_ref() else { return };
        let _update = tracing::trace_span!(
            "update",
            agent = self.shared.reg.borrow().agents[index as usize].id.0,
            topic = slot.agent.as_ref().map_or("async fn", |a| short_type_name(a.type_name())),
            phase = ?slot.phase,
        )
        .entered();
        self.poll_body(index, ask);
    }

    #[inline]
    fn poll_body(&mut self, index: u32, ask: u8) {
        let Some(slot) = self.slots[index as usize].as_mut() else { return };
        let Some(future) = slot.future.as_mut() else { return };
        self.stats.polls += 1;
        let shared = &*self.shared;
        let mut bits = ask | slot.owed;
        if slot.removing {
            bits |= signal::REMOVING;
        }
        if !slot.at_rest {
            bits |= signal::VERIFY;
        }
        if ask & ROUND != 0 {
            shared.wake_foreign(index);
        }
        shared.signal.set(bits & !ROUND);
        shared.waits.set(0);
        shared.epoch.set(shared.epoch.get() + 1);
        self.site.index = index;
        self.site.kept.store(false, std::sync::atomic::Ordering::Relaxed);
        let waker = self.site.waker();
        let mut cx = Context::from_waker(&waker);
        let polled = catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(&mut cx)));
        let bits = shared.signal.get();
        if bits & signal::SETUP_DONE != 0 && slot.phase == Phase::Setup {
            slot.phase = Phase::Update;
        }
        match polled {
            Ok(Poll::Pending) => {
                slot.owed = bits & (signal::UPDATE_DUE | signal::FORCE_UPDATE);
                slot.at_rest = bits & signal::AT_REST != 0;
                // Waits held inside a combinator count even when it did not
                // poll them this time.
                let foreign = shared.has_foreign(index);
                let busy = shared.waits.get() == 0 && !foreign;
                // (A combinator that keeps the waker for the kernel's own
                // futures inside it has them note theirs: `foreign`.)
                let kept = !foreign && self.site.kept.load(std::sync::atomic::Ordering::Relaxed);
                if kept != slot.kept_waker {
                    slot.kept_waker = kept;
                    if kept {
                        self.kept_wakers += 1;
                    } else {
                        self.kept_wakers -= 1;
                    }
                }
                if busy != slot.busy {
                    slot.busy = busy;
                    if busy {
                        self.busy += 1;
                    } else {
                        self.busy -= 1;
                    }
                }
            }
            Ok(Poll::Ready(())) => self.retire(index),
            Err(panic) => self.fail(index, panic),
        }
        if self.shared.has_commands.get() {
            self.after_poll();
        }
    }

    /// What an agent's poll left for the kernel (see `Shared::has_commands`):
    /// its queued adds and removes, then a fault of one of its calls.
    #[cold]
    #[inline(never)]
    fn after_poll(&mut self) {
        self.run_commands();
        if self.shared.fault.borrow().is_some() {
            let fault = self.shared.fault.borrow_mut().take();
            self.failure = self.failure.take().or(fault);
        }
    }

    #[cold]
    #[inline(never)]
    fn fail(&mut self, index: u32, panic: Box<dyn Any + Send>) {
        let Some(slot) = self.slots[index as usize].as_mut() else { return };
        let message = panic_message(panic.as_ref());
        let phase = slot.phase;
        let future = slot.future.take();
        if slot.busy {
            slot.busy = false;
            self.busy -= 1;
        }
        if std::mem::take(&mut slot.kept_waker) {
            self.kept_wakers -= 1;
        }
        let removing = slot.removing;
        let _ = catch_unwind(AssertUnwindSafe(move || drop(future)));
        let agent = {
            let mut reg = self.shared.reg.borrow_mut();
            // Mail sent to it this round is a dead letter at delivery.
            self.shared.take_back_direct(&mut reg);
            let rec = &mut reg.agents[index as usize];
            rec.accepts = false;
            rec.id
        };
        self.shared.set_keep_awake(index, false);
        self.shared.unsubscribe_all(agent);
        tracing::error!(%agent, %phase, %message, "agent panicked");
        self.failure.get_or_insert(Error::AgentPanicked { agent, phase, message });
        if removing {
            // It was on its way out (teardown panicked): it is gone.
            self.retire(index);
        }
    }

    /// Carries out the queued adds and removes, first come first served.
    /// Not re-entered: a setup run here that queues more adds finds them
    /// taken by this loop, in the same order, instead of by a nested one
    /// (an agent adding a million others would otherwise nest a million
    /// deep and overflow the stack).
    fn run_commands(&mut self) {
        if self.in_commands {
            return;
        }
        self.in_commands = true;
        self.run_queued_commands();
        self.in_commands = false;
    }

    fn run_queued_commands(&mut self) {
        loop {
            let Some(cmd) = self.shared.commands.borrow_mut().pop_front() else {
                self.shared.has_commands.set(false);
                return;
            };
            match cmd {
                Command::Add(id, installer) => self.install(id, installer, None, true),
                Command::Start(id, installer) => self.install(id, installer, None, false),
                Command::Remove(id) => {
                    // Already gone (removed twice in one update) is fine.
                    if self.contains(id) {
                        self.remove_now(id);
                    }
                }
            }
        }
    }

    /// Delivers the outbox: each message to its receiver and subscribers.
    #[inline(always)]
    fn deliver(&mut self) {
        if !self.shared.outbox.borrow().is_empty() {
            self.deliver_outbox();
        }
    }

    fn deliver_outbox(&mut self) {
        {
            let mut outbox = self.shared.outbox.borrow_mut();
            if self.shared.reg.borrow().mode != Mode::Alone {
                return;
            }
            std::mem::swap(&mut self.mail, &mut *outbox);
        }
        let Scheduler { shared, stats, recipients, copies, mail, failure, .. } = self;
        let mut reg = shared.reg.borrow_mut();
        let mailing = shared.mailing.borrow();
        stats.messages += mail.len() as u64;
        for env in mail.drain(..) {
            let mut heard = false;
            if !env.is_direct() && !mailing.is_empty() {
                *copies += 1;
                recipients.clear();
                mailing.for_each_subscriber(
                    env.sender(),
                    env.receiver(),
                    || env.topic(),
                    |id| recipients.push(id),
                );
                for &sub in recipients.iter() {
                    if Some(sub) == env.receiver() {
                        continue;
                    }
                    let Some(&index) = reg.ids.get(&sub) else { continue };
                    let Some(rec) = reg.agents.get_mut(index as usize) else { continue };
                    if rec.copied == *copies {
                        continue;
                    }
                    rec.copied = *copies;
                    let copy = match catch_unwind(AssertUnwindSafe(|| env.clone())) {
                        Ok(copy) => copy,
                        Err(panic) => {
                            stats.dead_letters += 1;
                            let payload = env.payload_type();
                            let message = panic_message(panic.as_ref());
                            tracing::error!(payload, %message, "cloning a payload panicked");
                            failure.get_or_insert(Error::PayloadPanicked { payload, message });
                            continue;
                        }
                    };
                    if reg.push(index, copy).is_ok() {
                        stats.deliveries += 1;
                        heard = true;
                    }
                }
            }
            let index = match env.receiver() {
                Some(r) => reg.ids.get(&r).copied(),
                None if heard => continue,
                None => None,
            };
            let env = match index {
                Some(index) => match reg.push(index, env) {
                    Ok(()) => {
                        stats.deliveries += 1;
                        continue;
                    }
                    Err(env) => env,
                },
                None => env,
            };
            undeliverable(stats, &env);
        }
    }

    // ----- for the TestBed ----------------------------------------------

    /// Keeps mail in the outbox (the test bed reads it there).
    pub(crate) fn hold_mail(&mut self) {
        self.shared.reg.borrow_mut().mode = Mode::Held;
    }

    /// Runs one update of an agent, whatever its inbox holds.
    pub(crate) fn update_once(&mut self, id: AgentId) -> Result<()> {
        let index = self.index_of(id)?;
        // A suspended update is resumed, not followed by another.
        let at_rest = self.slots[index as usize].as_ref().is_some_and(|s| s.at_rest);
        self.poll_as_actor(index, ROUND | if at_rest { signal::FORCE_UPDATE } else { 0 });
        self.take_failure()
    }

    /// Whether a trait agent is inside a suspended setup or update.
    pub(crate) fn in_update(&self, id: AgentId) -> bool {
        self.slot(id).is_ok_and(|s| s.agent.is_some() && s.future.is_some() && !s.at_rest)
    }

    /// Takes the mail posted but not delivered.
    pub(crate) fn take_outbox(&mut self) -> Vec<Envelope> {
        std::mem::take(&mut *self.shared.outbox.borrow_mut())
    }

    /// Moves the simulated clock forward to `t` and releases the alarms due:
    /// their mail goes straight into the receivers' inboxes (or stays in the
    /// held outbox if the receiver is not here); a sleeping agent resumes at
    /// its next poll.
    pub(crate) fn advance_to(&mut self, t: f64) -> Result<()> {
        let now = self.shared.now.get();
        if !t.is_finite() || t < now {
            return Err(if t < now {
                Error::AlarmInPast { at: t, now }
            } else {
                Error::InvalidTime(t)
            });
        }
        self.jump_to(t);
        let mut due = Vec::new();
        self.shared.alarms_mut(|a| a.release_due(t, |fired| due.push(fired)));
        for fired in due {
            self.stats.alarms_fired += 1;
            if let Fired::Mail(env) = fired {
                let index = env.receiver().and_then(|r| self.shared.index_of(r));
                let refused = match index {
                    Some(index) => {
                        let mut reg = self.shared.reg.borrow_mut();
                        let pushed = reg.push(index, env);
                        if pushed.is_ok() {
                            let rec = &mut reg.agents[index as usize];
                            rec.visible = rec.inbox.len() as u32;
                        }
                        pushed.err()
                    }
                    None => Some(env),
                };
                // Nobody here to take it: kept with what was sent.
                if let Some(env) = refused {
                    self.shared.post(env);
                }
            }
        }
        Ok(())
    }
}

fn inspectable<A: Agent>(slot: &Slot, id: AgentId) -> Result<&std::cell::RefCell<A>> {
    let Some(agent) = slot.agent.as_ref() else {
        return Err(Error::NotInspectable(id));
    };
    agent.as_any().downcast_ref::<std::cell::RefCell<A>>().ok_or(Error::AgentTypeMismatch {
        agent: id,
        expected: std::any::type_name::<A>(),
        found: agent.type_name(),
    })
}

/// In `poll`'s `ask`: a poll with a reason (see `poll`). Not a signal bit.
const ROUND: u8 = 128;

/// Where the mail of fired alarms goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fire {
    /// To the outbox, routed with the round's sends (after them: see
    /// [`Origin::FIRED`](crate::Origin::FIRED)).
    ToOutbox,
    /// Straight into its receiver's inbox when the receiver is on this
    /// kernel and nobody subscribes to anything; else to the outbox. For a
    /// caller that routed the round's sends first and whose agents' alarms
    /// all fire here (a partition inside a lookahead window).
    IntoInboxes,
}

/// Asks for what polling the agent in `index` reads first: its future's
/// state and a trait agent's struct (the slot itself was asked for at the
/// round before; see [`prefetch`](crate::prefetch)).
#[inline]
fn prefetch_agent(slots: &[Option<Slot>], index: u32) {
    let Some(Some(slot)) = slots.get(index as usize) else { return };
    if let Some(future) = &slot.future {
        crate::prefetch::prefetch(&**future as *const dyn Future<Output = ()>);
    }
    if let Some(agent) = &slot.agent {
        crate::prefetch::prefetch(Rc::as_ptr(agent));
    }
}

/// The text of a panic.
fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-text panic payload)".to_string()
    }
}

/// Counts a message nobody could take: a dead letter if it had a receiver,
/// an unheard broadcast otherwise.
#[cold]
fn undeliverable(stats: &mut Stats, env: &Envelope) {
    match env.receiver() {
        Some(receiver) => {
            stats.dead_letters += 1;
            tracing::warn!(%receiver, sender = %env.sender(), topic = env.topic(), "dead letter: no agent with this id");
        }
        None => {
            stats.unheard += 1;
            tracing::debug!(sender = %env.sender(), topic = env.topic(), "broadcast with no subscriber");
        }
    }
}
