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
