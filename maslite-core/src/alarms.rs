//! Alarms: mail to be delivered at a future time, and the wake-ups of
//! sleeping agents.
//!
//! One queue ordered by (time, [`Origin`] of the alarm's message), so
//! releasing the due alarms costs about a constant each (a calendar of time
//! buckets before a small heap) and alarms set for the same time fire in the
//! canonical order — the order they were set in, on one
//! kernel as on many partitions. Listing and clearing by receiver or topic
//! scan the queue (`O(n)`): they are rare next to setting and firing.

use crate::calendar::Calendar;
use crate::envelope::{Envelope, Origin};
use crate::error::{Error, Result};
use crate::id::AgentId;
use crate::quad_heap::{time_bits, time_of, Key};
use crate::topic::Topic;
use rustc_hash::FxHashSet;

/// A request to deliver `envelope` at a future time.
///
/// By default an alarm is *ignored when idle* (maslite's default): on the
/// real-time clock a `run` with `pause_if_idle` that has nothing else to do
/// returns without waiting for it. Use [`keep_alive`](Alarm::keep_alive) for
/// alarms the run must wait for. On the simulated clock the flag makes no
/// difference: an idle simulation jumps to its next alarm.
///
/// ```
/// use maslite_core::{Alarm, Envelope};
/// #[derive(Clone)]
/// struct Tick;
/// let alarm = Alarm::after(1.5, Envelope::new(Tick)).keep_alive();
/// assert!(!alarm.ignores_idle());
/// ```
#[derive(Debug)]
pub struct Alarm {
    pub(crate) when: When,
    pub(crate) envelope: Envelope,
    pub(crate) ignore_if_idle: bool,
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum When {
    After(f64),
    At(f64),
}

impl Alarm {
    /// Delivers `envelope` `delay` seconds from now.
    pub fn after(delay: f64, envelope: Envelope) -> Alarm {
        Alarm { when: When::After(delay), envelope, ignore_if_idle: true }
    }

    /// Delivers `envelope` at the absolute time `at` (which must not be past).
    pub fn at(at: f64, envelope: Envelope) -> Alarm {
        Alarm { when: When::At(at), envelope, ignore_if_idle: true }
    }

    /// The message the alarm delivers.
    pub fn envelope_mut(&mut self) -> &mut Envelope {
        &mut self.envelope
    }

    /// The alarm keeps an idle real-time run with `pause_if_idle` going
    /// until it has fired (maslite's `ignore_alarm_if_idle=False`). On the
    /// simulated clock every alarm fires anyway: time jumps to it.
    pub fn keep_alive(mut self) -> Alarm {
        self.ignore_if_idle = false;
        self
    }

    /// Sets maslite's `ignore_alarm_if_idle` flag (default `true`).
    pub fn ignore_if_idle(mut self, ignore: bool) -> Alarm {
        self.ignore_if_idle = ignore;
        self
    }

    /// Whether the alarm is ignored when the system is otherwise idle.
    pub fn ignores_idle(&self) -> bool {
        self.ignore_if_idle
    }

    /// The absolute time this alarm goes off if set when the clock reads
    /// `now`: [`Error::InvalidTime`] for a time that is not a number or a
    /// negative delay, [`Error::AlarmInPast`] for a time before `now`.
    pub fn due_time(&self, now: f64) -> Result<f64> {
        match self.when {
            When::After(delay) => {
                if !delay.is_finite() || delay < 0.0 {
                    return Err(Error::InvalidTime(delay));
                }
                Ok(now + delay)
            }
            When::At(at) => {
                if !at.is_finite() {
                    return Err(Error::InvalidTime(at));
                }
                if at < now {
                    return Err(Error::AlarmInPast { at, now });
                }
                Ok(at)
            }
        }
    }
}

/// What a pending alarm will deliver, as listed by `list_alarms`.
#[derive(Clone, Debug, PartialEq)]
pub struct AlarmInfo {
    /// When it goes off.
    pub at: f64,
    /// The sender of its message.
    pub sender: AgentId,
    /// The receiver of its message (`None`: a broadcast).
    pub receiver: Option<AgentId>,
    /// The topic of its message.
    pub topic: Topic,
    /// maslite's `ignore_alarm_if_idle`.
    pub ignore_if_idle: bool,
}

pub(crate) enum Fired {
    Mail(Envelope),
    /// Wake the agent in this slot (if the slot changed hands meanwhile, its
    /// new agent gets a harmless spurious poll).
    Wake(u32),
}

/// A pending alarm, in the queue's slab.
struct Item {
    /// Its number (a wake-up's ticket) times two, plus one if it keeps an
    /// idle real-time run alive; [`FREE`] once the slot is free. One word
    /// for all three, and no `Option` around `what`, keep the item 24
    /// bytes (an `Option<Fired>` alone is 24).
    number: u64,
    /// What it does (a stale wake-up once the slot is free).
    what: Fired,
}

/// The number of a free slot (no alarm gets it: numbers count up from 0).
const FREE: u64 = u64::MAX;

const _: () = assert!(std::mem::size_of::<Item>() <= 24, "an alarm's item stays 24 bytes");

impl Item {
    /// Whether an alarm waits in this slot.
    #[inline]
    fn pending(&self) -> bool {
        self.number != FREE
    }

    /// Takes the alarm out, freeing its slot: whether it kept an idle
    /// real-time run alive, and what it does. (Read together: once free,
    /// the number's flag bit means nothing.)
    #[inline]
    fn take(&mut self) -> (bool, Fired) {
        let required = self.required();
        self.number = FREE;
        (required, std::mem::replace(&mut self.what, Fired::Wake(u32::MAX)))
    }

    /// Its number (a wake-up's ticket).
    #[inline]
    fn seq(&self) -> u64 {
        self.number >> 1
    }

    /// Whether it keeps an idle real-time run alive.
    #[inline]
    fn required(&self) -> bool {
        self.number & 1 != 0
    }

    /// What breaks a tie at one time: the origin of the alarm's message
    /// (zero for wake-ups, whose order makes no difference: they only mark
    /// agents). Read through the message, not kept beside it: ties are rare
    /// with real-valued times, and the item stays 24 bytes.
    fn tie(&self) -> Origin {
        match &self.what {
            Fired::Mail(env) => env.origin(),
            _ => Origin::default(),
        }
    }
}

/// Whether the alarm in slot `a` comes before the one in slot `b`, of the
/// same time: by origin, then by number.
#[inline]
fn earlier(slab: &[Item], a: u32, b: u32) -> bool {
    let (a, b) = (&slab[a as usize], &slab[b as usize]);
    (a.tie(), a.seq()) < (b.tie(), b.seq())
}

/// The pending alarms of one scheduler: (time, slot) keys in a calendar
/// queue, the alarms themselves in a slab (see [`calendar`](crate::calendar)
/// and [`quad_heap`](crate::quad_heap)).
#[derive(Default)]
pub(crate) struct AlarmQueue {
    queue: Calendar,
    slab: Vec<Item>,
    /// Free slots of the slab.
    free: Vec<u32>,
    next_seq: u64,
    /// Pending alarms that keep an idle real-time run alive.
    required: usize,
    /// Wake-ups whose sleeper went away before they fired.
    cancelled: FxHashSet<u64>,
}

impl AlarmQueue {
    pub fn set_mail(&mut self, at: f64, envelope: Envelope, ignore_if_idle: bool) {
        self.push(at, !ignore_if_idle, Fired::Mail(envelope));
    }

    /// A wake-up for a sleeping agent; returns its ticket for cancelling.
    pub fn set_wake(&mut self, at: f64, slot: u32) -> u64 {
        self.push(at, true, Fired::Wake(slot))
    }

    pub fn cancel_wake(&mut self, ticket: u64) {
        self.cancelled.insert(ticket);
    }

    #[inline]
    fn push(&mut self, at: f64, required: bool, what: Fired) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.required += required as usize;
        let item = Item { number: seq << 1 | u64::from(required), what };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slab[slot as usize] = item;
                slot
            }
            None => {
                self.slab.push(item);
                (self.slab.len() - 1) as u32
            }
        };
        let slab = &self.slab;
        self.queue.push(Key { time: time_bits(at), slot }, |a, b| earlier(slab, a, b));
        seq
    }

    /// Pops the earliest alarm: its flag and what it does.
    #[inline(always)]
    fn pop(&mut self) -> Option<(bool, Fired)> {
        let slab = &self.slab;
        let key = self.queue.pop(|a, b| earlier(slab, a, b))?;
        let item = &mut self.slab[key.slot as usize];
        debug_assert!(item.pending(), "a popped key's alarm is pending");
        let (required, what) = item.take();
        self.free.push(key.slot);
        self.required -= required as usize;
        Some((required, what))
    }

    #[inline(always)]
    fn drop_cancelled_top(&mut self) {
        if !self.cancelled.is_empty() {
            self.drop_cancelled_tops();
        }
    }

    #[cold]
    #[inline(never)]
    fn drop_cancelled_tops(&mut self) {
        loop {
            let Some(top) = self.queue.peek() else { return };
            let seq = self.slab[top.slot as usize].seq();
            if self.cancelled.is_empty() || !self.cancelled.remove(&seq) {
                return;
            }
            self.pop();
        }
    }

    /// The time at the top of the queue (maybe a cancelled wake-up).
    pub fn peek_time(&self) -> Option<f64> {
        self.queue.peek().map(|k| time_of(k.time))
    }

    /// The earliest pending time.
    pub fn next_time(&mut self) -> Option<f64> {
        self.drop_cancelled_top();
        self.peek_time()
    }

    pub fn is_empty(&mut self) -> bool {
        self.next_time().is_none()
    }

    /// Whether some pending alarm keeps an idle real-time run alive.
    pub fn has_required(&self) -> bool {
        self.required > self.cancelled.len()
    }

    /// Pops every alarm due at `now`, in (time, origin) order; their mail is
    /// marked as fired (see [`Origin::FIRED`]).
    pub fn release_due(&mut self, now: f64, mut f: impl FnMut(Fired)) {
        let due = time_bits(now);
        loop {
            self.drop_cancelled_top();
            match self.queue.peek() {
                Some(top) if top.time <= due => {}
                _ => return self.prefetch_ahead(),
            }
            let (_, what) = self.pop().expect("peeked");
            f(match what {
                Fired::Mail(mut env) => {
                    env.mark_fired();
                    Fired::Mail(env)
                }
                wake => wake,
            });
        }
    }

    /// The message of the alarm at the top of the queue, if it carries one.
    #[inline]
    pub fn next_mail(&self) -> Option<&Envelope> {
        match self.slab.get(self.queue.peek()?.slot as usize) {
            Some(Item { what: Fired::Mail(env), .. }) => Some(env),
            _ => None,
        }
    }

    /// Asks for what the next alarms will need while the kernel works on
    /// this event (see [`prefetch`](crate::prefetch)): the message of the
    /// next, whose item was asked for one event ago, and the item of the
    /// one after.
    #[inline]
    fn prefetch_ahead(&self) {
        if let Some(env) = self.next_mail() {
            env.prefetch();
        }
        if let Some(after) = self.queue.peek_second() {
            if let Some(item) = self.slab.get(after.slot as usize) {
                crate::prefetch::prefetch(item);
            }
        }
    }

    /// The pending mail alarms, optionally only those for `receiver`, in the
    /// order they will fire.
    pub fn list(&self, receiver: Option<AgentId>) -> Vec<AlarmInfo> {
        self.mail_in_order()
            .into_iter()
            .filter(|(_, _, env)| receiver.is_none_or(|r| env.receiver() == Some(r)))
            .map(|(at, ignore_if_idle, env)| AlarmInfo {
                at,
                sender: env.sender(),
                receiver: env.receiver(),
                topic: env.topic_value(),
                ignore_if_idle,
            })
            .collect()
    }

    /// The pending mail alarms in firing order: (time, ignored when idle,
    /// the message). Wake-ups are left out (a sleeper cannot be saved).
    pub fn mail_in_order(&self) -> Vec<(f64, bool, &Envelope)> {
        // Sorted by value (time, origin, number), not through the slab: a
        // million pending alarms sort in a tenth of a second.
        let mut keys: Vec<(u64, Origin, u64, u32)> = self
            .queue
            .iter()
            .filter_map(|k| {
                let item = &self.slab[k.slot as usize];
                matches!(item.what, Fired::Mail(_)).then_some((
                    k.time,
                    item.tie(),
                    item.seq(),
                    k.slot,
                ))
            })
            .collect();
        keys.sort_unstable();
        keys.into_iter()
            .filter_map(|(time, _, _, slot)| {
                let item = &self.slab[slot as usize];
                let Fired::Mail(env) = &item.what else { return None };
                Some((time_of(time), !item.required(), env))
            })
            .collect()
    }

    /// Takes out the mail alarms for `receiver`, as (time, `ignore_if_idle`,
    /// message), to queue them in another kernel (an agent that moves).
    pub fn take_mail_for(&mut self, receiver: AgentId) -> Vec<(f64, bool, Envelope)> {
        let hit = |item: &Item| matches!(&item.what, Fired::Mail(env) if env.receiver() == Some(receiver));
        let gone: Vec<Key> =
            self.queue.iter().filter(|k| hit(&self.slab[k.slot as usize])).collect();
        if gone.is_empty() {
            return Vec::new();
        }
        let mut taken = Vec::with_capacity(gone.len());
        for key in &gone {
            let item = &mut self.slab[key.slot as usize];
            let (required, what) = item.take();
            self.required -= required as usize;
            if let Fired::Mail(env) = what {
                taken.push((time_of(key.time), !required, env));
            }
        }
        let slab = &self.slab;
        self.queue.retain(|k| slab[k.slot as usize].pending(), |a, b| earlier(slab, a, b));
        self.free.extend(gone.iter().map(|k| k.slot));
        taken
    }

    /// Removes the mail alarms for `receiver` (any if `None`) with `topic`
    /// (any if `None`); returns how many. Wake-ups of sleeping agents stay.
    pub fn clear(&mut self, receiver: Option<AgentId>, topic: Option<&str>) -> usize {
        let hit = |item: &Item| match &item.what {
            Fired::Mail(env) => {
                receiver.is_none_or(|r| env.receiver() == Some(r))
                    && topic.is_none_or(|t| env.topic() == t)
            }
            _ => false,
        };
        let gone: Vec<u32> = self
            .queue
            .iter()
            .filter(|k| hit(&self.slab[k.slot as usize]))
            .map(|k| k.slot)
            .collect();
        if gone.is_empty() {
            return 0;
        }
        for &slot in &gone {
            let item = &mut self.slab[slot as usize];
            let (required, _) = item.take();
            self.required -= required as usize;
        }
        let slab = &self.slab;
        self.queue.retain(|k| slab[k.slot as usize].pending(), |a, b| earlier(slab, a, b));
        self.free.extend_from_slice(&gone);
        gone.len()
    }
}

#[cfg(test)]
mod model_tests {
    use super::*;
    use crate::envelope::Envelope;
    use crate::id::AgentId;

    #[derive(Clone, Debug, PartialEq)]
    struct M(u32);

    /// A tiny deterministic generator.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    #[derive(Clone, Debug, PartialEq)]
    enum Ev {
        Mail(u32),
        Wake(u32),
    }

    /// A model entry: its time and number, and what it is.
    #[derive(Clone, Debug)]
    struct Entry {
        at: u64,
        seq: u64,
        mail: Option<(u32, Option<u64>, &'static str, bool)>, // id, receiver, topic, required
        wake: Option<(u32, u64, bool)>,                       // slot, ticket, cancelled
    }

    fn model_required(model: &[Entry]) -> usize {
        model
            .iter()
            .filter(|e| match (&e.mail, &e.wake) {
                (Some((_, _, _, r)), _) => *r,
                (_, Some((_, _, c))) => !*c,
                _ => false,
            })
            .count()
    }

    /// Random operations against a model: fired order, listings, the
    /// `required` count and `has_required` stay right through slot reuse,
    /// clear, take_mail_for and cancelled wake-ups.
    #[test]
    fn alarm_queue_matches_a_model() {
        for seed in 1..400u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let mut q = AlarmQueue::default();
            let mut model: Vec<Entry> = Vec::new();
            let mut now = 0u64;
            let mut next_id = 0u32;
            let mut seq = 0u64;
            let topics = ["a", "b", ""];
            for _step in 0..300 {
                match rng.below(10) {
                    0..=3 => {
                        let at = now + rng.below(20);
                        let receiver = match rng.below(4) {
                            0 => None,
                            r => Some(r - 1), // includes AgentId(0), the placeholder
                        };
                        let topic = topics[rng.below(3) as usize];
                        let required = rng.below(2) == 0;
                        let mut env = Envelope::new(M(next_id)).topic_is(topic);
                        if let Some(r) = receiver {
                            env = env.to(AgentId(r));
                        }
                        if rng.below(3) == 0 {
                            // Set and cleared: a placeholder receiver stays behind.
                            env.set_receiver(Some(AgentId(9))).unwrap();
                            env.set_receiver(receiver.map(AgentId)).unwrap();
                        }
                        q.set_mail(at as f64, env, !required);
                        model.push(Entry {
                            at,
                            seq,
                            mail: Some((next_id, receiver, topic, required)),
                            wake: None,
                        });
                        seq += 1;
                        next_id += 1;
                    }
                    4 => {
                        let at = now + 1 + rng.below(20);
                        let slot = rng.below(5) as u32;
                        let ticket = q.set_wake(at as f64, slot);
                        assert_eq!(ticket, seq, "tickets count up");
                        model.push(Entry {
                            at,
                            seq,
                            mail: None,
                            wake: Some((slot, ticket, false)),
                        });
                        seq += 1;
                    }
                    5 => {
                        // Cancel a pending, not yet cancelled wake-up.
                        let live: Vec<usize> = model
                            .iter()
                            .enumerate()
                            .filter(|(_, e)| matches!(e.wake, Some((_, _, false))))
                            .map(|(i, _)| i)
                            .collect();
                        if !live.is_empty() {
                            let i = live[rng.below(live.len() as u64) as usize];
                            let w = model[i].wake.as_mut().unwrap();
                            w.2 = true;
                            q.cancel_wake(w.1);
                        }
                    }
                    6 => {
                        let receiver = match rng.below(3) {
                            0 => None,
                            r => Some(AgentId(r - 1)),
                        };
                        let topic = match rng.below(3) {
                            0 => None,
                            t => Some(topics[t as usize]),
                        };
                        let n = q.clear(receiver, topic);
                        let before = model.len();
                        model.retain(|e| match &e.mail {
                            Some((_, r, t, _)) => {
                                !(receiver.is_none_or(|x| *r == Some(x.0))
                                    && topic.is_none_or(|x| *t == x))
                            }
                            None => true,
                        });
                        assert_eq!(n, before - model.len(), "seed {seed}: cleared count");
                    }
                    7 => {
                        let r = rng.below(3);
                        let taken = q.take_mail_for(AgentId(r));
                        let mut want: Vec<(u64, bool, u32)> = model
                            .iter()
                            .filter_map(|e| match &e.mail {
                                Some((id, Some(x), _, req)) if *x == r => Some((e.at, !*req, *id)),
                                _ => None,
                            })
                            .collect();
                        want.sort();
                        let mut got: Vec<(u64, bool, u32)> = taken
                            .iter()
                            .map(|(t, ig, env)| (*t as u64, *ig, env.payload::<M>().unwrap().0))
                            .collect();
                        got.sort();
                        assert_eq!(got, want, "seed {seed}: taken");
                        model.retain(|e| !matches!(&e.mail, Some((_, Some(x), _, _)) if *x == r));
                    }
                    _ => {
                        now += rng.below(6);
                        let mut fired = Vec::new();
                        q.release_due(now as f64, |f| {
                            fired.push(match f {
                                Fired::Mail(env) => {
                                    assert!(env.origin().fired());
                                    Ev::Mail(env.payload::<M>().unwrap().0)
                                }
                                Fired::Wake(slot) => Ev::Wake(slot),
                            })
                        });
                        let mut due: Vec<Entry> =
                            model.iter().filter(|e| e.at <= now).cloned().collect();
                        due.sort_by_key(|e| (e.at, e.seq));
                        model.retain(|e| e.at > now);
                        let want: Vec<Ev> = due
                            .iter()
                            .filter_map(|e| match (&e.mail, &e.wake) {
                                (Some((id, ..)), _) => Some(Ev::Mail(*id)),
                                (_, Some((slot, _, false))) => Some(Ev::Wake(*slot)),
                                _ => None,
                            })
                            .collect();
                        assert_eq!(fired, want, "seed {seed}: fired at {now}");
                    }
                }
                // Cancelled wake-ups still queued count in `required` and in
                // `cancelled`; has_required says whether any other is left.
                assert_eq!(
                    q.has_required(),
                    model_required(&model) > 0,
                    "seed {seed}: has_required"
                );
                let live_required = model_required(&model);
                assert_eq!(q.required - q.cancelled.len(), live_required, "seed {seed}: required");
                // Listing: mail in firing order, by receiver.
                let mut mails: Vec<&Entry> = model.iter().filter(|e| e.mail.is_some()).collect();
                mails.sort_by_key(|e| (e.at, e.seq));
                let listed = q.list(None);
                assert_eq!(listed.len(), mails.len(), "seed {seed}: listed");
                for (info, e) in listed.iter().zip(&mails) {
                    let (_, r, t, req) = e.mail.unwrap();
                    assert_eq!(info.at, e.at as f64);
                    assert_eq!(info.receiver, r.map(AgentId));
                    assert_eq!(info.topic.as_str(), t);
                    assert_eq!(info.ignore_if_idle, !req);
                }
                let ordered = q.mail_in_order();
                let ids: Vec<u32> =
                    ordered.iter().map(|(_, _, env)| env.payload::<M>().unwrap().0).collect();
                let want: Vec<u32> = mails.iter().map(|e| e.mail.unwrap().0).collect();
                assert_eq!(ids, want, "seed {seed}: mail_in_order");
                let next = model
                    .iter()
                    .filter(|e| !matches!(e.wake, Some((_, _, true))))
                    .map(|e| e.at)
                    .min();
                assert_eq!(q.next_time(), next.map(|t| t as f64), "seed {seed}: next_time");
            }
        }
    }

    /// A freed slot (number FREE: low bit set) reused by an ignored-when-idle
    /// alarm must not count as required.
    #[test]
    fn reused_slots_keep_the_required_count() {
        let mut q = AlarmQueue::default();
        q.set_mail(1.0, Envelope::new(M(0)).to(AgentId(1)), false); // required
        assert!(q.has_required());
        q.release_due(1.0, |_| {});
        assert!(!q.has_required());
        assert_eq!(q.required, 0);
        q.set_mail(2.0, Envelope::new(M(1)).to(AgentId(1)), true); // not required, reuses the slot
        assert!(!q.has_required());
        assert_eq!(q.clear(Some(AgentId(1)), None), 1);
        assert_eq!(q.required, 0);
        let t = q.set_wake(3.0, 0);
        q.cancel_wake(t);
        assert!(!q.has_required());
        assert_eq!(q.next_time(), None);
        assert_eq!(q.required, 0);
        assert!(q.cancelled.is_empty());
    }
}
