//! Driving the kernel one step at a time, for a multi-partition runtime.
//!
//! [`Scheduler::run_with`] owns the whole loop: rounds, delivery, the clock.
//! A runtime that runs one kernel per partition must interleave those with
//! the exchange of mail between partitions, so it drives the kernel through
//! the smaller operations here instead, after switching it to *partitioned
//! mode* ([`Scheduler::set_partitioned`]):
//!
//! - every send is stamped with its canonical [`Origin`](crate::Origin) and
//!   stays in the outbox; the runtime takes it ([`take_outbox_into`]),
//!   resolves recipients on all partitions ([`recipients_into`]) and hands
//!   each partition its share, which it puts in inboxes ([`deliver_to`]) in
//!   origin order;
//! - alarms at the same time fire in origin order, not setting order;
//! - agents added at run time get keys (and ids) derived from their creator,
//!   and every change to agents and subscriptions is journaled
//!   ([`take_changes_into`]) for the other partitions ([`apply_change`]).
//!
//! [`take_outbox_into`]: Scheduler::take_outbox_into
//! [`recipients_into`]: Scheduler::recipients_into
//! [`deliver_to`]: Scheduler::deliver_to
//! [`take_changes_into`]: Scheduler::take_changes_into
//! [`apply_change`]: Scheduler::apply_change

use super::{undeliverable, Scheduler};
use crate::alarms::Alarm;
use crate::change::Change;
use crate::envelope::Envelope;
use crate::error::{Error, Result};
use crate::id::AgentId;
use std::task::{Context, Poll};

impl Scheduler {
    /// Switches to partitioned mode (see the [module docs](self)). With
    /// `export_remote_alarms`, an alarm whose receiver is not on this
    /// partition is not queued here but handed to the runtime
    /// ([`take_exported_alarms_into`](Self::take_exported_alarms_into)),
    /// which queues it on the receiver's partition: lookahead windows need
    /// that, since the receiver's partition runs ahead on its own.
    pub fn set_partitioned(&mut self, export_remote_alarms: bool) {
        {
            let mut reg = self.shared.reg.borrow_mut();
            reg.partitioned = true;
            reg.hold_mail = true;
        }
        self.shared.alarms_mut(|a| a.canonical = true);
        self.shared.export_alarms.set(export_remote_alarms);
    }

    /// Whether the scheduler is in partitioned mode.
    pub fn is_partitioned(&self) -> bool {
        self.shared.reg.borrow().partitioned
    }

    /// Runs one round: agents with mail, wake-ups or kept awake are
    /// updated. An agent that panics gives [`Error::AgentPanicked`].
    pub fn step_round(&mut self) -> Result<()> {
        self.round();
        self.stats.rounds += 1;
        self.take_failure()
    }

    /// Whether a round now has something to do: an agent has mail or a
    /// wake-up, or was woken from outside the kernel. (Kept-awake agents are
    /// updated in every round but do not call for one; see
    /// [`kept_awake`](Self::kept_awake).)
    pub fn has_round_work(&self) -> bool {
        !self.shared.reg.borrow().marked.is_empty() || self.site.queue.has_any()
    }

    /// How many agents are kept awake.
    pub fn kept_awake(&self) -> usize {
        self.shared.awake.get()
    }

    /// Whether a pending alarm (or a sleeping agent's wake-up) keeps an idle
    /// real-time run alive (see [`Alarm::keep_alive`]).
    pub fn has_required_alarms(&self) -> bool {
        self.shared.alarms.borrow().has_required()
    }

    /// How many agents are pending on something other than the kernel
    /// (tokio I/O, a channel): simulated time must wait for them.
    pub fn busy_agents(&self) -> usize {
        self.busy
    }

    /// Ready when some agent was woken from outside the kernel (its future
    /// can go on); otherwise registers `cx`'s waker to be woken then.
    pub fn poll_woken(&self, cx: &mut Context<'_>) -> Poll<()> {
        let queue = &self.site.queue;
        if queue.has_any() {
            return Poll::Ready(());
        }
        queue.set_notify(Some(cx.waker().clone()));
        // A wake-up between the check and the registration is not lost.
        if queue.has_any() {
            queue.set_notify(None);
            return Poll::Ready(());
        }
        Poll::Pending
    }

    /// Moves the simulated clock to `t` (not before now).
    pub fn set_time(&mut self, t: f64) -> Result<()> {
        let now = self.shared.now.get();
        if !t.is_finite() {
            return Err(Error::InvalidTime(t));
        }
        if t < now {
            return Err(Error::AlarmInPast { at: t, now });
        }
        self.clock.jump_to(t);
        self.shared.now.set(self.clock.read());
        Ok(())
    }

    /// Reads the real-time clock into `now` (a no-op on the simulated one).
    pub fn tick(&mut self) {
        self.tick_real();
    }

    /// Releases the alarms due now: their mail goes to the outbox, sleeping
    /// agents are marked for the next round. Returns how many fired.
    pub fn fire_due_alarms(&mut self) -> u64 {
        let before = self.stats.alarms_fired;
        let now = self.shared.now.get();
        self.release_alarms(now);
        self.stats.alarms_fired - before
    }

    /// The time of the earliest pending alarm or wake-up.
    pub fn next_alarm_time(&mut self) -> Option<f64> {
        self.shared.alarms.borrow_mut().next_time()
    }

    /// Moves the mail sent since the last call into `out` (appended), in
    /// send order; counted as messages sent.
    pub fn take_outbox_into(&mut self, out: &mut Vec<Envelope>) {
        let mut outbox = self.shared.outbox.borrow_mut();
        self.stats.messages += outbox.len() as u64;
        out.append(&mut outbox);
        self.shared.reg.borrow_mut().outbox_used = false;
    }

    /// Moves the journaled changes to agents and subscriptions into `out`.
    pub fn take_changes_into(&mut self, out: &mut Vec<Change>) {
        out.append(&mut self.shared.journal.borrow_mut());
    }

    /// Moves the alarms set for agents not on this partition into `out`,
    /// as (time, message).
    pub fn take_exported_alarms_into(&mut self, out: &mut Vec<(f64, Envelope)>) {
        out.append(&mut self.shared.exported.borrow_mut());
    }

    /// Queues an alarm exported by another partition (keeping its origin).
    pub fn import_alarm(&mut self, at: f64, envelope: Envelope) {
        self.shared.alarms_mut(|a| a.set_mail(at, envelope, true));
    }

    /// Sets an alarm from outside, stamped as a send from outside.
    pub fn set_alarm_stamped(&mut self, mut alarm: Alarm) -> Result<()> {
        if self.is_partitioned() && alarm.envelope.origin().seq == 0 {
            self.shared.reg.borrow_mut().stamp(None, &mut alarm.envelope);
        }
        self.set_alarm(alarm)
    }

    /// Applies another partition's change to this partition's mailing list.
    /// (`Added` and `Removed` change the runtime's directory; here a removed
    /// agent's subscriptions go.)
    pub fn apply_change(&mut self, change: &Change) -> Result<()> {
        let changed = {
            let mut mailing = self.shared.mailing.borrow_mut();
            match change {
                Change::Added(_) => false,
                Change::Removed(id) => mailing.unsubscribe_all(*id) > 0,
                Change::Subscribed(id, pattern) => {
                    mailing.subscribe(*id, pattern.clone())?;
                    true
                }
                Change::Unsubscribed(id, pattern) => {
                    mailing.unsubscribe(*id, pattern)?;
                    true
                }
            }
        };
        if changed {
            let subscribed = !self.shared.mailing.borrow().is_empty();
            self.shared.reg.borrow_mut().subscribed = subscribed;
        }
        Ok(())
    }

    /// Whether anybody on any partition subscribes to anything (as far as
    /// this partition's copy of the mailing list knows).
    pub fn has_subscriptions(&self) -> bool {
        !self.shared.mailing.borrow().is_empty()
    }

    /// The recipients of `env` under the mailing list now, appended to `out`:
    /// its receiver first (if any), then its subscribers, each once.
    pub fn recipients_into(&self, env: &Envelope, out: &mut Vec<AgentId>) {
        let start = out.len();
        if let Some(r) = env.receiver() {
            out.push(r);
        }
        let mailing = self.shared.mailing.borrow();
        if env.is_direct() || mailing.is_empty() {
            return;
        }
        mailing.for_each_subscriber(
            env.sender(),
            env.receiver(),
            || env.topic(),
            |id| {
                if !out[start..].contains(&id) {
                    out.push(id)
                }
            },
        );
    }

    /// Puts `env` into the inbox of agent `id` on this partition (seen in
    /// the next round); gives it back if no such agent takes mail.
    pub fn deliver_to(&mut self, id: AgentId, env: Envelope) -> std::result::Result<(), Envelope> {
        let mut reg = self.shared.reg.borrow_mut();
        let Some(&index) = reg.ids.get(&id) else { return Err(env) };
        reg.push(index, env)?;
        self.stats.deliveries += 1;
        Ok(())
    }

    /// Counts `env` as a dead letter (no recipient took it) and logs it.
    pub fn dead_letter(&mut self, env: &Envelope) {
        undeliverable(&mut self.stats, env);
    }

    /// Whether an agent asked to pause (stop) the run since the last call.
    pub fn take_pause(&self) -> bool {
        self.shared.paused.replace(false)
    }

    /// The number of messages waiting in inboxes (read or not yet seen).
    pub fn mail_in_inboxes(&self) -> u64 {
        self.shared.reg.borrow().agents.iter().map(|r| r.inbox.len() as u64).sum()
    }
}
