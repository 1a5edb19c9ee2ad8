//! The agent's view of the kernel: [`Cx`].
//!
//! Every agent gets one `Cx`. Through it the agent sends and receives mail,
//! sets and clears alarms, subscribes, reads the clock, pauses the run and
//! adds or removes agents. `Cx` is a pair of reference-counted pointers into
//! the single-threaded kernel (it is `!Send`, like the agents it serves):
//! a send is one push onto the kernel's outbox, a receive one pop from the
//! agent's inbox. What an agent does to other agents (add, remove) is queued
//! and carried out as soon as the agent yields back to the kernel.

use crate::agent::{Agent, Installer};
use crate::alarms::{Alarm, AlarmInfo, AlarmQueue};
use crate::envelope::Envelope;
use crate::error::{Error, Phase, Result};
use crate::id::AgentId;
use crate::id_map::IdMap;
use crate::mailing_list::{MailingList, Subscription};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

/// Index of an id that is reserved by an add still in the queue.
pub(crate) const RESERVED: u32 = u32::MAX - 1;

pub(crate) mod flag {
    /// The kernel asks a trait agent to run `update`.
    pub const UPDATE_DUE: u8 = 1;
    /// The agent's last `Pending` came from a kernel wait (mail, alarm).
    pub const WAITING: u8 = 2;
    /// The agent is being removed: run `teardown` next.
    pub const REMOVING: u8 = 4;
    /// Update every round, mail or not.
    pub const KEEP_AWAKE: u8 = 8;
}

/// State of the kernel that agents reach through [`Cx`].
pub(crate) struct Shared {
    pub now: Cell<f64>,
    pub outbox: RefCell<Vec<Envelope>>,
    pub alarms: RefCell<AlarmQueue>,
    pub mailing: RefCell<MailingList>,
    pub ids: RefCell<IdMap>,
    pub commands: RefCell<VecDeque<Command>>,
    pub has_commands: Cell<bool>,
    pub keep_awake: RefCell<BTreeSet<u32>>,
    pub paused: Cell<bool>,
    pub next_auto_id: Cell<u64>,
}

pub(crate) enum Command {
    Add(AgentId, Installer),
    Remove(AgentId),
}

impl Shared {
    pub fn new(now: f64) -> Shared {
        Shared {
            now: Cell::new(now),
            outbox: RefCell::new(Vec::new()),
            alarms: RefCell::new(AlarmQueue::default()),
            mailing: RefCell::new(MailingList::new()),
            ids: RefCell::new(IdMap::default()),
            commands: RefCell::new(VecDeque::new()),
            has_commands: Cell::new(false),
            keep_awake: RefCell::new(BTreeSet::new()),
            paused: Cell::new(false),
            next_auto_id: Cell::new(1),
        }
    }

    /// Claims `id`, or the next free id if `None`.
    pub fn reserve_id(&self, id: Option<AgentId>) -> Result<AgentId> {
        let mut ids = self.ids.borrow_mut();
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
        Ok(id)
    }

    pub fn set_alarm(&self, alarm: Alarm) -> Result<()> {
        let at = alarm.due_time(self.now.get())?;
        self.alarms.borrow_mut().set_mail(at, alarm.envelope, alarm.ignore_if_idle);
        Ok(())
    }

    pub fn subscribe(&self, subscriber: AgentId, pattern: Subscription) -> Result<()> {
        pattern.validate(subscriber)?;
        let ids = self.ids.borrow();
        if !ids.contains_key(&subscriber) {
            return Err(Error::UnknownAgent(subscriber));
        }
        if let Some(topic) = &pattern.topic {
            if let Ok(n) = topic.as_str().parse::<u64>() {
                if ids.contains_key(&AgentId(n)) {
                    return Err(Error::TopicIsAgentId {
                        topic: topic.to_string(),
                        agent: AgentId(n),
                    });
                }
            }
        }
        self.mailing.borrow_mut().subscribe(subscriber, pattern)
    }

    pub fn set_keep_awake(&self, state: &AgentState, on: bool) {
        state.set_flag(flag::KEEP_AWAKE, on);
        let mut set = self.keep_awake.borrow_mut();
        if on {
            set.insert(state.index);
        } else {
            set.remove(&state.index);
        }
    }
}

/// Per-agent state shared by the kernel and the agent's [`Cx`].
pub(crate) struct AgentState {
    pub id: AgentId,
    pub index: u32,
    pub flags: Cell<u8>,
    pub phase: Cell<Phase>,
    pub inbox: RefCell<VecDeque<Envelope>>,
}

impl AgentState {
    pub fn has(&self, f: u8) -> bool {
        self.flags.get() & f != 0
    }
    pub fn set_flag(&self, f: u8, on: bool) {
        let flags = self.flags.get();
        self.flags.set(if on { flags | f } else { flags & !f });
    }
}

/// An agent's handle on the kernel. See the [module docs](self).
#[derive(Clone)]
pub struct Cx {
    pub(crate) shared: Rc<Shared>,
    pub(crate) state: Rc<AgentState>,
}

impl Cx {
    /// This agent's id.
    pub fn id(&self) -> AgentId {
        self.state.id
    }

    /// The clock at this round (simulated seconds, or Unix seconds for the
    /// real-time clock).
    pub fn now(&self) -> f64 {
        self.shared.now.get()
    }

    /// Sends `envelope`, stamped with this agent as sender. It is delivered
    /// after the round, to its receiver and matching subscribers.
    pub fn send(&self, mut envelope: Envelope) {
        envelope.set_sender(self.state.id);
        self.shared.outbox.borrow_mut().push(envelope);
    }

    /// Takes the oldest message from the inbox, if any.
    pub fn receive(&self) -> Option<Envelope> {
        self.state.inbox.borrow_mut().pop_front()
    }

    /// Waits until the inbox is non-empty, then takes the oldest message.
    pub fn recv(&self) -> Recv<'_> {
        Recv { state: &self.state }
    }

    /// Whether the inbox holds mail.
    pub fn has_mail(&self) -> bool {
        !self.state.inbox.borrow().is_empty()
    }

    /// How many messages wait in the inbox.
    pub fn inbox_len(&self) -> usize {
        self.state.inbox.borrow().len()
    }

    /// Suspends this agent for `seconds` of clock time. The wake-up keeps
    /// the run going (it is never ignored when idle) and is not an alarm the
    /// agent can list or clear. A negative or NaN delay counts as zero.
    pub fn sleep(&self, seconds: f64) -> Sleep<'_> {
        let seconds = if seconds.is_nan() || seconds < 0.0 { 0.0 } else { seconds };
        Sleep { cx: self, deadline: self.now() + seconds, ticket: None }
    }

    /// Suspends this agent until the clock reads `time` (now, if it is past).
    pub fn sleep_until(&self, time: f64) -> Sleep<'_> {
        Sleep { cx: self, deadline: time, ticket: None }
    }

    /// Sets an alarm: its envelope (stamped with this agent as sender unless
    /// it names another) is delivered at the alarm's time.
    pub fn set_alarm(&self, mut alarm: Alarm) -> Result<()> {
        if alarm.envelope.sender() == AgentId::OUTSIDE {
            alarm.envelope.set_sender(self.id());
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
    pub fn clear_alarms(&self, receiver: Option<AgentId>, topic: Option<&str>) -> usize {
        self.shared.alarms.borrow_mut().clear(receiver, topic)
    }

    /// Subscribes this agent to a pattern.
    pub fn subscribe(&self, pattern: Subscription) -> Result<()> {
        self.shared.subscribe(self.id(), pattern)
    }

    /// Unsubscribes this agent from a pattern.
    pub fn unsubscribe(&self, pattern: &Subscription) -> Result<()> {
        self.shared.mailing.borrow_mut().unsubscribe(self.id(), pattern)
    }

    /// Unsubscribes this agent from everything.
    pub fn unsubscribe_all(&self) {
        self.shared.mailing.borrow_mut().unsubscribe_all(self.id())
    }

    /// This agent's subscription patterns, in the order made.
    pub fn subscriptions(&self) -> Vec<Subscription> {
        self.shared.mailing.borrow().subscriptions(self.id())
    }

    /// The subscribers of exactly this pattern.
    pub fn subscribers(&self, pattern: &Subscription) -> Vec<AgentId> {
        self.shared.mailing.borrow().subscribers(pattern)
    }

    /// Asks to be updated every round even with an empty inbox.
    pub fn set_keep_awake(&self, on: bool) {
        self.shared.set_keep_awake(&self.state, on)
    }

    /// Whether this agent is kept awake.
    pub fn keep_awake(&self) -> bool {
        self.state.has(flag::KEEP_AWAKE)
    }

    /// Stops the run at the end of this round.
    pub fn pause(&self) {
        self.shared.paused.set(true)
    }

    /// Whether an agent with this id is registered.
    pub fn exists(&self, id: AgentId) -> bool {
        self.shared.ids.borrow().contains_key(&id)
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

    fn queue_add(&self, id: Option<AgentId>, installer: Installer) -> Result<AgentId> {
        let id = self.shared.reserve_id(id)?;
        self.shared.commands.borrow_mut().push_back(Command::Add(id, installer));
        self.shared.has_commands.set(true);
        Ok(id)
    }

    /// Removes an agent (this one too) as soon as this agent yields; its
    /// `teardown` runs then.
    pub fn remove(&self, id: AgentId) -> Result<()> {
        if !self.exists(id) {
            return Err(Error::UnknownAgent(id));
        }
        self.shared.commands.borrow_mut().push_back(Command::Remove(id));
        self.shared.has_commands.set(true);
        Ok(())
    }
}

/// Future of [`Cx::recv`].
pub struct Recv<'a> {
    state: &'a AgentState,
}

impl Future for Recv<'_> {
    type Output = Envelope;
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Envelope> {
        match self.state.inbox.borrow_mut().pop_front() {
            Some(env) => Poll::Ready(env),
            None => {
                self.state.set_flag(flag::WAITING, true);
                Poll::Pending
            }
        }
    }
}

/// Future of [`Cx::sleep`].
pub struct Sleep<'a> {
    cx: &'a Cx,
    deadline: f64,
    ticket: Option<u64>,
}

impl Future for Sleep<'_> {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if self.cx.now() >= self.deadline {
            self.ticket = None;
            return Poll::Ready(());
        }
        if self.ticket.is_none() {
            let ticket =
                self.cx.shared.alarms.borrow_mut().set_wake(self.deadline, self.cx.state.index);
            self.ticket = Some(ticket);
        }
        self.cx.state.set_flag(flag::WAITING, true);
        Poll::Pending
    }
}

impl Drop for Sleep<'_> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket {
            if self.cx.now() < self.deadline {
                self.cx.shared.alarms.borrow_mut().cancel_wake(ticket);
            }
        }
    }
}
