//! The wire without a server: envelopes through the codec, batches cut into
//! frames under a limit and read back, gaps and bad frames caught.

use maslite_core::{AgentId, Envelope, Origin};
use maslite_nats::frame::{self, Framer, LinkSeq, HEADER};
use maslite_nats::{Codec, Error};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Part {
    id: u32,
    name: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Blob(Vec<u8>);

fn codec() -> Codec {
    let mut c = Codec::new();
    c.register::<Part>().unwrap();
    c.register_as::<Blob>("blob").unwrap();
    c
}

#[test]
fn every_header_field_survives_the_wire() {
    let c = codec();
    let mut env = Envelope::new(Part { id: 7, name: "gear".into() })
        .from(AgentId(3))
        .to(AgentId(9))
        .topic_is("parts")
        .direct()
        .unwrap();
    env.set_origin(Origin { key: 5, seq: 42 });
    let mut bytes = Vec::new();
    c.encode(&env, &mut bytes).unwrap();
    let back = c.decode(&bytes).unwrap();
    assert_eq!(back.payload::<Part>().unwrap(), &Part { id: 7, name: "gear".into() });
    assert_eq!(back.sender(), AgentId(3));
    assert_eq!(back.receiver(), Some(AgentId(9)));
    assert_eq!(back.topic(), "parts");
    assert!(back.is_direct());
    assert_eq!(back.origin(), Origin { key: 5, seq: 42 });
    // A broadcast with the default topic.
    let env = Envelope::new(Part { id: 1, name: String::new() });
    bytes.clear();
    c.encode(&env, &mut bytes).unwrap();
    let back = c.decode(&bytes).unwrap();
    assert_eq!((back.receiver(), back.topic(), back.is_direct()), (None, "Part", false));
}

#[test]
fn unregistered_and_doubly_registered_types_are_named() {
    let mut c = codec();
    let err = c.encode(&Envelope::new(1.5f64), &mut Vec::new()).unwrap_err();
    assert!(matches!(err, Error::Unregistered { type_name: "f64" }), "{err}");
    assert!(err.to_string().contains("f64"));
    let err = c.register_as::<String>("blob").unwrap_err();
    assert!(matches!(err, Error::DuplicateTag { .. }), "{err}");
    assert!(err.to_string().contains("blob"));
    // A host that does not know a tag says which.
    let mut bytes = Vec::new();
    c.encode(&Envelope::new(Blob(vec![1])), &mut bytes).unwrap();
    let mut other = Codec::new();
    other.register::<Part>().unwrap();
    let err = other.decode(&bytes).unwrap_err();
    assert!(matches!(&err, Error::UnknownTag { tag } if tag == "blob"), "{err}");
}

#[test]
fn a_batch_over_the_limit_is_cut_into_numbered_frames_and_read_back_whole() {
    let c = codec();
    let max = 4096;
    let mut framer = Framer::new(0, 1, max);
    let envs: Vec<Envelope> = (0..100u32)
        .map(|i| Envelope::new(Blob(vec![i as u8; 300])).to(AgentId(i as u64)))
        .collect();
    let frames = framer.frames(&c, envs.iter().map(|e| (e.receiver().unwrap(), e))).unwrap();
    assert!(frames.len() >= 8, "{} frames", frames.len());
    let mut seq = LinkSeq::new(0, 1);
    let mut out = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        assert!(f.len() <= max, "frame {i} is {} bytes", f.len());
        let info = frame::read(&c, f, &mut out).unwrap();
        seq.check(&info).unwrap();
        assert_eq!(info.last, i + 1 == frames.len());
    }
    assert_eq!(out.len(), 100);
    for (i, (r, env)) in out.iter().enumerate() {
        assert_eq!(*r, AgentId(i as u64));
        assert_eq!(env.payload::<Blob>().unwrap().0, vec![i as u8; 300]);
    }
    // An empty batch is one empty, last frame: the next number.
    let frames = framer.frames(&c, std::iter::empty()).unwrap();
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].len(), HEADER);
    let info = frame::info(&frames[0]).unwrap();
    assert!(info.last && info.count == 0);
    seq.check(&info).unwrap();
}

#[test]
fn an_envelope_too_large_for_any_frame_is_refused_and_the_link_goes_on() {
    let c = codec();
    let mut framer = Framer::new(2, 3, 1024);
    let big = Envelope::new(Blob(vec![0; 5000])).to(AgentId(1));
    let err = framer.frames(&c, [(AgentId(1), &big)]).unwrap_err();
    match &err {
        Error::TooLarge { tag, bytes, max } => {
            assert_eq!(tag, "blob");
            assert!(*bytes > 5000 && *max < 1024, "{err}");
        }
        e => panic!("{e}"),
    }
    // Nothing went out: the next batch is frame 0.
    let small = Envelope::new(Blob(vec![1])).to(AgentId(1));
    let frames = framer.frames(&c, [(AgentId(1), &small)]).unwrap();
    assert_eq!(frame::info(&frames[0]).unwrap().seq, 0);
}

#[test]
fn a_missing_frame_is_a_gap_naming_the_link() {
    let c = codec();
    let mut framer = Framer::new(4, 1, 1024);
    let env = Envelope::new(Blob(vec![9])).to(AgentId(1));
    let f0 = framer.frames(&c, [(AgentId(1), &env)]).unwrap();
    let _lost = framer.frames(&c, [(AgentId(1), &env)]).unwrap();
    let f2 = framer.frames(&c, [(AgentId(1), &env)]).unwrap();
    let mut seq = LinkSeq::new(4, 1);
    seq.check(&frame::info(&f0[0]).unwrap()).unwrap();
    let err = seq.check(&frame::info(&f2[0]).unwrap()).unwrap_err();
    assert!(matches!(err, Error::Gap { from: 4, to: 1, expected: 1, got: 2 }), "{err}");
    assert!(err.to_string().contains("4 -> 1"));
    // Bytes that are not a frame, or a frame cut short.
    assert!(matches!(frame::info(b"hello"), Err(Error::Malformed { .. })));
    let cut = &f0[0][..f0[0].len() - 2];
    assert!(matches!(frame::read(&c, cut, &mut Vec::new()), Err(Error::Malformed { .. })));
}
