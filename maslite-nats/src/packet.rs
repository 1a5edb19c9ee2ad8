//! Packets between partitions of different hosts, as NATS frames.
//!
//! A partition sends every other one a control per step, then maybe a mail
//! batch (see `maslite_runtime::transport`). Across hosts each such packet
//! is encoded — a control by [`control::encode`], mail as its (recipient,
//! envelope) pairs through the [`Codec`] — and the bytes are cut into
//! frames under the server's `max_payload`, so any packet fits, however
//! large (a million agents added in one step, a payload of megabytes).
//!
//! A frame: `b"MSP2"`, source and destination host (u16), the link's
//! sequence number (u64), flags (u8: 1 = the packet's last frame, 2 = the
//! sender's runtime stopped, 4 = the sender failed: the body is its
//! message), source and destination partition (u16), kind (u8: 0 control,
//! 1 mail), then the packet's bytes from where the previous frame stopped,
//! then, with a run key, the frame's tag ([`seal`](crate::seal)).
//! All little-endian. Per link (source host → destination host) frames
//! are numbered from 0: NATS delivers one publisher's messages in order or
//! drops them (a slow consumer), so a gap is loss, and
//! [`Error::Gap`] names the link.
//!
//! # Every byte is hostile
//!
//! What the reader does with a frame, in order (the first that applies):
//!
//! | the frame | with a run key | without |
//! |---|---|---|
//! | not a frame (short, other magic) | dropped, counted | [`Error::Malformed`] |
//! | claims to come from this host | dropped, counted | dropped, counted |
//! | for another host, from a host the run lacks | dropped, counted | [`Error::Malformed`] |
//! | its tag does not verify | dropped, counted | — |
//! | a sequence number taken already | dropped, counted (a replay) | [`Error::Duplicate`] |
//! | a sequence number past the one due | [`Error::Gap`] (loss) | [`Error::Gap`] |
//! | a packet over [`PacketReader::with_limit`] | [`Error::TooLarge`] | [`Error::TooLarge`] |
//! | a packet that does not decode, or between partitions not on its hosts | [`Error::Malformed`] naming the link | the same |
//!
//! Dropped frames are counted in [`Rejections`] and never acted on (with a
//! key, anything that fails the run would let an outsider stop it); an
//! error fails the run on every host, naming the link. Only one packet per
//! link is ever partly there (a link's frames come in order), so partial
//! packets hold at most `hosts × limit` bytes.

use crate::codec::Codec;
use crate::control;
use crate::error::{Error, Result};
use crate::rejections::{Rejection, Rejections};
use crate::seal::LinkSeal;
use bytes::Bytes;
use maslite_core::AgentId;
use maslite_runtime::transport::{Packet, Sent};

const MAGIC: &[u8; 4] = b"MSP2";
/// Bytes before a frame's share of the packet.
pub const HEADER: usize = 4 + 2 + 2 + 8 + 1 + 2 + 2 + 1;
const LAST: u8 = 1;
const BYE: u8 = 2;
const ABORT: u8 = 4;
const CONTROL: u8 = 0;
const MAIL: u8 = 1;
/// The default largest packet (bytes) on a link: 256 MiB.
pub const MAX_PACKET: usize = 256 << 20;

/// What a frame says besides a packet's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Head {
    from_host: u16,
    to_host: u16,
    seq: u64,
    flags: u8,
    from: u16,
    to: u16,
    kind: u8,
}

fn head(frame: &[u8]) -> Option<Head> {
    if frame.len() < HEADER || &frame[..4] != MAGIC {
        return None;
    }
    let u16_at = |i: usize| u16::from_le_bytes([frame[i], frame[i + 1]]);
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&frame[8..16]);
    Some(Head {
        from_host: u16_at(4),
        to_host: u16_at(6),
        seq: u64::from_le_bytes(seq),
        flags: frame[16],
        from: u16_at(17),
        to: u16_at(19),
        kind: frame[21],
    })
}

/// Packets from one host to one other host, as frames.
#[derive(Debug)]
pub struct PacketWriter {
    from_host: u16,
    to_host: u16,
    next: u64,
    max: usize,
    body: Vec<u8>,
    seal: Option<LinkSeal>,
    limit: usize,
}

impl PacketWriter {
    /// Frames for link `from_host → to_host`, each at most `max_payload`
    /// bytes, not sealed (see [`with_seal`](Self::with_seal)).
    pub fn new(from_host: u16, to_host: u16, max_payload: usize) -> PacketWriter {
        PacketWriter {
            from_host,
            to_host,
            next: 0,
            max: max_payload.max(HEADER + 64 + 32),
            body: Vec::new(),
            seal: None,
            limit: MAX_PACKET,
        }
    }

    /// Seals every frame with the link's key (`None`: none).
    pub fn with_seal(mut self, seal: Option<LinkSeal>) -> PacketWriter {
        self.seal = seal;
        self
    }

    /// Refuses packets over `bytes` ([`Error::TooLarge`]; default
    /// [`MAX_PACKET`]): the receiving host refuses them too.
    pub fn with_limit(mut self, bytes: usize) -> PacketWriter {
        self.limit = bytes;
        self
    }

    /// How many bytes of a packet one frame carries.
    fn room(&self) -> usize {
        self.max - HEADER - self.seal.as_ref().map_or(0, LinkSeal::tag_len)
    }

    fn frame(&mut self, flags: u8, from: u16, to: u16, kind: u8, part: &[u8]) -> Bytes {
        let tag = self.seal.as_ref().map_or(0, LinkSeal::tag_len);
        let mut f = Vec::with_capacity(HEADER + part.len() + tag);
        f.extend_from_slice(MAGIC);
        f.extend_from_slice(&self.from_host.to_le_bytes());
        f.extend_from_slice(&self.to_host.to_le_bytes());
        f.extend_from_slice(&self.next.to_le_bytes());
        f.push(flags);
        f.extend_from_slice(&from.to_le_bytes());
        f.extend_from_slice(&to.to_le_bytes());
        f.push(kind);
        f.extend_from_slice(part);
        if let Some(seal) = &self.seal {
            seal.seal(self.next, HEADER, &mut f);
        }
        self.next += 1;
        Bytes::from(f)
    }

    /// One packet as frames, appended to `out`. A payload type that is
    /// not registered is [`Error::Unregistered`]; then no frame is made
    /// (the sequence does not move).
    pub fn packet(&mut self, codec: &Codec, sent: Sent, out: &mut Vec<Bytes>) -> Result<()> {
        self.body.clear();
        let kind = match sent.packet {
            Packet::Control(c) => {
                control::encode(codec, &c, &mut self.body)?;
                CONTROL
            }
            Packet::Mail(batch) => {
                self.body.extend_from_slice(&(batch.len() as u32).to_le_bytes());
                for (recipient, env) in &batch {
                    self.body.extend_from_slice(&recipient.0.to_le_bytes());
                    codec.encode(env, &mut self.body)?;
                }
                MAIL
            }
            // Refused by the runtime's configuration before any run (free
            // mode), or by the partition (a body does not cross hosts).
            Packet::Changes(_) | Packet::LastWord | Packet::Start(_) => {
                return Err(Error::Malformed {
                    from: sent.from as u16,
                    to: sent.to as u16,
                    message: "free mode's packets do not cross hosts".into(),
                })
            }
        };
        let (from, to) = (sent.from as u16, sent.to as u16);
        if self.body.len() > self.limit {
            return Err(Error::TooLarge {
                from: self.from_host,
                to: self.to_host,
                limit: self.limit,
            });
        }
        let body = std::mem::take(&mut self.body);
        let room = self.room();
        let mut chunks = body.chunks(room).peekable();
        if chunks.peek().is_none() {
            out.push(self.frame(LAST, from, to, kind, &[]));
        }
        while let Some(part) = chunks.next() {
            let flags = if chunks.peek().is_none() { LAST } else { 0 };
            out.push(self.frame(flags, from, to, kind, part));
        }
        self.body = body;
        Ok(())
    }

    /// The frame that tells the other host this one's runtime stopped
    /// (after its last packet).
    pub fn bye(&mut self) -> Bytes {
        self.frame(BYE | LAST, 0, 0, 0, &[])
    }

    /// The frame that tells the other host this one failed, and why.
    pub fn abort(&mut self, why: &str) -> Bytes {
        let mut cut = why.len().min(self.room());
        while !why.is_char_boundary(cut) {
            cut -= 1;
        }
        let why = &why.as_bytes()[..cut];
        self.frame(ABORT | LAST, 0, 0, 0, why)
    }
}

/// What a frame brought.
#[derive(Debug)]
pub enum Arrival {
    /// Part of a packet: more frames follow.
    Partial,
    /// A whole packet from partition `from` to partition `to`.
    Packet {
        /// The sending partition.
        from: usize,
        /// The receiving partition.
        to: usize,
        /// The packet.
        packet: Packet,
    },
    /// The sending host's runtime stopped: nothing more comes from it.
    Bye(u16),
    /// The sending host failed, saying why (control characters escaped:
    /// safe to print).
    Abort(u16, String),
    /// The frame was dropped and counted, never acted on (see the [module
    /// docs](self)).
    Dropped(Rejection),
}

/// `text` with control characters escaped (`\n`, `\u{1b}`): a remote
/// text, safe to print on one line.
pub fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Packets from every other host, put back together and checked (see the
/// [module docs](self)).
#[derive(Debug)]
pub struct PacketReader {
    me: u16,
    expected: Vec<u64>,
    partial: Vec<Vec<u8>>,
    /// Per source host, the link's seal; `None` for all: insecure.
    seals: Option<Vec<Option<LinkSeal>>>,
    /// The host of each partition, when known.
    owners: Option<Vec<u16>>,
    limit: usize,
    scratch: Vec<u8>,
    rejections: Rejections,
}

impl PacketReader {
    /// Reads frames for host `me` from `hosts` hosts, not sealed (see
    /// [`with_seals`](Self::with_seals)).
    pub fn new(me: u16, hosts: u16) -> PacketReader {
        PacketReader {
            me,
            expected: vec![0; hosts as usize],
            partial: (0..hosts).map(|_| Vec::new()).collect(),
            seals: None,
            owners: None,
            limit: MAX_PACKET,
            scratch: Vec::new(),
            rejections: Rejections::new(),
        }
    }

    /// Frames must be sealed with their link's key: `seals[h]` for the
    /// link from host `h` (this host's own entry is never used).
    pub fn with_seals(mut self, seals: Vec<Option<LinkSeal>>) -> PacketReader {
        self.seals = Some(seals);
        self
    }

    /// Packets must be between partitions of their hosts: partition `p`
    /// runs on host `owners[p]`.
    pub fn with_owners(mut self, owners: Vec<u16>) -> PacketReader {
        self.owners = Some(owners);
        self
    }

    /// A packet over `bytes` is [`Error::TooLarge`] (default
    /// [`MAX_PACKET`]).
    pub fn with_limit(mut self, bytes: usize) -> PacketReader {
        self.limit = bytes;
        self
    }

    /// Counts dropped frames into `rejections` (shared).
    pub fn with_rejections(mut self, rejections: Rejections) -> PacketReader {
        self.rejections = rejections;
        self
    }

    /// The counts of dropped frames.
    pub fn rejections(&self) -> &Rejections {
        &self.rejections
    }

    fn drop_frame(&self, kind: Rejection, from: Option<u16>) -> Result<Arrival> {
        self.rejections.count(kind, self.me, from);
        Ok(Arrival::Dropped(kind))
    }

    /// Takes one frame: see the [module docs](self) for what is dropped
    /// and what is an error.
    pub fn read(&mut self, codec: &Codec, frame: &[u8]) -> Result<Arrival> {
        let sealed = self.seals.is_some();
        let Some(h) = head(frame) else {
            if sealed {
                return self.drop_frame(Rejection::Malformed, None);
            }
            return Err(Error::Malformed {
                from: 0,
                to: 0,
                message: "not a maslite packet frame".into(),
            });
        };
        let malformed =
            |message: String| Error::Malformed { from: h.from_host, to: h.to_host, message };
        if h.from_host == self.me {
            return self.drop_frame(Rejection::Foreign, Some(h.from_host));
        }
        if h.to_host != self.me || h.from_host as usize >= self.expected.len() {
            if sealed {
                return self.drop_frame(Rejection::Foreign, Some(h.from_host));
            }
            return Err(malformed(format!(
                "received by host {} of {}",
                self.me,
                self.expected.len()
            )));
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        let result = self.take(codec, h, frame, &mut scratch);
        self.scratch = scratch;
        result
    }

    fn take(
        &mut self,
        codec: &Codec,
        h: Head,
        frame: &[u8],
        scratch: &mut Vec<u8>,
    ) -> Result<Arrival> {
        let q = h.from_host as usize;
        let part = match &self.seals {
            None => &frame[HEADER..],
            Some(seals) => {
                let opened = seals
                    .get(q)
                    .and_then(Option::as_ref)
                    .and_then(|seal| seal.open(h.seq, HEADER, frame, scratch));
                match opened {
                    Some(part) => part,
                    None => return self.drop_frame(Rejection::Forged, Some(h.from_host)),
                }
            }
        };
        if h.seq < self.expected[q] {
            if self.seals.is_some() {
                return self.drop_frame(Rejection::Replayed, Some(h.from_host));
            }
            return Err(Error::Duplicate {
                from: h.from_host,
                to: h.to_host,
                expected: self.expected[q],
                got: h.seq,
            });
        }
        if h.seq != self.expected[q] {
            return Err(Error::Gap {
                from: h.from_host,
                to: h.to_host,
                expected: self.expected[q],
                got: h.seq,
            });
        }
        self.expected[q] += 1;
        let malformed =
            |message: String| Error::Malformed { from: h.from_host, to: h.to_host, message };
        if h.flags & ABORT != 0 {
            let why = String::from_utf8_lossy(part);
            return Ok(Arrival::Abort(h.from_host, escaped(&why)));
        }
        if h.flags & BYE != 0 {
            return Ok(Arrival::Bye(h.from_host));
        }
        if self.partial[q].len() + part.len() > self.limit {
            self.partial[q] = Vec::new();
            return Err(Error::TooLarge { from: h.from_host, to: h.to_host, limit: self.limit });
        }
        if h.flags & LAST == 0 {
            self.partial[q].extend_from_slice(part);
            return Ok(Arrival::Partial);
        }
        let (from, to) = (h.from as usize, h.to as usize);
        if let Some(owners) = &self.owners {
            if owners.get(from) != Some(&h.from_host) || owners.get(to) != Some(&self.me) {
                return Err(malformed(format!(
                    "a packet from partition {from} to partition {to}: not partitions of hosts {} and {}",
                    h.from_host, self.me
                )));
            }
        }
        // Most packets are one frame: read in place.
        let whole;
        let body: &[u8] = if self.partial[q].is_empty() {
            part
        } else {
            self.partial[q].extend_from_slice(part);
            whole = std::mem::take(&mut self.partial[q]);
            &whole
        };
        let named = |e: Error| match e {
            Error::Malformed { message, .. } => malformed(message),
            Error::Serde { tag, message } => malformed(format!("payload {tag:?}: {message}")),
            e => e,
        };
        let packet = match h.kind {
            CONTROL => Packet::Control(control::decode(codec, body).map_err(named)?),
            MAIL => Packet::Mail(read_mail(codec, body).map_err(named)?),
            k => return Err(malformed(format!("unknown packet kind {k}"))),
        };
        Ok(Arrival::Packet { from, to, packet })
    }
}

fn read_mail(codec: &Codec, body: &[u8]) -> Result<Vec<(AgentId, maslite_core::Envelope)>> {
    let malformed = |m: String| Error::Malformed { from: 0, to: 0, message: m };
    let count = body.get(..4).ok_or_else(|| malformed("a mail batch cut short".into()))?;
    let count = u32::from_le_bytes([count[0], count[1], count[2], count[3]]) as usize;
    let mut out = Vec::with_capacity(count.min(body.len() / 12));
    let mut at = 4;
    for i in 0..count {
        let Some(head) = body.get(at..at + 12) else {
            return Err(malformed(format!("item {i} of {count} cut short")));
        };
        let mut r = [0u8; 8];
        r.copy_from_slice(&head[..8]);
        let len = u32::from_le_bytes([head[8], head[9], head[10], head[11]]) as usize;
        let Some(item) = body.get(at + 8..at + 12 + len) else {
            return Err(malformed(format!("item {i} of {count} cut short")));
        };
        out.push((AgentId(u64::from_le_bytes(r)), codec.decode(item)?));
        at += 12 + len;
    }
    if at != body.len() {
        return Err(malformed(format!("{} bytes after the last item", body.len() - at)));
    }
    Ok(out)
}
