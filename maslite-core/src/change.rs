//! Changes one partition's kernel must tell the others about.
//!
//! A multi-partition runtime keeps every partition's mailing list and agent
//! directory the same: a scheduler in
//! [partitioned](crate::Scheduler::set_partitioned) mode records each agent
//! added or removed and each subscription change of its own agents, the
//! runtime hands them to the other partitions, and they apply them with
//! [`Scheduler::apply_change`](crate::Scheduler::apply_change) before the
//! round's mail is resolved — so that recipients are resolved at delivery,
//! as on one partition.

use crate::id::AgentId;
use crate::mailing_list::Subscription;

/// One change to the agents or the subscriptions of a partition.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// An agent joined this partition.
    Added(AgentId),
    /// An agent left this partition (its subscriptions went with it).
    Removed(AgentId),
    /// An agent subscribed to a pattern.
    Subscribed(AgentId, Subscription),
    /// An agent unsubscribed from a pattern.
    Unsubscribed(AgentId, Subscription),
    /// An agent unsubscribed from everything.
    UnsubscribedAll(AgentId),
    /// An agent cleared the alarms for `receiver` (any if `None`) with
    /// `topic` (any if `None`): the alarms set on other partitions go too.
    AlarmsCleared {
        /// The receiver the cleared alarms were for.
        receiver: Option<AgentId>,
        /// Their topic.
        topic: Option<String>,
    },
    /// An agent asked to remove an agent that is not on its partition: the
    /// partition that has it removes it.
    RemoveRequested(AgentId),
}

/// The ordering key of an agent added at run time by the agent whose key is
/// `creator`, as its `nth` addition: a function of those two only (never of
/// a shared counter), so it is the same on any number of partitions. Keys
/// of derived agents have the top bit set; keys given by the runtime to the
/// agents it adds stay below it.
pub fn derived_key(creator: u64, nth: u64) -> u64 {
    // splitmix64 of the pair.
    let mut z =
        creator.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ nth.wrapping_add(0x632B_E59B_D9B4_E019);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z | DERIVED) & !1 // never u64::MAX (AgentId::OUTSIDE)
}

/// The bit that marks derived keys (and ids).
pub const DERIVED: u64 = 1 << 63;
