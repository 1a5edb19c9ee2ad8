//! What a run did, per partition and between partitions, so a user sees
//! where the time and the traffic went — and how to place agents better.

use crate::advice::PlacementAdvice;
use crate::traffic::Traffic;
use maslite_core::AgentId;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Why a run stopped: the kernel's [`StopReason`](maslite_core::StopReason),
/// one type for one kernel and for many partitions.
pub use maslite_core::StopReason;

/// One partition's share of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartitionReport {
    /// The partition's number.
    pub partition: usize,
    /// Agents on it when the run stopped.
    pub agents: usize,
    /// Rounds it ran.
    pub rounds: u64,
    /// Agent polls (updates, wake-ups, setups, teardowns).
    pub updates: u64,
    /// Messages its agents sent (and its alarms fired), counted once per
    /// recipient.
    pub sent: u64,
    /// Messages put into its agents' inboxes.
    pub delivered: u64,
    /// Messages that no agent took (unknown or departed receiver, a
    /// broadcast nobody hears). Mail still unread in the inbox of an agent
    /// when it leaves was delivered: the kernel's stats count it.
    pub dead_letters: u64,
    /// Messages sent here and not delivered when the run stopped.
    pub pending: u64,
    /// Messages in its agents' inboxes, not yet read, at the stop.
    pub unread: u64,
    /// Messages for agents on other partitions: mail routed there, and
    /// alarms handed over to fire there (lookahead windows; their delivery
    /// counts on the receiving partition).
    pub cross_partition: u64,
    /// Its agents suspended, at the stop, on something the kernel does not
    /// drive (see `maslite_core::RunReport::waiting_outside`).
    pub waiting_outside: Vec<AgentId>,
    /// Wall time it spent waiting for the other partitions (on this host or
    /// others) at the ends of steps or windows (zero with one partition),
    /// counted while a packet it needed was not there yet: what its peers'
    /// longer steps cost it, and the exchange's own latency (the spin, a
    /// parked thread's wake-up, another host's transport). In free mode
    /// only the drain at the run's end counts (a free partition's idle
    /// waits are not waits for others). Partitions
    /// that wait much while others wait little are unevenly loaded (see
    /// [`RuntimeReport::suggest_placement`]); all waiting much means steps
    /// too short for their exchange (see
    /// [`RuntimeReport::fewer_partitions_faster`]).
    pub waited: Duration,
}

/// Traffic between one pair of agents on different partitions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairTraffic {
    /// The sender (as the envelope names it).
    pub sender: AgentId,
    /// The recipient.
    pub receiver: AgentId,
    /// The sender's partition.
    pub from: usize,
    /// The recipient's partition.
    pub to: usize,
    /// Messages from `sender` to `receiver` during the run.
    pub messages: u64,
}

/// What one run did.
#[derive(Clone, Debug, PartialEq)]
pub struct RuntimeReport {
    /// Why it stopped.
    pub reason: StopReason,
    /// The clock when it started.
    pub start_time: f64,
    /// The clock when it stopped.
    pub end_time: f64,
    /// Wall time from the start of the run to the last partition's stop.
    pub wall: Duration,
    /// Global steps (lockstep rounds, time advances and windows); in free
    /// mode, partition 0's rounds.
    pub steps: u64,
    /// One entry per partition.
    pub partitions: Vec<PartitionReport>,
    /// `traffic[p][q]`: messages routed from partition `p` to partition
    /// `q` (`p == q`: delivered locally), plus alarms `p` handed to `q`.
    /// On several hosts, a host's report has zeros in the rows of other
    /// hosts' partitions (their reports have them).
    pub traffic: Vec<Vec<u64>>,
    /// Crossings not in `top_pairs`' counts: each partition counts the
    /// first 4 096 distinct crossing pairs of a run exactly, and only the
    /// total of the others (a model whose crossings are all different
    /// pairs, like PHOLD, would otherwise fill memory with them).
    pub untracked_crossings: u64,
    /// The agent pairs that crossed partitions most, most first (at most
    /// ten): candidates to place together.
    pub top_pairs: Vec<PairTraffic>,
    /// Every pair's messages and every agent's load, if the run measured
    /// them ([`Runtime::measure_traffic`](crate::Runtime::measure_traffic)):
    /// what [`suggest_placement`](Self::suggest_placement) advises from.
    pub measured: Option<Arc<Traffic>>,
}

impl RuntimeReport {
    /// Adds the report of the run that went on where this one stopped
    /// (a run cut into pieces, by checkpoints): counts add up, the state at
    /// the end (agents, pending mail, why it stopped) is the later one's.
    pub fn absorb(&mut self, next: RuntimeReport) {
        self.reason = next.reason;
        self.end_time = next.end_time;
        self.wall += next.wall;
        self.steps += next.steps;
        for (mine, theirs) in self.partitions.iter_mut().zip(next.partitions) {
            mine.agents = theirs.agents;
            mine.rounds += theirs.rounds;
            mine.updates += theirs.updates;
            mine.sent += theirs.sent;
            mine.delivered += theirs.delivered;
            mine.dead_letters += theirs.dead_letters;
            mine.pending = theirs.pending;
            mine.unread = theirs.unread;
            mine.cross_partition += theirs.cross_partition;
            mine.waiting_outside = theirs.waiting_outside;
            mine.waited += theirs.waited;
        }
        for (row, theirs) in self.traffic.iter_mut().zip(next.traffic) {
            for (cell, n) in row.iter_mut().zip(theirs) {
                *cell += n;
            }
        }
        self.untracked_crossings += next.untracked_crossings;
        let shown = self.top_pairs.len().max(next.top_pairs.len());
        for pair in next.top_pairs {
            let same =
                |p: &&mut PairTraffic| p.sender == pair.sender && p.receiver == pair.receiver;
            match self.top_pairs.iter_mut().find(same) {
                Some(p) => p.messages += pair.messages,
                None => self.top_pairs.push(pair),
            }
        }
        self.top_pairs.sort_by(|a, b| {
            b.messages
                .cmp(&a.messages)
                .then(a.sender.cmp(&b.sender))
                .then(a.receiver.cmp(&b.receiver))
        });
        self.top_pairs.truncate(shown);
    }

    /// The agents suspended, at the stop, on something the kernel does not
    /// drive, on every partition (see
    /// [`PartitionReport::waiting_outside`]); a `tracing` warning names them
    /// too.
    pub fn waiting_outside(&self) -> Vec<AgentId> {
        let mut all: Vec<AgentId> =
            self.partitions.iter().flat_map(|p| p.waiting_outside.iter().copied()).collect();
        all.sort_unstable();
        all
    }

    /// Simulated seconds run.
    pub fn sim_seconds(&self) -> f64 {
        self.end_time - self.start_time
    }

    /// Simulated seconds per wall second.
    pub fn ratio(&self) -> f64 {
        self.sim_seconds() / self.wall.as_secs_f64().max(1e-9)
    }

    /// Messages sent on all partitions.
    pub fn sent(&self) -> u64 {
        self.partitions.iter().map(|p| p.sent).sum()
    }

    /// Messages delivered on all partitions.
    pub fn delivered(&self) -> u64 {
        self.partitions.iter().map(|p| p.delivered).sum()
    }

    /// Dead letters on all partitions.
    pub fn dead_letters(&self) -> u64 {
        self.partitions.iter().map(|p| p.dead_letters).sum()
    }

    /// Messages not delivered at the stop, on all partitions.
    pub fn pending(&self) -> u64 {
        self.partitions.iter().map(|p| p.pending).sum()
    }

    /// Messages that crossed partitions.
    pub fn cross_partition(&self) -> u64 {
        self.partitions.iter().map(|p| p.cross_partition).sum()
    }

    /// Agent updates on all partitions.
    pub fn updates(&self) -> u64 {
        self.partitions.iter().map(|p| p.updates).sum()
    }

    /// Agent updates per global step, on all partitions together: the work
    /// each synchronisation of the partitions pays for.
    pub fn updates_per_step(&self) -> f64 {
        self.updates() as f64 / self.steps.max(1) as f64
    }

    /// Wall time per global step: with several partitions, mostly their
    /// synchronisation when steps carry little work.
    pub fn step_cost(&self) -> Duration {
        self.wall / self.steps.max(1).min(u32::MAX as u64) as u32
    }

    /// Messages sent per global step, on all partitions together.
    pub fn messages_per_step(&self) -> f64 {
        self.sent() as f64 / self.steps.max(1) as f64
    }

    /// Whether fewer partitions would likely be faster: a run of several
    /// partitions (and enough steps to tell) whose steps cost more than
    /// 4 times the work they carry, counted at 100 ns an update or a
    /// message (a generous figure: a bare kernel's ping-pong does both in
    /// ~60 ns on the project's machines).
    /// Then the partitions spend their time waiting for each other — a
    /// SimPy-style model with one event per timestamp, say.
    pub fn fewer_partitions_faster(&self) -> bool {
        let events = self.updates_per_step() + self.messages_per_step();
        let work = EVENT_COST.as_secs_f64() * events;
        self.partitions.len() > 1
            && self.steps >= 100
            && self.step_cost().as_secs_f64() > STEP_WORK_RATIO * work
    }

    /// The partitions whose waits differ the most, (the busiest, the
    /// idlest), when they differ by at least a fifth of the run's wall time
    /// (in a run of at least 10 ms): the others waited for the busiest one
    /// at the ends of steps or windows, so its work sets the run's pace.
    /// Moving work from it to the idlest would shorten the run (the
    /// [placement advice](Self::suggest_placement) balances the updates of a
    /// measured run). `None` for one partition, or waits about even.
    pub fn uneven_waits(&self) -> Option<(usize, usize)> {
        let busiest = self.partitions.iter().min_by_key(|p| p.waited)?;
        let idlest = self.partitions.iter().max_by_key(|p| p.waited)?;
        let spread = idlest.waited.saturating_sub(busiest.waited);
        let uneven = self.wall >= Duration::from_millis(10) && spread * 5 >= self.wall;
        uneven.then_some((busiest.partition, idlest.partition))
    }

    /// Advice on placing the measured agents on `k` partitions (see
    /// [`Traffic::suggest_placement`]); [`Error::Config`](crate::Error::Config)
    /// if the run did not measure its traffic.
    pub fn suggest_placement(&self, k: usize) -> crate::Result<PlacementAdvice> {
        self.traffic()?.suggest_placement(k)
    }

    /// [`suggest_placement`](Self::suggest_placement) with a load
    /// tolerance of your own (see [`Traffic::suggest_placement_within`]).
    pub fn suggest_placement_within(
        &self,
        k: usize,
        tolerance: f64,
    ) -> crate::Result<PlacementAdvice> {
        self.traffic()?.suggest_placement_within(k, tolerance)
    }

    fn traffic(&self) -> crate::Result<&Traffic> {
        self.measured.as_deref().ok_or_else(|| {
            crate::Error::Config(
                "this run did not measure its traffic: call Runtime::measure_traffic(true) \
                 before it"
                    .into(),
            )
        })
    }
}

/// What an update or a message costs a bare kernel, about (a generous
/// figure: ping-pong does both in ~60 ns on the project's machines).
pub(crate) const EVENT_COST: Duration = Duration::from_nanos(100);

/// A step that costs more than this many times its work is mostly
/// synchronisation (see [`RuntimeReport::fewer_partitions_faster`]).
pub(crate) const STEP_WORK_RATIO: f64 = 4.0;

impl fmt::Display for RuntimeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "run: {:?}, sim {:.6} s, wall {:.6} s, ratio {:.1}x, {} steps",
            self.reason,
            self.sim_seconds(),
            self.wall.as_secs_f64(),
            self.ratio(),
            self.steps
        )?;
        writeln!(
            f,
            "{:>9} {:>8} {:>10} {:>10} {:>10} {:>10} {:>8} {:>8} {:>10} {:>10}",
            "partition",
            "agents",
            "updates",
            "sent",
            "delivered",
            "dead",
            "pending",
            "unread",
            "crossing",
            "waited ms"
        )?;
        for p in &self.partitions {
            writeln!(
                f,
                "{:>9} {:>8} {:>10} {:>10} {:>10} {:>10} {:>8} {:>8} {:>10} {:>10.3}",
                p.partition,
                p.agents,
                p.updates,
                p.sent,
                p.delivered,
                p.dead_letters,
                p.pending,
                p.unread,
                p.cross_partition,
                p.waited.as_secs_f64() * 1e3
            )?;
        }
        if self.traffic.len() > 1 {
            writeln!(f, "traffic (row: from, column: to):")?;
            for (p, row) in self.traffic.iter().enumerate() {
                let cells: Vec<String> = row.iter().map(|n| format!("{n:>10}")).collect();
                writeln!(f, "{p:>9} {}", cells.join(" "))?;
            }
        }
        for pair in &self.top_pairs {
            writeln!(
                f,
                "crossing: {} (p{}) -> {} (p{}): {} messages",
                pair.sender, pair.from, pair.receiver, pair.to, pair.messages
            )?;
        }
        if self.partitions.len() > 1 {
            if let Ok(advice) = self.suggest_placement(self.partitions.len()) {
                writeln!(f, "{advice}")?;
            }
        }
        if let Some((busiest, idlest)) = self.uneven_waits() {
            let ms = |p: usize| self.partitions[p].waited.as_secs_f64() * 1e3;
            let share = |p: usize| 100.0 * ms(p) / (self.wall.as_secs_f64() * 1e3);
            writeln!(
                f,
                "partition {idlest} waited {:.1} ms ({:.0}% of the run) for the others, partition \
                 {busiest} {:.1} ms ({:.0}%): partition {busiest}'s work sets the pace; moving \
                 agents from it to partition {idlest} would shorten the run",
                ms(idlest),
                share(idlest),
                ms(busiest),
                share(busiest)
            )?;
        }
        if self.fewer_partitions_faster() {
            writeln!(
                f,
                "this run made {} steps with {:.1} updates and {:.1} messages each on average; \
                 each step costs about {:.1} µs, mostly synchronisation between the {} \
                 partitions: 1 partition would likely be faster",
                self.steps,
                self.updates_per_step(),
                self.messages_per_step(),
                self.step_cost().as_secs_f64() * 1e6,
                self.partitions.len()
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A report of `steps` steps on two partitions, `updates` and `sent`
    /// on each, in `wall`.
    fn report(steps: u64, updates: u64, sent: u64, wall: Duration) -> RuntimeReport {
        let part = |partition| PartitionReport { partition, updates, sent, ..Default::default() };
        RuntimeReport {
            reason: StopReason::Idle,
            start_time: 0.0,
            end_time: 1.0,
            wall,
            steps,
            partitions: vec![part(0), part(1)],
            traffic: vec![vec![0; 2]; 2],
            untracked_crossings: 0,
            top_pairs: Vec::new(),
            measured: None,
        }
    }

    #[test]
    fn steps_with_little_work_say_that_one_partition_would_be_faster() {
        // A SimPy-style model: 750 000 steps of about one update each, 10 µs a step.
        let slow = report(750_000, 375_000, 375_000, Duration::from_micros(7_500_000));
        assert!(slow.fewer_partitions_faster());
        assert_eq!(slow.updates_per_step(), 1.0);
        assert_eq!(slow.step_cost(), Duration::from_micros(10));
        let text = slow.to_string();
        assert!(
            text.contains(
                "this run made 750000 steps with 1.0 updates and 1.0 messages each on average; \
                 each step costs about 10.0 µs, mostly synchronisation between the 2 partitions: \
                 1 partition would likely be faster"
            ),
            "{text}"
        );
        // Steps that carry a thousand events each are worth their cost.
        let busy = report(1_000, 500_000, 500_000, Duration::from_millis(10));
        assert!(!busy.fewer_partitions_faster());
        assert!(!busy.to_string().contains("1 partition would likely be faster"));
        // Nor is it said of one partition.
        let mut one = slow.clone();
        one.partitions.truncate(1);
        assert!(!one.fewer_partitions_faster());
    }

    #[test]
    fn uneven_waits_name_the_partition_that_sets_the_pace() {
        let mut r = report(1_000, 1_000, 0, Duration::from_millis(100));
        r.partitions[0].waited = Duration::from_millis(2);
        r.partitions[1].waited = Duration::from_millis(40);
        assert_eq!(r.uneven_waits(), Some((0, 1)));
        let text = r.to_string();
        assert!(
            text.contains(
                "partition 1 waited 40.0 ms (40% of the run) for the others, partition 0 2.0 ms \
                 (2%): partition 0's work sets the pace; moving agents from it to partition 1 \
                 would shorten the run"
            ),
            "{text}"
        );
        assert!(text.contains("waited ms"), "{text}");
        // Waits about even (a spread under a fifth of the run) say nothing.
        r.partitions[0].waited = Duration::from_millis(25);
        assert_eq!(r.uneven_waits(), None);
        assert!(!r.to_string().contains("sets the pace"));
        // Nor does a run too short to tell, or one partition.
        let mut short = report(10, 10, 0, Duration::from_millis(5));
        short.partitions[1].waited = Duration::from_millis(4);
        assert_eq!(short.uneven_waits(), None);
        let mut one = r.clone();
        one.partitions.truncate(1);
        assert_eq!(one.uneven_waits(), None);
    }
}
