//! Packets between partitions of different hosts, without a server: cut
//! into frames under the limit and put back together, in order; a lost or
//! foreign frame caught; a host's bye and abort read as such.

use maslite_core::{AgentId, Change, Envelope, Origin};
use maslite_nats::packet::{Arrival, PacketReader, PacketWriter, HEADER};
use maslite_nats::{Codec, Error};
use maslite_runtime::transport::{Control, Packet, Sent};
use maslite_runtime::StopReason;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Blob(Vec<u8>);

fn codec() -> Codec {
    let mut c = Codec::new();
    c.register::<Blob>().unwrap();
    c
}

fn control() -> Control {
    Control {
        changes: Arc::new(vec![
            Change::Added(AgentId(4), Origin { when: 2, round: 1, key: 7, seq: 3 }),
            Change::Removed(AgentId(2), Origin { when: 3, round: 1, key: 2, seq: 9 }),
        ]),
        active: true,
        busy: false,
        held: false,
        has_mail: true,
        next_alarm: 2.5,
        now: 1.0,
        stop: Some(StopReason::Paused),
        failed: false,
        alarms: vec![(3.0, Envelope::new(Blob(vec![1, 2])).to(AgentId(9)))],
        drained: true,
        awake: false,
        polled: false,
        run: 42,
        starts: Vec::new(),
        spare: vec![(AgentId(1), Envelope::new(Blob(Vec::new())))],
        spare_alarms: vec![(1.0, Envelope::new(Blob(Vec::new())))],
    }
}

fn mail(sizes: &[usize]) -> Packet {
    Packet::Mail(
        sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let mut env = Envelope::new(Blob(vec![i as u8; n])).from(AgentId(1));
                env.set_origin(Origin { key: 1, seq: i as u64 + 1, ..Origin::default() });
                (AgentId(10 + i as u64), env)
            })
            .collect(),
    )
}

/// Every frame of the packets, read in order: the whole packets.
fn through(
    w: &mut PacketWriter,
    r: &mut PacketReader,
    c: &Codec,
    sent: Vec<Sent>,
) -> (usize, Vec<(usize, usize, Packet)>) {
    let mut frames = Vec::new();
    for s in sent {
        w.packet(c, s, &mut frames).unwrap();
    }
    let mut out = Vec::new();
    for f in &frames {
        assert!(f.len() <= 1024, "a frame of {} bytes", f.len());
        match r.read(c, f).unwrap() {
            Arrival::Partial => {}
            Arrival::Packet { from, to, packet } => out.push((from, to, packet)),
            other => panic!("{other:?}"),
        }
    }
    (frames.len(), out)
}

#[test]
fn controls_and_mail_cross_whole_and_in_order_however_large() {
    let c = codec();
    let mut w = PacketWriter::new(0, 1, 1024);
    let mut r = PacketReader::new(1, 2);
    let sent = vec![
        Sent { from: 0, to: 3, packet: Packet::Control(control()) },
        // 3 000 bytes in one envelope, then many small ones: both cut.
        Sent { from: 0, to: 3, packet: mail(&[3000, 5, 0]) },
        Sent { from: 2, to: 1, packet: mail(&[10; 200]) },
        Sent { from: 2, to: 1, packet: mail(&[]) },
    ];
    let (frames, got) = through(&mut w, &mut r, &c, sent);
    assert!(frames >= 4 + 3 + 2, "{frames} frames");
    assert_eq!(got.len(), 4);
    let Packet::Control(k) = &got[0].2 else { panic!("a control first") };
    assert_eq!((got[0].0, got[0].1), (0, 3));
    assert_eq!(
        *k.changes,
        [
            Change::Added(AgentId(4), Origin { when: 2, round: 1, key: 7, seq: 3 }),
            Change::Removed(AgentId(2), Origin { when: 3, round: 1, key: 2, seq: 9 })
        ]
    );
    assert_eq!(
        (k.active, k.has_mail, k.drained, k.next_alarm, k.now),
        (true, true, true, 2.5, 1.0)
    );
    assert_eq!((k.stop, k.run), (Some(StopReason::Paused), 42));
    assert_eq!(k.alarms.len(), 1);
    assert_eq!(k.alarms[0].1.payload::<Blob>().unwrap().0, [1, 2]);
    // The spare buffer stays home.
    assert!(k.spare.is_empty());
    let Packet::Mail(m) = &got[1].2 else { panic!("mail") };
    let lens: Vec<usize> = m.iter().map(|(_, e)| e.payload::<Blob>().unwrap().0.len()).collect();
    assert_eq!(lens, [3000, 5, 0]);
    assert_eq!(m[1].0, AgentId(11));
    assert_eq!(m[1].1.origin(), Origin { key: 1, seq: 2, ..Origin::default() });
    let Packet::Mail(m) = &got[2].2 else { panic!("mail") };
    assert_eq!((got[2].0, got[2].1, m.len()), (2, 1, 200));
    let Packet::Mail(m) = &got[3].2 else { panic!("mail") };
    assert!(m.is_empty());
}

#[test]
fn a_lost_frame_is_a_gap_naming_the_link() {
    let c = codec();
    let mut w = PacketWriter::new(1, 0, 1024);
    let mut r = PacketReader::new(0, 2);
    let mut frames = Vec::new();
    for _ in 0..3 {
        w.packet(&c, Sent { from: 1, to: 0, packet: mail(&[1]) }, &mut frames).unwrap();
    }
    assert!(matches!(r.read(&c, &frames[0]).unwrap(), Arrival::Packet { .. }));
    let err = r.read(&c, &frames[2]).unwrap_err();
    assert!(matches!(err, Error::Gap { from: 1, to: 0, expected: 1, got: 2 }), "{err}");
    assert!(err.to_string().contains("1 -> 0"), "{err}");
}

#[test]
fn foreign_and_broken_frames_are_refused() {
    let c = codec();
    let mut w = PacketWriter::new(0, 1, 1024);
    let mut frames = Vec::new();
    w.packet(&c, Sent { from: 0, to: 1, packet: mail(&[4]) }, &mut frames).unwrap();
    // Host 2 is not the frame's destination.
    let err = PacketReader::new(2, 3).read(&c, &frames[0]).unwrap_err();
    assert!(matches!(err, Error::Malformed { .. }), "{err}");
    // Not a frame at all.
    let err = PacketReader::new(1, 2).read(&c, b"hello, world, not a frame").unwrap_err();
    assert!(matches!(err, Error::Malformed { .. }), "{err}");
    // Cut short: the header promises an item that is not there.
    let short = &frames[0][..frames[0].len() - 3];
    let err = PacketReader::new(1, 2).read(&c, short).unwrap_err();
    assert!(err.to_string().contains("cut short"), "{err}");
    // An unknown tag: the receiver has not registered the type.
    let err = PacketReader::new(1, 2).read(&Codec::new(), &frames[0]).unwrap_err();
    assert!(matches!(err, Error::UnknownTag { .. }), "{err}");
}

#[test]
fn an_unregistered_payload_is_named_and_sends_nothing() {
    let c = codec();
    let mut w = PacketWriter::new(0, 1, 1024);
    let mut frames = Vec::new();
    let bad = Packet::Mail(vec![(AgentId(2), Envelope::new(7u64))]);
    let err = w.packet(&c, Sent { from: 0, to: 1, packet: bad }, &mut frames).unwrap_err();
    assert!(matches!(err, Error::Unregistered { type_name: "u64" }), "{err}");
    assert!(frames.is_empty());
    // The sequence did not move: the next packet is frame 0.
    w.packet(&c, Sent { from: 0, to: 1, packet: mail(&[1]) }, &mut frames).unwrap();
    assert!(PacketReader::new(1, 2).read(&c, &frames[0]).is_ok());
}

#[test]
fn bye_and_abort_come_after_the_packets_before_them() {
    let c = codec();
    let mut w = PacketWriter::new(1, 0, HEADER + 100);
    let mut r = PacketReader::new(0, 2);
    let mut frames = Vec::new();
    w.packet(&c, Sent { from: 1, to: 0, packet: mail(&[1]) }, &mut frames).unwrap();
    frames.push(w.abort(&"x".repeat(500)));
    frames.push(w.bye());
    assert!(matches!(r.read(&c, &frames[0]).unwrap(), Arrival::Packet { .. }));
    match r.read(&c, &frames[1]).unwrap() {
        // The reason is cut to the frame.
        Arrival::Abort(1, why) => assert!(why.len() <= 100 && why.starts_with("xxx")),
        other => panic!("{other:?}"),
    }
    assert!(matches!(r.read(&c, &frames[2]).unwrap(), Arrival::Bye(1)));
}
