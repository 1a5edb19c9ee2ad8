//! The one error type of the kernel: every variant names what was wrong and
//! which agent it concerns.

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

/// Errors of the kernel. Bad input is reported with one of these, never by a
/// panic.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
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
}

/// The kernel's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
