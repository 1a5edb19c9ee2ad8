//! Agent ids.
//!
//! An agent is known to the kernel, to subscriptions and to alarms only by its
//! [`AgentId`]: a plain `u64`, so that ids chosen by the user (`1..=4`, as in
//! the original multiprocessing demo) and ids allocated by the scheduler live
//! in one namespace and cost nothing to copy, hash or compare.

use std::fmt;

/// The id of an agent: user-chosen (`AgentId(3)`) or allocated by the
/// scheduler when the agent is added.
///
/// [`AgentId::OUTSIDE`] is reserved for mail that comes from outside the
/// system (a test, `main`, a service); no agent can take it.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct AgentId(pub u64);

impl AgentId {
    /// The sender of mail injected from outside the system.
    pub const OUTSIDE: AgentId = AgentId(u64::MAX);

    /// The number inside the id.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl From<u64> for AgentId {
    fn from(value: u64) -> Self {
        AgentId(value)
    }
}

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == AgentId::OUTSIDE {
            f.write_str("outside")
        } else {
            write!(f, "{}", self.0)
        }
    }
}

impl fmt::Debug for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AgentId({self})")
    }
}
