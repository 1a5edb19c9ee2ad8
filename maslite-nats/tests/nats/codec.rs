//! Envelopes through the codec and back: every header field, payload
//! types unregistered or registered twice, tags unknown on arrival.

use maslite_core::{AgentId, Envelope, Origin};
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
    env.set_origin(Origin { when: 1.5f64.to_bits(), round: 3, key: 5, seq: 42 });
    let mut bytes = Vec::new();
    c.encode(&env, &mut bytes).unwrap();
    let back = c.decode(&bytes).unwrap();
    assert_eq!(back.payload::<Part>().unwrap(), &Part { id: 7, name: "gear".into() });
    assert_eq!(back.sender(), AgentId(3));
    assert_eq!(back.receiver(), Some(AgentId(9)));
    assert_eq!(back.topic(), "parts");
    assert!(back.is_direct());
    assert_eq!(back.origin(), Origin { when: 1.5f64.to_bits(), round: 3, key: 5, seq: 42 });
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

/// A recursive payload type, as a user may register one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Nest {
    Leaf,
    In(Box<Nest>),
}

/// `Nest` `depth` levels deep, as postcard writes it: a variant index per
/// level (0: leaf, 1: one more level), made by hand — encoding a deep
/// value would recurse too.
fn nested_bytes(codec: &Codec, depth: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    codec.encode(&Envelope::new(Nest::Leaf), &mut bytes).unwrap();
    // The header, then the payload: the leaf's one byte, replaced.
    bytes.pop();
    bytes.extend(std::iter::repeat_n(1u8, depth));
    bytes.push(0);
    let len = (bytes.len() - 4) as u32;
    bytes[..4].copy_from_slice(&len.to_le_bytes());
    bytes
}

#[test]
fn a_payload_nested_past_the_bound_is_an_error_not_a_stack_overflow() {
    let mut codec = Codec::new();
    codec.register::<Nest>().unwrap();
    // Within the bound: decoded whole.
    let ok = codec.decode(&nested_bytes(&codec, 100)).unwrap();
    let mut depth = 0;
    let mut at = ok.payload::<Nest>().unwrap();
    while let Nest::In(inner) = at {
        depth += 1;
        at = inner;
    }
    assert_eq!(depth, 100);
    // 50 000 levels (a few bytes each) overflowed a thread's stack before.
    for deep in [maslite_nats::depth::MAX_DEPTH + 1, 50_000] {
        let err = codec.decode(&nested_bytes(&codec, deep)).unwrap_err();
        assert!(matches!(err, Error::Serde { .. }), "{err}");
        assert!(err.to_string().contains("nested deeper than 128 levels"), "{err}");
    }
}
