//! A step's control on the wire: what a host tells the others at the end
//! of each lockstep step or lookahead window.
//!
//! On one machine partitions hand each other a `Control` by channel: the
//! step's changes to agents and subscriptions, whether there is more to do
//! now, the next alarm, a stop or a failure, and the alarms set for agents
//! elsewhere. Across hosts the same goes through NATS: [`encode`] and
//! [`decode`] give it a wire form. Changes use mirror types of the kernel's ([`Change`],
//! [`Subscription`]) so that maslite-core needs no serde; alarms' envelopes
//! go through the [`Codec`] like mail (their payload types must be
//! registered).

use crate::codec::Codec;
use crate::error::{Error, Result};
use maslite_core::{AgentId, Change, Subscription};
use maslite_runtime::transport::Control;
use maslite_runtime::StopReason;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Why a host asks the run to stop (the runtime's
/// [`StopReason`] on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StopCode {
    /// Nothing left to do.
    Idle,
    /// The clock reached the end.
    TimeLimit,
    /// An iteration limit was reached.
    Iterations,
    /// An agent paused.
    Paused,
    /// The run's token was cancelled.
    Cancelled,
}

impl From<StopReason> for StopCode {
    fn from(r: StopReason) -> StopCode {
        match r {
            StopReason::Idle => StopCode::Idle,
            StopReason::TimeLimit => StopCode::TimeLimit,
            StopReason::Iterations => StopCode::Iterations,
            StopReason::Paused => StopCode::Paused,
            StopReason::Cancelled => StopCode::Cancelled,
        }
    }
}

impl From<StopCode> for StopReason {
    fn from(c: StopCode) -> StopReason {
        match c {
            StopCode::Idle => StopReason::Idle,
            StopCode::TimeLimit => StopReason::TimeLimit,
            StopCode::Iterations => StopReason::Iterations,
            StopCode::Paused => StopReason::Paused,
            StopCode::Cancelled => StopReason::Cancelled,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct WireSubscription {
    sender: Option<u64>,
    receiver: Option<u64>,
    topic: Option<String>,
}

#[derive(Serialize, Deserialize)]
enum WireChange {
    /// The id and its creation stamp (when, round, key, seq).
    Added(u64, [u64; 4]),
    /// The id and the stamp of its departure (when, round, key, seq).
    Removed(u64, [u64; 4]),
    Subscribed(u64, WireSubscription),
    Unsubscribed(u64, WireSubscription),
    UnsubscribedAll(u64),
    AlarmsCleared {
        receiver: Option<u64>,
        topic: Option<String>,
    },
    RemoveRequested(u64),
    /// The id, its creation stamp, and the partition it starts on.
    Spawned(u64, [u64; 4], u32),
}

#[derive(Serialize, Deserialize)]
struct WireControl {
    changes: Vec<WireChange>,
    active: bool,
    busy: bool,
    held: bool,
    has_mail: bool,
    next_alarm: f64,
    now: f64,
    stop: Option<StopCode>,
    failed: bool,
    drained: bool,
    awake: bool,
    polled: bool,
    run: u64,
    /// Alarm times; their envelopes follow the control, in order.
    alarm_times: Vec<f64>,
}

fn to_wire_sub(s: &Subscription) -> WireSubscription {
    WireSubscription {
        sender: s.sender.map(|a| a.0),
        receiver: s.receiver.map(|a| a.0),
        topic: s.topic.as_ref().map(|t| t.as_str().to_string()),
    }
}

fn from_wire_sub(w: WireSubscription) -> Subscription {
    Subscription {
        sender: w.sender.map(AgentId),
        receiver: w.receiver.map(AgentId),
        topic: w.topic.map(Into::into),
    }
}

fn to_wire(c: &Change) -> WireChange {
    match c {
        Change::Added(a, o) => WireChange::Added(a.0, [o.when, o.round, o.key, o.seq]),
        Change::Removed(a, o) => WireChange::Removed(a.0, [o.when, o.round, o.key, o.seq]),
        Change::Subscribed(a, s) => WireChange::Subscribed(a.0, to_wire_sub(s)),
        Change::Unsubscribed(a, s) => WireChange::Unsubscribed(a.0, to_wire_sub(s)),
        Change::UnsubscribedAll(a) => WireChange::UnsubscribedAll(a.0),
        Change::AlarmsCleared { receiver, topic } => {
            WireChange::AlarmsCleared { receiver: receiver.map(|a| a.0), topic: topic.clone() }
        }
        Change::RemoveRequested(a) => WireChange::RemoveRequested(a.0),
        Change::Spawned(a, o, on) => {
            WireChange::Spawned(a.0, [o.when, o.round, o.key, o.seq], *on as u32)
        }
    }
}

fn from_wire(w: WireChange) -> Change {
    match w {
        WireChange::Added(a, [when, round, key, seq]) => {
            Change::Added(AgentId(a), maslite_core::Origin { when, round, key, seq })
        }
        WireChange::Removed(a, [when, round, key, seq]) => {
            Change::Removed(AgentId(a), maslite_core::Origin { when, round, key, seq })
        }
        WireChange::Subscribed(a, s) => Change::Subscribed(AgentId(a), from_wire_sub(s)),
        WireChange::Unsubscribed(a, s) => Change::Unsubscribed(AgentId(a), from_wire_sub(s)),
        WireChange::UnsubscribedAll(a) => Change::UnsubscribedAll(AgentId(a)),
        WireChange::AlarmsCleared { receiver, topic } => {
            Change::AlarmsCleared { receiver: receiver.map(AgentId), topic }
        }
        WireChange::RemoveRequested(a) => Change::RemoveRequested(AgentId(a)),
        // (A partition this runtime does not have is refused where the
        // change is applied.)
        WireChange::Spawned(a, [when, round, key, seq], on) => {
            Change::Spawned(AgentId(a), maslite_core::Origin { when, round, key, seq }, on as usize)
        }
    }
}

/// Appends `control` to `out`: its length (u32, little-endian) and the
/// control, then each alarm's envelope as [`Codec::encode`] writes it. An
/// alarm whose payload type is not registered is [`Error::Unregistered`].
/// (The spare buffer it gives back stays on this host, and it carries no
/// agents started elsewhere: the runtime never places one on another host.)
pub fn encode(codec: &Codec, control: &Control, out: &mut Vec<u8>) -> Result<()> {
    let wire = WireControl {
        changes: control.changes.iter().map(to_wire).collect(),
        active: control.active,
        busy: control.busy,
        held: control.held,
        has_mail: control.has_mail,
        next_alarm: control.next_alarm,
        now: control.now,
        stop: control.stop.map(Into::into),
        failed: control.failed,
        drained: control.drained,
        awake: control.awake,
        polled: control.polled,
        run: control.run,
        alarm_times: control.alarms.iter().map(|(t, _)| *t).collect(),
    };
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    *out = postcard::to_extend(&wire, std::mem::take(out))
        .map_err(|e| Error::Serde { tag: "control".into(), message: e.to_string() })?;
    let len = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    for (_, env) in &control.alarms {
        codec.encode(env, out)?;
    }
    Ok(())
}

/// A control from the bytes [`encode`] made.
pub fn decode(codec: &Codec, bytes: &[u8]) -> Result<Control> {
    let malformed = |m: &str| Error::Serde { tag: "control".into(), message: m.into() };
    let len = bytes.get(..4).ok_or_else(|| malformed("cut short"))?;
    let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
    let body = bytes.get(4..4 + len).ok_or_else(|| malformed("cut short"))?;
    let wire: WireControl = postcard::from_bytes(body)
        .map_err(|e| Error::Serde { tag: "control".into(), message: e.to_string() })?;
    let mut at = 4 + len;
    let mut alarms = Vec::with_capacity(wire.alarm_times.len());
    for t in &wire.alarm_times {
        let head = bytes.get(at..at + 4).ok_or_else(|| malformed("an alarm cut short"))?;
        let n = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let one = bytes.get(at..at + 4 + n).ok_or_else(|| malformed("an alarm cut short"))?;
        alarms.push((*t, codec.decode(one)?));
        at += 4 + n;
    }
    if at != bytes.len() {
        return Err(malformed("bytes after the last alarm"));
    }
    Ok(Control {
        changes: Arc::new(wire.changes.into_iter().map(from_wire).collect()),
        active: wire.active,
        busy: wire.busy,
        held: wire.held,
        has_mail: wire.has_mail,
        next_alarm: wire.next_alarm,
        now: wire.now,
        stop: wire.stop.map(Into::into),
        failed: wire.failed,
        drained: wire.drained,
        awake: wire.awake,
        polled: wire.polled,
        run: wire.run,
        alarms,
        starts: Vec::new(),
        spare: Vec::new(),
        spare_alarms: Vec::new(),
    })
}
