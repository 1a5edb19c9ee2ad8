//! The agent's view of the kernel: [`Cx`].
//!
//! Every agent gets one `Cx`. Through it the agent sends and receives mail,
//! sets and clears alarms, subscribes, reads the clock, pauses the run and
//! adds or removes agents. `Cx` is a pointer to the single-threaded kernel
//! plus the agent's slot (it is `!Send`, like the agents it serves): a send
//! is one push into the receiver's inbox (see [`registry`](crate::registry)),
//! a receive one pop from the agent's own. What an agent does to other agents
//! (add, remove) is queued and carried out as soon as the agent yields back to
//! the kernel.
//!
//! A `Cx` belongs to its agent: waiting on another agent's `Cx` is not
//! supported.

use crate::agent::{Agent, Installer};
use crate::alarms::{Alarm, AlarmInfo, AlarmQueue};
use crate::change::{derived_id, Change, DERIVED};
use crate::envelope::{Envelope, Origin};
use crate::error::{Error, Result};
use crate::id::AgentId;
use crate::mailing_list::{MailingList, Subscription};
use crate::registry::{Mode, Registry, RESERVED};
use crate::start::Start;
use crate::wake::is_kernel_waker;
use rustc_hash::FxHashMap;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// Signals between the kernel and the agent it is polling (one agent is
/// polled at a time, so one set of bits serves all).
///
/// Whether a pending agent waits on the kernel (mail, a wake-up: it is idle)
/// or on something else (busy: simulated time must wait for it) is counted,
/// not flagged: each kernel wait that is pending at the end of the poll adds
/// one to `Shared::waits`, and a wait that completes or is dropped within the
/// same poll takes its one back. A poll that ends pending with no kernel wait
/// counted is busy.
pub(crate) mod signal {
    /// The kernel asks a trait agent to run `update` if it has mail or is
    /// kept awake.
    pub const UPDATE_DUE: u8 = 1;
    /// ... even with an empty inbox (the test bed's explicit update).
    pub const FORCE_UPDATE: u8 = 2;
    /// The agent is being removed: run `teardown` next.
    pub const REMOVING: u8 = 4;
    /// A trait agent's setup has finished.
    pub const SETUP_DONE: u8 = 8;
    /// A trait agent rests between updates.
    pub const AT_REST: u8 = 16;
    /// The agent was not at rest when polled: an update it was in may have
    /// taken the mail the kernel asks about, so check before updating.
    pub const VERIFY: u8 = 32;
}

/// State of the kernel that agents reach through [`Cx`].
pub(crate) struct Shared {
    pub now: Cell<f64>,
    pub reg: RefCell<Registry>,
    pub outbox: RefCell<Vec<Envelope>>,
    pub alarms: RefCell<AlarmQueue>,
    /// The earliest pending alarm (maybe a cancelled one), or +∞: lets the
    /// kernel skip the alarm queue in rounds where nothing is due.
    pub next_alarm: Cell<f64>,
    pub mailing: RefCell<MailingList>,
    pub commands: RefCell<VecDeque<Command>>,
    /// Something for the kernel after the current poll: queued adds or
    /// removes, or a `fault` (one flag, so a poll that left neither pays
    /// one test).
    pub has_commands: Cell<bool>,
    pub keep_awake: RefCell<BTreeSet<u32>>,
    /// `keep_awake.len()`, read every round without a borrow.
    pub awake: Cell<usize>,
    pub paused: Cell<bool>,
    pub next_auto_id: Cell<u64>,
    pub signal: Cell<u8>,
    /// Wakers, other than the kernel's, given to agents' pending `recv` and
    /// `sleep` futures (by combinators such as `FuturesUnordered`): woken
    /// before the agent's next poll so the combinator polls them again.
    pub foreign: RefCell<FxHashMap<u32, Vec<Waker>>>,
    /// `foreign.len()`, read on every poll without a borrow.
    pub foreign_len: Cell<usize>,
    /// Kernel waits pending in the current poll (see [`signal`]).
    pub waits: Cell<u32>,
    /// Number of the current poll, so a wait knows whether it counted in it.
    pub epoch: Cell<u64>,
    /// Partitioned mode: what changed, for the other partitions.
    pub journal: RefCell<Vec<Change>>,
    /// Alarms handed to the runtime (see [`Mode::Partition`]).
    pub exported: RefCell<Vec<(f64, Envelope)>>,
    /// Whether adds are journaled (not for the runtime's own adds).
    pub announce_adds: Cell<bool>,
    /// A fault of an agent's call that fails the run (a duplicate id),
    /// taken by the kernel after the agent's poll.
    pub fault: RefCell<Option<Error>>,
    /// The agent whose update the kernel runs at the top of a round (not a
    /// setup or teardown nested in it): what happens meanwhile is on its
    /// account (see [`Origin`]).
    pub actor: Cell<Option<u32>>,
    /// The number of the round running (or last run): see [`Cx::round`].
    pub round_no: Cell<u64>,
    /// Partitioned: the runtime numbers the rounds (`Driver::set_round`).
    pub numbered_outside: Cell<bool>,
    /// The partition this kernel is (`None` on its own): children placed
    /// elsewhere by `spawn_on` go out as [`Start`]s.
    pub here: Cell<Option<usize>>,
    /// Children made for other partitions, for the runtime.
    pub starts: RefCell<Vec<Start>>,
    /// The number of the next resource request made here (see
    /// [`resource`](crate::resource)).
    pub next_request: Cell<u64>,
    /// The values of processes started from outside that have ended (see
    /// [`process`](crate::process)), until taken.
    pub results: RefCell<FxHashMap<AgentId, Box<dyn std::any::Any>>>,
}

pub(crate) enum Command {
    /// An agent to add (its start runs now).
    Add(AgentId, Installer),
    /// An agent to add, started in the next round (see [`Start`]).
    Start(AgentId, Installer),
    Remove(AgentId),
}

impl Shared {
    pub fn new(now: f64) -> Shared {
        Shared {
            now: Cell::new(now),
            // Sends before the first run go through the outbox (see
            // `Scheduler::between_runs`).
            reg: RefCell::new(Registry {
                outbox_used: true,
                next_order: 1,
                round: crate::registry::BETWEEN_RUNS,
                ..Registry::default()
            }),
            outbox: RefCell::new(Vec::new()),
            alarms: RefCell::new(AlarmQueue::default()),
            next_alarm: Cell::new(f64::INFINITY),
            mailing: RefCell::new(MailingList::new()),
            commands: RefCell::new(VecDeque::new()),
            has_commands: Cell::new(false),
            keep_awake: RefCell::new(BTreeSet::new()),
            awake: Cell::new(0),
            paused: Cell::new(false),
            next_auto_id: Cell::new(1),
            signal: Cell::new(0),
            foreign: RefCell::new(FxHashMap::default()),
            foreign_len: Cell::new(0),
            waits: Cell::new(0),
            epoch: Cell::new(1),
            journal: RefCell::new(Vec::new()),
            exported: RefCell::new(Vec::new()),
            announce_adds: Cell::new(true),
            fault: RefCell::new(None),
            actor: Cell::new(None),
            round_no: Cell::new(0),
            numbered_outside: Cell::new(false),
            here: Cell::new(None),
            starts: RefCell::new(Vec::new()),
            next_request: Cell::new(1),
            results: RefCell::new(FxHashMap::default()),
        }
    }

    /// The slot on whose account the agent in slot `index` (outside if
    /// `None`) acts now (see [`Origin`]): the running round's actor, else
    /// itself.
    #[inline]
    pub fn account(&self, index: Option<u32>) -> Option<u32> {
        self.actor.get().or(index)
    }

    /// Claims `id`, or the next free id if `None`, for an agent created as
    /// `made` says (see [`Change::Added`]).
    pub fn reserve_id(&self, id: Option<AgentId>, made: Origin) -> Result<AgentId> {
        let mut reg = self.reg.borrow_mut();
        let ids = &mut reg.ids;
        let id = match id {
            Some(AgentId::OUTSIDE) => return Err(Error::ReservedId(AgentId::OUTSIDE)),
            Some(id) if ids.contains_key(&id) => return Err(Error::DuplicateAgent(id)),
            Some(id) => id,
            None => {
                let mut next = self.next_auto_id.get();
                while ids.contains_key(&AgentId(next)) || AgentId(next) == AgentId::OUTSIDE {
                    next = next.wrapping_add(1);
                }
                self.next_auto_id.set(next.wrapping_add(1));
                AgentId(next)
            }
        };
        ids.insert(id, RESERVED);
        drop(reg);
        // Journaled when claimed, so that a removal asked for before the
        // add is carried out comes after it in the journal. (Agents the
        // runtime adds itself are placed by the runtime: not announced.)
        if self.announce_adds.get() {
            self.note_change(|| Change::Added(id, made));
        }
        Ok(id)
    }

    /// The slot of a registered agent.
    pub fn index_of(&self, id: AgentId) -> Option<u32> {
        self.reg.borrow().ids.get(&id).copied().filter(|&i| i != RESERVED)
    }

    /// Changes the alarm queue and keeps `next_alarm` in step.
    pub fn alarms_mut<R>(&self, f: impl FnOnce(&mut AlarmQueue) -> R) -> R {
        let mut alarms = self.alarms.borrow_mut();
        let r = f(&mut alarms);
        self.next_alarm.set(alarms.peek_time().unwrap_or(f64::INFINITY));
        r
    }

    pub fn set_alarm(&self, alarm: Alarm) -> Result<()> {
        let at = alarm.due_time(self.now.get())?;
        if self.reg.borrow().mode == (Mode::Partition { export_alarms: true }) {
            if let Some(r) = alarm.envelope.receiver() {
                if !self.reg.borrow().ids.contains_key(&r) {
                    self.exported.borrow_mut().push((at, alarm.envelope));
                    return Ok(());
                }
            }
        }
        self.alarms_mut(|a| a.set_mail(at, alarm.envelope, alarm.ignore_if_idle));
        Ok(())
    }

    /// Posts `env` in the outbox (delivered after the round).
    pub fn post(&self, env: Envelope) {
        self.reg.borrow_mut().outbox_used = true;
        self.outbox.borrow_mut().push(env);
    }

    pub fn subscribe(&self, subscriber: AgentId, pattern: Subscription) -> Result<()> {
        pattern.validate(subscriber)?;
        {
            let reg = self.reg.borrow();
            if reg.ids.get(&subscriber).is_none_or(|&i| i == RESERVED) {
                return Err(Error::UnknownAgent(subscriber));
            }
            if let Some(topic) = &pattern.topic {
                if let Ok(n) = topic.as_str().parse::<u64>() {
                    if reg.ids.contains_key(&AgentId(n)) {
                        return Err(Error::TopicIsAgentId {
                            topic: topic.to_string(),
                            agent: AgentId(n),
                        });
                    }
                }
            }
        }
        let noted = pattern.clone();
        self.mailing.borrow_mut().subscribe(subscriber, pattern)?;
        self.note_change(|| Change::Subscribed(subscriber, noted));
        self.mailing_changed();
        Ok(())
    }

    pub fn unsubscribe(&self, subscriber: AgentId, pattern: &Subscription) -> Result<()> {
        self.mailing.borrow_mut().unsubscribe(subscriber, pattern)?;
        self.note_change(|| Change::Unsubscribed(subscriber, pattern.clone()));
        self.mailing_changed();
        Ok(())
    }

    /// Unsubscribes an agent from everything (it is leaving: on a partition
    /// its `Removed` change says so to the others).
    pub fn unsubscribe_all(&self, subscriber: AgentId) {
        if self.mailing.borrow_mut().unsubscribe_all(subscriber) > 0 {
            self.note_change(|| Change::UnsubscribedAll(subscriber));
            self.mailing_changed();
        }
    }

    /// Records a change for the other partitions (a partition's kernel only).
    #[inline]
    pub fn note_change(&self, change: impl FnOnce() -> Change) {
        if self.reg.borrow().mode.is_partition() {
            self.journal.borrow_mut().push(change());
        }
    }

    /// After the mailing list changed: mail delivered directly this round is
    /// taken back to meet the new list at delivery (see the registry).
    fn mailing_changed(&self) {
        let subscribed = !self.mailing.borrow().is_empty();
        let mut reg = self.reg.borrow_mut();
        reg.subscribed = subscribed;
        self.take_back_direct(&mut reg);
    }

    /// Routes this round's direct mail back through the outbox.
    pub fn take_back_direct(&self, reg: &mut Registry) {
        if !reg.direct_log.is_empty() {
            reg.take_back_direct(&mut self.outbox.borrow_mut());
        }
    }

    pub fn set_keep_awake(&self, index: u32, on: bool) {
        if let Some(rec) = self.reg.borrow_mut().agents.get_mut(index as usize) {
            rec.keep_awake = on;
        }
        let mut set = self.keep_awake.borrow_mut();
        if on {
            set.insert(index);
        } else {
            set.remove(&index);
        }
        self.awake.set(set.len());
    }

    /// Keeps the waker a pending kernel wait of agent `index` was polled
    /// with, if it is not the kernel's own (see `foreign`).
    #[inline]
    pub fn note_waker(&self, index: u32, waker: &Waker) {
        if !is_kernel_waker(waker) {
            let mut foreign = self.foreign.borrow_mut();
            let held = foreign.entry(index).or_default();
            if !held.iter().any(|w| w.will_wake(waker)) {
                held.push(waker.clone());
            }
            self.foreign_len.set(foreign.len());
        }
    }

    /// Drops what `note_waker` kept for agent `index` (it left).
    pub fn forget_foreign(&self, index: u32) {
        if self.foreign_len.get() > 0 {
            let mut foreign = self.foreign.borrow_mut();
            foreign.remove(&index);
            self.foreign_len.set(foreign.len());
        }
    }

    /// Whether a combinator holds a pending kernel wait of agent `index`.
    pub fn has_foreign(&self, index: u32) -> bool {
        self.foreign_len.get() > 0 && self.foreign.borrow().contains_key(&index)
    }

    /// Wakes what `note_waker` kept for agent `index`, before polling it.
    #[inline]
    pub fn wake_foreign(&self, index: u32) {
        if self.foreign_len.get() > 0 {
            self.wake_kept_foreign(index);
        }
    }

    /// [`wake_foreign`](Self::wake_foreign) once some wakers are kept (out
    /// of a poll's way until then).
    #[cold]
    #[inline(never)]
    fn wake_kept_foreign(&self, index: u32) {
        let wakers = {
            let mut foreign = self.foreign.borrow_mut();
            let w = foreign.remove(&index);
            self.foreign_len.set(foreign.len());
            w
        };
        for w in wakers.into_iter().flatten() {
            w.wake();
        }
    }

    /// A kernel wait goes pending in this poll; returns the poll's number.
    #[inline]
    pub fn wait(&self) -> u64 {
        self.waits.set(self.waits.get() + 1);
        self.epoch.get()
    }

    /// A kernel wait that went pending at `epoch` completes or is dropped.
    #[inline]
    pub fn unwait(&self, epoch: u64) {
        if epoch == self.epoch.get() {
            self.waits.set(self.waits.get() - 1);
        }
    }
}

/// An agent's handle on the kernel. See the [module docs](self).
#[derive(Clone)]
pub struct Cx {
    pub(crate) shared: Rc<Shared>,
    pub(crate) index: u32,
    pub(crate) id: AgentId,
}

impl Cx {
    /// This agent's id.
    pub fn id(&self) -> AgentId {
        self.id
    }

    /// The clock at this round (simulated seconds, or Unix seconds for the
    /// real-time clock).
    pub fn now(&self) -> f64 {
        self.shared.now.get()
    }

    /// Sends `envelope`. Its receiver and subscribers find it in their
    /// inboxes in the next round. An envelope made here with
    /// [`Envelope::new`] is stamped with this agent as its sender; one that
    /// already names a sender keeps it (as maslite lets an agent forward a
    /// message unchanged) — use [`Envelope::reply`] or
    /// [`Envelope::set_sender`] to sign it yourself.
    #[inline]
    pub fn send(&self, mut envelope: Envelope) {
        if envelope.sender() == AgentId::OUTSIDE {
            envelope.set_sender(self.id);
        }
        let mut reg = self.shared.reg.borrow_mut();
        let mut env = match reg.try_direct(envelope) {
            Ok(()) => return,
            Err(env) => env,
        };
        // (Mail delivered straight to the inbox above needs no stamp: its
        // round's outbox is in origin order already.)
        reg.stamp(self.shared.account(Some(self.index)), self.shared.now.get(), &mut env);
        reg.outbox_used = true;
        drop(reg);
        self.shared.outbox.borrow_mut().push(env);
    }

    /// The old name of [`try_recv`](Self::try_recv) (it does not wait,
    /// unlike [`recv`](Self::recv)).
    #[deprecated(since = "0.1.0", note = "renamed try_recv: it does not wait, unlike recv")]
    #[inline]
    pub fn receive(&self) -> Option<Envelope> {
        self.try_recv()
    }

    /// Waits until the inbox is non-empty, then takes the oldest message.
    pub fn recv(&self) -> Recv<'_> {
        Recv { cx: self, waited: 0 }
    }

    /// Whether the inbox holds mail.
    pub fn has_mail(&self) -> bool {
        self.inbox_len() > 0
    }

    /// How many messages wait in the inbox.
    pub fn inbox_len(&self) -> usize {
        self.shared.reg.borrow_mut().own(self.index, self.id).map_or(0, |r| r.visible as usize)
    }

    /// Suspends this agent for `seconds` of clock time. The wake-up keeps
    /// the run going (it is never ignored when idle) and is not an alarm the
    /// agent can list or clear. A negative or NaN delay counts as zero.
    pub fn sleep(&self, seconds: f64) -> Sleep<'_> {
        let seconds = if seconds.is_nan() || seconds < 0.0 { 0.0 } else { seconds };
        Sleep { cx: self, deadline: self.now() + seconds, ticket: None, waited: 0 }
    }

    /// Suspends this agent until the clock reads `time` (now, if it is past
    /// or NaN). An infinite time never comes: the agent waits for nothing
    /// and does not hold the run up.
    pub fn sleep_until(&self, time: f64) -> Sleep<'_> {
        let deadline = if time.is_nan() { self.now() } else { time };
        Sleep { cx: self, deadline, ticket: None, waited: 0 }
    }

    /// Sets an alarm: its envelope (stamped with this agent as sender unless
    /// it names another) is delivered at the alarm's time.
    pub fn set_alarm(&self, mut alarm: Alarm) -> Result<()> {
        if alarm.envelope.sender() == AgentId::OUTSIDE {
            alarm.envelope.set_sender(self.id);
        }
        {
            let mut reg = self.shared.reg.borrow_mut();
            let mine = reg.own(self.index, self.id).is_some().then_some(self.index);
            reg.stamp(self.shared.account(mine), self.shared.now.get(), &mut alarm.envelope);
        }
        self.shared.set_alarm(alarm)
    }

    /// The pending alarms whose message goes to `receiver` (all alarms if
    /// `None`), in firing order.
    pub fn list_alarms(&self, receiver: Option<AgentId>) -> Vec<AlarmInfo> {
        self.shared.alarms.borrow().list(receiver)
    }

    /// Clears the alarms for `receiver` (any if `None`) with `topic` (any if
    /// `None`); returns how many were cleared.
    ///
    /// In a multi-partition runtime the clear takes effect at the end of
    /// this step, on every partition (so that the outcome does not depend
    /// on where agents are placed): the matching alarms pending then go. The
    /// count returned is of this partition's matching alarms now.
    pub fn clear_alarms(&self, receiver: Option<AgentId>, topic: Option<&str>) -> usize {
        if self.shared.reg.borrow().mode.is_partition() {
            let topic_owned = topic.map(str::to_string);
            self.shared.note_change(|| Change::AlarmsCleared { receiver, topic: topic_owned });
            let pending = self.shared.alarms.borrow().list(receiver);
            return pending.iter().filter(|a| topic.is_none_or(|t| a.topic.as_str() == t)).count();
        }
        self.shared.alarms_mut(|a| a.clear(receiver, topic))
    }

    /// Subscribes this agent to a pattern.
    pub fn subscribe(&self, pattern: Subscription) -> Result<()> {
        self.shared.subscribe(self.id, pattern)
    }

    /// Unsubscribes this agent from a pattern.
    pub fn unsubscribe(&self, pattern: &Subscription) -> Result<()> {
        self.shared.unsubscribe(self.id, pattern)
    }

    /// Unsubscribes this agent from everything.
    pub fn unsubscribe_all(&self) {
        self.shared.unsubscribe_all(self.id)
    }

    /// This agent's subscription patterns, in the order made.
    pub fn subscriptions(&self) -> Vec<Subscription> {
        self.shared.mailing.borrow().subscriptions(self.id)
    }

    /// The subscribers of exactly this pattern.
    pub fn subscribers(&self, pattern: &Subscription) -> Vec<AgentId> {
        self.shared.mailing.borrow().subscribers(pattern)
    }

    /// Asks to be updated every round even with an empty inbox. (Does
    /// nothing once the agent has left.)
    pub fn set_keep_awake(&self, on: bool) {
        let mine = self.shared.reg.borrow_mut().own(self.index, self.id).is_some();
        if mine {
            self.shared.set_keep_awake(self.index, on)
        }
    }

    /// Whether this agent is kept awake.
    pub fn keep_awake(&self) -> bool {
        self.shared.reg.borrow_mut().own(self.index, self.id).is_some_and(|r| r.keep_awake)
    }

    /// The number of the round running now: rounds in which some agent was
    /// updated, counted over the whole system since the scheduler (or
    /// runtime) was made, this one included — the same number on one
    /// kernel and on any number of partitions in lockstep. (In lookahead
    /// windows a partition runs its rounds on its own: there it counts its
    /// own.) Outside a round (a setup run from outside), the last round's.
    pub fn round(&self) -> u64 {
        self.shared.round_no.get()
    }

    /// Stops the run at the end of this round.
    pub fn pause(&self) {
        self.shared.paused.set(true)
    }

    /// Whether an agent with this id is registered.
    pub fn exists(&self, id: AgentId) -> bool {
        self.shared.reg.borrow().ids.contains_key(&id)
    }

    /// Adds an agent with an allocated id; its `setup` runs as soon as this
    /// agent yields. Returns the id.
    pub fn add<A: Agent>(&self, agent: A) -> Result<AgentId> {
        self.queue_add(None, Installer::agent(agent))
    }

    /// Adds an agent with the given id.
    pub fn add_with_id<A: Agent>(&self, id: AgentId, agent: A) -> Result<AgentId> {
        self.queue_add(Some(id), Installer::agent(agent))
    }

    /// Starts an agent written as an async fn; see
    /// [`Scheduler::spawn`](crate::Scheduler::spawn).
    pub fn spawn<F, Fut>(&self, body: F) -> Result<AgentId>
    where
        F: FnOnce(Cx) -> Fut + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        self.queue_add(None, Installer::process(body))
    }

    /// Adds an agent on `partition`, started in the next round (not nested
    /// in this update, as [`add`](Self::add)'s setup is): see
    /// [`spawn_on`](Self::spawn_on).
    pub fn add_on<A: Agent + Send>(&self, partition: usize, agent: A) -> Result<AgentId> {
        self.start_on(partition, Box::new(move || Installer::agent(agent)))
    }

    /// Starts an agent written as an async fn on partition `partition` of a
    /// multi-partition runtime (a bare kernel has one, and ignores the
    /// number). Unlike [`spawn`](Self::spawn), whose body starts at once,
    /// nested in this update, the child starts in the next round, in its
    /// place in the order of insertion, as an agent woken by mail does — so
    /// it starts the same way wherever it is placed, and the trace does not
    /// depend on the placement. Its id is known at once: mail sent to it now
    /// waits for it. The body must be `Send`: it may travel to another
    /// thread.
    ///
    /// A partition the runtime does not have, or one on another host (a
    /// body cannot cross hosts), fails the run at the end of the step; so
    /// does a child placed on another partition inside lookahead windows
    /// (it would start at once, sooner than the lookahead: it breaks the
    /// promise as a message would).
    ///
    /// ```
    /// use maslite_core::{Envelope, Scheduler};
    ///
    /// let mut s = Scheduler::simulated();
    /// s.spawn(|cx| async move {
    ///     let child = cx.spawn_on(1, |cx| async move {
    ///         let env = cx.recv().await;
    ///         assert_eq!(env.payload::<&str>(), Ok(&"hello"));
    ///     }).unwrap();
    ///     cx.send(Envelope::new("hello").to(child)); // waits for it
    /// }).unwrap();
    /// s.run().unwrap();
    /// assert_eq!(s.len(), 0, "the child read its mail and ended");
    /// ```
    pub fn spawn_on<F, Fut>(&self, partition: usize, body: F) -> Result<AgentId>
    where
        F: FnOnce(Cx) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        self.start_on(partition, Box::new(move || Installer::process(body)))
    }

    fn start_on(
        &self,
        partition: usize,
        make: Box<dyn FnOnce() -> Installer + Send>,
    ) -> Result<AgentId> {
        let (made, creator) = self.creation_stamp();
        let id = derived_id(creator, &made);
        match self.shared.here.get() {
            Some(me) if me != partition => {
                // Every partition learns with this step's changes that the
                // child is at `partition`; its body goes there.
                self.shared.note_change(|| Change::Spawned(id, made, partition));
                self.shared.starts.borrow_mut().push(Start { id, made, partition, creator, make });
                Ok(id)
            }
            _ => {
                let id = self.claim(Some(id), made)?;
                self.shared.commands.borrow_mut().push_back(Command::Start(id, make()));
                self.shared.has_commands.set(true);
                Ok(id)
            }
        }
    }

    fn queue_add(&self, id: Option<AgentId>, installer: Installer) -> Result<AgentId> {
        if id.is_some_and(|id| id.0 & DERIVED != 0) {
            return Err(Error::ReservedId(id.expect("checked")));
        }
        let (made, by) = self.creation_stamp();
        let id = self.claim(Some(id.unwrap_or_else(|| derived_id(by, &made))), made)?;
        self.shared.commands.borrow_mut().push_back(Command::Add(id, installer));
        self.shared.has_commands.set(true);
        Ok(id)
    }

    /// The creation stamp of an agent this one makes now, and the agent on
    /// whose account it is made: it places the new agent in the order of
    /// insertion and, when no id is chosen, gives it one — both the same on
    /// one kernel and on any number of partitions (see `derived_id`).
    fn creation_stamp(&self) -> (Origin, AgentId) {
        let mut reg = self.shared.reg.borrow_mut();
        let mine = reg.own(self.index, self.id).is_some().then_some(self.index);
        reg.creation(self.shared.account(mine), self.shared.now.get())
    }

    /// Claims `id` for a new agent created as `made` says.
    fn claim(&self, id: Option<AgentId>, made: Origin) -> Result<AgentId> {
        self.shared.reserve_id(id, made).inspect_err(|e| {
            // A duplicate id fails the run, on one kernel as on many
            // partitions: there two agents may claim one id in the same
            // step, each partition unaware of the other's, and only the
            // step's end can tell (README, "Where it differs").
            if let Error::DuplicateAgent(_) = e {
                self.shared.fault.borrow_mut().get_or_insert(e.clone());
                self.shared.has_commands.set(true);
            }
        })
    }

    /// Removes an agent (this one too) as soon as this agent yields; its
    /// `teardown` runs then.
    ///
    /// In a multi-partition runtime another agent is removed at the end of
    /// this step, by its partition, wherever it is (so the outcome does not
    /// depend on the placement), and an unknown id is ignored rather than an
    /// error (only its partition would know). An agent removing itself
    /// leaves as soon as it yields, as on one kernel.
    pub fn remove(&self, id: AgentId) -> Result<()> {
        if id != self.id && id != AgentId::OUTSIDE && self.shared.reg.borrow().mode.is_partition() {
            self.shared.note_change(|| Change::RemoveRequested(id));
            return Ok(());
        }
        if !self.exists(id) {
            return Err(Error::UnknownAgent(id));
        }
        self.shared.commands.borrow_mut().push_back(Command::Remove(id));
        self.shared.has_commands.set(true);
        Ok(())
    }
}

/// Future of [`Cx::recv`].
#[must_use = "futures do nothing unless awaited: write `cx.recv().await`"]
pub struct Recv<'a> {
    cx: &'a Cx,
    /// The poll in which it last went pending (0: never).
    waited: u64,
}

impl Future for Recv<'_> {
    type Output = Envelope;
    fn poll(mut self: Pin<&mut Self>, task: &mut Context<'_>) -> Poll<Envelope> {
        self.cx.shared.unwait(std::mem::take(&mut self.waited));
        match self.cx.try_recv() {
            Some(env) => Poll::Ready(env),
            None => {
                self.waited = self.cx.shared.wait();
                self.cx.shared.note_waker(self.cx.index, task.waker());
                Poll::Pending
            }
        }
    }
}

impl Drop for Recv<'_> {
    fn drop(&mut self) {
        self.cx.shared.unwait(self.waited);
    }
}

/// Future of [`Cx::sleep`].
#[must_use = "futures do nothing unless awaited: write `cx.sleep(dt).await`"]
pub struct Sleep<'a> {
    cx: &'a Cx,
    deadline: f64,
    ticket: Option<u64>,
    /// The poll in which it last went pending (0: never).
    waited: u64,
}

impl Future for Sleep<'_> {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, task: &mut Context<'_>) -> Poll<()> {
        self.cx.shared.unwait(std::mem::take(&mut self.waited));
        if self.cx.now() >= self.deadline {
            self.ticket = None;
            return Poll::Ready(());
        }
        if self.ticket.is_none() && self.deadline.is_finite() {
            let (deadline, index) = (self.deadline, self.cx.index);
            let ticket = self.cx.shared.alarms_mut(|a| a.set_wake(deadline, index));
            self.ticket = Some(ticket);
        }
        self.waited = self.cx.shared.wait();
        self.cx.shared.note_waker(self.cx.index, task.waker());
        Poll::Pending
    }
}

impl Drop for Sleep<'_> {
    fn drop(&mut self) {
        self.cx.shared.unwait(self.waited);
        if let Some(ticket) = self.ticket {
            if self.cx.now() < self.deadline {
                self.cx.shared.alarms_mut(|a| a.cancel_wake(ticket));
            }
        }
    }
}

/// Resolves when the kernel asks a trait agent to update or to tear down.
/// It is only ever pending at the end of a poll (never dropped within one),
/// so it counts its wait without taking it back.
pub(crate) struct NextEvent<'a>(pub &'a Cx);

/// What the kernel asks of a trait agent.
pub(crate) enum Event {
    Update,
    Teardown,
}

impl Future for NextEvent<'_> {
    type Output = Event;
    #[inline]
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Event> {
        let cx = self.0;
        let shared = &*cx.shared;
        let bits = shared.signal.get();
        if bits & signal::REMOVING != 0 {
            return Poll::Ready(Event::Teardown);
        }
        let asked = signal::UPDATE_DUE | signal::FORCE_UPDATE;
        if bits & asked != 0 {
            shared.signal.set(bits & !asked);
            // An update that waited for its mail inside may have taken what
            // the kernel asked about: then update only for mail still there.
            if bits & (signal::FORCE_UPDATE | signal::VERIFY) != signal::VERIFY
                || cx.has_mail()
                || cx.keep_awake()
            {
                return Poll::Ready(Event::Update);
            }
        }
        shared.signal.set(shared.signal.get() | signal::AT_REST);
        shared.wait();
        Poll::Pending
    }
}
