//! The one error type of maslite, for a bare kernel and for the runtime
//! alike: the same program fails with the same value on a `Scheduler` and
//! on any number of partitions, so a test can compare errors as it compares
//! traces. Every variant names what was wrong and which agent it concerns.
//! The variants after [`Error::NotInspectable`] come only from a runtime
//! (partitions, hosts, services); a bare kernel never returns them.

use crate::id::AgentId;
use std::fmt;

/// What an agent was doing when it failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// `Agent::setup`, run when the agent is added.
    Setup,
    /// `Agent::update`, run when its inbox is non-empty.
    Update,
    /// `Agent::teardown`, run when the agent is removed.
    Teardown,
    /// The body of an agent written as an async fn.
    Process,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Setup => "setup",
            Phase::Update => "update",
            Phase::Teardown => "teardown",
            Phase::Process => "its async body",
        })
    }
}

/// Why an agent cannot move to another partition (see
/// [`Error::CannotMove`]): its state cannot be taken out whole, or it
/// cannot cross threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Immovable {
    /// An agent written as an async fn: its state is inside its future.
    AsyncFn,
    /// A trait agent added without a `Send` bound (`Runtime::add_made`,
    /// `cx.add`, a bare `Scheduler::add`): it may not cross threads.
    NotSend,
    /// A trait agent suspended inside its setup or update (an await on a
    /// sleep, on mail or on the outside world): that state is in a future.
    Suspended,
    /// An agent that failed (panicked) or is being removed.
    Gone,
}

impl fmt::Display for Immovable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Immovable::AsyncFn => "an async fn agent (its state is inside its future)",
            Immovable::NotSend => "added without a Send bound (add_made, cx.add)",
            Immovable::Suspended => "suspended inside its setup or update",
            Immovable::Gone => "failed or being removed",
        })
    }
}

/// "agent 3 (why), agent 7 (why)".
fn list_immovable(agents: &[(AgentId, Immovable)]) -> String {
    let named: Vec<String> = agents.iter().map(|(id, why)| format!("agent {id} ({why})")).collect();
    named.join(", ")
}

/// What went wrong, on a kernel or a runtime. Bad input is reported with one
/// of these, never by a panic.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An agent with this id is already registered.
    #[error("agent id {0} is already in use")]
    DuplicateAgent(AgentId),
    /// The id is reserved for the kernel ([`AgentId::OUTSIDE`]).
    #[error("agent id {0} is reserved and cannot be given to an agent")]
    ReservedId(AgentId),
    /// A scheduler holds at most 2³¹ agents at once.
    #[error("this scheduler already holds 2^31 agents")]
    TooManyAgents,
    /// No agent with this id is registered.
    #[error("no agent with id {0}")]
    UnknownAgent(AgentId),
    /// A subscription must name one or two of sender, receiver and topic.
    #[error(
        "subscription of agent {subscriber} names {named} of sender, receiver and topic; \
         it must name one or two"
    )]
    InvalidSubscription {
        /// The agent that tried to subscribe or unsubscribe.
        subscriber: AgentId,
        /// How many fields the pattern named (0 or 3).
        named: usize,
    },
    /// A topic that reads as the id of a registered agent would make logs and
    /// listings ambiguous, as it does in maslite.
    #[error("topic {topic:?} is also the id of agent {agent}")]
    TopicIsAgentId {
        /// The topic.
        topic: String,
        /// The agent whose id it spells.
        agent: AgentId,
    },
    /// A direct message goes to its receiver only, so it must have one.
    #[error("a direct message needs a receiver")]
    DirectWithoutReceiver,
    /// A broadcast has no receiver to swap with its sender.
    #[error("a broadcast has no receiver, so there is nobody to reply as")]
    NoReceiver,
    /// An absolute alarm time that has already passed.
    #[error("alarm time {at} is in the past (the clock reads {now})")]
    AlarmInPast {
        /// The requested time.
        at: f64,
        /// The clock when it was requested.
        now: f64,
    },
    /// A time or delay that is NaN, infinite or negative.
    #[error("invalid time or delay {0}: it must be finite and not negative")]
    InvalidTime(f64),
    /// A payload was read as a type it is not.
    #[error("the payload is a {found}, not a {expected}")]
    WrongPayload {
        /// The type asked for.
        expected: &'static str,
        /// The type it is.
        found: &'static str,
    },
    /// An agent panicked; the run stopped and the scheduler can be inspected.
    #[error("agent {agent} panicked in {phase}: {message}")]
    AgentPanicked {
        /// The agent.
        agent: AgentId,
        /// What it was doing.
        phase: Phase,
        /// The panic message.
        message: String,
    },
    /// Cloning a payload for a subscriber panicked; that copy is counted as a
    /// dead letter and the run stopped.
    #[error("cloning a {payload} for a subscriber panicked: {message}")]
    PayloadPanicked {
        /// The payload's type.
        payload: &'static str,
        /// The panic message.
        message: String,
    },
    /// The agent is not of the type asked for.
    #[error("agent {agent} is a {found}, not a {expected}")]
    AgentTypeMismatch {
        /// The agent.
        agent: AgentId,
        /// The type asked for.
        expected: &'static str,
        /// The type it is.
        found: &'static str,
    },
    /// The agent's struct is in use: by an update that has not finished, or
    /// lent out already by `agent` / `agent_mut`.
    #[error("agent {0} is in use: inside an update, or already lent out")]
    AgentBusy(AgentId),
    /// Agents written as async fns keep their state inside the future.
    #[error("agent {0} is an async fn; its state is not inspectable")]
    NotInspectable(AgentId),
    /// Agents asked to move to another partition that cannot move, each
    /// with the reason; nothing was moved (all are checked first).
    #[error("cannot move {}; nothing was moved", list_immovable(.0))]
    CannotMove(Vec<(AgentId, Immovable)>),

    // ----- saving and restoring (see `snapshot`) --------------------------
    /// Two types registered under one tag, or one type registered twice
    /// ([`Types`](crate::Types)).
    #[error("tag {tag:?} is taken: {first} and {second} cannot share it")]
    DuplicateTag {
        /// The tag.
        tag: String,
        /// The type registered first.
        first: &'static str,
        /// The type registered second.
        second: &'static str,
    },
    /// The simulation cannot be saved; every agent (or message) in the way
    /// is named, and nothing was written.
    #[error("cannot save the simulation: {}", list_unsaveable(.0))]
    CannotSave(Vec<Unsaveable>),
    /// Not a snapshot, or a damaged one: bad magic, truncated, failed
    /// checksum, bytes that do not decode, contradictory contents.
    #[error("not a valid snapshot: {0}")]
    BadSnapshot(String),
    /// A snapshot written in another format version.
    #[error("snapshot format version {found}; this build reads version {supported}")]
    SnapshotVersion {
        /// The file's version.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },
    /// A snapshot holds a type tag this reader has not registered.
    #[error(
        "the snapshot holds {} tagged {tag:?}, which is not registered here \
         (Types::{})",
        if *.agent { "an agent" } else { "a payload" },
        if *.agent { "register_agent" } else { "register" }
    )]
    UnknownTag {
        /// The tag.
        tag: String,
        /// An agent type's tag (else a payload type's).
        agent: bool,
    },
    /// Checkpoints asked of a run they cannot cut (see `checkpoint`).
    #[error("checkpoints: {0}")]
    InvalidCheckpoints(String),
    /// Reading or writing a snapshot failed.
    #[error("snapshot I/O: {0}")]
    SnapshotIo(String),

    // ----- only a runtime returns these ---------------------------------
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
    /// The runtime was stopped (cancelled, or a run failed) and its
    /// partitions are gone, or a service is stopping and takes no more
    /// messages.
    #[error("the runtime has stopped")]
    Stopped,
    /// The partition runs on another host: it cannot be reached from here.
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
    /// A service's intake is full right now (`Inlet::try_send`), or stayed
    /// full for a whole `Inlet::send_timeout`.
    #[error("the service's intake is full")]
    Full,
}

/// Something that keeps a simulation from being saved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsaveable {
    /// The agent concerned (the holder of the message, for mail;
    /// [`AgentId::OUTSIDE`] for mail posted from outside).
    pub agent: AgentId,
    /// The agent's type, or the payload's, as Rust names it.
    pub type_name: String,
    /// Why it cannot be saved.
    pub why: Unsaved,
}

/// Why an agent or a message cannot be saved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unsaved {
    /// Its type is not registered (`Types::register_agent`).
    AgentNotRegistered,
    /// An agent written as an async fn: its state lives in a suspended
    /// future, which cannot be written out.
    AsyncFn,
    /// A trait agent suspended inside `setup` or `update` (awaiting a
    /// `recv`, a `sleep` or I/O): its state is partly in the future.
    Suspended,
    /// Its setup has not run yet (added to start in the next round).
    NotStarted,
    /// It failed (panicked) in an earlier run.
    Failed,
    /// The state did not serialize (the message says why).
    StateWouldNotSerialize,
    /// Mail (in an inbox, an alarm, or undelivered) whose payload type is
    /// not registered (`Types::register`).
    PayloadNotRegistered,
    /// A process's value that nobody took (`take_result`).
    ResultNotTaken,
    /// The clock is the wall's: a snapshot is of simulated time.
    RealTime,
}

impl fmt::Display for Unsaveable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match self.why {
            Unsaved::AgentNotRegistered => "its type is not registered (Types::register_agent)",
            Unsaved::AsyncFn => "an async fn agent keeps its state in a suspended future",
            Unsaved::Suspended => "suspended inside setup or update (awaiting recv, sleep or I/O)",
            Unsaved::NotStarted => "its setup has not run yet",
            Unsaved::Failed => "it failed in an earlier run",
            Unsaved::StateWouldNotSerialize => "its state did not serialize",
            Unsaved::PayloadNotRegistered => {
                "holds mail whose payload type is not registered (Types::register)"
            }
            Unsaved::ResultNotTaken => "its process value was not taken (take_result)",
            Unsaved::RealTime => "the clock is real time; only simulated time can be saved",
        };
        write!(f, "agent {} ({}): {why}", self.agent, self.type_name)
    }
}

fn list_unsaveable(all: &[Unsaveable]) -> String {
    all.iter().map(|u| u.to_string()).collect::<Vec<_>>().join("; ")
}

/// maslite's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
