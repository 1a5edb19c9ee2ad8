//! maslite across hosts over NATS: the layers under the runtime's transport.
//!
//! When a model outgrows one machine its partitions run on several hosts,
//! and mail between hosts goes through a NATS server. This crate holds what
//! that needs, each layer tested on its own against a real `nats-server`:
//!
//! - [`Codec`]: envelopes to bytes and back (postcard). A payload type is
//!   registered once, under a tag; an envelope whose payload type is not
//!   registered is [`Error::Unregistered`], naming the type.
//! - [`control`]: a step's control (changes to agents and subscriptions,
//!   activity, next alarm, stop, alarms for the receiving host) on the
//!   wire, so hosts keep lockstep as partitions do on one machine.
//! - [`coordinator`]: simulated time across hosts decided in one place
//!   from one report per host per step, with the lockstep's rules (a round
//!   if anyone is active, else the earliest alarm of all, else the end;
//!   stops ranked, the end time kept), and global idleness only when the
//!   hosts' counts of messages sent and received match and stay unchanged
//!   over two report rounds (Mattern's counters: nothing is in flight).
//!   Pure logic, no transport.
//! - [`frame`]: a batch of (recipient, envelope) pairs for one link (source
//!   host → destination host) cut into frames under the server's
//!   `max_payload`, each with the link's next sequence number; the
//!   receiver's [`frame::LinkSeq`] turns a gap into [`Error::Gap`], naming
//!   the link. One envelope too large for any frame is
//!   [`Error::TooLarge`].
//! - [`link`]: one NATS connection per host, subjects per run and partition
//!   (`maslite.<run>.h.<host>`), a readiness handshake before the first frame
//!   (a NATS `flush` does not wait for the other side), and a slow consumer
//!   made a fatal error instead of silent loss.
//! - [`heartbeat`]: every host beats on `maslite.<run>.beat.<host>` and
//!   watches the others; one silent for `missed × every` is
//!   [`Error::HostLost`], naming it, this host's own silence
//!   [`Error::CutOff`], and a clean end a "bye" (a host that left, not an
//!   error): a dead or cut-off host stops the others in bounded time.
//!
//! Not here yet: the runtime's transport trait, and the coordinator's
//! reports and decisions on the wire (see the project's issue on NATS).

#![deny(missing_docs)]

mod codec;
pub mod control;
pub mod coordinator;
mod error;
pub mod frame;
pub mod heartbeat;
pub mod link;
pub mod packet;
mod transport;

pub use codec::Codec;
pub use error::{Error, Result};
pub use transport::NatsTransport;
