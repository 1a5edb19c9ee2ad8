//! Envelopes to bytes and back.
//!
//! On one host a payload is any `Clone + Send` value; across hosts it must
//! be serializable, and the receiving host must know which type to make of
//! the bytes. So each payload type that may cross is registered once, under
//! a tag that names it on the wire (by default its short type name, the
//! topic maslite gives it). An envelope travels as its header — tag,
//! sender, receiver, topic (when not the default), direct flag, origin —
//! then its payload, all in postcard's compact varint format. A payload
//! from the network nests at most [`MAX_DEPTH`](crate::depth::MAX_DEPTH)
//! levels deep ([`depth`](crate::depth)).

use crate::error::{Error, Result};
use maslite_core::{AgentId, Envelope, Origin, Types};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::any::Any;

/// The payload types that may cross hosts, by type and by tag.
///
/// ```
/// use maslite_core::{AgentId, Envelope};
/// use maslite_nats::{Codec, Error};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
/// struct Order { qty: u32 }
///
/// let mut codec = Codec::new();
/// codec.register::<Order>().unwrap();
/// let env = Envelope::new(Order { qty: 3 }).from(AgentId(1)).to(AgentId(2));
/// let mut bytes = Vec::new();
/// codec.encode(&env, &mut bytes).unwrap();
/// let back = codec.decode(&bytes).unwrap();
/// assert_eq!(back.payload::<Order>().unwrap(), &Order { qty: 3 });
/// assert_eq!((back.sender(), back.receiver()), (AgentId(1), Some(AgentId(2))));
///
/// // A type nobody registered is named in the error.
/// let err = codec.encode(&Envelope::new(7u64), &mut bytes).unwrap_err();
/// assert!(matches!(err, Error::Unregistered { type_name: "u64" }));
/// ```
///
/// The codec keeps its types in a [`Types`] registry, the one snapshots use
/// too: register once ([`Codec::from_types`]) for both.
#[derive(Debug, Default)]
pub struct Codec {
    types: Types,
}

/// An envelope's header on the wire.
#[derive(Serialize, Deserialize)]
struct Header<'a> {
    tag: &'a str,
    sender: u64,
    receiver: Option<u64>,
    /// `None`: the payload's default topic.
    topic: Option<&'a str>,
    direct: bool,
    when: u64,
    round: u64,
    key: u64,
    seq: u64,
}

impl Codec {
    /// No types registered.
    pub fn new() -> Codec {
        Codec::default()
    }

    /// A codec for the payload types of `types` (the registry snapshots
    /// use: one registration serves both).
    pub fn from_types(types: Types) -> Codec {
        Codec { types }
    }

    /// Its registry.
    pub fn types(&self) -> &Types {
        &self.types
    }

    /// Registers `T` under its short type name (maslite's default topic).
    pub fn register<T>(&mut self) -> Result<()>
    where
        T: Serialize + DeserializeOwned + Any + Send + Clone,
    {
        self.types.register::<T>().map(|_| ()).map_err(from_core)
    }

    /// Registers `T` under `tag` (the same on every host).
    pub fn register_as<T>(&mut self, tag: &str) -> Result<()>
    where
        T: Serialize + DeserializeOwned + Any + Send + Clone,
    {
        self.types.register_as::<T>(tag).map(|_| ()).map_err(from_core)
    }

    /// The tag an envelope's payload type is registered under.
    pub fn tag_of(&self, env: &Envelope) -> Option<&str> {
        self.types.tag_of(env)
    }

    /// Whether envelopes of this payload type name may cross hosts.
    pub fn knows(&self, type_name: &str) -> bool {
        self.types.knows(type_name)
    }

    /// Appends `env` to `out`: its length (u32, little-endian), then header
    /// and payload.
    pub fn encode(&self, env: &Envelope, out: &mut Vec<u8>) -> Result<()> {
        let type_name = env.payload_type();
        let Some(tag) = self.types.tag_of(env) else {
            return Err(Error::Unregistered { type_name });
        };
        let origin = env.origin();
        let header = Header {
            tag,
            sender: env.sender().0,
            receiver: env.receiver().map(|r| r.0),
            topic: env.explicit_topic(),
            direct: env.is_direct(),
            when: origin.when,
            round: origin.round,
            key: origin.key,
            seq: origin.seq,
        };
        let start = out.len();
        out.extend_from_slice(&[0; 4]);
        let serde = |message: String| Error::Serde { tag: tag.to_string(), message };
        *out =
            postcard::to_extend(&header, std::mem::take(out)).map_err(|e| serde(e.to_string()))?;
        self.types.encode_payload(env, out).map_err(|e| serde(e.unwrap_or_default()))?;
        let len = (out.len() - start - 4) as u32;
        out[start..start + 4].copy_from_slice(&len.to_le_bytes());
        Ok(())
    }

    /// An envelope from the bytes [`encode`](Self::encode) made (without
    /// the length prefix).
    pub fn decode(&self, bytes: &[u8]) -> Result<Envelope> {
        let bytes = bytes.get(4..).ok_or_else(|| Error::Serde {
            tag: String::new(),
            message: "shorter than its length prefix".into(),
        })?;
        self.decode_body(bytes)
    }

    /// An envelope from its header and payload bytes.
    pub(crate) fn decode_body(&self, bytes: &[u8]) -> Result<Envelope> {
        let (header, payload): (Header<'_>, &[u8]) = postcard::take_from_bytes(bytes)
            .map_err(|e| Error::Serde { tag: String::new(), message: e.to_string() })?;
        let mut env = match self.types.decode_payload(header.tag, payload) {
            Ok(env) => env.from(AgentId(header.sender)),
            Err(None) => return Err(Error::UnknownTag { tag: header.tag.into() }),
            Err(Some(message)) => return Err(Error::Serde { tag: header.tag.into(), message }),
        };
        if let Some(r) = header.receiver {
            env = env.to(AgentId(r));
        }
        if let Some(t) = header.topic {
            env = env.topic_is(t.to_string());
        }
        if header.direct {
            env = env
                .direct()
                .map_err(|e| Error::Serde { tag: header.tag.into(), message: e.to_string() })?;
        }
        env.set_origin(Origin {
            when: header.when,
            round: header.round,
            key: header.key,
            seq: header.seq,
        });
        Ok(env)
    }
}

/// The registry's refusal as the transport's error.
fn from_core(e: maslite_core::Error) -> Error {
    match e {
        maslite_core::Error::DuplicateTag { tag, first, second } => {
            Error::DuplicateTag { tag, first, second }
        }
        other => Error::Serde { tag: String::new(), message: other.to_string() },
    }
}
