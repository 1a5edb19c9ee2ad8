//! A step's control survives the wire: every kind of change, the flags,
//! and alarms with their envelopes; unregistered alarm payloads are named.

use maslite_core::{AgentId, Change, Envelope, Origin, Subscription};
use maslite_nats::control::{decode, encode};
use maslite_nats::{Codec, Error};
use maslite_runtime::transport::Control;
use maslite_runtime::StopReason;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A control that says nothing: no changes, no alarm.
fn empty() -> Control {
    Control {
        changes: Arc::new(Vec::new()),
        active: false,
        busy: false,
        held: false,
        has_mail: false,
        next_alarm: f64::INFINITY,
        now: 0.0,
        stop: None,
        failed: false,
        alarms: Vec::new(),
        drained: false,
        awake: false,
        polled: false,
        run: 0,
        starts: Vec::new(),
        spare: Vec::new(),
        spare_alarms: Vec::new(),
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Tick(u32);

#[test]
fn every_change_flag_and_alarm_round_trips() {
    let mut codec = Codec::new();
    codec.register::<Tick>().unwrap();
    let sub = Subscription::new().sender(AgentId(1)).topic("news");
    let changes = vec![
        Change::Added(AgentId(5), Origin { when: 2, round: 1, key: 7, seq: 3 }),
        Change::Subscribed(AgentId(5), sub.clone()),
        Change::Unsubscribed(AgentId(5), Subscription::new().receiver(AgentId(9))),
        Change::UnsubscribedAll(AgentId(6)),
        Change::AlarmsCleared { receiver: Some(AgentId(2)), topic: Some("Tick".into()) },
        Change::AlarmsCleared { receiver: None, topic: None },
        Change::RemoveRequested(AgentId(7)),
        Change::Removed(AgentId(5), Origin { when: 3, round: 1, key: 2, seq: 9 }),
    ];
    let control = Control {
        changes: Arc::new(changes.clone()),
        active: true,
        busy: false,
        held: true,
        has_mail: true,
        next_alarm: 2.5,
        now: 1.25,
        stop: Some(StopReason::Paused),
        failed: false,
        drained: true,
        awake: false,
        polled: false,
        alarms: vec![
            (3.0, Envelope::new(Tick(1)).from(AgentId(1)).to(AgentId(2))),
            (4.5, Envelope::new(Tick(2)).to(AgentId(3)).topic_is("late")),
        ],
        run: 0xfeed,
        ..empty()
    };
    let mut bytes = Vec::new();
    encode(&codec, &control, &mut bytes).unwrap();
    let back = decode(&codec, &bytes).unwrap();
    assert_eq!(*back.changes, changes);
    assert!(back.active && !back.busy && back.held && back.has_mail && back.drained);
    assert!(!back.failed);
    assert_eq!(back.run, 0xfeed);
    assert_eq!((back.next_alarm, back.now, back.stop), (2.5, 1.25, Some(StopReason::Paused)));
    assert_eq!(back.alarms.len(), 2);
    assert_eq!(back.alarms[0].0, 3.0);
    assert_eq!(back.alarms[0].1.payload::<Tick>().unwrap(), &Tick(1));
    assert_eq!(back.alarms[0].1.sender(), AgentId(1));
    assert_eq!((back.alarms[1].0, back.alarms[1].1.topic()), (4.5, "late"));
    // An empty control, and +∞ for "no alarm".
    bytes.clear();
    encode(&codec, &empty(), &mut bytes).unwrap();
    let back = decode(&codec, &bytes).unwrap();
    assert!(back.changes.is_empty() && back.alarms.is_empty());
    assert_eq!(back.next_alarm, f64::INFINITY);
    // Cut short: an error, not a panic.
    encode(&codec, &control, &mut bytes).unwrap();
    assert!(decode(&codec, &bytes[..bytes.len() - 3]).is_err());
}

#[test]
fn an_alarm_whose_payload_is_not_registered_is_named() {
    let codec = Codec::new();
    let control = Control { alarms: vec![(1.0, Envelope::new(Tick(1)).to(AgentId(2)))], ..empty() };
    let err = encode(&codec, &control, &mut Vec::new()).unwrap_err();
    assert!(
        matches!(err, Error::Unregistered { type_name } if type_name.ends_with("Tick")),
        "{err}"
    );
}
