//! The coordinator of simulated time across hosts: what every host does
//! next, decided from their reports. Pure logic, no transport: the hosts'
//! reports come in through [`Coordinator::report`], and the [`Decision`] it
//! returns once every host has reported is what the transport broadcasts.
//!
//! # The rules, as on one machine
//!
//! On one machine the partitions of a run agree on every step from each
//! other's controls (`maslite_runtime`'s lockstep module): another round if
//! anyone is active, else a jump to the earliest alarm of all, else the
//! end; a stop or a failure anywhere ends the run on all of them; the clock
//! never passes the run's end time. Across hosts the same rules are applied
//! in one place, the coordinator, to one report per host per step, in this
//! order:
//!
//! 1. A host failed ([`Report::failed`]): [`EndReason::Failed`], naming
//!    the lowest-numbered failed host.
//! 2. A host asks to stop ([`Report::stop`]): [`EndReason::Cancelled`] over
//!    [`EndReason::Paused`] over [`EndReason::Iterations`] (the lockstep
//!    module's ranking, failures above all).
//! 3. A host is active (not [`idle`](Report::idle)): [`Decision::Round`].
//! 4. Everyone is idle, but the message counts have not settled (below):
//!    [`Decision::Recount`].
//! 5. Agents wait on the outside world ([`busy`](Report::busy)):
//!    [`Decision::Wait`] (the lockstep's "simulated time waits for them").
//! 6. The run has an end time and the earliest alarm of all is past it:
//!    [`EndReason::TimeLimit`], at the end time. With no alarm at all the
//!    run is [`Idle`](EndReason::Idle) where it is, as on one kernel and in
//!    the runtime's lockstep — unless it does not pause when idle
//!    ([`Coordinator::pause_if_idle`]`(false)`): then the clock goes to the
//!    end time, a time limit.
//! 7. No alarm anywhere (and no end time): [`EndReason::Idle`].
//! 8. Otherwise [`Decision::Advance`] to the earliest alarm of all.
//!
//! A step is a round or a time advance in lockstep, or a lookahead window
//! (an advance then opens the window at that time): the decisions are the
//! same, only what a host does between reports differs.
//!
//! # Messages in flight: Mattern's counters
//!
//! On one machine a step's mail is exchanged inside the step, so nothing is
//! in flight when the partitions decide. Across hosts, mail goes through a
//! NATS server while the reports go to the coordinator on their own: a
//! message can still be on its way when every host has said it is idle,
//! and ending the run (or moving the clock) then would lose it, or deliver
//! it late. So each host also reports how many messages it has sent to
//! other hosts and received from them, counted from the start of the run,
//! and the coordinator adds them up (Mattern's counters, 1987).
//!
//! One report per host is not enough, even when the totals match. The hosts
//! report at different moments, so the totals are not a snapshot: a
//! message received before its receiver reported, but sent after its
//! sender reported (or counted by a host whose idle flag was read before
//! the message reached an inbox), is counted as received and not as sent,
//! and pays for a message still in flight. Then sent = received while mail
//! is on its way. For instance: host A reports idle having sent 0 and
//! received 0; then a message `m0` reaches A, whose agents answer with
//! `m1` to B and `m2` to C; B takes `m1` in, is done with it and reports
//! idle (sent 0, received 1); C, which had sent `m0`, reports idle (sent 1,
//! received 0). The totals are 1 and 1, everyone is idle, and `m2` is in
//! flight.
//!
//! So the coordinator declares everyone idle (rules 5 to 8) only when
//! every host is idle, the totals match, and they equal the totals of the
//! previous report round, which must also have found every host idle, with
//! no step in between ([`Decision::Recount`]). Why that suffices: the
//! counts only grow, so equal sums mean no host sent or received anything
//! between its two reports, and an idle host that receives nothing sends
//! nothing until the next step. Every message received by a first report was
//! then sent before its sender's first report (the sender sent nothing
//! between its reports, and the second round began after the first
//! ended), so the received messages are among the sent ones; as many were
//! received as sent, so all sent messages had arrived by the receivers'
//! first reports, and none came after: nothing was in flight, and nothing
//! could be sent, once the first round of reports was complete.
//!
//! In the strict lockstep protocol (a host sends only during a step, before
//! its report, and its report is one snapshot) one report round would do:
//! every message sent is then counted, so matching totals leave none in
//! flight. The second one makes the coordinator safe whatever the hosts'
//! timing, a host whose counter saw a message come in after its idle flag
//! was read included (the tests simulate both). It costs one exchange,
//! with no round, each time the run falls quiet: before each time advance,
//! each wait for the outside world, and the end.
//!
//! # Why a recount is not a round
//!
//! The confirmation is asked for with [`Decision::Recount`], not with
//! another [`Decision::Round`]: a round is observable (it counts towards
//! `RunOptions::iterations`, it orders agents' updates, it is traced), and
//! a run over several hosts must take the same rounds as on one machine. A
//! recount takes no step: each host takes in the mail that came and
//! reports again. A host whose mail arrived is then active, and the next
//! decision is a round, as on one machine, where that mail would have been
//! delivered within the step. For the same reason a recount, not a wait,
//! answers a quiet report with mail in flight and busy agents: one machine
//! would take a round for that mail without waiting for the outside world.
//!
//! # What the hosts must do
//!
//! - Count a message for another host as sent when it is handed to the
//!   link, during a step, before the report of that step.
//! - Count a message from another host as received no later than when it
//!   is round work (in an inbox): a message counted as received must make
//!   the host active in its next report unless a round took care of it.
//! - Report idle only with no round work and no mail sent in the step (as
//!   `has_mail` makes a partition active on one machine), so a step that
//!   sent mail is followed by a round without a recount.
//! - On a recount, take no step: take in what came (maybe waiting a little
//!   for it) and report again with the round number the coordinator is at.
//!
//! The coordinator does not see the stop tokens, the directories or the
//! outside world's inlets: a host reports those as a [`StopCode`], and the
//! changes that need another exchange on one machine (removals, cleared
//! alarms, alarms held for unknown agents) by not reporting idle. A stop
//! ends the run at once: the one more exchange, with no round, that the
//! lockstep makes for such changes before it stops is left to the hosts.

pub use crate::control::StopCode;
use crate::error::{Error, Result};

/// The lockstep module's ranking of stops: a cancellation over a pause
/// over the round limit (a failure is above all, apart).
fn rank(s: StopCode) -> u8 {
    match s {
        // Not stops a host asks for: ends the decision gives.
        StopCode::Idle | StopCode::TimeLimit => 0,
        StopCode::Iterations => 1,
        StopCode::Paused => 2,
        StopCode::Cancelled => 3,
    }
}

/// Why the run ended, for every host: the runtime's `StopReason`, plus a
/// failure (an error on one machine).
///
/// Mirrored here, one to one, rather than taken from `maslite_runtime`:
/// this crate depends on `maslite_core` only, so that the runtime may come
/// to depend on it for its transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// Nothing left to do on any host, nothing in flight, no alarm.
    Idle,
    /// The next alarm is past the run's end time (or there is none): the
    /// clock stops at the end time.
    TimeLimit,
    /// A host ran the rounds given by `RunOptions::iterations`.
    Iterations,
    /// An agent called `cx.pause()` on some host.
    Paused,
    /// A host's cancellation token was cancelled.
    Cancelled,
    /// A host failed; the run fails on every host.
    Failed {
        /// The lowest-numbered host that reported a failure.
        host: u16,
    },
}

/// One host's account of a step, sent to the coordinator at the step's end.
///
/// Start from [`Report::new`] and set what differs:
///
/// ```
/// use maslite_nats::coordinator::Report;
/// let r = Report { idle: false, sent: 3, ..Report::new(1, 0) };
/// assert_eq!(r.host, 1);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Report {
    /// The reporting host, from 0.
    pub host: u16,
    /// The report round: 0 after the run's first step, then one more after
    /// each decision ([`Coordinator::round`]).
    pub round: u64,
    /// No round work (mail in an inbox, an agent to wake) and no mail sent
    /// in this step.
    pub idle: bool,
    /// Agents wait on the outside world (tokio I/O, a channel).
    pub busy: bool,
    /// The host's earliest alarm, [`f64::INFINITY`] if none.
    pub next_alarm: f64,
    /// The host's clock (hosts inside a lookahead window stop at their own
    /// last event: the run ends at the latest of them).
    pub now: f64,
    /// Messages sent to other hosts since the run started (cumulative).
    pub sent: u64,
    /// Messages received from other hosts since the run started
    /// (cumulative).
    pub received: u64,
    /// The host asks the run to stop (the code a
    /// [`StepControl`](crate::control::StepControl) carries too).
    pub stop: Option<StopCode>,
    /// The host's part of the run failed (an agent's error or panic, a
    /// broken link): the run fails on every host.
    pub failed: bool,
}

impl Report {
    /// A report from `host` for `round`: idle, not busy, no alarm, clock at
    /// 0, nothing sent or received, no stop, not failed.
    pub fn new(host: u16, round: u64) -> Report {
        Report {
            host,
            round,
            idle: true,
            busy: false,
            next_alarm: f64::INFINITY,
            now: 0.0,
            sent: 0,
            received: 0,
            stop: None,
            failed: false,
        }
    }
}

/// What every host does next.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Decision {
    /// Update the agents with mail (a round), at once.
    Round,
    /// Nobody has mail, but agents wait on the outside world: each host
    /// waits for its busy agents (if any) to wake, then every host takes a
    /// round. Simulated time does not move meanwhile.
    Wait,
    /// Everyone said idle, but the message counts have not settled: take
    /// no step, take in the mail that came, and report again.
    Recount,
    /// Move the clock to this time (the earliest alarm of all) and fire
    /// what is due; with lookahead windows, process the window starting
    /// there.
    Advance(f64),
    /// The run is over on every host.
    End {
        /// Why.
        reason: EndReason,
        /// The clock every host ends on: the latest host clock, or the
        /// end time for [`EndReason::TimeLimit`].
        at: f64,
    },
}

/// Collects each host's report for a round and decides the next step for
/// all (see the [module docs](self) for the rules).
///
/// ```
/// use maslite_nats::coordinator::{Coordinator, Decision, EndReason, Report};
/// let mut c = Coordinator::new(2, None);
/// // Both idle, nothing sent: one more report round to be sure.
/// assert_eq!(c.report(Report::new(0, 0)).unwrap(), None);
/// assert_eq!(c.report(Report::new(1, 0)).unwrap(), Some(Decision::Recount));
/// c.report(Report::new(1, 1)).unwrap();
/// let d = c.report(Report::new(0, 1)).unwrap();
/// assert_eq!(d, Some(Decision::End { reason: EndReason::Idle, at: 0.0 }));
/// ```
#[derive(Clone, Debug)]
pub struct Coordinator {
    hosts: u16,
    end: Option<f64>,
    round: u64,
    reports: Vec<Option<Report>>,
    got: usize,
    /// Each host's counts in its last accepted report (they only grow).
    counts: Vec<(u64, u64)>,
    /// The totals of the last report round, if it found every host idle
    /// and was answered with a recount.
    quiet: Option<(u64, u64)>,
    /// The round whose reports ended the run.
    ended: Option<u64>,
    /// Stop when idle with no alarm left (see [`Coordinator::pause_if_idle`]).
    pause_if_idle: bool,
}

impl Coordinator {
    /// A coordinator for hosts `0..hosts`, with the run's end time (the
    /// start plus `RunOptions::seconds`), if any.
    ///
    /// # Panics
    ///
    /// If `hosts` is 0.
    pub fn new(hosts: u16, end: Option<f64>) -> Coordinator {
        assert!(hosts > 0, "a run needs at least one host");
        Coordinator {
            hosts,
            end,
            round: 0,
            reports: vec![None; hosts as usize],
            got: 0,
            counts: vec![(0, 0); hosts as usize],
            quiet: None,
            ended: None,
            pause_if_idle: true,
        }
    }

    /// Whether the run stops when idle with no alarm left (default `true`,
    /// as `RunOptions::pause_if_idle`); if not, a run with an end time goes
    /// on to it.
    pub fn pause_if_idle(mut self, on: bool) -> Coordinator {
        self.pause_if_idle = on;
        self
    }

    /// The number of hosts.
    pub fn hosts(&self) -> u16 {
        self.hosts
    }

    /// The report round expected now (0 after the run's first step).
    pub fn round(&self) -> u64 {
        self.round
    }

    /// Whether the run has ended (a [`Decision::End`] was given).
    pub fn is_over(&self) -> bool {
        self.ended.is_some()
    }

    /// The hosts that have not reported for the current round yet.
    pub fn missing(&self) -> Vec<u16> {
        (0..self.hosts).filter(|&h| self.reports[h as usize].is_none()).collect()
    }

    /// Takes one host's report. Returns the decision for every host once
    /// all hosts have reported for the round, `None` before.
    ///
    /// A report from an unknown host, a second one from a host for the
    /// round, one for a past or future round, one after the end, or one
    /// with a time that is not a number or counts lower than the host's
    /// last report, is an error, and is not taken.
    pub fn report(&mut self, r: Report) -> Result<Option<Decision>> {
        self.check(&r)?;
        let h = r.host as usize;
        self.counts[h] = (r.sent, r.received);
        self.reports[h] = Some(r);
        self.got += 1;
        if self.got < self.hosts as usize {
            return Ok(None);
        }
        let decision = self.decide();
        self.reports.iter_mut().for_each(|r| *r = None);
        self.got = 0;
        if matches!(decision, Decision::End { .. }) {
            self.ended = Some(self.round);
        }
        self.round += 1;
        Ok(Some(decision))
    }

    fn check(&self, r: &Report) -> Result<()> {
        let (host, round) = (r.host, r.round);
        if host >= self.hosts {
            return Err(Error::UnknownHost { host, round, hosts: self.hosts });
        }
        if let Some(ended) = self.ended {
            return Err(Error::RunOver { host, round, ended });
        }
        if round < self.round {
            return Err(Error::StaleReport { host, round, current: self.round });
        }
        if round > self.round {
            return Err(Error::EarlyReport { host, round, current: self.round });
        }
        if self.reports[host as usize].is_some() {
            return Err(Error::DuplicateReport { host, round });
        }
        let bad = |message: String| Err(Error::BadReport { host, round, message });
        if r.next_alarm.is_nan() || r.now.is_nan() {
            return bad(format!("next_alarm {} / now {} is not a number", r.next_alarm, r.now));
        }
        let (sent, received) = self.counts[host as usize];
        if r.sent < sent || r.received < received {
            return bad(format!(
                "counts went back: sent {} -> {}, received {} -> {} (they count from the \
                 start of the run)",
                sent, r.sent, received, r.received
            ));
        }
        Ok(())
    }

    fn decide(&mut self) -> Decision {
        let reports: Vec<&Report> = self.reports.iter().flatten().collect();
        let now = reports.iter().map(|r| r.now).fold(f64::NEG_INFINITY, f64::max);
        // Failures first (the lowest failed host named), then stops.
        if let Some(host) = reports.iter().find(|r| r.failed).map(|r| r.host) {
            self.quiet = None;
            return Decision::End { reason: EndReason::Failed { host }, at: now };
        }
        if let Some(s) = reports.iter().filter_map(|r| r.stop).max_by_key(|&s| rank(s)) {
            self.quiet = None;
            let reason = match s {
                StopCode::Idle => EndReason::Idle,
                StopCode::TimeLimit => EndReason::TimeLimit,
                StopCode::Iterations => EndReason::Iterations,
                StopCode::Paused => EndReason::Paused,
                StopCode::Cancelled => EndReason::Cancelled,
            };
            return Decision::End { reason, at: now };
        }
        if !reports.iter().all(|r| r.idle) {
            self.quiet = None;
            return Decision::Round;
        }
        // Everyone idle: only if the counts match and have not moved since
        // the previous (quiet) report round is nothing in flight.
        let sent: u64 = reports.iter().map(|r| r.sent).sum();
        let received: u64 = reports.iter().map(|r| r.received).sum();
        let totals = (sent, received);
        if sent != received || self.quiet != Some(totals) {
            self.quiet = Some(totals);
            return Decision::Recount;
        }
        self.quiet = None;
        if reports.iter().any(|r| r.busy) {
            return Decision::Wait;
        }
        let t = reports.iter().map(|r| r.next_alarm).fold(f64::INFINITY, f64::min);
        if let Some(end) = self.end {
            // No alarm at all is idle, unless the run does not pause then.
            if t > end && (t.is_finite() || !self.pause_if_idle) {
                return Decision::End { reason: EndReason::TimeLimit, at: end.max(now) };
            }
        }
        if !t.is_finite() {
            return Decision::End { reason: EndReason::Idle, at: now };
        }
        Decision::Advance(t)
    }
}
