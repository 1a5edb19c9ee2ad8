//! Frames, beats and readiness answers with a run key, without a server:
//! what is not made with the run's key for this session is dropped and
//! counted, never acted on; what is sealed crosses whole, readable only
//! with the key when encrypted; what breaks the protocol is an error
//! naming the link.

use maslite_core::{AgentId, Envelope};
use maslite_nats::packet::{Arrival, PacketReader, PacketWriter, HEADER};
use maslite_nats::seal::{Beat, Protection, RunSeal};
use maslite_nats::{Codec, Error, Rejection, RunKey};
use maslite_runtime::transport::{Packet, Sent};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Blob(Vec<u8>);

const SECRET: &[u8] = b"the-payload-nobody-else-may-read";

fn codec() -> Codec {
    let mut c = Codec::new();
    c.register::<Blob>().unwrap();
    c
}

fn mail(bytes: &[u8]) -> Packet {
    Packet::Mail(vec![(AgentId(2), Envelope::new(Blob(bytes.to_vec())).from(AgentId(1)))])
}

/// Hosts 0 and 1 of `run`, after their handshake: each knows the other's
/// session.
fn pair(key: &RunKey, protection: Protection, run: &str) -> (RunSeal, RunSeal) {
    let a = RunSeal::new(key, protection, run, 0, 2).unwrap();
    let b = RunSeal::new(key, protection, run, 1, 2).unwrap();
    assert!(a.take_answer(1, &b.answer(&a.ask()).unwrap()));
    assert!(b.take_answer(0, &a.answer(&b.ask()).unwrap()));
    (a, b)
}

/// Host 0's writer to host 1, and host 1's reader (partition 0 on host 0,
/// partition 1 on host 1), sealed.
fn link(a: &RunSeal, b: &RunSeal, max: usize) -> (PacketWriter, PacketReader) {
    let w = PacketWriter::new(0, 1, max).with_seal(a.link(0, 1).unwrap());
    let r = PacketReader::new(1, 2)
        .with_seals(vec![b.link(0, 1).unwrap(), None])
        .with_owners(vec![0, 1]);
    (w, r)
}

fn frames(w: &mut PacketWriter, packet: Packet) -> Vec<bytes::Bytes> {
    let mut out = Vec::new();
    w.packet(&codec(), Sent { from: 0, to: 1, packet }, &mut out).unwrap();
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn delivered(r: &mut PacketReader, frame: &[u8]) -> Vec<u8> {
    match r.read(&codec(), frame).unwrap() {
        Arrival::Packet { from: 0, to: 1, packet: Packet::Mail(m) } => {
            m[0].1.payload::<Blob>().unwrap().0.clone()
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn sealed_frames_cross_whole_and_encrypted_ones_are_unreadable() {
    let key = RunKey::generate().unwrap();
    for protection in [Protection::Authenticated, Protection::Encrypted] {
        let (a, b) = pair(&key, protection, "sealed");
        let (mut w, mut r) = link(&a, &b, HEADER + 200);
        // Cut into frames (each under the limit with its tag), whole again.
        let big = SECRET.repeat(20);
        let fs = frames(&mut w, mail(&big));
        assert!(fs.len() > 3 && fs.iter().all(|f| f.len() <= HEADER + 200));
        let mut got = None;
        for f in &fs {
            match r.read(&codec(), f).unwrap() {
                Arrival::Partial => {}
                Arrival::Packet { packet: Packet::Mail(m), .. } => {
                    got = Some(m[0].1.payload::<Blob>().unwrap().0.clone())
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(got.unwrap(), big);
        // Readable on the wire only when not encrypted.
        let fs = frames(&mut w, mail(SECRET));
        assert_eq!(contains(&fs[0], SECRET), protection == Protection::Authenticated);
        assert_eq!(delivered(&mut r, &fs[0]), SECRET);
        assert_eq!(r.rejections().total(), 0);
    }
}

#[test]
fn forged_replayed_and_foreign_frames_are_dropped_and_counted() {
    let key = RunKey::generate().unwrap();
    let (a, b) = pair(&key, Protection::Authenticated, "forged");
    let (mut w, mut r) = link(&a, &b, 1 << 16);
    let c = codec();
    let first = frames(&mut w, mail(b"one")).remove(0);
    // A byte flipped anywhere (header or body): forged.
    for at in [5, 10, 17, HEADER + 2, first.len() - 1] {
        let mut bad = first.to_vec();
        bad[at] ^= 1;
        assert!(matches!(
            r.read(&c, &bad).unwrap(),
            Arrival::Dropped(Rejection::Forged | Rejection::Foreign)
        ));
    }
    // Without its tag, or with a tag of another key, another run, or an
    // earlier session of the same run: forged.
    let untagged = &first[..first.len() - 32];
    assert!(matches!(r.read(&c, untagged).unwrap(), Arrival::Dropped(Rejection::Forged)));
    let other_key = RunKey::generate().unwrap();
    for (k, run) in [(&other_key, "forged"), (&key, "other-run"), (&key, "forged")] {
        let (x, y) = pair(k, Protection::Authenticated, run);
        let (mut wx, _) = link(&x, &y, 1 << 16);
        let f = frames(&mut wx, mail(b"one")).remove(0);
        assert!(matches!(r.read(&c, &f).unwrap(), Arrival::Dropped(Rejection::Forged)));
    }
    assert_eq!(r.rejections().get(Rejection::Forged), 8);
    // The honest frame still counts after all that, once.
    assert_eq!(delivered(&mut r, &first), b"one");
    assert!(matches!(r.read(&c, &first).unwrap(), Arrival::Dropped(Rejection::Replayed)));
    // Claiming to come from the reader itself, or to be for another host,
    // or not a frame at all.
    let mut own = first.to_vec();
    own[4] = 1; // from host 1, to host 1
    assert!(matches!(r.read(&c, &own).unwrap(), Arrival::Dropped(Rejection::Foreign)));
    assert!(matches!(r.read(&c, b"MSP2").unwrap(), Arrival::Dropped(Rejection::Malformed)));
    assert_eq!(r.rejections().total(), 12);
    // A frame lost is still a gap, named as such.
    let _lost = frames(&mut w, mail(b"two"));
    let third = frames(&mut w, mail(b"three")).remove(0);
    let err = r.read(&c, &third).unwrap_err();
    assert!(matches!(err, Error::Gap { from: 0, to: 1, expected: 1, got: 2 }), "{err}");
}

#[test]
fn without_a_key_duplicates_are_named_and_self_claims_dropped() {
    let c = codec();
    let mut w = PacketWriter::new(0, 1, 1 << 16);
    let mut r = PacketReader::new(1, 2);
    let f = frames(&mut w, mail(b"x")).remove(0);
    assert!(matches!(r.read(&c, &f).unwrap(), Arrival::Packet { .. }));
    let err = r.read(&c, &f).unwrap_err();
    assert!(matches!(err, Error::Duplicate { from: 0, to: 1, expected: 1, got: 0 }), "{err}");
    assert!(err.to_string().contains("duplicate or injected"), "{err}");
    assert!(!err.to_string().contains("lost"), "{err}");
    // A frame on the reader's own link (its sequence never moves).
    let mut own = PacketWriter::new(1, 1, 1 << 16);
    let f = frames(&mut own, mail(b"x")).remove(0);
    assert!(matches!(r.read(&c, &f).unwrap(), Arrival::Dropped(Rejection::Foreign)));
}

#[test]
fn a_sealed_packet_between_partitions_not_on_its_hosts_is_an_error_naming_the_link() {
    let key = RunKey::generate().unwrap();
    let (a, b) = pair(&key, Protection::Authenticated, "owners");
    let (mut w, _) = link(&a, &b, 1 << 16);
    // Partitions 0 and 1 on host 0, 2 on host 1: "from partition 1 to 0"
    // is not a packet host 0 may send host 1.
    let mut r = PacketReader::new(1, 2)
        .with_seals(vec![b.link(0, 1).unwrap(), None])
        .with_owners(vec![0, 0, 1]);
    let mut out = Vec::new();
    w.packet(&codec(), Sent { from: 1, to: 0, packet: mail(b"x") }, &mut out).unwrap();
    let err = r.read(&codec(), &out[0]).unwrap_err();
    assert!(matches!(err, Error::Malformed { from: 0, to: 1, .. }), "{err}");
    assert!(err.to_string().contains("not partitions of hosts 0 and 1"), "{err}");
}

#[test]
fn partial_packets_are_bounded_per_link() {
    let key = RunKey::generate().unwrap();
    let (a, b) = pair(&key, Protection::Authenticated, "bounds");
    let (w, r) = link(&a, &b, HEADER + 100);
    let (mut w, mut r) = (w, r.with_limit(1000));
    // A sender over the limit is refused at home, sending nothing...
    let mut big =
        PacketWriter::new(0, 1, HEADER + 100).with_seal(a.link(0, 1).unwrap()).with_limit(1000);
    let mut out = Vec::new();
    let err = big
        .packet(&codec(), Sent { from: 0, to: 1, packet: mail(&[7; 2000]) }, &mut out)
        .unwrap_err();
    assert!(matches!(err, Error::TooLarge { from: 0, to: 1, limit: 1000 }), "{err}");
    assert!(out.is_empty());
    // ...and a receiver stops at it, naming the link.
    let fs = frames(&mut w, mail(&[7; 2000]));
    let err = fs.iter().find_map(|f| r.read(&codec(), f).err()).expect("the limit is met");
    assert!(matches!(err, Error::TooLarge { from: 0, to: 1, limit: 1000 }), "{err}");
}

#[test]
fn a_remote_abort_text_is_escaped() {
    let mut w = PacketWriter::new(0, 1, 1 << 16);
    let mut r = PacketReader::new(1, 2);
    let f = w.abort("bad\n\x1b[2Jthing");
    match r.read(&codec(), &f).unwrap() {
        Arrival::Abort(0, why) => assert_eq!(why, "bad\\n\\u{1b}[2Jthing"),
        other => panic!("{other:?}"),
    }
    // Cut to the frame on a character boundary (no panic on UTF-8).
    let mut small = PacketWriter::new(0, 1, 0);
    let f = small.abort(&"é".repeat(500));
    assert!(matches!(PacketReader::new(1, 2).read(&codec(), &f).unwrap(), Arrival::Abort(0, _)));
}

#[test]
fn beats_and_readiness_answers_need_the_key_and_this_session() {
    let key = RunKey::generate().unwrap();
    let (a, b) = pair(&key, Protection::Authenticated, "beats");
    let (sender, checker) = (b.beats_of(1).unwrap(), a.beats_of(1).unwrap());
    let beat = sender.seal(Beat::Alive, 7);
    assert_eq!(checker.open(&beat), Some((Beat::Alive, 7)));
    assert_eq!(checker.open(&sender.seal(Beat::Bye, 8)), Some((Beat::Bye, 8)));
    // Forged: not sealed, changed, or host 0's key.
    assert_eq!(checker.open(b"bye"), None);
    let mut changed = beat.to_vec();
    changed[0] = 1; // "bye"
    assert_eq!(checker.open(&changed), None);
    assert_eq!(checker.open(&a.beats_of(0).unwrap().seal(Beat::Bye, 9)), None);
    // An answer made for another question (another session) is not taken.
    let c = RunSeal::new(&key, Protection::Authenticated, "beats", 0, 2).unwrap();
    let for_c = b.answer(&c.ask()).unwrap();
    let fresh = RunSeal::new(&key, Protection::Authenticated, "beats", 0, 2).unwrap();
    assert!(!fresh.take_answer(1, &for_c));
    assert!(!fresh.take_answer(1, b"ready"));
    assert!(fresh.link(0, 1).is_err(), "no session, no link key");
}

#[test]
fn a_run_key_is_never_shown() {
    let key = RunKey::generate().unwrap();
    let hex = key.to_hex();
    assert_eq!(RunKey::from_hex(&format!(" {hex}\n")).unwrap(), key);
    assert!(!format!("{key:?}").contains(&hex[..8]));
    // A wrong key is refused without being quoted.
    let wrong = format!("{}zz", &hex[..62]);
    let err = RunKey::from_hex(&wrong).unwrap_err().to_string();
    assert!(!err.contains(&hex[..8]), "{err}");
    assert!(RunKey::from_hex("abc").is_err());
}
