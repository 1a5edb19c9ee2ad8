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

use crate::depth::{Bounded, Budget, MAX_DEPTH};
use crate::error::{Error, Result};
use maslite_core::{AgentId, Envelope, Origin};
use rustc_hash::FxHashMap as HashMap;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::any::Any;

type EncodeFn = fn(&Envelope, &mut Vec<u8>) -> std::result::Result<(), postcard::Error>;
/// Decodes a payload; the error says why (the depth bound's, or postcard's).
type DecodeFn = fn(&[u8]) -> std::result::Result<Envelope, String>;

struct Entry {
    tag: String,
    type_name: &'static str,
    encode: EncodeFn,
    decode: DecodeFn,
}

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
#[derive(Default)]
pub struct Codec {
    entries: Vec<Entry>,
    by_type: HashMap<&'static str, usize>,
    by_tag: HashMap<String, usize>,
}

impl std::fmt::Debug for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.entries.iter().map(|e| (&e.tag, e.type_name))).finish()
    }
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

fn short_type_name(name: &str) -> &str {
    let base = name.split('<').next().unwrap_or(name);
    base.rsplit("::").next().unwrap_or(base)
}

impl Codec {
    /// No types registered.
    pub fn new() -> Codec {
        Codec::default()
    }

    /// Registers `T` under its short type name (maslite's default topic).
    pub fn register<T>(&mut self) -> Result<()>
    where
        T: Serialize + DeserializeOwned + Any + Send + Clone,
    {
        let name = short_type_name(std::any::type_name::<T>()).to_string();
        self.register_as::<T>(&name)
    }

    /// Registers `T` under `tag` (the same on every host).
    pub fn register_as<T>(&mut self, tag: &str) -> Result<()>
    where
        T: Serialize + DeserializeOwned + Any + Send + Clone,
    {
        let type_name = std::any::type_name::<T>();
        if let Some(&i) = self.by_tag.get(tag) {
            return Err(Error::DuplicateTag {
                tag: tag.into(),
                first: self.entries[i].type_name,
                second: type_name,
            });
        }
        if let Some(&i) = self.by_type.get(type_name) {
            return Err(Error::DuplicateTag {
                tag: self.entries[i].tag.clone(),
                first: type_name,
                second: type_name,
            });
        }
        fn encode<T: Serialize + Any>(
            env: &Envelope,
            out: &mut Vec<u8>,
        ) -> std::result::Result<(), postcard::Error> {
            let payload = env.payload::<T>().map_err(|_| postcard::Error::SerializeBufferFull)?;
            *out = postcard::to_extend(payload, std::mem::take(out))?;
            Ok(())
        }
        fn decode<T: DeserializeOwned + Any + Send + Clone>(
            bytes: &[u8],
        ) -> std::result::Result<Envelope, String> {
            // Bounded in depth: a payload nested too deep is an error, not
            // a stack overflow (see `depth`).
            let budget = Budget::new(MAX_DEPTH);
            let mut de = postcard::Deserializer::from_bytes(bytes);
            match T::deserialize(Bounded { de: &mut de, budget: &budget }) {
                Ok(payload) => Ok(Envelope::new(payload)),
                Err(_) if budget.met() => {
                    Err(format!("nested deeper than {MAX_DEPTH} levels (the decoder's bound)"))
                }
                Err(e) => Err(e.to_string()),
            }
        }
        let i = self.entries.len();
        self.entries.push(Entry {
            tag: tag.into(),
            type_name,
            encode: encode::<T>,
            decode: decode::<T>,
        });
        self.by_type.insert(type_name, i);
        self.by_tag.insert(tag.into(), i);
        Ok(())
    }

    /// The tag an envelope's payload type is registered under.
    pub fn tag_of(&self, env: &Envelope) -> Option<&str> {
        self.by_type.get(env.payload_type()).map(|&i| self.entries[i].tag.as_str())
    }

    /// Whether envelopes of this payload type name may cross hosts.
    pub fn knows(&self, type_name: &str) -> bool {
        self.by_type.contains_key(type_name)
    }

    /// Appends `env` to `out`: its length (u32, little-endian), then header
    /// and payload.
    pub fn encode(&self, env: &Envelope, out: &mut Vec<u8>) -> Result<()> {
        let type_name = env.payload_type();
        let Some(&i) = self.by_type.get(type_name) else {
            return Err(Error::Unregistered { type_name });
        };
        let entry = &self.entries[i];
        let origin = env.origin();
        let header = Header {
            tag: &entry.tag,
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
        let serde =
            |e: postcard::Error| Error::Serde { tag: entry.tag.clone(), message: e.to_string() };
        *out = postcard::to_extend(&header, std::mem::take(out)).map_err(serde)?;
        (entry.encode)(env, out).map_err(serde)?;
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
        let Some(&i) = self.by_tag.get(header.tag) else {
            return Err(Error::UnknownTag { tag: header.tag.into() });
        };
        let entry = &self.entries[i];
        let mut env = (entry.decode)(payload)
            .map_err(|message| Error::Serde { tag: entry.tag.clone(), message })?
            .from(AgentId(header.sender));
        if let Some(r) = header.receiver {
            env = env.to(AgentId(r));
        }
        if let Some(t) = header.topic {
            env = env.topic_is(t.to_string());
        }
        if header.direct {
            env = env
                .direct()
                .map_err(|e| Error::Serde { tag: entry.tag.clone(), message: e.to_string() })?;
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
