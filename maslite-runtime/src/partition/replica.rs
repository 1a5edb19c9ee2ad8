//! The replica: what every partition knows of all agents — which partition
//! each one is on, and every subscription (in its kernel's mailing list) —
//! kept the same on every partition by the changes exchanged at each step.
//!
//! A kernel journals what changed on its partition (agents added and
//! removed, subscriptions, alarm clears, removals asked of agents
//! elsewhere: [`Change`]); the runtime hands each partition's journal to
//! every other one with the step's controls, and every partition applies
//! them all, in partition order, before the step's mail is resolved — so
//! that recipients are resolved at delivery, as on one kernel, whichever
//! partition resolves them. Applying is linear in the number of changes.

use super::Driver;
use crate::error::{Error, Result};
use crate::exchange::Wires;
use maslite_core::{AgentId, Change, IdMap};
use rustc_hash::{FxHashMap, FxHashSet};
use std::sync::Arc;

/// Which partition each agent is on: looked up for every message routed
/// and every alarm handed out, so small ids are a table's index, as in the
/// kernel ([`IdMap`]).
#[derive(Default)]
pub(crate) struct Directory {
    map: IdMap,
}

impl Directory {
    #[inline]
    pub fn get(&self, id: AgentId) -> Option<usize> {
        self.map.get(&id).map(|&p| p as usize)
    }
    pub fn insert(&mut self, id: AgentId, partition: usize) {
        let partition = u32::try_from(partition).expect("a partition's number fits in u32");
        self.map.insert(id, partition);
    }
    pub fn remove(&mut self, id: AgentId) {
        self.map.remove(&id);
    }
}

/// The replica of one partition (see the [module](self)).
#[derive(Default)]
pub(crate) struct Replica {
    /// Which partition each agent is on.
    pub(super) dir: Directory,
    /// Ids leaving in the step being applied, with the stamp of the first
    /// departure and the partition it left.
    leaving: FxHashMap<AgentId, (maslite_core::Origin, usize)>,
    /// Ids whose own subscription changes are applied again (see
    /// `apply_step_changes`).
    replay: FxHashSet<AgentId>,
    /// Free mode: (id, partition) of agents another partition added with
    /// an id this partition still knew on that one.
    pub(super) conflicts: Vec<(AgentId, usize)>,
    /// Agents here that other partitions asked to remove.
    pub(super) to_remove: Vec<AgentId>,
    /// Partitions that remove an agent on request in this step (they send
    /// mail: the agent's teardown may).
    pub(super) removal_at: Vec<bool>,
    /// Agents that joined (true) or left (false) a partition in this run:
    /// this one's, and, if `tells_remote`, those of other hosts.
    pub(super) joined: Vec<(AgentId, usize, bool)>,
    /// The lowest partition of this host with others elsewhere: it tells
    /// the handle of the agents that joined or left other hosts.
    pub(super) tells_remote: bool,
    /// The next free ordering key: the handle's between runs, then one per
    /// agent created in a run (see `place_new_agents`).
    pub(super) next_key: u64,
}

/// The partition a replica belongs to, as applying changes needs it.
pub(super) struct Here<'a> {
    pub(super) me: usize,
    pub(super) kernel: &'a mut Driver,
    pub(super) wires: &'a Wires,
    /// Free mode (partitions' words cross on different wires).
    pub(super) free: bool,
}

impl Replica {
    /// Whether agent `id` was still held elsewhere when partition `from`
    /// added an agent with its id (stamped `made`): held now by `holder`
    /// and not left before the addition, or left in this step but after
    /// it (the stamps order them as one kernel would have).
    fn held_when_added(
        &self,
        id: AgentId,
        from: usize,
        holder: Option<usize>,
        made: &maslite_core::Origin,
    ) -> bool {
        match self.leaving.get(&id) {
            Some((left, q)) if *q != from => left > made,
            Some((left, _)) => holder.is_some() && left > made,
            None => holder.is_some(),
        }
    }

    /// A replica for a partition of `count`.
    pub(super) fn new(count: usize) -> Replica {
        Replica { removal_at: vec![false; count], ..Replica::default() }
    }

    /// Applies the changes of every partition in one step, each
    /// partition's in the order they were made, partitions in order — the
    /// same on every partition — and then the removals asked for. An id
    /// that leaves in this step may join another partition in the same
    /// step.
    pub(super) fn apply_step_changes(
        &mut self,
        here: &mut Here<'_>,
        all: &[(usize, Arc<Vec<Change>>)],
    ) -> Result<()> {
        // Most steps change nothing: no work, no allocation.
        if all.iter().all(|(_, c)| c.is_empty()) {
            return Ok(());
        }
        self.leaving.clear();
        for (q, changes) in all {
            for change in changes.iter() {
                // (Not a removal asked for: it applies to the agent there at
                // the start of the step, so a new agent with its id is a
                // duplicate, as on one kernel.)
                if let Change::Removed(id, left) = change {
                    let first = self.leaving.entry(*id).or_insert((*left, *q));
                    if *left < first.0 {
                        *first = (*left, *q);
                    }
                }
            }
        }
        let mut result = Ok(());
        // First, what happened to agents that left, up to their departure,
        // on the partition they left: an agent with the same id may join
        // another partition in this step, and its subscriptions must not be
        // wiped by its predecessor's departure. One pass per partition's
        // list: a change goes first if it is about an agent that leaves
        // later in the same list (linear in the number of changes).
        let mut done: Vec<Vec<bool>> = all.iter().map(|(_, c)| vec![false; c.len()]).collect();
        if !self.leaving.is_empty() {
            let mut last_removal: rustc_hash::FxHashMap<AgentId, usize> = Default::default();
            for (k, (from, changes)) in all.iter().enumerate() {
                last_removal.clear();
                for (i, change) in changes.iter().enumerate() {
                    if let Change::Removed(gone, _) = change {
                        last_removal.insert(*gone, i);
                    }
                }
                if last_removal.is_empty() {
                    continue;
                }
                let mut first: Vec<Change> = Vec::new();
                for (j, c) in changes.iter().enumerate() {
                    let leaves_later =
                        about(c).and_then(|id| last_removal.get(&id)).is_some_and(|&i| j <= i);
                    if leaves_later {
                        done[k][j] = true;
                        first.push(c.clone());
                    }
                }
                if let Err(e) = self.apply_changes(here, *from, &first) {
                    result = result.and(Err(e));
                }
            }
        }
        // This partition's own subscription changes for an id another
        // partition's agent left in this step belong to the id's new agent
        // here: the departure just wiped them from this kernel's list, so
        // they are applied again after it.
        self.replay.clear();
        for (from, changes) in all {
            if *from != here.me {
                for c in changes.iter() {
                    if let Change::Removed(id, _) = c {
                        self.replay.insert(*id);
                    }
                }
            }
        }
        let asked = |c: &Change| matches!(c, Change::RemoveRequested(_));
        for (k, (from, changes)) in all.iter().enumerate() {
            let made: Vec<Change> = changes
                .iter()
                .enumerate()
                .filter(|&(j, c)| !done[k][j] && !asked(c))
                .map(|(_, c)| c.clone())
                .collect();
            if let Err(e) = self.apply_changes(here, *from, &made) {
                result = result.and(Err(e));
            }
        }
        // Removals asked of other agents come last: on one kernel they are
        // carried out after the step's round, so after whatever the agent
        // itself did in it (a subscription, say).
        for (from, changes) in all {
            let asks: Vec<Change> = changes.iter().filter(|c| asked(c)).cloned().collect();
            if let Err(e) = self.apply_changes(here, *from, &asks) {
                result = result.and(Err(e));
            }
        }
        self.leaving.clear();
        self.replay.clear();
        result
    }

    /// Agent `id`, created as `made` says, joins partition `at`.
    fn join(
        &mut self,
        here: &mut Here<'_>,
        id: AgentId,
        made: &maslite_core::Origin,
        at: usize,
    ) -> Result<()> {
        let holder = self.dir.get(id).filter(|&q| q != at);
        if let (Some(q), true) = (holder, here.free) {
            // Free mode: partitions' words cross on different wires, so the
            // holder's `Removed` may still be on its way. A duplicate only
            // if it never comes.
            self.conflicts.push((id, q));
        } else if self.held_when_added(id, at, holder, made) {
            // Two partitions hold an agent with one id (its holder leaves,
            // if at all, after this addition, as their stamps tell): every
            // partition sees it in the same step and fails, as one kernel
            // does.
            return Err(Error::DuplicateAgent(id));
        }
        self.dir.insert(id, at);
        if at == here.me || (self.tells_remote && here.wires.is_remote(at)) {
            self.joined.push((id, at, true));
        }
        Ok(())
    }

    /// Applies changes of partition `from` to the directory (and, if they
    /// came from another partition, to the kernel's mailing list).
    pub(super) fn apply_changes(
        &mut self,
        here: &mut Here<'_>,
        from: usize,
        changes: &[Change],
    ) -> Result<()> {
        for change in changes {
            match change {
                Change::Added(id, made) => self.join(here, *id, made, from)?,
                // Made on `from`, for partition `on`: it joins `on`.
                Change::Spawned(_, _, on) if *on >= self.removal_at.len() => {
                    let partitions = self.removal_at.len();
                    return Err(Error::NoPartition { partition: *on, partitions });
                }
                Change::Spawned(id, made, on) => self.join(here, *id, made, *on)?,
                Change::Removed(id, _) => {
                    if self.dir.get(*id) == Some(from) {
                        self.dir.remove(*id);
                    }
                    self.conflicts.retain(|&(c, q)| !(c == *id && q == from));
                    if from == here.me || (self.tells_remote && here.wires.is_remote(from)) {
                        self.joined.push((*id, from, false));
                    }
                }
                Change::RemoveRequested(id) => {
                    // Everyone forgets it now, so no mail of this step is
                    // routed to it; its partition removes it.
                    match self.dir.get(*id) {
                        Some(q) if q == here.me => self.to_remove.push(*id),
                        Some(q) => {
                            self.removal_at[q] = true;
                            self.dir.remove(*id);
                            let gone = Change::Removed(*id, Default::default());
                            here.kernel.apply_change(&gone)?;
                        }
                        None => {}
                    }
                    if self.dir.get(*id) == Some(here.me) {
                        self.removal_at[here.me] = true;
                        self.dir.remove(*id);
                    }
                    continue;
                }
                _ => {}
            }
            // Alarm clears are deferred to here on every partition, the
            // clearer's own included (see `Cx::clear_alarms`).
            let replay = from == here.me
                && matches!(
                    change,
                    Change::Subscribed(..) | Change::Unsubscribed(..) | Change::UnsubscribedAll(_)
                )
                && about(change).is_some_and(|id| self.replay.contains(&id));
            if replay {
                // Already in this kernel's list unless a departure wiped it.
                let _ = here.kernel.apply_change(change);
                continue;
            }
            if from != here.me || matches!(change, Change::AlarmsCleared { .. }) {
                here.kernel.apply_change(change)?;
            }
        }
        Ok(())
    }

    /// Gives the agents created in this step, on every partition, their
    /// places in the order of insertion: sorted by creation stamp (when,
    /// and on whose account, see [`Origin`](maslite_core::Origin)), they
    /// take the next keys — the order in which one kernel would have
    /// inserted them, computed alike by every partition from the same
    /// changes.
    pub(super) fn place_new_agents(
        &mut self,
        here: &mut Here<'_>,
        all: &[(usize, Arc<Vec<Change>>)],
    ) {
        let mut made: Vec<(maslite_core::Origin, usize, AgentId)> = Vec::new();
        for (q, changes) in all {
            for c in changes.iter() {
                match c {
                    Change::Added(id, stamp) => made.push((*stamp, *q, *id)),
                    // Made on `q`, for partition `on`: placed by its stamp.
                    Change::Spawned(id, stamp, on) => made.push((*stamp, *on, *id)),
                    _ => {}
                }
            }
        }
        if made.is_empty() {
            return;
        }
        // Stable: equal stamps (agents added from outside by hand) keep
        // partition order.
        made.sort_by_key(|&(stamp, q, _)| (stamp, q));
        for (_, q, id) in made {
            let key = self.next_key;
            self.next_key += 1;
            if q == here.me && self.dir.get(id) == Some(here.me) {
                let _ = here.kernel.set_key(id, key);
            }
        }
    }
}

/// The agent a change is about (none for alarm clears and removal
/// requests, which concern other agents).
fn about(change: &Change) -> Option<AgentId> {
    match change {
        Change::Added(id, _)
        | Change::Spawned(id, ..)
        | Change::Removed(id, _)
        | Change::Subscribed(id, _)
        | Change::Unsubscribed(id, _)
        | Change::UnsubscribedAll(id) => Some(*id),
        _ => None,
    }
}
