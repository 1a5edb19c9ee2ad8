//! Agents started on a partition of the creator's choosing
//! ([`Cx::spawn_on`](crate::Cx::spawn_on), [`Cx::add_on`](crate::Cx::add_on)).
//!
//! A child made with `cx.spawn` starts at once, nested in its creator's
//! update, on the creator's account: that cannot happen on another
//! partition, whose round ran on its own. So a child placed with
//! `spawn_on` starts as an agent woken by mail does: in the next round, in
//! its place in the order of insertion — on one kernel as on any number of
//! partitions, wherever it is placed. Until then it is only a [`Start`]: an
//! id, a creation stamp and a `Send` recipe, which a partition hands to the
//! runtime for the partition it names.

use crate::agent::Installer;
use crate::{AgentId, Origin};
use std::fmt;

/// An agent made by `spawn_on` / `add_on` for another partition, on its way
/// there (taken from a partition's kernel with
/// [`Driver::take_starts_into`](crate::Driver::take_starts_into), installed
/// with [`Driver::start`](crate::Driver::start)).
pub struct Start {
    /// The child's id (derived, as `cx.spawn`'s are).
    pub id: AgentId,
    /// Its creation stamp: its place in the order of insertion.
    pub made: Origin,
    /// The partition it is to start on.
    pub partition: usize,
    /// The agent on whose account it was made.
    pub creator: AgentId,
    pub(crate) make: Box<dyn FnOnce() -> Installer + Send>,
}

impl fmt::Debug for Start {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Start")
            .field("id", &self.id)
            .field("made", &self.made)
            .field("partition", &self.partition)
            .field("creator", &self.creator)
            .finish_non_exhaustive()
    }
}
