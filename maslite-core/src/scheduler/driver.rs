//! The driver: a kernel run as one partition of a runtime.
//!
//! [`Scheduler::run_with`] owns the whole loop: rounds, delivery, the clock.
//! A runtime that runs one kernel per partition must interleave those with
//! the exchange of mail between partitions, so it owns each kernel through
//! a [`Driver`] and drives it with the smaller operations here: a round, a
//! time advance, the due alarms; the outbox taken
//! ([`take_outbox_into`](Driver::take_outbox_into)), resolved on every
//! partition ([`recipients_into`](Driver::recipients_into)) and handed back
//! to inboxes in origin order ([`deliver_to`](Driver::deliver_to)); the
//! journal of changes to agents and subscriptions
//! ([`take_changes_into`](Driver::take_changes_into)) applied elsewhere
//! ([`apply_change`](Driver::apply_change)); agents created at run time
//! given their places ([`set_key`](Driver::set_key)).
//!
//! The driver's kernel orders everything as a lone one does (see
//! [`Origin`](crate::Origin)); it differs only in where mail goes: it stays
//! in the outbox, stamped, for the runtime. A `Driver` dereferences to its
//! [`Scheduler`] for everything a user calls (adding agents, reading them).

use super::{undeliverable, Scheduler};
use crate::agent::{Agent, Installer};
use crate::alarms::Alarm;
use crate::change::Change;
use crate::context::Cx;
use crate::envelope::Envelope;
use crate::error::{Error, Result};
use crate::id::AgentId;
use crate::registry::Mode;
use crate::start::Start;
use std::future::Future;
use std::task::{Context, Poll};

/// Where a partition's kernel puts the alarms its agents set for agents on
/// other partitions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemoteAlarms {
    /// In its own queue: they fire here and their mail is routed like any
    /// other (lockstep, where every partition takes every step).
    Kept,
    /// Handed to the runtime ([`Driver::take_exported_alarms_into`]), which
    /// queues them on the receiver's partition: lookahead windows need that,
    /// since the receiver's partition runs ahead on its own.
    HandedOut,
}

/// A kernel run as one partition of a runtime: see the [module](self).
pub struct Driver {
    kernel: Scheduler,
}

impl std::ops::Deref for Driver {
    type Target = Scheduler;
    fn deref(&self) -> &Scheduler {
        &self.kernel
    }
}

impl std::ops::DerefMut for Driver {
    fn deref_mut(&mut self) -> &mut Scheduler {
        &mut self.kernel
    }
}

impl Driver {
    /// Takes `kernel` (new, with no agents yet) to run as a partition.
    pub fn new(kernel: Scheduler, remote_alarms: RemoteAlarms) -> Driver {
        let export_alarms = remote_alarms == RemoteAlarms::HandedOut;
        kernel.shared.reg.borrow_mut().mode = Mode::Partition { export_alarms };
        Driver { kernel }
    }

    /// Adds `agent` with id `id` and ordering key `key` (see
    /// [`Origin`](crate::Origin)): for a runtime that numbers the agents of
    /// all its partitions in one sequence. The runtime places such agents
    /// itself: their addition is not journaled as a [`Change::Added`].
    pub fn add_placed<A: Agent>(&mut self, id: AgentId, key: u64, agent: A) -> Result<AgentId> {
        self.kernel.add_keyed(id, key, Installer::agent(agent))
    }

    /// Starts an async-fn agent with id `id` and ordering key `key` (see
    /// [`add_placed`](Self::add_placed)).
    pub fn spawn_placed<F, Fut>(&mut self, id: AgentId, key: u64, body: F) -> Result<AgentId>
    where
        F: FnOnce(Cx) -> Fut + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        self.kernel.add_keyed(id, key, Installer::process(body))
    }

    /// Tells the kernel which partition it is: children that agents place
    /// on other partitions ([`Cx::spawn_on`](crate::Cx::spawn_on)) go out as
    /// [`Start`]s ([`take_starts_into`](Self::take_starts_into)); those
    /// placed here start here.
    pub fn set_partition(&mut self, me: usize) {
        self.kernel.shared.here.set(Some(me));
    }

    /// Moves the children made here for other partitions into `out` (each
    /// announced in the journal as [`Change::Spawned`]).
    pub fn take_starts_into(&mut self, out: &mut Vec<Start>) {
        out.append(&mut self.kernel.shared.starts.borrow_mut());
    }

    /// Installs a child made on another partition for this one: it starts
    /// in the next round, placed (until [`set_key`](Self::set_key)) after
    /// every placed agent. Not announced: its `Spawned` change was.
    pub fn start(&mut self, start: Start) -> Result<()> {
        let Start { id, made, make, .. } = start;
        self.kernel.shared.announce_adds.set(false);
        let claimed = self.kernel.shared.reserve_id(Some(id), made);
        self.kernel.shared.announce_adds.set(true);
        claimed?;
        self.kernel.start_installer(id, make());
        Ok(())
    }

    /// A run starts (rounds count from zero; see [`Origin`](crate::Origin)).
    pub fn begin_run(&mut self) {
        self.kernel.shared.reg.borrow_mut().begin_run();
    }

    /// A run ended: what is stamped until the next one comes after it.
    pub fn end_run(&mut self) {
        self.kernel.shared.reg.borrow_mut().end_run();
    }

    /// Numbers the next round `n` (see [`Cx::round`]): in lockstep the
    /// runtime counts the rounds that updated an agent on any partition.
    pub fn set_round(&mut self, n: u64) {
        self.kernel.shared.numbered_outside.set(true);
        self.kernel.shared.round_no.set(n);
    }

    /// Whether the last round updated (polled) some agent here.
    pub fn round_polled(&self) -> bool {
        self.kernel.polled
    }

    /// Runs one round: agents with mail, wake-ups or kept awake are
    /// updated. An agent that panics gives [`Error::AgentPanicked`].
    pub fn step_round(&mut self) -> Result<()> {
        self.kernel.round();
        self.kernel.stats.rounds += 1;
        self.kernel.take_failure()
    }

    /// Whether a round now has something to do: an agent has mail or a
    /// wake-up, or was woken from outside the kernel. (Kept-awake agents are
    /// updated in every round but do not call for one; see
    /// [`kept_awake`](Self::kept_awake).)
    pub fn has_round_work(&self) -> bool {
        !self.kernel.shared.reg.borrow().marked.is_empty() || self.kernel.site.queue.has_any()
    }

    /// How many agents are kept awake.
    pub fn kept_awake(&self) -> usize {
        self.kernel.shared.awake.get()
    }

    /// Whether a pending alarm (or a sleeping agent's wake-up) keeps an idle
    /// real-time run alive (see [`Alarm::keep_alive`]).
    pub fn has_required_alarms(&self) -> bool {
        self.kernel.shared.alarms.borrow().has_required()
    }

    /// How many agents are pending on something other than the kernel
    /// (tokio I/O, a channel): simulated time must wait for them.
    pub fn busy_agents(&self) -> usize {
        self.kernel.busy
    }

    /// Ready when some agent was woken from outside the kernel (its future
    /// can go on); otherwise registers `cx`'s waker to be woken then.
    pub fn poll_woken(&self, cx: &mut Context<'_>) -> Poll<()> {
        let queue = &self.kernel.site.queue;
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
    #[inline]
    pub fn set_time(&mut self, t: f64) -> Result<()> {
        let now = self.kernel.shared.now.get();
        if !t.is_finite() {
            return Err(Error::InvalidTime(t));
        }
        if t < now {
            return Err(Error::AlarmInPast { at: t, now });
        }
        self.kernel.jump_to(t);
        Ok(())
    }

    /// Gives the agent `id` (on this partition) the ordering key `key`: its
    /// place in the order of insertion, which the runtime decides at the
    /// end of the step in which it was created (see [`Change::Added`]).
    pub fn set_key(&mut self, id: AgentId, key: u64) -> Result<()> {
        let mut reg = self.kernel.shared.reg.borrow_mut();
        let Some(&index) = reg.ids.get(&id) else { return Err(Error::UnknownAgent(id)) };
        match reg.agents.get_mut(index as usize) {
            Some(rec) if rec.id == id => {
                rec.order = key;
                Ok(())
            }
            _ => Err(Error::UnknownAgent(id)),
        }
    }

    /// Reads the real-time clock into `now` (a no-op on the simulated one).
    pub fn tick(&mut self) {
        self.kernel.tick_real();
    }

    /// Releases the alarms due now: their mail goes to the outbox, sleeping
    /// agents are marked for the next round. Returns how many fired.
    pub fn fire_due_alarms(&mut self) -> u64 {
        let before = self.kernel.stats.alarms_fired;
        let now = self.kernel.shared.now.get();
        self.kernel.release_alarms(now);
        self.kernel.stats.alarms_fired - before
    }

    /// Releases the alarms due now, as [`fire_due_alarms`](Self::fire_due_alarms),
    /// but while nobody subscribes to anything the mail of a fired alarm
    /// for an agent of this kernel goes straight into its inbox (the rest
    /// to the outbox). Returns how many messages went straight in: each
    /// sent and delivered. Only for a caller whose outbox is routed before
    /// (the mail of fired alarms comes after a step's sends) and whose own
    /// agents' alarms all fire here (lookahead windows).
    pub fn fire_due_alarms_here(&mut self) -> u64 {
        let now = self.kernel.shared.now.get();
        self.kernel.release_alarms_to(now, super::Fire::IntoInboxes)
    }

    /// The time of the earliest pending alarm or wake-up.
    pub fn next_alarm_time(&mut self) -> Option<f64> {
        self.kernel.shared.alarms.borrow_mut().next_time()
    }

    /// Whether mail was sent, or alarms set for agents elsewhere, since
    /// [`take_outbox_into`](Self::take_outbox_into) and
    /// [`take_exported_alarms_into`](Self::take_exported_alarms_into) last
    /// took them.
    #[inline]
    pub fn has_mail_out(&self) -> bool {
        let shared = &self.kernel.shared;
        !shared.outbox.borrow().is_empty() || !shared.exported.borrow().is_empty()
    }

    /// Moves the mail sent since the last call into `out` (appended), in
    /// send order; counted as messages sent.
    pub fn take_outbox_into(&mut self, out: &mut Vec<Envelope>) {
        let mut outbox = self.kernel.shared.outbox.borrow_mut();
        self.kernel.stats.messages += outbox.len() as u64;
        out.append(&mut outbox);
        self.kernel.shared.reg.borrow_mut().outbox_used = false;
    }

    /// Moves the journaled changes to agents and subscriptions into `out`.
    pub fn take_changes_into(&mut self, out: &mut Vec<Change>) {
        out.append(&mut self.kernel.shared.journal.borrow_mut());
    }

    /// Moves the alarms set for agents not on this partition into `out`,
    /// as (time, message).
    pub fn take_exported_alarms_into(&mut self, out: &mut Vec<(f64, Envelope)>) {
        out.append(&mut self.kernel.shared.exported.borrow_mut());
    }

    /// Queues an alarm exported by another partition (keeping its origin).
    pub fn import_alarm(&mut self, at: f64, envelope: Envelope) {
        self.kernel.shared.alarms_mut(|a| a.set_mail(at, envelope, true));
    }

    /// Sets an alarm from outside, stamped as a send from outside.
    pub fn set_alarm_stamped(&mut self, mut alarm: Alarm) -> Result<()> {
        self.kernel.tick_real();
        let now = self.kernel.shared.now.get();
        let mut origin = alarm.envelope.origin();
        if origin.seq == 0 {
            self.kernel.shared.reg.borrow_mut().stamp(None, now, &mut alarm.envelope);
        } else {
            // Stamped by the runtime's handle (its count of calls): set now.
            origin.when = crate::Origin::when_of(now);
            origin.round = self.kernel.shared.reg.borrow().round_stamp();
            alarm.envelope.set_origin(origin);
        }
        self.kernel.shared.set_alarm(alarm)
    }

    /// Applies another partition's change to this partition's mailing list
    /// and alarms. (`Added` and `Removed` change the runtime's directory;
    /// here a removed agent's subscriptions go. `RemoveRequested` is for the
    /// runtime: the partition that has the agent calls
    /// [`remove`](Scheduler::remove).)
    pub fn apply_change(&mut self, change: &Change) -> Result<()> {
        let changed = {
            let mut mailing = self.kernel.shared.mailing.borrow_mut();
            match change {
                Change::Added(..) | Change::Spawned(..) | Change::RemoveRequested(_) => false,
                Change::Removed(id, _) | Change::UnsubscribedAll(id) => {
                    mailing.unsubscribe_all(*id) > 0
                }
                Change::AlarmsCleared { receiver, topic } => {
                    self.kernel.shared.alarms_mut(|a| a.clear(*receiver, topic.as_deref()));
                    false
                }
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
            let subscribed = !self.kernel.shared.mailing.borrow().is_empty();
            self.kernel.shared.reg.borrow_mut().subscribed = subscribed;
        }
        Ok(())
    }

    /// This partition's share of a snapshot (see
    /// [`Image::merge`](crate::Image::merge)): its agents, the alarms it
    /// holds, its undelivered mail.
    pub fn image_part(&mut self, types: &crate::Types) -> Result<crate::Image> {
        self.kernel.image_part(types)
    }

    /// Loads into this (empty) partition the agents of `image` placed
    /// here, the alarms and undelivered mail whose receiver is here (by
    /// `mail_here`), and everyone's subscriptions (every partition keeps
    /// the whole mailing list).
    pub fn load_image(
        &mut self,
        types: &crate::Types,
        image: &crate::Image,
        here: &dyn Fn(AgentId) -> bool,
        mail_here: &dyn Fn(Option<AgentId>) -> bool,
    ) -> Result<()> {
        self.kernel.load_image(types, image, here, mail_here)?;
        self.kernel.load_subscriptions(image)
    }

    /// Whether anybody on any partition subscribes to anything (as far as
    /// this partition's copy of the mailing list knows).
    pub fn has_subscriptions(&self) -> bool {
        !self.kernel.shared.mailing.borrow().is_empty()
    }

    /// The recipients of `env` under the mailing list now, appended to `out`:
    /// its receiver first (if any), then its subscribers, each once.
    pub fn recipients_into(&self, env: &Envelope, out: &mut Vec<AgentId>) {
        let start = out.len();
        if let Some(r) = env.receiver() {
            out.push(r);
        }
        let mailing = self.kernel.shared.mailing.borrow();
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
        let mut reg = self.kernel.shared.reg.borrow_mut();
        let Some(&index) = reg.ids.get(&id) else { return Err(env) };
        reg.push(index, env)?;
        self.kernel.stats.deliveries += 1;
        Ok(())
    }

    /// Counts `env` as a dead letter (no recipient took it) and logs it.
    pub fn dead_letter(&mut self, env: &Envelope) {
        undeliverable(&mut self.kernel.stats, env);
    }

    /// Whether an agent asked to pause (stop) the run since the last call.
    pub fn take_pause(&self) -> bool {
        self.kernel.shared.paused.replace(false)
    }

    /// The number of messages waiting in inboxes (read or not yet seen).
    pub fn mail_in_inboxes(&self) -> u64 {
        self.kernel.shared.reg.borrow().agents.iter().map(|r| r.inbox.len() as u64).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::{Driver, RemoteAlarms};
    use crate::{Agent, AgentId, Alarm, Change, Cx, Envelope, Scheduler, Subscription};

    #[derive(Clone, Debug, PartialEq)]
    struct Note(u32);

    fn partitioned() -> Driver {
        Driver::new(Scheduler::simulated(), RemoteAlarms::Kept)
    }

    /// Sends `Note(n)` to `to` for each n it is told, on each update.
    struct Talker {
        to: AgentId,
        notes: Vec<u32>,
    }

    impl Agent for Talker {
        async fn update(&mut self, cx: &Cx) {
            while cx.try_recv().is_some() {
                for &n in &self.notes {
                    cx.send(Envelope::new(Note(n)).to(self.to));
                }
            }
        }
    }

    #[test]
    fn sends_are_stamped_with_the_key_and_a_count_and_stay_in_the_outbox() {
        let mut s = partitioned();
        let t = s.add_placed(AgentId(1), 42, Talker { to: AgentId(9), notes: vec![1, 2] }).unwrap();
        s.send(Envelope::new(Note(0)).to(t));
        let mut out = Vec::new();
        s.take_outbox_into(&mut out);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].origin().key, out[0].origin().seq), (0, 1), "outside: key 0");
        s.deliver_to(t, out.pop().unwrap()).unwrap();
        s.begin_run();
        s.step_round().unwrap();
        s.take_outbox_into(&mut out);
        let origins: Vec<_> =
            out.iter().map(|e| (e.origin().round, e.origin().key, e.origin().seq)).collect();
        // Run 1, its first round at this time.
        let first = (1 << 32) | 1;
        assert_eq!(origins, [(first, 42, 1), (first, 42, 2)]);
        // Nothing was delivered by the kernel itself.
        assert!(!s.has_round_work());
    }

    #[test]
    fn alarms_at_one_time_fire_in_origin_order() {
        let mut s = partitioned();
        let r = s.add_placed(AgentId(5), 1, Talker { to: AgentId(5), notes: vec![] }).unwrap();
        let stamped = |key, seq, n| {
            let mut e = Envelope::new(Note(n)).to(r);
            e.set_origin(crate::Origin { key, seq, ..Default::default() });
            e
        };
        s.import_alarm(2.0, stamped(9, 1, 1));
        s.import_alarm(2.0, stamped(3, 7, 2));
        s.import_alarm(1.0, stamped(99, 1, 3));
        s.import_alarm(2.0, stamped(3, 2, 4));
        s.set_time(2.0).unwrap();
        assert_eq!(s.fire_due_alarms(), 4);
        let mut out = Vec::new();
        s.take_outbox_into(&mut out);
        let notes: Vec<u32> = out.iter().map(|e| e.payload::<Note>().unwrap().0).collect();
        assert_eq!(notes, [3, 4, 2, 1]);
    }

    /// Adds one child (a `Talker`) per update.
    struct Parent {
        children: Vec<AgentId>,
    }

    impl Agent for Parent {
        async fn update(&mut self, cx: &Cx) {
            while cx.try_recv().is_some() {
                let id = cx.add(Talker { to: cx.id(), notes: vec![] }).unwrap();
                self.children.push(id);
            }
        }
    }

    #[test]
    fn agents_added_at_run_time_get_ids_derived_from_their_creator() {
        let ids = |filler: u64| {
            let mut s = partitioned();
            // Other agents (and ids taken) must not change the derived ids.
            for i in 0..filler {
                s.add_placed(AgentId(1000 + i), 1000 + i, Parent { children: vec![] }).unwrap();
            }
            let p = s.add_placed(AgentId(1), 7, Parent { children: vec![] }).unwrap();
            for _ in 0..2 {
                s.deliver_to(p, Envelope::new(Note(0)).to(p)).unwrap();
                s.step_round().unwrap();
            }
            let children = s.agent::<Parent>(p).unwrap().children.clone();
            assert!(children.iter().all(|c| c.0 & crate::change::DERIVED != 0 && s.contains(*c)));
            children
        };
        let a = ids(0);
        assert_eq!(a.len(), 2);
        assert_ne!(a[0], a[1]);
        assert_eq!(a, ids(5));
    }

    #[test]
    fn changes_are_journaled_and_applied_elsewhere() {
        let mut here = partitioned();
        let mut there = partitioned();
        // Agents the runtime adds itself (keyed) are placed by it, not
        // announced; others are.
        here.add_placed(AgentId(9), 9, Parent { children: vec![] }).unwrap();
        let a = here.add_with_id(AgentId(1), Parent { children: vec![] }).unwrap();
        here.subscribe(a, Subscription::new().topic("news")).unwrap();
        here.remove(a).unwrap();
        let mut changes = Vec::new();
        here.take_changes_into(&mut changes);
        // The departure's stamp: on its own account (a removal from outside).
        let Some(&Change::Removed(_, left)) = changes.get(3) else { panic!("{changes:?}") };
        assert_eq!(left.seq, 1, "its first addition or departure");
        assert_eq!(
            changes,
            [
                // From outside (key 0), the second addition, before any run.
                Change::Added(
                    a,
                    crate::Origin {
                        key: 0,
                        seq: 2,
                        round: crate::registry::BETWEEN_RUNS,
                        ..Default::default()
                    }
                ),
                Change::Subscribed(a, Subscription::new().topic("news")),
                Change::UnsubscribedAll(a),
                Change::Removed(a, left),
            ]
        );
        // Applied on another partition, the subscription routes mail to
        // the agent there (until its removal).
        there.apply_change(&changes[1]).unwrap();
        let mut to = Vec::new();
        there.recipients_into(&Envelope::new(Note(1)).topic_is("news"), &mut to);
        assert_eq!(to, [a]);
        there.apply_change(&changes[3]).unwrap();
        to.clear();
        there.recipients_into(&Envelope::new(Note(1)).topic_is("news"), &mut to);
        assert!(to.is_empty());
        assert!(!there.has_subscriptions());
    }

    #[test]
    fn alarms_for_agents_elsewhere_are_exported_when_asked() {
        let mut s = Driver::new(Scheduler::simulated(), RemoteAlarms::HandedOut);
        let local = s.add_placed(AgentId(1), 1, Parent { children: vec![] }).unwrap();
        s.set_alarm_stamped(Alarm::after(1.0, Envelope::new(Note(1)).to(AgentId(77)))).unwrap();
        s.set_alarm_stamped(Alarm::after(1.0, Envelope::new(Note(2)).to(local))).unwrap();
        let mut out = Vec::new();
        s.take_exported_alarms_into(&mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, 1.0);
        assert_eq!(out[0].1.receiver(), Some(AgentId(77)));
        assert_eq!(s.next_alarm_time(), Some(1.0));
    }
}
