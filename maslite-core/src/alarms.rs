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

    /// Takes what the alarm does out, freeing its slot.
    #[inline]
    fn take(&mut self) -> Fired {
        self.number = FREE;
        std::mem::replace(&mut self.what, Fired::Wake(u32::MAX))
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
    /// with real-valued times, and the item stays 32 bytes.
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
        let required = item.required();
        let what = item.take();
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
                _ => return,
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
            let required = item.required();
            self.required -= required as usize;
            if let Fired::Mail(env) = item.take() {
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
            self.required -= item.required() as usize;
            item.take();
        }
        let slab = &self.slab;
        self.queue.retain(|k| slab[k.slot as usize].pending(), |a, b| earlier(slab, a, b));
        self.free.extend_from_slice(&gone);
        gone.len()
    }
}
