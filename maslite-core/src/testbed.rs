//! Testing one agent alone: give it mail, run one update, read what it sent
//! and which alarms it set — without any other agent.
//!
//! The bed is a scheduler on the simulated clock that holds the agent's mail
//! instead of delivering it.

use crate::agent::Agent;
use crate::alarms::AlarmInfo;
use crate::envelope::Envelope;
use crate::error::Result;
use crate::id::AgentId;
use crate::mailing_list::Subscription;
use crate::scheduler::Scheduler;
use std::cell::{Ref, RefMut};
use std::marker::PhantomData;

/// One agent under test.
///
/// ```
/// use maslite_core::{Agent, Alarm, Cx, Envelope, TestBed};
///
/// #[derive(Clone)]
/// struct Order(u32);
/// #[derive(Clone)]
/// struct Reminder;
///
/// struct Shop;
/// impl Agent for Shop {
///     async fn update(&mut self, cx: &Cx) {
///         while let Some(order) = cx.try_recv() {
///             let n = order.payload::<Order>().unwrap().0;
///             cx.send(Envelope::new(Order(n * 2)).to(order.sender()));
///             cx.set_alarm(Alarm::after(5.0, Envelope::new(Reminder).to(cx.id()))).unwrap();
///         }
///     }
/// }
///
/// let mut bed = TestBed::new(Shop).unwrap();
/// bed.give(Envelope::new(Order(21)).from(maslite_core::AgentId(7))).unwrap();
/// bed.update().unwrap();
/// let sent = bed.take_sent();
/// assert_eq!(sent[0].payload::<Order>().unwrap().0, 42);
/// assert_eq!(bed.alarms()[0].at, 5.0);
/// ```
pub struct TestBed<A: Agent> {
    scheduler: Scheduler,
    id: AgentId,
    agent: PhantomData<A>,
}

impl<A: Agent> TestBed<A> {
    /// Puts `agent` on a bed with id 1 and runs its `setup`.
    pub fn new(agent: A) -> Result<TestBed<A>> {
        TestBed::with_id(AgentId(1), agent)
    }

    /// Puts `agent` on a bed with the given id and runs its `setup`.
    pub fn with_id(id: AgentId, agent: A) -> Result<TestBed<A>> {
        let mut scheduler = Scheduler::simulated();
        scheduler.hold_mail();
        scheduler.add_with_id(id, agent)?;
        Ok(TestBed { scheduler, id, agent: PhantomData })
    }

    /// The agent's id.
    pub fn id(&self) -> AgentId {
        self.id
    }

    /// Puts a message in the agent's inbox (addressed to it if it names no
    /// receiver). Fails if the agent has left (removed itself, or failed).
    pub fn give(&mut self, mut envelope: Envelope) -> Result<()> {
        if envelope.receiver().is_none() {
            let _ = envelope.set_receiver(Some(self.id));
        }
        self.scheduler.put_in_inbox(self.id, envelope)
    }

    /// Runs one `update`, whatever the inbox holds. If an update is
    /// suspended (asleep, or waiting for mail inside), this resumes it
    /// instead; [`in_update`](Self::in_update) tells which.
    pub fn update(&mut self) -> Result<()> {
        self.scheduler.update_once(self.id)
    }

    /// Whether an update is suspended inside (the agent is not at rest).
    pub fn in_update(&self) -> bool {
        self.scheduler.in_update(self.id)
    }

    /// Takes what the agent sent (in setup and updates) since last asked.
    pub fn take_sent(&mut self) -> Vec<Envelope> {
        self.scheduler.take_outbox()
    }

    /// The alarms pending, for anyone.
    pub fn alarms(&self) -> Vec<AlarmInfo> {
        self.scheduler.alarms(None)
    }

    /// The agent's subscriptions.
    pub fn subscriptions(&self) -> Vec<Subscription> {
        self.scheduler.subscriptions(self.id)
    }

    /// How many messages the agent left in its inbox.
    pub fn inbox_len(&self) -> usize {
        self.scheduler.inbox_len(self.id).unwrap_or(0)
    }

    /// Moves the simulated clock forward to `time` and fires the alarms due
    /// by then: their mail lands in the agent's inbox (mail for others is
    /// kept with what it sent). An update suspended in `cx.sleep` resumes at
    /// the next [`update`](Self::update) once its time has come. Going back
    /// in time is an error.
    pub fn advance_to(&mut self, time: f64) -> Result<()> {
        self.scheduler.advance_to(time)
    }

    /// The clock.
    pub fn now(&self) -> f64 {
        self.scheduler.now()
    }

    /// The agent's struct ([`Error::AgentBusy`](crate::Error::AgentBusy)
    /// while an update is suspended).
    pub fn agent(&self) -> Result<Ref<'_, A>> {
        self.scheduler.agent::<A>(self.id)
    }

    /// The agent's struct, to change.
    pub fn agent_mut(&self) -> Result<RefMut<'_, A>> {
        self.scheduler.agent_mut::<A>(self.id)
    }

    /// The scheduler underneath, for anything else.
    pub fn scheduler(&mut self) -> &mut Scheduler {
        &mut self.scheduler
    }
}
