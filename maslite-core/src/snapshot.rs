//! Snapshots: a whole simulation, between runs, as bytes — and back, on a
//! bare [`Scheduler`](crate::Scheduler) or on any number of partitions.
//!
//! What a snapshot holds is the simulation as one kernel sees it, whatever
//! ran it: the clock, every agent (its id, its place in the order of
//! insertion, its counters, its inbox, its subscriptions, its state), every
//! pending alarm, the mail not yet delivered, and the counters that number
//! what comes next (ids, ordering keys, stamps). Nothing in it depends on
//! placement, because nothing in the trace does: a run saved on two
//! partitions resumes on one or four and goes on exactly as it would have.
//!
//! # What can be saved
//! Trait agents ([`Agent`](crate::Agent)) whose type is registered in
//! [`Types`] (it must be `Serialize + Deserialize`), resting
//! between updates — which every trait agent is between runs unless its
//! update awaits something (a `recv`, a `sleep`, I/O). Agents written as
//! async fns keep their state in a suspended future, which no program can
//! write out: a simulation with one cannot be saved, and
//! [`Error::CannotSave`] names every agent in the way (and every message
//! whose payload type is not registered). To make an async agent saveable,
//! write it as a trait agent whose struct holds what it needs between
//! updates (a state machine: the `sleep` becomes an alarm to itself).
//!
//! # Format (version 1)
//! ```text
//! magic "MASLSNAP" | version u32 LE | body length u64 LE | CRC-32 of body u32 LE | body
//! body: postcard { payload tags, agent tags, the image }
//! ```
//! A reader refuses, with a typed error and never a panic, a file with
//! another magic or version, a truncated or damaged one (checksum), one
//! whose contents contradict themselves (two agents with one id, an inbox
//! mark past its end, an alarm before the clock), and one that holds a
//! type tag it has not registered. It never allocates by a length it read:
//! the body is read as it comes, and sequences grow as they decode.

use crate::envelope::{Envelope, Origin};
use crate::error::{Error, Result, Unsaveable, Unsaved};
use crate::id::AgentId;
use crate::mailing_list::Subscription;
use crate::types::Types;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};

/// The first bytes of every snapshot.
pub const MAGIC: [u8; 8] = *b"MASLSNAP";

/// The format version this build writes and reads.
pub const VERSION: u32 = 1;

const HEADER: usize = 8 + 4 + 8 + 4;

/// Where some bytes (a payload, an agent's state) lie in the image's
/// [`blob`](Image::blob): all of them in one buffer, so that a million
/// agents are not a million small allocations to make and free. Written as
/// its length alone (the bytes follow in the order they are met).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Span {
    pub at: usize,
    pub len: u32,
}

impl Serialize for Span {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_u32(self.len)
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Span, D::Error> {
        // Where it lies is known once all are read (`Image::place_spans`).
        Ok(Span { at: 0, len: u32::deserialize(d)? })
    }
}

impl Span {
    /// Appends what `write` writes to `blob`; where it went.
    pub fn append(
        blob: &mut Vec<u8>,
        write: impl FnOnce(&mut Vec<u8>) -> std::result::Result<(), String>,
    ) -> std::result::Result<Span, String> {
        let at = blob.len();
        if let Err(e) = write(blob) {
            blob.truncate(at);
            return Err(e);
        }
        let len = u32::try_from(blob.len() - at).map_err(|_| "larger than 4 GiB".to_string())?;
        Ok(Span { at, len })
    }

    /// Its bytes in `blob`.
    pub fn of<'b>(&self, blob: &'b [u8]) -> &'b [u8] {
        &blob[self.at..self.at + self.len as usize]
    }
}

/// A message as saved: its addressing, its origin (its place in the one
/// order), and its payload's bytes under its type's tag.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Mail {
    pub tag: u32,
    pub sender: u64,
    pub receiver: Option<u64>,
    pub topic: Option<String>,
    pub direct: bool,
    pub origin: (u64, u64, u64, u64),
    pub payload: Span,
}

/// A subscription as saved.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Pattern {
    pub sender: Option<u64>,
    pub receiver: Option<u64>,
    pub topic: Option<String>,
}

/// An agent as saved.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct AgentImage {
    pub id: u64,
    /// Its ordering key (its place in the order of insertion).
    pub order: u64,
    /// Its type's tag.
    pub tag: u32,
    pub state: Span,
    pub inbox: Vec<Mail>,
    /// The first `visible` envelopes of the inbox were delivered before the
    /// round to come.
    pub visible: u32,
    pub marked: bool,
    pub keep_awake: bool,
    /// Sends and alarms so far, agents added so far (its stamps' counters).
    pub sent: u64,
    pub added: u64,
    pub subscriptions: Vec<Pattern>,
    /// Grants it gave up on that may still reach it: (resource, request).
    pub screens: Vec<(u64, u64)>,
}

/// A pending alarm as saved.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct AlarmImage {
    pub at: f64,
    /// maslite's `ignore_alarm_if_idle`.
    pub ignore_if_idle: bool,
    pub mail: Mail,
}

/// A whole simulation between runs, in memory, as one kernel sees it (see
/// the [module docs](self)). Made by `Scheduler::image` or
/// `Runtime::image`; written with [`write`](Image::write), read with
/// [`read`](Image::read); restored by `Scheduler::from_image` or
/// `Runtime::from_image` — several times, to branch "what if" runs from one
/// state.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Image {
    pub(crate) now: f64,
    /// Runs so far.
    pub(crate) runs: u64,
    /// Rounds that updated an agent so far (`Cx::round`).
    pub(crate) rounds: u64,
    pub(crate) outside_sent: u64,
    pub(crate) outside_added: u64,
    /// The next ordering key and the next id allocated from outside.
    pub(crate) next_key: u64,
    pub(crate) next_id: u64,
    pub(crate) next_request: u64,
    /// In the order of their keys.
    pub(crate) agents: Vec<AgentImage>,
    /// In firing order.
    pub(crate) alarms: Vec<AlarmImage>,
    /// Mail posted and not yet delivered, in origin order.
    pub(crate) undelivered: Vec<Mail>,
    /// The bytes of every payload and state (see [`Span`]); written apart.
    #[serde(skip)]
    pub(crate) blob: Vec<u8>,
}

/// What the file's body holds, as written.
#[derive(Serialize)]
struct BodyOut<'a> {
    payload_tags: Vec<&'a str>,
    agent_tags: Vec<&'a str>,
    image: &'a Image,
    /// The payloads and states, in the order the image meets them.
    #[serde(with = "serde_bytes")]
    blob: &'a [u8],
}

/// What the file's body holds, as read.
#[derive(Deserialize)]
struct Body {
    payload_tags: Vec<String>,
    agent_tags: Vec<String>,
    image: Image,
    #[serde(with = "serde_bytes")]
    blob: Vec<u8>,
}

impl std::fmt::Debug for Image {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Image")
            .field("now", &self.now)
            .field("runs", &self.runs)
            .field("agents", &self.agents.len())
            .field("alarms", &self.alarms.len())
            .field("messages", &self.messages())
            .field("bytes", &self.blob.len())
            .finish_non_exhaustive()
    }
}

impl Image {
    /// The clock when it was saved.
    pub fn now(&self) -> f64 {
        self.now
    }

    /// The saved agents' ids, in the order of insertion.
    pub fn agents(&self) -> impl Iterator<Item = AgentId> + '_ {
        self.agents.iter().map(|a| AgentId(a.id))
    }

    /// The number of pending alarms.
    pub fn alarms(&self) -> usize {
        self.alarms.len()
    }

    /// The number of messages in inboxes and not yet delivered.
    pub fn messages(&self) -> usize {
        self.undelivered.len() + self.agents.iter().map(|a| a.inbox.len()).sum::<usize>()
    }

    /// The bytes of the agents' saved states, all told (what their types
    /// serialize to; the rest of a snapshot is the kernel's).
    pub fn state_bytes(&self) -> usize {
        self.agents.iter().map(|a| a.state.len as usize).sum()
    }

    /// The bytes of the saved messages' payloads, all told.
    pub fn payload_bytes(&self) -> usize {
        let inboxes = self.agents.iter().flat_map(|a| &a.inbox);
        let alarms = self.alarms.iter().map(|a| &a.mail);
        inboxes.chain(alarms).chain(&self.undelivered).map(|m| m.payload.len as usize).sum()
    }

    /// Sends and alarms from outside so far (a runtime's count of them).
    pub fn outside_sent(&self) -> u64 {
        self.outside_sent
    }

    /// The ordering key the next agent added gets.
    pub fn next_key(&self) -> u64 {
        self.next_key
    }

    /// The id the next agent added from outside without one gets (unless
    /// taken).
    pub fn next_id(&self) -> u64 {
        self.next_id
    }

    /// The rounds that updated an agent before it was saved (what
    /// [`Cx::round`](crate::Cx::round) counts).
    pub fn rounds(&self) -> u64 {
        self.rounds
    }

    /// One image of a simulation from its partitions' shares
    /// ([`Driver::image_part`](crate::Driver::image_part)), with the
    /// counters a runtime keeps itself: sends from outside so far, the next
    /// ordering key, the next id it allocates.
    pub fn merge(mut parts: Vec<Image>, outside_sent: u64, next_key: u64, next_id: u64) -> Image {
        // The largest share is the start: the others are copied onto it.
        let largest =
            (0..parts.len()).max_by_key(|&i| parts[i].agents.len() + parts[i].alarms.len());
        let mut whole = largest.map(|i| parts.swap_remove(i)).unwrap_or_default();
        (whole.outside_sent, whole.next_key, whole.next_id) = (outside_sent, next_key, next_id);
        for mut part in parts {
            let base = whole.blob.len();
            part.for_each_span(|s| s.at += base);
            whole.blob.append(&mut part.blob);
            whole.now = whole.now.max(part.now);
            whole.runs = whole.runs.max(part.runs);
            whole.rounds = whole.rounds.max(part.rounds);
            whole.outside_added = whole.outside_added.max(part.outside_added);
            whole.next_request = whole.next_request.max(part.next_request);
            whole.agents.extend(part.agents);
            whole.alarms.extend(part.alarms);
            whole.undelivered.extend(part.undelivered);
        }
        whole.agents.sort_by_key(|a| a.order);
        whole.alarms.sort_by(|a, b| a.at.total_cmp(&b.at).then(a.mail.origin.cmp(&b.mail.origin)));
        whole.undelivered.sort_by_key(|m| m.origin);
        whole
    }

    /// One image of the shares that the hosts of one run saved (each its
    /// own partitions'): [`BadSnapshot`](Error::BadSnapshot) if two shares
    /// hold one agent, or if they were not saved at the same moment of one
    /// run (their clocks or run counts differ).
    pub fn combine(shares: Vec<Image>) -> Result<Image> {
        let Some(first) = shares.first() else {
            return Err(Error::BadSnapshot("no shares to combine".into()));
        };
        let (now, runs) = (first.now, first.runs);
        if let Some(other) = shares.iter().find(|s| s.now != now || s.runs != runs) {
            return Err(Error::BadSnapshot(format!(
                "the shares were saved at different moments (t = {} after {} runs, t = {} after {})",
                now, runs, other.now, other.runs
            )));
        }
        let counters = |f: fn(&Image) -> u64| shares.iter().map(f).max().unwrap_or(0);
        let (outside, next_key, next_id) =
            (counters(|s| s.outside_sent), counters(|s| s.next_key), counters(|s| s.next_id));
        let whole = Image::merge(shares, outside, next_key, next_id);
        if let Some(w) =
            whole.agents.windows(2).find(|w| w[0].id == w[1].id || w[0].order == w[1].order)
        {
            return Err(Error::BadSnapshot(format!("two shares hold agent {}", w[1].id)));
        }
        Ok(whole)
    }

    /// Writes the image (see the [module docs](self) for the format); the
    /// tags are `types`' (the registry the image was made with).
    pub fn write(&self, types: &Types, mut out: impl Write) -> Result<()> {
        // The bytes in the order the reader meets their spans.
        let mut blob = Vec::with_capacity(self.blob.len());
        self.spans(|s| blob.extend_from_slice(s.of(&self.blob)));
        let body = BodyOut {
            payload_tags: types.payload_tags().collect(),
            agent_tags: types.agent_tags().collect(),
            image: self,
            blob: &blob,
        };
        // Sized for the usual record sizes: no growing on the way.
        let guess = blob.len() + 48 * self.agents.len() + 40 * self.alarms.len() + 1024;
        let bytes = postcard::to_extend(&body, Vec::with_capacity(guess))
            .map_err(|e| Error::SnapshotIo(e.to_string()))?;
        let mut header = Vec::with_capacity(HEADER);
        header.extend_from_slice(&MAGIC);
        header.extend_from_slice(&VERSION.to_le_bytes());
        header.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        header.extend_from_slice(&crc32fast::hash(&bytes).to_le_bytes());
        let io = |e: std::io::Error| Error::SnapshotIo(e.to_string());
        out.write_all(&header).map_err(io)?;
        out.write_all(&bytes).map_err(io)?;
        out.flush().map_err(io)
    }

    /// Reads an image written by [`write`](Image::write), with its tags
    /// mapped to `types`' (the reader's registry).
    pub fn read(types: &Types, mut input: impl Read) -> Result<Image> {
        let mut header = [0u8; HEADER];
        read_exact(&mut input, &mut header, "the header")?;
        if header[..8] != MAGIC {
            return Err(Error::BadSnapshot("it does not begin with the snapshot magic".into()));
        }
        let version = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
        if version != VERSION {
            return Err(Error::SnapshotVersion { found: version, supported: VERSION });
        }
        let len = u64::from_le_bytes(header[12..20].try_into().expect("8 bytes"));
        let crc = u32::from_le_bytes(header[20..24].try_into().expect("4 bytes"));
        // Read as it comes: the buffer grows with what is there, not with
        // what the header claims.
        let mut bytes = Vec::new();
        (&mut input)
            .take(len)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::SnapshotIo(e.to_string()))?;
        if (bytes.len() as u64) < len {
            return Err(Error::BadSnapshot(format!(
                "truncated: its body has {} of {len} bytes",
                bytes.len()
            )));
        }
        if crc32fast::hash(&bytes) != crc {
            return Err(Error::BadSnapshot("its checksum does not match its body".into()));
        }
        let body: Body = postcard::from_bytes(&bytes)
            .map_err(|e| Error::BadSnapshot(format!("its body does not decode: {e}")))?;
        let mut image = body.image;
        image.blob = body.blob;
        image.place_spans()?;
        image.retag(types, &body.payload_tags, &body.agent_tags)?;
        image.check()?;
        Ok(image)
    }

    /// Visits every span, in the order a file holds their bytes: each
    /// agent's state then its inbox, the alarms, the undelivered mail.
    fn spans(&self, mut f: impl FnMut(&Span)) {
        for a in &self.agents {
            f(&a.state);
            a.inbox.iter().for_each(|m| f(&m.payload));
        }
        self.alarms.iter().for_each(|a| f(&a.mail.payload));
        self.undelivered.iter().for_each(|m| f(&m.payload));
    }

    /// [`spans`](Self::spans), to change them.
    fn for_each_span(&mut self, mut f: impl FnMut(&mut Span)) {
        for a in &mut self.agents {
            f(&mut a.state);
            a.inbox.iter_mut().for_each(|m| f(&mut m.payload));
        }
        self.alarms.iter_mut().for_each(|a| f(&mut a.mail.payload));
        self.undelivered.iter_mut().for_each(|m| f(&mut m.payload));
    }

    /// Places the spans just read, one after the other in the blob; their
    /// lengths must add up to it.
    fn place_spans(&mut self) -> Result<()> {
        let mut at = 0usize;
        let mut over = false;
        self.for_each_span(|s| {
            s.at = at;
            at = at.saturating_add(s.len as usize);
            over |= at == usize::MAX;
        });
        if over || at != self.blob.len() {
            return Err(Error::BadSnapshot(format!(
                "its payloads and states take {at} bytes, and it holds {}",
                self.blob.len()
            )));
        }
        Ok(())
    }

    /// Maps the file's tag numbers to the reader's registry.
    fn retag(
        &mut self,
        types: &Types,
        payload_tags: &[String],
        agent_tags: &[String],
    ) -> Result<()> {
        let payloads: Vec<Option<u32>> =
            payload_tags.iter().map(|t| types.payload_index(t)).collect();
        let agents: Vec<Option<u32>> = agent_tags.iter().map(|t| types.agent_index(t)).collect();
        let payload = |mail: &mut Mail| -> Result<()> {
            let tag = payload_tags.get(mail.tag as usize).ok_or_else(|| {
                Error::BadSnapshot(format!("a message names payload tag #{}", mail.tag))
            })?;
            mail.tag = payloads[mail.tag as usize]
                .ok_or_else(|| Error::UnknownTag { tag: tag.clone(), agent: false })?;
            Ok(())
        };
        for agent in &mut self.agents {
            let tag = agent_tags.get(agent.tag as usize).ok_or_else(|| {
                Error::BadSnapshot(format!("agent {} names agent tag #{}", agent.id, agent.tag))
            })?;
            agent.tag = agents[agent.tag as usize]
                .ok_or_else(|| Error::UnknownTag { tag: tag.clone(), agent: true })?;
            agent.inbox.iter_mut().try_for_each(payload)?;
        }
        self.alarms.iter_mut().try_for_each(|a| payload(&mut a.mail))?;
        self.undelivered.iter_mut().try_for_each(payload)
    }

    /// Refuses contents that contradict themselves.
    fn check(&self) -> Result<()> {
        let bad = |why: String| Err(Error::BadSnapshot(why));
        if !self.now.is_finite() || self.now < 0.0 {
            return bad(format!("its clock reads {}", self.now));
        }
        // Sized by what was decoded, not by a length read.
        let mut ids = rustc_hash::FxHashSet::default();
        ids.reserve(self.agents.len());
        let mut last_order = None;
        for a in &self.agents {
            if a.id == AgentId::OUTSIDE.0 {
                return bad("an agent has the id of the outside world".into());
            }
            if !ids.insert(a.id) {
                return bad(format!("two agents have the id {}", a.id));
            }
            if last_order.is_some_and(|o| o >= a.order) {
                return bad(format!("agent {} is out of the order of insertion", a.id));
            }
            last_order = Some(a.order);
            if a.visible as usize > a.inbox.len() {
                return bad(format!("agent {}'s inbox mark is past its end", a.id));
            }
        }
        for al in &self.alarms {
            if !al.at.is_finite() || al.at < self.now {
                return bad(format!(
                    "an alarm is set for {} with the clock at {}",
                    al.at, self.now
                ));
            }
        }
        Ok(())
    }
}

fn read_exact(input: &mut impl Read, buf: &mut [u8], what: &str) -> Result<()> {
    input.read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => Error::BadSnapshot(format!("truncated in {what}")),
        _ => Error::SnapshotIo(e.to_string()),
    })
}

impl Mail {
    /// Saves `env`, or says why not. `last` remembers the type of the
    /// message before (mail of one type comes in runs: its number is looked
    /// up once a run).
    pub(crate) fn save(
        types: &Types,
        env: &Envelope,
        last: &mut Option<(&'static str, u32)>,
        blob: &mut Vec<u8>,
    ) -> std::result::Result<Mail, Unsaved> {
        let type_name = env.payload_type();
        let known = last.filter(|(name, _)| std::ptr::eq(*name, type_name)).map(|(_, i)| i);
        let tag = known
            .or_else(|| types.payload_index_of_type(type_name))
            .ok_or(Unsaved::PayloadNotRegistered)?;
        *last = Some((type_name, tag));
        let payload = Span::append(blob, |b| types.encode_payload_at(tag, env, b))
            .map_err(|_| Unsaved::StateWouldNotSerialize)?;
        let o = env.origin();
        Ok(Mail {
            tag,
            sender: env.sender().0,
            receiver: env.receiver().map(|r| r.0),
            topic: env.explicit_topic().map(str::to_string),
            direct: env.is_direct(),
            origin: (o.when, o.round, o.key, o.seq),
            payload,
        })
    }

    /// The envelope again (its payload, from `blob`, decoded
    /// depth-bounded).
    pub(crate) fn load(&self, types: &Types, blob: &[u8]) -> Result<Envelope> {
        let tag = types.payload_tag(self.tag).unwrap_or("?");
        let mut env = types
            .decode_payload_at(self.tag, self.payload.of(blob))
            .map_err(|why| Error::BadSnapshot(format!("a {tag} payload does not decode: {why}")))?;
        env = env.from(AgentId(self.sender));
        if let Some(r) = self.receiver {
            env = env.to(AgentId(r));
        }
        if let Some(t) = &self.topic {
            env = env.topic_is(t.clone());
        }
        if self.direct {
            env = env.direct().map_err(|e| Error::BadSnapshot(e.to_string()))?;
        }
        let (when, round, key, seq) = self.origin;
        env.set_origin(Origin { when, round, key, seq });
        Ok(env)
    }
}

impl Pattern {
    pub(crate) fn save(s: &Subscription) -> Pattern {
        Pattern {
            sender: s.sender.map(|a| a.0),
            receiver: s.receiver.map(|a| a.0),
            topic: s.topic.as_ref().map(|t| t.as_str().to_string()),
        }
    }

    pub(crate) fn load(&self) -> Subscription {
        Subscription {
            sender: self.sender.map(AgentId),
            receiver: self.receiver.map(AgentId),
            topic: self.topic.clone().map(Into::into),
        }
    }
}

/// Collects what keeps a simulation from being saved.
#[derive(Default)]
pub(crate) struct Blockers(pub Vec<Unsaveable>);

impl Blockers {
    pub fn add(&mut self, agent: AgentId, type_name: &str, why: Unsaved) {
        self.0.push(Unsaveable { agent, type_name: type_name.to_string(), why });
    }

    pub fn into_result(self) -> Result<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::CannotSave(self.0))
        }
    }
}
