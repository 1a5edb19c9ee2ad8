//! Measured traffic: messages per (sender, receiver) pair of agents and
//! updates per agent, counted by every partition during a run when asked
//! ([`Runtime::measure_traffic`](crate::Runtime::measure_traffic)), merged
//! into one [`Traffic`] in the run's report.
//!
//! # Why measure, and what it costs
//!
//! A run's results do not depend on where its agents are, but its speed
//! does: every message between partitions crosses threads, and a partition
//! with more work than the others makes them wait at every step. The
//! [`Traffic`] of a run is what [`suggest_placement`](Traffic::suggest_placement)
//! needs to propose a better placement.
//!
//! Off (the default), routing a message pays one test of an `Option`; a
//! round pays one test of a flag per agent it polls. On, each message costs
//! a hash-map update (a repeated pair, one comparison) on its sender's
//! partition, and each poll an addition.
//!
//! # Exact up to a bound, sampled past it
//!
//! Each partition counts the first [`EXACT_PAIRS`] distinct pairs of a run
//! exactly. Past that, a new pair is counted only if its hash falls in a
//! 1-in-[`SAMPLE_RATE`] sample (up to [`SAMPLED_PAIRS`] more pairs), and its
//! count is reported multiplied by the rate (an estimate, flagged as such
//! in [`PairCount::estimated`]); the messages of pairs outside the sample
//! are only totalled ([`Traffic::unsampled`]). A model whose agents talk to
//! few partners is counted exactly; one whose messages all go to different
//! pairs (PHOLD) is counted by sample, in bounded memory.

use crate::advice::{AgentPlacement, PlacementAdvice};
use crate::error::{Error, Result};
use maslite_core::AgentId;
use rustc_hash::FxHashMap;
use std::time::Duration;

/// Distinct pairs each partition counts exactly per run.
pub const EXACT_PAIRS: usize = 1 << 21;
/// Distinct pairs each partition counts by sample per run, past the exact ones.
pub const SAMPLED_PAIRS: usize = 1 << 20;
/// Past [`EXACT_PAIRS`], one new pair in this many (by hash) is counted.
pub const SAMPLE_RATE: u64 = 16;

/// One partition's pair counts during a run (see the [module](self)).
#[derive(Clone, Default)]
pub(crate) struct PairCounter {
    exact: FxHashMap<(AgentId, AgentId), u64>,
    sampled: FxHashMap<(AgentId, AgentId), u64>,
    unsampled: u64,
    /// The last pair counted and its messages not yet added (streams
    /// repeat one pair: one comparison instead of a lookup).
    last: Option<((AgentId, AgentId), u64)>,
}

impl PairCounter {
    /// Counts one message from `sender` to `receiver`.
    #[inline]
    pub(crate) fn count(&mut self, sender: AgentId, receiver: AgentId) {
        match &mut self.last {
            Some((pair, n)) if *pair == (sender, receiver) => *n += 1,
            _ => {
                self.settle();
                self.last = Some(((sender, receiver), 1));
            }
        }
    }

    /// Adds the last pair's messages to the maps.
    pub(crate) fn settle(&mut self) {
        let Some((pair, n)) = self.last.take() else { return };
        if let Some(c) = self.exact.get_mut(&pair) {
            *c += n;
        } else if let Some(c) = self.sampled.get_mut(&pair) {
            *c += n;
        } else if self.exact.len() < EXACT_PAIRS {
            self.exact.insert(pair, n);
        } else if in_sample(pair) && self.sampled.len() < SAMPLED_PAIRS {
            self.sampled.insert(pair, n);
        } else {
            self.unsampled += n;
        }
    }
}

/// Whether a pair past the exact bound is in the sample (a fixed hash: the
/// same pairs on every partition and every run).
fn in_sample((s, r): (AgentId, AgentId)) -> bool {
    let h = s.0.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ r.0.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    (h >> 32).is_multiple_of(SAMPLE_RATE)
}

/// Messages from one agent to another during a measured run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PairCount {
    /// The sender (as the envelope names it).
    pub sender: AgentId,
    /// The recipient (the receiver, or a subscriber that got a copy).
    pub receiver: AgentId,
    /// Messages from `sender` to `receiver`.
    pub messages: u64,
    /// The count is an estimate: a sampled pair's count times the sample
    /// rate (see the [module](self)).
    pub estimated: bool,
}

/// The traffic of a measured run, on all partitions: messages per pair of
/// agents, updates per agent (the load), and where each agent was. Made by
/// a run after [`Runtime::measure_traffic`](crate::Runtime::measure_traffic)
/// (in [`RuntimeReport::measured`](crate::RuntimeReport::measured)), or
/// from figures of your own with [`Traffic::from_counts`].
#[derive(Clone, Debug, PartialEq)]
pub struct Traffic {
    partitions: usize,
    /// Sorted by (sender, receiver).
    pairs: Vec<PairCount>,
    /// (agent, updates, partition), sorted by agent.
    agents: Vec<(AgentId, u64, usize)>,
    unsampled: u64,
    steps: u64,
    wall: Duration,
}

impl Traffic {
    /// Traffic from figures of your own: every agent with its load
    /// (updates, or any work measure) and its partition now, on
    /// `partitions` partitions, and the messages per (sender, receiver)
    /// pair (repeated pairs add up; pairs naming an agent not in `agents`
    /// are ignored by the advice).
    pub fn from_counts(
        partitions: usize,
        agents: impl IntoIterator<Item = (AgentId, u64, usize)>,
        pairs: impl IntoIterator<Item = (AgentId, AgentId, u64)>,
    ) -> Traffic {
        let mut agents: Vec<(AgentId, u64, usize)> = agents.into_iter().collect();
        agents.sort_unstable_by_key(|a| a.0);
        agents.dedup_by_key(|a| a.0);
        let mut pairs: Vec<PairCount> = pairs
            .into_iter()
            .map(|(sender, receiver, messages)| PairCount {
                sender,
                receiver,
                messages,
                estimated: false,
            })
            .collect();
        merge_pairs(&mut pairs);
        Traffic { partitions, pairs, agents, unsampled: 0, steps: 0, wall: Duration::ZERO }
    }

    /// Merges the partitions' counts of a run (see `Runtime::settle`).
    pub(crate) fn merge(
        partitions: usize,
        counters: Vec<PairCounter>,
        agents: Vec<(AgentId, u64, usize)>,
        steps: u64,
        wall: Duration,
    ) -> Traffic {
        let mut pairs = Vec::new();
        let mut unsampled = 0;
        for mut c in counters {
            c.settle();
            unsampled += c.unsampled;
            pairs.extend(c.exact.into_iter().map(|((sender, receiver), messages)| PairCount {
                sender,
                receiver,
                messages,
                estimated: false,
            }));
            pairs.extend(c.sampled.into_iter().map(|((sender, receiver), n)| PairCount {
                sender,
                receiver,
                messages: n * SAMPLE_RATE,
                estimated: true,
            }));
        }
        merge_pairs(&mut pairs);
        let mut t = Traffic::from_counts(partitions, agents, std::iter::empty());
        t.pairs = pairs;
        t.unsampled = unsampled;
        t.steps = steps;
        t.wall = wall;
        t
    }

    /// The number of partitions the agents were on.
    pub fn partitions(&self) -> usize {
        self.partitions
    }

    /// Messages per pair of agents, sorted by (sender, receiver).
    pub fn pairs(&self) -> &[PairCount] {
        &self.pairs
    }

    /// Every agent with its load (the rounds it was updated in) and its
    /// partition, sorted by id.
    pub fn agents(&self) -> &[(AgentId, u64, usize)] {
        &self.agents
    }

    /// Messages of pairs past the exact bound and outside the sample: in
    /// no pair's count (see the [module](self)).
    pub fn unsampled(&self) -> u64 {
        self.unsampled
    }

    /// Whether every pair was counted exactly.
    pub fn is_exact(&self) -> bool {
        self.unsampled == 0 && self.pairs.iter().all(|p| !p.estimated)
    }

    /// The placement the run had: each agent's partition.
    pub fn current_placement(&self) -> AgentPlacement {
        AgentPlacement::from_iter(self.agents.iter().map(|&(id, _, p)| (id, p)))
    }

    /// A placement of every agent on `k` partitions that keeps the
    /// messages crossing partitions few, each partition's load within 10%
    /// of the mean (see [`suggest_placement_within`](Self::suggest_placement_within)).
    pub fn suggest_placement(&self, k: usize) -> Result<PlacementAdvice> {
        self.suggest_placement_within(k, crate::advice::DEFAULT_TOLERANCE)
    }

    /// A placement of every agent on `k` partitions that keeps the
    /// messages crossing partitions few while each partition's load stays
    /// within `tolerance` (0.1: 10%) of the mean, with the predicted
    /// crossings and loads, against the current placement's. Deterministic:
    /// the same traffic gives the same advice. See
    /// [`advice`](crate::advice) for how.
    ///
    /// Errors: `k = 0`, or a tolerance that is negative or not finite
    /// ([`Error::Config`]).
    pub fn suggest_placement_within(&self, k: usize, tolerance: f64) -> Result<PlacementAdvice> {
        if k == 0 {
            return Err(Error::Config("placement advice needs k >= 1 partitions, not 0".into()));
        }
        if !tolerance.is_finite() || tolerance < 0.0 {
            return Err(Error::Config(format!(
                "the load tolerance must be finite and >= 0, not {tolerance}"
            )));
        }
        Ok(crate::advice::advise(self, k, tolerance))
    }
}

/// Sorts pairs by (sender, receiver) and adds up repeated ones.
fn merge_pairs(pairs: &mut Vec<PairCount>) {
    pairs.sort_unstable_by_key(|p| (p.sender, p.receiver));
    pairs.dedup_by(|later, first| {
        if (later.sender, later.receiver) == (first.sender, first.receiver) {
            first.messages += later.messages;
            first.estimated |= later.estimated;
            true
        } else {
            false
        }
    });
}
