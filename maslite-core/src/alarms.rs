//! Alarms: mail to be delivered at a future time, and the wake-ups of
//! sleeping agents.
//!
//! One binary heap ordered by (time, [`Origin`] of the alarm's message), so
//! releasing the due alarms is `O(log n)` each and alarms set for the same
//! time fire in the canonical order — the order they were set in, on one
//! kernel as on many partitions. Listing and clearing by receiver or topic
//! scan the heap (`O(n)`): they are rare next to setting and firing.

use crate::envelope::{Envelope, Origin};
use crate::error::{Error, Result};
use crate::id::AgentId;
use crate::topic::Topic;
use rustc_hash::FxHashSet;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

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

struct Entry {
    at: f64,
    /// Ties at one time: the origin of the alarm's message (zero for
    /// wake-ups, whose order makes no difference: they only mark agents).
    tie: Origin,
    seq: u64,
    required: bool,
    what: Fired,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    // Reversed: the heap's top is the earliest (time, seq).
    fn cmp(&self, other: &Self) -> Ordering {
        other.at.total_cmp(&self.at).then(other.tie.cmp(&self.tie)).then(other.seq.cmp(&self.seq))
    }
}

/// The pending alarms of one scheduler.
#[derive(Default)]
pub(crate) struct AlarmQueue {
    heap: BinaryHeap<Entry>,
    next_seq: u64,
    /// Pending alarms that keep an idle real-time run alive.
    required: usize,
    /// Wake-ups whose sleeper went away before they fired.
    cancelled: FxHashSet<u64>,
}

impl AlarmQueue {
    pub fn set_mail(&mut self, at: f64, envelope: Envelope, ignore_if_idle: bool) {
        self.push(at, envelope.origin(), !ignore_if_idle, Fired::Mail(envelope));
    }

    /// A wake-up for a sleeping agent; returns its ticket for cancelling.
    pub fn set_wake(&mut self, at: f64, slot: u32) -> u64 {
        self.push(at, Origin::default(), true, Fired::Wake(slot))
    }

    pub fn cancel_wake(&mut self, ticket: u64) {
        self.cancelled.insert(ticket);
    }

    fn push(&mut self, at: f64, tie: Origin, required: bool, what: Fired) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.required += required as usize;
        self.heap.push(Entry { at, tie, seq, required, what });
        seq
    }

    fn drop_cancelled_top(&mut self) {
        while let Some(top) = self.heap.peek() {
            if self.cancelled.is_empty() || !self.cancelled.remove(&top.seq) {
                return;
            }
            let e = self.heap.pop().expect("peeked");
            self.required -= e.required as usize;
        }
    }

    /// The time at the top of the heap (maybe a cancelled wake-up).
    pub fn peek_time(&self) -> Option<f64> {
        self.heap.peek().map(|e| e.at)
    }

    /// The earliest pending time.
    pub fn next_time(&mut self) -> Option<f64> {
        self.drop_cancelled_top();
        self.heap.peek().map(|e| e.at)
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
        loop {
            self.drop_cancelled_top();
            match self.heap.peek() {
                Some(top) if top.at <= now => {}
                _ => return,
            }
            let e = self.heap.pop().expect("peeked");
            self.required -= e.required as usize;
            f(match e.what {
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
        let mut entries: Vec<&Entry> = self
            .heap
            .iter()
            .filter(|e| match &e.what {
                Fired::Mail(env) => receiver.is_none_or(|r| env.receiver() == Some(r)),
                Fired::Wake(_) => false,
            })
            .collect();
        entries.sort_by(|a, b| b.cmp(a));
        entries
            .into_iter()
            .map(|e| {
                let Fired::Mail(env) = &e.what else { unreachable!("filtered above") };
                AlarmInfo {
                    at: e.at,
                    sender: env.sender(),
                    receiver: env.receiver(),
                    topic: env.topic_value(),
                    ignore_if_idle: !e.required,
                }
            })
            .collect()
    }

    /// Removes the mail alarms for `receiver` (any if `None`) with `topic`
    /// (any if `None`); returns how many. Wake-ups of sleeping agents stay.
    pub fn clear(&mut self, receiver: Option<AgentId>, topic: Option<&str>) -> usize {
        let before = self.heap.len();
        let mut required_removed = 0;
        self.heap.retain(|e| {
            let hit = match &e.what {
                Fired::Mail(env) => {
                    receiver.is_none_or(|r| env.receiver() == Some(r))
                        && topic.is_none_or(|t| env.topic() == t)
                }
                Fired::Wake(_) => false,
            };
            if hit {
                required_removed += e.required as usize;
            }
            !hit
        });
        self.required -= required_removed;
        before - self.heap.len()
    }
}
