//! The runtime's side of placement: measuring traffic during a run, and
//! moving agents between partitions between runs (see
//! [`traffic`](crate::traffic), [`advice`](crate::advice) and
//! `maslite_core::scheduler::moving`).
//!
//! Moving is safe for the results because nothing a run decides depends on
//! where an agent is: orders come from keys that travel with the agent.
//! It is done between runs only (in lockstep, lookahead windows and free
//! mode alike), all or nothing: every agent to move is checked on its
//! partition before any is taken out.

use super::Runtime;
use crate::advice::AgentPlacement;
use crate::error::{Error, Result};
use crate::partition::Outcome;
use crate::traffic::Traffic;
use maslite_core::{Agent, AgentId, Immovable, MovingAgent};
use std::sync::Arc;
use std::time::Duration;

impl Runtime {
    /// Measures the traffic of the next runs (`true`) or stops (`false`,
    /// the default): each partition counts the messages of every (sender,
    /// recipient) pair — exactly up to a bound, by sample past it (see
    /// [`traffic`](crate::traffic)) — and every agent's updates. The run's
    /// report then carries them ([`RuntimeReport::measured`](crate::RuntimeReport::measured))
    /// and can [`suggest_placement`](crate::RuntimeReport::suggest_placement).
    /// Off, a message pays one test of an `Option` and a poll one of a flag.
    pub fn measure_traffic(&mut self, on: bool) -> Result<()> {
        for q in 0..self.parts.len() {
            if self.is_local(q) {
                self.check(q)?;
                self.post(q, move |p| p.measure(on))?;
            }
        }
        self.flush()
    }

    /// The merged traffic of a run's outcomes, if they measured it.
    pub(super) fn measured(
        &self,
        outcomes: &mut [Outcome],
        wall: Duration,
    ) -> Option<Arc<Traffic>> {
        if outcomes.iter().all(|o| o.counters.measure.is_none()) {
            return None;
        }
        let steps = outcomes.first().map_or(0, |o| o.steps);
        let mut counters = Vec::new();
        let mut agents = Vec::new();
        for o in outcomes.iter_mut() {
            if let Some(c) = o.counters.measure.take() {
                counters.push(*c);
            }
            let q = o.report.partition;
            agents.extend(o.loads.drain(..).map(|(id, load)| (id, load, q)));
        }
        Some(Arc::new(Traffic::merge(self.parts.len(), counters, agents, steps, wall)))
    }

    /// Adds a `Send` agent that can later move between partitions.
    pub(super) fn add_movable<A: Agent + Send>(
        &mut self,
        partition: usize,
        id: Option<AgentId>,
        agent: A,
    ) -> Result<AgentId> {
        let (id, key) = self.claim(partition, id)?;
        if !self.is_local(partition) {
            return Ok(id);
        }
        self.post(partition, move |p| {
            if let Err(e) = p.kernel_mut().add_placed_movable(id, key, agent) {
                p.defer(e);
            }
        })?;
        Ok(id)
    }

    /// The agents `placement` would move that cannot move now, each with
    /// the reason (see [`apply_placement`](Self::apply_placement)), by id:
    /// to leave them out of an advice
    /// ([`AgentPlacement::retain`]) before applying it.
    pub fn immovable(&mut self, placement: &AgentPlacement) -> Result<Vec<(AgentId, Immovable)>> {
        self.check(0)?;
        let (from, _) = self.moves(placement)?;
        let mut stuck: Vec<(AgentId, Immovable)> = Vec::new();
        for (q, ids) in from.into_iter().enumerate() {
            if !ids.is_empty() && self.is_local(q) {
                stuck.extend(self.with_driver(q, move |d| d.immovable(&ids))??);
            }
        }
        stuck.sort_unstable_by_key(|s| s.0);
        Ok(stuck)
    }

    /// What `placement` moves: the agents to take out of each partition,
    /// and each move as (agent, from, to). Those already where it puts
    /// them stay. [`Error::NoPartition`] and [`Error::UnknownAgent`] as
    /// found.
    #[allow(clippy::type_complexity)]
    fn moves(
        &self,
        placement: &AgentPlacement,
    ) -> Result<(Vec<Vec<AgentId>>, Vec<(AgentId, usize, usize)>)> {
        let partitions = self.parts.len();
        let mut from: Vec<Vec<AgentId>> = vec![Vec::new(); partitions];
        let mut moves = Vec::new();
        for (id, to) in placement.iter() {
            if to >= partitions {
                return Err(Error::NoPartition { partition: to, partitions });
            }
            let at = self.dir.get(&id).copied().ok_or(Error::UnknownAgent(id))?;
            if at != to {
                from[at].push(id);
                moves.push((id, at, to));
            }
        }
        Ok((from, moves))
    }

    /// Moves agent `id` to `partition`, between runs, with its state,
    /// inbox, alarms and subscriptions (see
    /// [`apply_placement`](Self::apply_placement)).
    pub fn place(&mut self, id: AgentId, partition: usize) -> Result<()> {
        self.apply_placement(&AgentPlacement::from_iter([(id, partition)])).map(|_| ())
    }

    /// Moves the agents `placement` names to the partitions it gives them,
    /// between runs; returns how many moved (those already there stay).
    /// Each takes its state, inbox, alarms, subscriptions and its keys in
    /// the one order: the runs that follow give the trace they would have
    /// given without the move.
    ///
    /// All or nothing. Errors, with nothing moved:
    /// [`Error::UnknownAgent`] (an agent no partition has),
    /// [`Error::NoPartition`], and [`Error::CannotMove`] naming every agent
    /// that cannot move: an async-fn agent, a trait agent suspended inside
    /// its setup or update, or one added without a `Send` bound
    /// ([`add_made`](Self::add_made), `cx.add`). Agents added with
    /// [`add`](Self::add) or [`add_with_id`](Self::add_with_id) move while
    /// they rest between updates. Not across hosts ([`Error::Config`]).
    pub fn apply_placement(&mut self, placement: &AgentPlacement) -> Result<usize> {
        self.check(0)?;
        if self.placement.is_some() {
            return Err(Error::Config("agents do not move between hosts' partitions".into()));
        }
        let partitions = self.parts.len();
        let (from, moves) = self.moves(placement)?;
        if moves.is_empty() {
            return Ok(0);
        }
        // Check every agent first.
        let stuck = self.immovable(placement)?;
        if !stuck.is_empty() {
            return Err(Error::CannotMove(stuck));
        }
        // Take them out, then put them in.
        let mut to_install: Vec<Vec<MovingAgent>> = (0..partitions).map(|_| Vec::new()).collect();
        let dest: rustc_hash::FxHashMap<AgentId, usize> =
            moves.iter().map(|&(id, _, to)| (id, to)).collect();
        for (q, ids) in from.into_iter().enumerate() {
            if ids.is_empty() {
                continue;
            }
            for agent in self.with_driver(q, move |d| d.take_moving(&ids))?? {
                to_install[dest[&agent.id()]].push(agent);
            }
        }
        for (q, agents) in to_install.into_iter().enumerate() {
            if !agents.is_empty() {
                self.with_driver(q, move |d| d.insert_moving(agents))??;
            }
        }
        // Every partition's directory, and the handle's.
        for &(id, _, to) in &moves {
            self.dir.insert(id, to);
            self.placed.push((id, to));
        }
        self.flush()?;
        Ok(moves.len())
    }
}
