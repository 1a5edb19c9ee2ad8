//! The runtime's errors: the kernel's, plus what only partitions can get
//! wrong (a dead thread, a broken lookahead promise, a bad placement).

use maslite_core::AgentId;

/// What can go wrong in a [`Runtime`](crate::Runtime).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A kernel error on one partition (an agent panicked, bad input...).
    #[error("partition {partition}: {source}")]
    Partition {
        /// The partition it happened on.
        partition: usize,
        /// What happened.
        #[source]
        source: maslite_core::Error,
    },
    /// A kernel error that belongs to no partition (bad input checked
    /// before anything was sent to one).
    #[error(transparent)]
    Kernel(#[from] maslite_core::Error),
    /// A partition's thread died outside any agent (a bug in the runtime,
    /// or a payload whose `Drop` panicked).
    #[error("partition {partition}: thread died: {message}")]
    PartitionDied {
        /// The partition.
        partition: usize,
        /// The panic message, if it could be read.
        message: String,
    },
    /// A message crossed partitions sooner than the declared lookahead.
    #[error(
        "lookahead broken: {sender} (partition {from}) -> {receiver} (partition {to}) \
         after {delay} s, lookahead is {lookahead} s"
    )]
    LookaheadBroken {
        /// Who sent it (or set the alarm).
        sender: AgentId,
        /// Who it was for.
        receiver: AgentId,
        /// The sender's partition.
        from: usize,
        /// The receiver's partition.
        to: usize,
        /// How long after it was sent it was due.
        delay: f64,
        /// The declared lookahead.
        lookahead: f64,
    },
    /// No partition with this number.
    #[error("no partition {partition} (the runtime has {partitions})")]
    NoPartition {
        /// The number asked for.
        partition: usize,
        /// How many there are.
        partitions: usize,
    },
    /// A setting that cannot work (zero partitions, a negative lookahead...).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The runtime was stopped (cancelled) and its partitions are gone, or
    /// a service is stopping and takes no more messages.
    #[error("the runtime has stopped")]
    Stopped,
    /// The partition runs on another host (see
    /// [`transport`](crate::transport)): it cannot be reached from here.
    #[error("partition {partition} runs on host {host}, not on this one")]
    NotLocal {
        /// The partition.
        partition: usize,
        /// Its host.
        host: u16,
    },
    /// The hosts' transport failed, or another host is gone (dead, cut
    /// off, left, or it failed): the message says which and how.
    #[error("across hosts: {message}")]
    Transport {
        /// What the transport said.
        message: String,
    },
    /// A message's payload type cannot cross to another host: the hosts'
    /// transport does not know how to serialize it (with NATS: it is not
    /// registered in the `Codec`).
    #[error(
        "payload type {type_name} crosses hosts (partition {from} -> partition {to}) \
         but the transport cannot carry it: register it (Codec::register)"
    )]
    Unregistered {
        /// The payload's type, as Rust names it.
        type_name: String,
        /// The sending partition.
        from: usize,
        /// The receiving partition.
        to: usize,
    },
    /// A service's intake is full right now ([`Inlet::try_send`](crate::Inlet::try_send)).
    #[error("the service's intake is full")]
    Full,
}

/// A `Result` with the runtime's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// How much this error explains a failed run: the cause ranks above
    /// its consequences (a peer seen dying, a stop).
    pub(crate) fn rank(&self) -> u8 {
        match self {
            Error::Partition { .. }
            | Error::LookaheadBroken { .. }
            | Error::Unregistered { .. } => 3,
            Error::PartitionDied { .. } | Error::Transport { .. } => 2,
            Error::Kernel(_)
            | Error::Config(_)
            | Error::NoPartition { .. }
            | Error::NotLocal { .. } => 1,
            Error::Stopped | Error::Full => 0,
        }
    }
}
