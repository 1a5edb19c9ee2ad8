//! Changes one partition's kernel must tell the others about.
//!
//! A multi-partition runtime keeps every partition's mailing list and agent
//! directory the same: a scheduler in
//! [`Driver`](crate::Driver) records each agent
//! added or removed and each subscription change of its own agents, the
//! runtime hands them to the other partitions, and they apply them with
//! [`Driver::apply_change`](crate::Driver::apply_change) before the
//! round's mail is resolved — so that recipients are resolved at delivery,
//! as on one partition.

use crate::id::AgentId;
use crate::mailing_list::Subscription;

/// One change to the agents or the subscriptions of a partition.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// An agent joined this partition; its creation stamp (see
    /// [`Origin`](crate::Origin), whose `seq` counts additions) places it
    /// in the order of insertion. The runtime's own adds are not announced.
    Added(AgentId, crate::Origin),
    /// An agent made here (by `Cx::spawn_on` or `Cx::add_on`) to start on
    /// partition `.2`: it is there from this step's end on, placed in the
    /// order of insertion by its creation stamp, as if `.2` had added it.
    Spawned(AgentId, crate::Origin, usize),
    /// An agent left this partition (its subscriptions went with it); the
    /// stamp of its departure (on the account that was acting, see
    /// [`Origin`](crate::Origin)) orders it against additions elsewhere in
    /// the same step: an id re-added after it left is no duplicate.
    Removed(AgentId, crate::Origin),
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

/// The id of an agent added without a chosen one: a function of the id of
/// the agent on whose account it was created, the clock, and that agent's
/// count of additions (never of a shared counter or of an ordering key,
/// which an agent made in a lookahead window does not have yet), so it is
/// the same on one kernel and on any number of partitions. Such ids have
/// the top bit ([`DERIVED`]) set; ids chosen by users may not.
pub fn derived_id(creator: AgentId, made: &crate::Origin) -> AgentId {
    // splitmix64 over the words.
    let mut h = 0x632B_E59B_D9B4_E019u64;
    for w in [creator.0, made.when, made.seq] {
        let mut z = (h ^ w).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        h = z ^ (z >> 31);
    }
    AgentId((h | DERIVED) & !1) // never u64::MAX (AgentId::OUTSIDE)
}

/// The bit that marks derived ids.
pub const DERIVED: u64 = 1 << 63;

/// The bit that marks an ordering key given to an agent added in
/// a partition's kernel until the runtime gives it its place (see
/// [`Driver::set_key`](crate::Driver::set_key)): such keys sort after
/// every placed agent's, in the order of creation.
pub const PROVISIONAL: u64 = 1 << 62;
