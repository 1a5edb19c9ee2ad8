//! Every decoder of what comes from the network, fed random and mutated
//! bytes: frames (without a key, authenticated, encrypted), controls,
//! envelopes, beats, readiness questions and answers, run keys. Nothing
//! panics; with a key, a mutated frame is never taken.
//!
//! Short by default (proptest's 256 cases per property); a longer run:
//! `PROPTEST_CASES=100000 cargo test --release -p maslite-nats --test nats fuzz`.

use maslite_core::{AgentId, Envelope};
use maslite_nats::packet::{Arrival, PacketReader, PacketWriter};
use maslite_nats::seal::{Protection, RunSeal};
use maslite_nats::{control, Codec, RunKey};
use maslite_runtime::transport::{Packet, Sent};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Blob(Vec<u8>);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Tree {
    Leaf(u8),
    Node(Vec<Tree>),
}

fn codec() -> Codec {
    let mut c = Codec::new();
    c.register::<Blob>().unwrap();
    c.register::<Tree>().unwrap();
    c.register::<String>().unwrap();
    c
}

/// Hosts 0 and 1 after their handshake, for each protection.
fn seals() -> &'static [(RunSeal, RunSeal); 2] {
    static SEALS: OnceLock<[(RunSeal, RunSeal); 2]> = OnceLock::new();
    SEALS.get_or_init(|| {
        let key = RunKey::generate().unwrap();
        [Protection::Authenticated, Protection::Encrypted].map(|p| {
            let a = RunSeal::new(&key, p, "fuzz", 0, 2).unwrap();
            let b = RunSeal::new(&key, p, "fuzz", 1, 2).unwrap();
            assert!(a.take_answer(1, &b.answer(&a.ask()).unwrap()));
            assert!(b.take_answer(0, &a.answer(&b.ask()).unwrap()));
            (a, b)
        })
    })
}

fn readers() -> Vec<PacketReader> {
    let mut rs = vec![PacketReader::new(1, 2).with_owners(vec![0, 1])];
    for (_, b) in seals() {
        rs.push(
            PacketReader::new(1, 2)
                .with_seals(vec![b.link(0, 1).unwrap(), None])
                .with_owners(vec![0, 1]),
        );
    }
    rs
}

/// A valid frame of each kind of reader: mail with a tree in it.
fn valid(tree: &Tree) -> Vec<Vec<u8>> {
    let packet = || Packet::Mail(vec![(AgentId(2), Envelope::new(tree.clone()).from(AgentId(1)))]);
    let mut writers = vec![PacketWriter::new(0, 1, 1 << 16)];
    for (a, _) in seals() {
        writers.push(PacketWriter::new(0, 1, 1 << 16).with_seal(a.link(0, 1).unwrap()));
    }
    writers
        .iter_mut()
        .map(|w| {
            let mut out = Vec::new();
            w.packet(&codec(), Sent { from: 0, to: 1, packet: packet() }, &mut out).unwrap();
            out.remove(0).to_vec()
        })
        .collect()
}

fn tree() -> impl Strategy<Value = Tree> {
    any::<u8>()
        .prop_map(Tree::Leaf)
        .prop_recursive(4, 32, 4, |inner| prop::collection::vec(inner, 0..4).prop_map(Tree::Node))
}

/// A mutation: flip a byte, cut, or append.
#[derive(Clone, Debug)]
enum Mutation {
    Flip(usize, u8),
    Cut(usize),
    Append(Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(i, x)| Mutation::Flip(i, x)),
        any::<usize>().prop_map(Mutation::Cut),
        prop::collection::vec(any::<u8>(), 1..16).prop_map(Mutation::Append),
    ]
}

fn mutate(mut f: Vec<u8>, m: &Mutation) -> Vec<u8> {
    match m {
        Mutation::Flip(i, x) => {
            let i = i % f.len();
            f[i] ^= x;
        }
        Mutation::Cut(n) => f.truncate(n % f.len()),
        Mutation::Append(extra) => f.extend_from_slice(extra),
    }
    f
}

proptest! {
    #[test]
    fn random_bytes_never_panic_any_decoder(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let c = codec();
        for mut r in readers() {
            let _ = r.read(&c, &bytes);
            // With the magic in front, the header is read too.
            let mut framed = b"MSP2".to_vec();
            framed.extend_from_slice(&bytes);
            let _ = r.read(&c, &framed);
        }
        let _ = control::decode(&c, &bytes);
        let _ = c.decode(&bytes);
        let _ = RunKey::from_hex(&String::from_utf8_lossy(&bytes));
        for (a, b) in seals() {
            let _ = a.answer(&bytes);
            let _ = a.take_answer(1, &bytes);
            prop_assert!(b.beats_of(0).unwrap().open(&bytes).is_none() || bytes.len() == 41);
        }
    }

    #[test]
    fn a_mutated_frame_is_never_taken_with_a_key(t in tree(), m in mutation()) {
        let c = codec();
        for (i, (frame, mut r)) in valid(&t).into_iter().zip(readers()).enumerate() {
            let bad = mutate(frame.clone(), &m);
            let got = r.read(&c, &bad);
            if i > 0 {
                // Sealed: whatever the mutation, dropped and counted.
                prop_assert!(matches!(got, Ok(Arrival::Dropped(_))), "{got:?}");
                prop_assert_eq!(r.rejections().total(), 1);
            }
            // The honest frame after it is taken whole either way (without
            // a key a mutated sequence may be taken as a gap).
            if i > 0 {
                match r.read(&c, &frame) {
                    Ok(Arrival::Packet { packet: Packet::Mail(m), .. }) => {
                        prop_assert_eq!(m[0].1.payload::<Tree>().unwrap(), &t)
                    }
                    other => prop_assert!(false, "{other:?}"),
                }
            }
        }
    }

    #[test]
    fn mutated_controls_and_envelopes_never_panic(t in tree(), m in mutation()) {
        let c = codec();
        let mut env = Vec::new();
        c.encode(&Envelope::new(t.clone()).to(AgentId(3)), &mut env).unwrap();
        let _ = c.decode(&mutate(env.clone(), &m));
        let ctl = maslite_runtime::transport::Control {
            changes: std::sync::Arc::new(Vec::new()),
            active: true,
            busy: false,
            held: false,
            has_mail: false,
            next_alarm: 1.0,
            now: 0.0,
            stop: None,
            failed: false,
            alarms: vec![(2.0, Envelope::new(t).to(AgentId(4)))],
            drained: false,
            awake: false,
            polled: false,
            run: 7,
            starts: Vec::new(),
            spare: Vec::new(),
            spare_alarms: Vec::new(),
        };
        let mut bytes = Vec::new();
        control::encode(&c, &ctl, &mut bytes).unwrap();
        let _ = control::decode(&c, &mutate(bytes, &m));
    }
}
