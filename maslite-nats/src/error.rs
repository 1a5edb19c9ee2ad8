//! What can go wrong between hosts.

use std::time::Duration;

/// An error of the NATS layers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A payload type crossing hosts was never registered with the
    /// [`Codec`](crate::Codec).
    #[error("payload type {type_name} crosses hosts but is not registered (Codec::register)")]
    Unregistered {
        /// The payload's type name.
        type_name: &'static str,
    },
    /// A frame names a tag no type was registered under on this host.
    #[error("unknown payload tag {tag:?} from another host: register the type here too")]
    UnknownTag {
        /// The tag.
        tag: String,
    },
    /// Two types registered under one tag, or one type under two.
    #[error("tag {tag:?} registered twice ({first} and {second})")]
    DuplicateTag {
        /// The tag.
        tag: String,
        /// The type registered first.
        first: &'static str,
        /// The other.
        second: &'static str,
    },
    /// Serializing or deserializing a payload failed.
    #[error("payload {tag:?}: {message}")]
    Serde {
        /// The payload's tag.
        tag: String,
        /// What serde said.
        message: String,
    },
    /// A frame was cut short or is not a maslite frame.
    #[error("malformed frame on link {from} -> {to}: {message}")]
    Malformed {
        /// The source host (as far as could be read).
        from: u16,
        /// The destination host.
        to: u16,
        /// What is wrong.
        message: String,
    },
    /// A frame is missing on a link: the next one did not follow the last.
    #[error("frame lost on link {from} -> {to}: expected sequence {expected}, got {got}")]
    Gap {
        /// The source host.
        from: u16,
        /// The destination host.
        to: u16,
        /// The sequence number due.
        expected: u64,
        /// The one that came.
        got: u64,
    },
    /// A frame came twice on a link (its sequence number was taken
    /// already): without a run key NATS never does that, so someone else
    /// published it. (With a key, a replay is dropped and counted.)
    #[error(
        "duplicate or injected frame on link {from} -> {to}: sequence {got} was taken already (next due: {expected})"
    )]
    Duplicate {
        /// The source host.
        from: u16,
        /// The destination host.
        to: u16,
        /// The sequence number due.
        expected: u64,
        /// The one that came again.
        got: u64,
    },
    /// A packet on a link is larger than the limit
    /// ([`NatsTransport::max_packet`](crate::NatsTransport::max_packet)).
    #[error(
        "packet too large on link {from} -> {to}: over {limit} bytes (NatsTransport::max_packet)"
    )]
    TooLarge {
        /// The source host.
        from: u16,
        /// The destination host.
        to: u16,
        /// The limit, in bytes.
        limit: usize,
    },
    /// A run key could not be read or made (the key itself is never
    /// quoted).
    #[error("run key: {0}")]
    Key(String),
    /// The NATS server refused this host's credentials, or TLS with it
    /// failed: trying again would not help. (No secret is quoted.)
    #[error("nats: {0}")]
    Refused(String),
    /// The NATS server or connection failed.
    #[error("nats: {0}")]
    Nats(String),
    /// The server dropped messages for a subscriber that did not keep up.
    #[error(
        "nats: slow consumer on {subject}: messages were dropped (raise the subscription capacity)"
    )]
    SlowConsumer {
        /// The subscription's subject, if known.
        subject: String,
    },
    /// Other hosts did not answer the readiness handshake in time.
    #[error("hosts {missing:?} did not answer the readiness handshake within {seconds} s")]
    NotReady {
        /// The hosts that did not answer.
        missing: Vec<u16>,
        /// How long it waited.
        seconds: f64,
    },
    /// Another host's heartbeats stopped: it died, hangs, or lost its
    /// connection to the server ([`heartbeat`](crate::heartbeat)).
    #[error(
        "host {host} lost: no heartbeat from it for {:.3} s (it died, hangs, or is cut off from the NATS server)",
        .silent_for.as_secs_f64()
    )]
    HostLost {
        /// The silent host.
        host: u16,
        /// How long since its last beat (or since the start, if none came).
        silent_for: Duration,
    },
    /// This host is the one cut off: its connection to the server is down,
    /// or its own heartbeats stopped coming back through the server
    /// ([`heartbeat`](crate::heartbeat)).
    #[error(
        "host {host} (this host) is cut off from the NATS server: no heartbeat came through for {:.3} s",
        .silent_for.as_secs_f64()
    )]
    CutOff {
        /// This host.
        host: u16,
        /// How long since its own last beat came back through the server.
        silent_for: Duration,
    },
}

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
