//! maslite across hosts over NATS.
//!
//! When a model outgrows one machine its partitions run on several hosts,
//! and the packets between partitions of different hosts go through a NATS
//! server. [`NatsTransport`] is the runtime's
//! [`Transport`](maslite_runtime::transport::Transport) for that: give it
//! to [`Builder::transport`](maslite_runtime::Builder::transport) on every
//! host, with the same placement and the same registered payload types,
//! and run the same program everywhere (see `maslite_runtime::transport`
//! and the README's "Several hosts").
//!
//! ```no_run
//! use maslite_nats::{Codec, NatsTransport};
//! use maslite_runtime::{transport::Placement, Runtime};
//!
//! # fn main() -> Result<(), maslite_runtime::Error> {
//! let me = 1; // this process is host 1 of 2
//! let placement = Placement::blocks(2, 2, me)?;
//! // The run's secret, the same on every host (`runkey` example).
//! let key = maslite_nats::RunKey::from_file("run.key").map_err(|e| maslite_runtime::Error::Config(e.to_string()))?;
//! let nats = NatsTransport::new("nats://127.0.0.1:4222", "demo", placement, Codec::new())?.key(key);
//! let mut rt = Runtime::builder().partitions(2).transport(nats).build()?;
//! rt.run()?;
//! # Ok(()) }
//! ```
//!
//! The layers, each tested on its own (against a real `nats-server` where
//! it takes one):
//!
//! - [`Codec`]: envelopes to bytes and back (postcard). A payload type is
//!   registered once, under a tag; an envelope whose payload type is not
//!   registered is [`Error::Unregistered`], naming the type.
//! - [`control`]: a step's control (changes to agents and subscriptions,
//!   activity, next alarm, stop, alarms for the receiving partition) on
//!   the wire.
//! - [`packet`]: controls and mail batches cut into frames under the
//!   server's `max_payload`, numbered per link (source host → destination
//!   host): a gap is [`Error::Gap`], naming the link.
//! - [`link`]: one NATS connection per host, its subject
//!   (`maslite.<run>.h.<host>`), a readiness handshake before the first
//!   frame (a NATS `flush` does not wait for the other side), and a slow
//!   consumer made a fatal error instead of silent loss.
//! - [`heartbeat`]: every host beats on `maslite.<run>.beat.<host>` and
//!   watches the others; one silent for `missed × every` is
//!   [`Error::HostLost`], naming it, and this host's own silence
//!   [`Error::CutOff`]: a dead or cut-off host stops the others in bounded
//!   time.
//!
//! And what keeps everyone else out, for every byte from the network is
//! hostile:
//!
//! - [`key`]: a run's shared secret, [`RunKey`], from a file or the
//!   environment; a run without one is refused unless
//!   [`NatsTransport::insecure`] says otherwise.
//! - [`seal`]: keys derived from it per run, per link and per pair of
//!   sessions; every frame, beat and readiness answer authenticated
//!   (HMAC-SHA256), frames optionally encrypted (ChaCha20-Poly1305).
//! - [`rejections`]: what is dropped, never acted on, counted and logged
//!   (rate-limited).
//! - [`depth`]: payloads decoded with a bound on their nesting, so a deep
//!   one is an error rather than a stack overflow; partial packets are
//!   bounded per link ([`packet`]).
//! - [`options`]: the server's authentication (user and password, token,
//!   nkey, credentials file) and TLS (a custom CA, a client certificate),
//!   never logged.

#![deny(missing_docs)]

mod codec;
pub mod control;
/// Depth-bounded decoding, shared with snapshots (it lives in the kernel).
pub use maslite_core::depth;
mod error;
pub mod heartbeat;
pub mod key;
pub mod link;
pub mod options;
pub mod packet;
pub mod rejections;
pub mod seal;
pub mod transport;

pub use codec::Codec;
pub use error::{Error, Result};
pub use key::RunKey;
pub use options::NatsOptions;
pub use rejections::{Rejection, Rejections};
pub use seal::Protection;
pub use transport::NatsTransport;
