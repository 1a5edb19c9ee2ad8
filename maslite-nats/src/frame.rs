//! A link's batches cut into frames, numbered, and checked on arrival.
//!
//! A NATS server refuses messages over its `max_payload` (1 MiB by
//! default), so one step's batch for a link (source host → destination
//! host) goes out as one or more frames under that size, the last one
//! marked. Every frame carries the link's next sequence number: NATS
//! delivers a publisher's messages in order or not at all (a slow
//! consumer's are dropped), so the receiver's [`LinkSeq`] turns any gap
//! into [`Error::Gap`] instead of a run that silently lost mail.
//!
//! A frame: `b"MSL1"`, source and destination host (u16), sequence (u64),
//! flags (u8; 1 = last of its batch), count (u32), then per item its
//! recipient (u64) and the envelope as [`Codec::encode`] writes it. All
//! little-endian.

use crate::codec::Codec;
use crate::error::{Error, Result};
use bytes::Bytes;
use maslite_core::{AgentId, Envelope};

const MAGIC: &[u8; 4] = b"MSL1";
/// Bytes before the first item.
pub const HEADER: usize = 4 + 2 + 2 + 8 + 1 + 4;
const COUNT_AT: usize = HEADER - 4;
const FLAGS_AT: usize = HEADER - 5;

/// Cuts one link's batches into numbered frames.
#[derive(Debug)]
pub struct Framer {
    from: u16,
    to: u16,
    next: u64,
    max: usize,
    item: Vec<u8>,
}

/// What a frame's header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameInfo {
    /// The source host.
    pub from: u16,
    /// The destination host.
    pub to: u16,
    /// Its sequence number on the link (from 0).
    pub seq: u64,
    /// The last frame of its batch.
    pub last: bool,
    /// How many items it holds.
    pub count: u32,
}

impl Framer {
    /// Frames for link `from → to`, each at most `max_payload` bytes (the
    /// server's limit; at least room for the header and one small item).
    pub fn new(from: u16, to: u16, max_payload: usize) -> Framer {
        Framer { from, to, next: 0, max: max_payload.max(HEADER + 64), item: Vec::new() }
    }

    fn start(&mut self) -> Vec<u8> {
        let mut f = Vec::with_capacity(self.max.min(64 * 1024));
        f.extend_from_slice(MAGIC);
        f.extend_from_slice(&self.from.to_le_bytes());
        f.extend_from_slice(&self.to.to_le_bytes());
        f.extend_from_slice(&self.next.to_le_bytes());
        f.push(0);
        f.extend_from_slice(&0u32.to_le_bytes());
        self.next += 1;
        f
    }

    /// One batch as frames: at least one (an empty batch is one empty
    /// frame: the step's word that nothing came), the last marked. An
    /// envelope too large for any frame is [`Error::TooLarge`], and then
    /// no frame of the batch is taken (the sequence does not move).
    pub fn frames<'a>(
        &mut self,
        codec: &Codec,
        batch: impl IntoIterator<Item = (AgentId, &'a Envelope)>,
    ) -> Result<Vec<Bytes>> {
        let first = self.next;
        let result = self.cut(codec, batch);
        if result.is_err() {
            self.next = first;
        }
        result
    }

    fn cut<'a>(
        &mut self,
        codec: &Codec,
        batch: impl IntoIterator<Item = (AgentId, &'a Envelope)>,
    ) -> Result<Vec<Bytes>> {
        let mut frames = Vec::new();
        let mut frame = self.start();
        let mut count = 0u32;
        for (recipient, env) in batch {
            self.item.clear();
            self.item.extend_from_slice(&recipient.0.to_le_bytes());
            codec.encode(env, &mut self.item)?;
            if HEADER + self.item.len() > self.max {
                return Err(Error::TooLarge {
                    tag: codec.tag_of(env).unwrap_or_default().to_string(),
                    bytes: self.item.len(),
                    max: self.max - HEADER,
                });
            }
            if frame.len() + self.item.len() > self.max {
                frame[COUNT_AT..HEADER].copy_from_slice(&count.to_le_bytes());
                frames.push(Bytes::from(frame));
                frame = self.start();
                count = 0;
            }
            frame.extend_from_slice(&self.item);
            count += 1;
        }
        frame[COUNT_AT..HEADER].copy_from_slice(&count.to_le_bytes());
        frame[FLAGS_AT] = 1;
        frames.push(Bytes::from(frame));
        Ok(frames)
    }
}

/// Reads a frame's header.
pub fn info(frame: &[u8]) -> Result<FrameInfo> {
    let malformed = |message: &str| Error::Malformed { from: 0, to: 0, message: message.into() };
    if frame.len() < HEADER || &frame[..4] != MAGIC {
        return Err(malformed("not a maslite frame"));
    }
    let u16_at = |i: usize| u16::from_le_bytes([frame[i], frame[i + 1]]);
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&frame[8..16]);
    let mut count = [0u8; 4];
    count.copy_from_slice(&frame[COUNT_AT..HEADER]);
    Ok(FrameInfo {
        from: u16_at(4),
        to: u16_at(6),
        seq: u64::from_le_bytes(seq),
        last: frame[FLAGS_AT] & 1 != 0,
        count: u32::from_le_bytes(count),
    })
}

/// Reads a frame's items into `out`; returns its header.
pub fn read(codec: &Codec, frame: &[u8], out: &mut Vec<(AgentId, Envelope)>) -> Result<FrameInfo> {
    let info = info(frame)?;
    let malformed = |message: String| Error::Malformed { from: info.from, to: info.to, message };
    let mut at = HEADER;
    for i in 0..info.count {
        let Some(head) = frame.get(at..at + 12) else {
            return Err(malformed(format!("item {i} of {} cut short", info.count)));
        };
        let mut r = [0u8; 8];
        r.copy_from_slice(&head[..8]);
        let len = u32::from_le_bytes([head[8], head[9], head[10], head[11]]) as usize;
        let Some(body) = frame.get(at + 12..at + 12 + len) else {
            return Err(malformed(format!("item {i} of {} cut short", info.count)));
        };
        out.push((AgentId(u64::from_le_bytes(r)), codec.decode_body(body)?));
        at += 12 + len;
    }
    if at != frame.len() {
        return Err(malformed(format!("{} bytes after the last item", frame.len() - at)));
    }
    Ok(info)
}

/// The receiving end's check of one link's sequence.
#[derive(Debug)]
pub struct LinkSeq {
    from: u16,
    to: u16,
    expected: u64,
}

impl LinkSeq {
    /// Expects frame 0 of link `from → to` first.
    pub fn new(from: u16, to: u16) -> LinkSeq {
        LinkSeq { from, to, expected: 0 }
    }

    /// Accepts the frame if it is the next one, else [`Error::Gap`] (or
    /// [`Error::Malformed`] if it belongs to another link).
    pub fn check(&mut self, info: &FrameInfo) -> Result<()> {
        if (info.from, info.to) != (self.from, self.to) {
            return Err(Error::Malformed {
                from: info.from,
                to: info.to,
                message: format!("on the wire of link {} -> {}", self.from, self.to),
            });
        }
        if info.seq != self.expected {
            return Err(Error::Gap {
                from: self.from,
                to: self.to,
                expected: self.expected,
                got: info.seq,
            });
        }
        self.expected += 1;
        Ok(())
    }
}
