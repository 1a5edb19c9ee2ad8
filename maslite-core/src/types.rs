//! The types that may leave the process: payloads (to another host, into a
//! snapshot) and agents (into a snapshot), each under a stable tag.
//!
//! On one process a payload is any `Clone + Send` value and an agent any
//! [`Agent`]; bytes carry neither their type nor Rust's name for it, and
//! Rust's names (`std::any::type_name`) are not promised stable between
//! builds. So each type that may be written out is registered once, under a
//! tag that names it in bytes (by default its short type name), and the
//! reader makes the registered type of each tag it meets. One registry
//! serves the NATS transport's codec and snapshots alike: a program
//! registers its types once.

use crate::agent::{Agent, Installer, Resume};
use crate::depth;
use crate::envelope::Envelope;
use crate::error::{Error, Result};
use crate::topic::short_type_name;
use rustc_hash::FxHashMap as HashMap;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::any::Any;
use std::cell::RefCell;

type EncodeFn = fn(&Envelope, &mut Vec<u8>) -> std::result::Result<(), String>;
type DecodeFn = fn(&[u8]) -> std::result::Result<Envelope, String>;
type SaveFn = fn(&dyn Any, &mut Vec<u8>) -> std::result::Result<(), String>;
type LoadFn = fn(&[u8]) -> std::result::Result<Resume, String>;

#[derive(Clone)]
struct Payload {
    tag: String,
    type_name: &'static str,
    encode: EncodeFn,
    decode: DecodeFn,
}

#[derive(Clone)]
struct AgentType {
    tag: String,
    type_name: &'static str,
    save: SaveFn,
    load: LoadFn,
}

/// Tags for types: payloads that may cross hosts or be saved, and agents
/// that may be saved.
///
/// ```
/// use maslite_core::{Agent, Cx, Envelope, Types};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Clone, Serialize, Deserialize)]
/// struct Order { qty: u32 }
///
/// #[derive(Default, Serialize, Deserialize)]
/// struct Book { orders: u64 }
/// impl Agent for Book {
///     async fn update(&mut self, cx: &Cx) {
///         while cx.try_recv().is_some() {
///             self.orders += 1;
///         }
///     }
/// }
///
/// let mut types = Types::new();
/// types.register::<Order>().unwrap().register_agent::<Book>().unwrap();
/// assert_eq!(types.tag_of(&Envelope::new(Order { qty: 1 })), Some("Order"));
/// // One tag, one type.
/// assert!(types.register_as::<u64>("Order").is_err());
/// ```
#[derive(Clone, Default)]
pub struct Types {
    payloads: Vec<Payload>,
    payload_by_type: HashMap<&'static str, usize>,
    payload_by_tag: HashMap<String, usize>,
    agents: Vec<AgentType>,
    agent_by_type: HashMap<&'static str, usize>,
    agent_by_tag: HashMap<String, usize>,
}

impl std::fmt::Debug for Types {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Types")
            .field(
                "payloads",
                &self.payloads.iter().map(|e| (&e.tag, e.type_name)).collect::<Vec<_>>(),
            )
            .field("agents", &self.agents.iter().map(|e| (&e.tag, e.type_name)).collect::<Vec<_>>())
            .finish()
    }
}

/// Checks that neither `tag` nor `type_name` is taken in one namespace.
fn check_free(
    by_tag: &HashMap<String, usize>,
    by_type: &HashMap<&'static str, usize>,
    tags: impl Fn(usize) -> (String, &'static str),
    tag: &str,
    type_name: &'static str,
) -> Result<()> {
    if let Some(&i) = by_tag.get(tag) {
        let (_, first) = tags(i);
        return Err(Error::DuplicateTag { tag: tag.into(), first, second: type_name });
    }
    if let Some(&i) = by_type.get(type_name) {
        let (tag, _) = tags(i);
        return Err(Error::DuplicateTag { tag, first: type_name, second: type_name });
    }
    Ok(())
}

impl Types {
    /// No types registered.
    pub fn new() -> Types {
        Types::default()
    }

    /// Registers payload type `T` under its short type name (maslite's
    /// default topic for it).
    pub fn register<T>(&mut self) -> Result<&mut Types>
    where
        T: Serialize + DeserializeOwned + Any + Send + Clone,
    {
        self.register_as::<T>(short_type_name(std::any::type_name::<T>()))
    }

    /// Registers payload type `T` under `tag` (the same wherever the bytes
    /// are read). A tag or a type registered twice is
    /// [`Error::DuplicateTag`].
    pub fn register_as<T>(&mut self, tag: &str) -> Result<&mut Types>
    where
        T: Serialize + DeserializeOwned + Any + Send + Clone,
    {
        let type_name = std::any::type_name::<T>();
        let payloads = &self.payloads;
        check_free(
            &self.payload_by_tag,
            &self.payload_by_type,
            |i| (payloads[i].tag.clone(), payloads[i].type_name),
            tag,
            type_name,
        )?;
        fn encode<T: Serialize + Any>(
            env: &Envelope,
            out: &mut Vec<u8>,
        ) -> std::result::Result<(), String> {
            let payload = env.payload::<T>().map_err(|e| e.to_string())?;
            *out = postcard::to_extend(payload, std::mem::take(out)).map_err(|e| e.to_string())?;
            Ok(())
        }
        fn decode<T: DeserializeOwned + Any + Send + Clone>(
            bytes: &[u8],
        ) -> std::result::Result<Envelope, String> {
            depth::decode::<T>(bytes).map(Envelope::new)
        }
        let i = self.payloads.len();
        self.payloads.push(Payload {
            tag: tag.into(),
            type_name,
            encode: encode::<T>,
            decode: decode::<T>,
        });
        self.payload_by_type.insert(type_name, i);
        self.payload_by_tag.insert(tag.into(), i);
        Ok(self)
    }

    /// Registers agent type `A`, so that snapshots can save and restore it,
    /// under its short type name. (`Send`: a restored agent can move
    /// between partitions, as one added from outside can.)
    pub fn register_agent<A>(&mut self) -> Result<&mut Types>
    where
        A: Agent + Send + Serialize + DeserializeOwned,
    {
        self.register_agent_as::<A>(short_type_name(std::any::type_name::<A>()))
    }

    /// Registers agent type `A` under `tag` (agents and payloads have tags
    /// of their own: an agent type may share its tag with a payload type).
    pub fn register_agent_as<A>(&mut self, tag: &str) -> Result<&mut Types>
    where
        A: Agent + Send + Serialize + DeserializeOwned,
    {
        let type_name = std::any::type_name::<A>();
        let agents = &self.agents;
        check_free(
            &self.agent_by_tag,
            &self.agent_by_type,
            |i| (agents[i].tag.clone(), agents[i].type_name),
            tag,
            type_name,
        )?;
        fn save<A: Agent + Serialize>(
            cell: &dyn Any,
            out: &mut Vec<u8>,
        ) -> std::result::Result<(), String> {
            let cell = cell.downcast_ref::<RefCell<A>>().ok_or("not this agent type")?;
            let agent = cell.try_borrow().map_err(|_| "inside an update")?;
            *out = postcard::to_extend(&*agent, std::mem::take(out)).map_err(|e| e.to_string())?;
            Ok(())
        }
        fn load<A: Agent + Send + DeserializeOwned>(
            bytes: &[u8],
        ) -> std::result::Result<Resume, String> {
            let agent = depth::decode::<A>(bytes)?;
            Ok(Box::new(move || Installer::resumed(agent)))
        }
        let i = self.agents.len();
        self.agents.push(AgentType {
            tag: tag.into(),
            type_name,
            save: save::<A>,
            load: load::<A>,
        });
        self.agent_by_type.insert(type_name, i);
        self.agent_by_tag.insert(tag.into(), i);
        Ok(self)
    }

    /// The tag an envelope's payload type is registered under.
    pub fn tag_of(&self, env: &Envelope) -> Option<&str> {
        self.payload_by_type.get(env.payload_type()).map(|&i| self.payloads[i].tag.as_str())
    }

    /// Whether payloads of this type (as Rust names it) are registered.
    pub fn knows(&self, type_name: &str) -> bool {
        self.payload_by_type.contains_key(type_name)
    }

    /// Whether agents of this type (as Rust names it) are registered.
    pub fn knows_agent(&self, type_name: &str) -> bool {
        self.agent_by_type.contains_key(type_name)
    }

    /// Appends the payload of `env` to `out`; returns its type's tag, or
    /// `Err(None)` if its type is not registered, `Err(Some(why))` if it
    /// would not serialize.
    pub fn encode_payload(
        &self,
        env: &Envelope,
        out: &mut Vec<u8>,
    ) -> std::result::Result<&str, Option<String>> {
        let &i = self.payload_by_type.get(env.payload_type()).ok_or(None)?;
        let entry = &self.payloads[i];
        (entry.encode)(env, out).map_err(Some)?;
        Ok(&entry.tag)
    }

    /// An envelope (from outside, default topic) with the payload of type
    /// `tag` decoded from `bytes` (depth-bounded, see [`depth`]); `Err(None)`
    /// if the tag is unknown, `Err(Some(why))` if the bytes do not decode.
    pub fn decode_payload(
        &self,
        tag: &str,
        bytes: &[u8],
    ) -> std::result::Result<Envelope, Option<String>> {
        let &i = self.payload_by_tag.get(tag).ok_or(None)?;
        (self.payloads[i].decode)(bytes).map_err(Some)
    }

    /// The payload tags, in the order of registration.
    pub(crate) fn payload_tags(&self) -> impl Iterator<Item = &str> {
        self.payloads.iter().map(|e| e.tag.as_str())
    }

    /// The agent tags, in the order of registration.
    pub(crate) fn agent_tags(&self) -> impl Iterator<Item = &str> {
        self.agents.iter().map(|e| e.tag.as_str())
    }

    pub(crate) fn payload_index(&self, tag: &str) -> Option<u32> {
        self.payload_by_tag.get(tag).map(|&i| i as u32)
    }

    pub(crate) fn agent_index(&self, tag: &str) -> Option<u32> {
        self.agent_by_tag.get(tag).map(|&i| i as u32)
    }

    pub(crate) fn payload_tag(&self, index: u32) -> Option<&str> {
        self.payloads.get(index as usize).map(|e| e.tag.as_str())
    }

    pub(crate) fn agent_tag(&self, index: u32) -> Option<&str> {
        self.agents.get(index as usize).map(|e| e.tag.as_str())
    }

    /// The payload of registered type number `index` decoded from `bytes`.
    pub(crate) fn decode_payload_at(
        &self,
        index: u32,
        bytes: &[u8],
    ) -> std::result::Result<Envelope, String> {
        let entry = self.payloads.get(index as usize).ok_or("no such payload type")?;
        (entry.decode)(bytes)
    }

    /// The number of the registered payload type named `type_name` by Rust.
    pub(crate) fn payload_index_of_type(&self, type_name: &str) -> Option<u32> {
        self.payload_by_type.get(type_name).map(|&i| i as u32)
    }

    /// Appends the payload of `env`, of registered type number `index`.
    pub(crate) fn encode_payload_at(
        &self,
        index: u32,
        env: &Envelope,
        out: &mut Vec<u8>,
    ) -> std::result::Result<(), String> {
        let entry = self.payloads.get(index as usize).ok_or("no such payload type")?;
        (entry.encode)(env, out)
    }

    /// The number of the registered agent type named `type_name` by Rust.
    pub(crate) fn agent_index_of_type(&self, type_name: &str) -> Option<u32> {
        self.agent_by_type.get(type_name).map(|&i| i as u32)
    }

    /// Appends the state of the agent in `cell` (the `RefCell<A>` of a
    /// trait agent of registered type number `index`) to `out`.
    pub(crate) fn save_agent(
        &self,
        index: u32,
        cell: &dyn Any,
        out: &mut Vec<u8>,
    ) -> std::result::Result<(), String> {
        let entry = self.agents.get(index as usize).ok_or("not registered")?;
        (entry.save)(cell, out)
    }

    /// An agent of registered type number `index` made from its saved
    /// state, packed to resume between updates (as a moving agent is).
    pub(crate) fn load_agent(
        &self,
        index: u32,
        bytes: &[u8],
    ) -> std::result::Result<Resume, String> {
        let entry = self.agents.get(index as usize).ok_or("no such agent type")?;
        (entry.load)(bytes)
    }
}
