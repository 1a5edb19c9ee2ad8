//! Frames that cannot be forged or replayed without the run's key.
//!
//! Anyone who may connect to a NATS server may publish on a run's subjects
//! (unless the server's permissions forbid it): one forged control changes
//! a run's result, one forged bye hides a death. So with a [`RunKey`]
//! every message of a run is authenticated, and the hosts act only on what
//! passes:
//!
//! - **Keys.** From the run key and the run's name, a run key is derived
//!   (HMAC-SHA256 as the derivation function), so two runs with one key
//!   cannot take each other's frames. Each host picks a random **session**
//!   (16 bytes) when it connects; each link (source host → destination
//!   host) has a key of its own derived from both hosts' sessions, so a
//!   frame recorded in an earlier run of the same name fails in this one.
//! - **Readiness.** A host asks every other one with its host number and
//!   session; the answer carries the other's session and an HMAC over
//!   both: an answer not made for this question (forged, or recorded
//!   earlier) is not taken, and the hosts learn each other's sessions from
//!   answers only.
//! - **Frames** (data, control, mail, bye, abort) carry a tag over their
//!   whole header (source and destination host, the link's sequence
//!   number, flags, partitions, kind) and body: HMAC-SHA256
//!   ([`Protection::Authenticated`], 32 bytes) or ChaCha20-Poly1305
//!   ([`Protection::Encrypted`], 16 bytes; the body is then unreadable,
//!   the header readable but authenticated; the nonce is the sequence
//!   number, unique under the link's key). Sequence numbers then catch
//!   replays within a session.
//! - **Beats and byes** ([`heartbeat`](crate::heartbeat)) carry a counter
//!   and an HMAC under a key of the beating host's session: a beat is
//!   taken only if its counter is above the last one taken.
//!
//! All from `ring` (HMAC-SHA256, ChaCha20-Poly1305 and the random source),
//! which NATS's TLS already builds on. Verification is constant-time.
//!
//! Without a key ([`RunSeal::insecure`]) nothing is authenticated: anyone
//! who can publish on the server can change a run's result. The transport
//! refuses that unless asked for it in so many words
//! ([`NatsTransport::insecure`](crate::NatsTransport::insecure)).

use crate::key::RunKey;
use bytes::Bytes;
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hmac;
use ring::rand::SecureRandom;
use std::sync::OnceLock;

/// How a run's frames are protected, given a [`RunKey`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Protection {
    /// Authenticated (HMAC-SHA256): forgeries and replays are refused;
    /// whoever reads the server's traffic can read the frames.
    #[default]
    Authenticated,
    /// Encrypted and authenticated (ChaCha20-Poly1305): frames' bodies
    /// are unreadable too.
    Encrypted,
}

/// A host's session: random, picked when it connects.
pub type Session = [u8; 16];

/// The HMAC tag's length.
const MAC: usize = 32;
/// A ChaCha20-Poly1305 tag's length.
const AEAD_TAG: usize = 16;
/// A beat on the wire: kind, counter, tag.
const SEALED_BEAT: usize = 1 + 8 + MAC;

/// What a beat says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Beat {
    /// The host is alive.
    Alive,
    /// The host's runtime stopped: it says bye.
    Bye,
}

fn derive(parent: &hmac::Key, parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = hmac::Context::with_key(parent);
    for p in parts {
        // Each part's length first: no two lists of parts sign alike.
        ctx.update(&(p.len() as u32).to_le_bytes());
        ctx.update(p);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.sign().as_ref());
    out
}

fn mac_key(bytes: &[u8; 32]) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA256, bytes)
}

/// One host's keys for a run: its session, the others' (once their
/// readiness answers came), and the keys derived from them. Shared by the
/// link, the heartbeats and the transport.
pub struct RunSeal {
    me: u16,
    /// The run's key and protection; `None`: insecure.
    run: Option<(hmac::Key, Protection)>,
    session: Session,
    peers: Vec<OnceLock<Session>>,
}

impl std::fmt::Debug for RunSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunSeal")
            .field("me", &self.me)
            .field("protection", &self.protection())
            .finish_non_exhaustive()
    }
}

impl RunSeal {
    /// Host `me` of `hosts` of run `run`, with `key` and `protection`: a
    /// new random session.
    pub fn new(
        key: &RunKey,
        protection: Protection,
        run: &str,
        me: u16,
        hosts: u16,
    ) -> crate::Result<RunSeal> {
        let root = mac_key(key.bytes());
        let run_key = mac_key(&derive(&root, &[b"maslite run key v1", run.as_bytes()]));
        let mut session = [0u8; 16];
        ring::rand::SystemRandom::new()
            .fill(&mut session)
            .map_err(|_| crate::Error::Key("the system's random source failed".into()))?;
        Ok(RunSeal {
            me,
            run: Some((run_key, protection)),
            session,
            peers: (0..hosts).map(|_| OnceLock::new()).collect(),
        })
    }

    /// Nothing authenticated (see the [module docs](self)).
    pub fn insecure(me: u16, hosts: u16) -> RunSeal {
        RunSeal {
            me,
            run: None,
            session: [0; 16],
            peers: (0..hosts).map(|_| OnceLock::new()).collect(),
        }
    }

    /// How frames are protected; `None` without a key.
    pub fn protection(&self) -> Option<Protection> {
        self.run.as_ref().map(|(_, p)| *p)
    }

    /// This host.
    pub fn host(&self) -> u16 {
        self.me
    }

    /// The number of hosts.
    pub fn hosts(&self) -> u16 {
        self.peers.len() as u16
    }

    /// This host's readiness question.
    pub fn ask(&self) -> Bytes {
        match &self.run {
            None => Bytes::new(),
            Some(_) => {
                let mut q = Vec::with_capacity(18);
                q.extend_from_slice(&self.me.to_le_bytes());
                q.extend_from_slice(&self.session);
                q.into()
            }
        }
    }

    fn ready_key(
        &self,
        run: &hmac::Key,
        asker: u16,
        asker_session: &[u8],
        answerer: u16,
    ) -> hmac::Key {
        mac_key(&derive(
            run,
            &[b"ready", &asker.to_le_bytes(), asker_session, &answerer.to_le_bytes()],
        ))
    }

    /// The answer to a readiness question, if it is one.
    pub fn answer(&self, question: &[u8]) -> Option<Bytes> {
        let Some((run, _)) = &self.run else { return Some(Bytes::from_static(b"ready")) };
        if question.len() != 18 {
            return None;
        }
        let asker = u16::from_le_bytes([question[0], question[1]]);
        let key = self.ready_key(run, asker, &question[2..], self.me);
        let mut a = self.session.to_vec();
        a.extend_from_slice(hmac::sign(&key, &self.session).as_ref());
        Some(a.into())
    }

    /// Takes host `from`'s answer to this host's question: its session,
    /// if the answer was made for this question with the run's key.
    pub fn take_answer(&self, from: u16, answer: &[u8]) -> bool {
        let Some((run, _)) = &self.run else { return true };
        let Some(slot) = self.peers.get(from as usize) else { return false };
        if answer.len() != 16 + MAC || from == self.me {
            return false;
        }
        let key = self.ready_key(run, self.me, &self.session, from);
        if hmac::verify(&key, &answer[..16], &answer[16..]).is_err() {
            return false;
        }
        let mut session = [0u8; 16];
        session.copy_from_slice(&answer[..16]);
        // (A second answer in one session carries the same session.)
        let _ = slot.set(session);
        slot.get() == Some(&session)
    }

    fn session_of(&self, host: u16) -> Option<Session> {
        if host == self.me {
            return Some(self.session);
        }
        self.peers.get(host as usize)?.get().copied()
    }

    /// The seal of link `from → to` (this host one of them), once the
    /// other host's session is known: `None` without a key; an error if
    /// its readiness answer never came.
    pub fn link(&self, from: u16, to: u16) -> crate::Result<Option<LinkSeal>> {
        let Some((run, protection)) = &self.run else { return Ok(None) };
        let missing = |h: u16| {
            crate::Error::Nats(format!("host {h}'s session is not known (no readiness answer)"))
        };
        let a = self.session_of(from).ok_or_else(|| missing(from))?;
        let b = self.session_of(to).ok_or_else(|| missing(to))?;
        let bytes = derive(run, &[b"link", &from.to_le_bytes(), &to.to_le_bytes(), &a, &b]);
        Ok(Some(match protection {
            Protection::Authenticated => LinkSeal::Mac(mac_key(&bytes)),
            Protection::Encrypted => LinkSeal::Aead(Box::new(LessSafeKey::new(
                UnboundKey::new(&aead::CHACHA20_POLY1305, &bytes).expect("a 32-byte key"),
            ))),
        }))
    }

    fn beat_key(&self, host: u16) -> Option<hmac::Key> {
        let (run, _) = self.run.as_ref()?;
        let session = self.session_of(host)?;
        Some(mac_key(&derive(run, &[b"beat", &host.to_le_bytes(), &session])))
    }

    /// The keys to check host `host`'s beats with (`None`: not known).
    pub fn beats_of(&self, host: u16) -> Option<BeatSeal> {
        match &self.run {
            None => Some(BeatSeal(None)),
            Some(_) => self.beat_key(host).map(|k| BeatSeal(Some(k))),
        }
    }
}

/// The key that seals and checks one host's beats (see the [module
/// docs](self)).
#[derive(Debug, Clone)]
pub struct BeatSeal(Option<hmac::Key>);

impl BeatSeal {
    /// Whether beats are authenticated.
    pub fn is_sealed(&self) -> bool {
        self.0.is_some()
    }

    /// Beat number `counter` (from 1) saying `what`.
    pub fn seal(&self, what: Beat, counter: u64) -> Bytes {
        let Some(key) = &self.0 else {
            return Bytes::from_static(match what {
                Beat::Alive => b"beat",
                Beat::Bye => b"bye",
            });
        };
        let mut b = Vec::with_capacity(SEALED_BEAT);
        b.push(match what {
            Beat::Alive => 0,
            Beat::Bye => 1,
        });
        b.extend_from_slice(&counter.to_le_bytes());
        let tag = hmac::sign(key, &b);
        b.extend_from_slice(tag.as_ref());
        b.into()
    }

    /// What a beat says, and its counter (0 when not authenticated);
    /// `None` if it is not a beat of this host made with the run's key.
    pub fn open(&self, beat: &[u8]) -> Option<(Beat, u64)> {
        let Some(key) = &self.0 else {
            return match beat {
                b"beat" => Some((Beat::Alive, 0)),
                b"bye" => Some((Beat::Bye, 0)),
                _ => None,
            };
        };
        if beat.len() != SEALED_BEAT || hmac::verify(key, &beat[..9], &beat[9..]).is_err() {
            return None;
        }
        let what = match beat[0] {
            0 => Beat::Alive,
            1 => Beat::Bye,
            _ => return None,
        };
        let mut counter = [0u8; 8];
        counter.copy_from_slice(&beat[1..9]);
        Some((what, u64::from_le_bytes(counter)))
    }
}

/// The key of one link (source host → destination host) in one pair of
/// sessions: seals the frames one way.
pub enum LinkSeal {
    /// HMAC-SHA256 over header and body.
    Mac(hmac::Key),
    /// ChaCha20-Poly1305: the body encrypted, the header authenticated.
    Aead(Box<LessSafeKey>),
}

impl std::fmt::Debug for LinkSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LinkSeal::Mac(_) => "LinkSeal::Mac(..)",
            LinkSeal::Aead(_) => "LinkSeal::Aead(..)",
        })
    }
}

fn nonce(seq: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(&seq.to_le_bytes());
    Nonce::assume_unique_for_key(n)
}

impl LinkSeal {
    /// The bytes a sealed frame has after its body.
    pub fn tag_len(&self) -> usize {
        match self {
            LinkSeal::Mac(_) => MAC,
            LinkSeal::Aead(_) => AEAD_TAG,
        }
    }

    /// Seals `frame` (a header of `header` bytes, then the body) numbered
    /// `seq`: appends the tag (and encrypts the body in place).
    pub fn seal(&self, seq: u64, header: usize, frame: &mut Vec<u8>) {
        match self {
            LinkSeal::Mac(key) => {
                let tag = hmac::sign(key, frame);
                frame.extend_from_slice(tag.as_ref());
            }
            LinkSeal::Aead(key) => {
                let (head, body) = frame.split_at_mut(header);
                let tag = key
                    .seal_in_place_separate_tag(nonce(seq), Aad::from(&*head), body)
                    .expect("a frame's body is far under ChaCha20's limit");
                frame.extend_from_slice(tag.as_ref());
            }
        }
    }

    /// Checks a sealed `frame` numbered `seq` (header of `header` bytes):
    /// its body, in the clear (decrypted into `scratch` if need be), or
    /// `None` if it was not sealed with this link's key.
    pub fn open<'a>(
        &self,
        seq: u64,
        header: usize,
        frame: &'a [u8],
        scratch: &'a mut Vec<u8>,
    ) -> Option<&'a [u8]> {
        let tag = self.tag_len();
        if frame.len() < header + tag {
            return None;
        }
        match self {
            LinkSeal::Mac(key) => {
                let (signed, mac) = frame.split_at(frame.len() - tag);
                hmac::verify(key, signed, mac).ok()?;
                Some(&signed[header..])
            }
            LinkSeal::Aead(key) => {
                scratch.clear();
                scratch.extend_from_slice(&frame[header..]);
                let body =
                    key.open_in_place(nonce(seq), Aad::from(&frame[..header]), scratch).ok()?;
                Some(&*body)
            }
        }
    }
}
