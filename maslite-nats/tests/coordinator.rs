//! The coordinator of simulated time across hosts: each rule on its own,
//! the counter-examples that one report round would get wrong, the
//! reports it refuses, and a simulation of random traffic between hosts
//! with messages in flight across report rounds.

use maslite_nats::coordinator::{Coordinator, Decision, EndReason, Report, StopCode};
use maslite_nats::Error;
use proptest::prelude::*;
use proptest::strategy::ValueTree;

/// Feeds one report round; only the last report gets a decision.
fn round(c: &mut Coordinator, reports: &[Report]) -> Decision {
    let (last, first) = reports.split_last().expect("at least one report");
    for r in first {
        assert_eq!(c.report(*r).unwrap(), None, "decided before all hosts reported");
    }
    c.report(*last).unwrap().expect("all hosts reported")
}

fn idle(host: u16, round: u64) -> Report {
    Report::new(host, round)
}

fn end(reason: EndReason, at: f64) -> Decision {
    Decision::End { reason, at }
}

#[test]
fn nothing_anywhere_ends_idle_after_one_recount() {
    let mut c = Coordinator::new(3, None);
    assert_eq!(c.round(), 0);
    assert_eq!(c.report(idle(2, 0)).unwrap(), None);
    assert_eq!(c.missing(), [0, 1]);
    assert_eq!(round(&mut c, &[idle(0, 0), idle(1, 0)]), Decision::Recount);
    assert_eq!(c.round(), 1);
    assert!(!c.is_over());
    let late = Report { now: 4.0, ..idle(1, 1) };
    assert_eq!(round(&mut c, &[idle(0, 1), late, idle(2, 1)]), end(EndReason::Idle, 4.0));
    assert!(c.is_over());
}

#[test]
fn one_host_follows_the_same_rules() {
    let mut c = Coordinator::new(1, None);
    assert_eq!(round(&mut c, &[Report { idle: false, ..idle(0, 0) }]), Decision::Round);
    let alarm = Report { next_alarm: 2.0, ..idle(0, 1) };
    assert_eq!(round(&mut c, &[alarm]), Decision::Recount);
    assert_eq!(round(&mut c, &[Report { round: 2, ..alarm }]), Decision::Advance(2.0));
}

#[test]
fn an_active_host_anywhere_means_a_round_at_once() {
    let mut c = Coordinator::new(3, None);
    let active = Report { idle: false, ..idle(1, 0) };
    assert_eq!(round(&mut c, &[idle(0, 0), active, idle(2, 0)]), Decision::Round);
    // No recount first, counts or not, busy agents or not.
    let active = Report { idle: false, sent: 4, ..idle(0, 1) };
    let busy = Report { busy: true, received: 1, ..idle(2, 1) };
    assert_eq!(round(&mut c, &[active, idle(1, 1), busy]), Decision::Round);
    assert_eq!(c.round(), 2);
}

#[test]
fn the_clock_jumps_to_the_earliest_alarm_of_all() {
    let mut c = Coordinator::new(3, None);
    let rs = |round| {
        [
            Report { next_alarm: 3.0, now: 1.0, ..idle(0, round) },
            Report { next_alarm: 2.5, now: 1.0, ..idle(1, round) },
            Report { now: 1.0, ..idle(2, round) }, // no alarm
        ]
    };
    assert_eq!(round(&mut c, &rs(0)), Decision::Recount);
    assert_eq!(round(&mut c, &rs(1)), Decision::Advance(2.5));
    // After an advance the counts are confirmed again before the next.
    assert_eq!(round(&mut c, &rs(2)), Decision::Recount);
    assert_eq!(round(&mut c, &rs(3)), Decision::Advance(2.5));
}

#[test]
fn an_alarm_past_the_end_time_is_the_time_limit() {
    let mut c = Coordinator::new(2, Some(2.0));
    let rs = |round, alarm| {
        [
            Report { next_alarm: alarm, now: 1.0, ..idle(0, round) },
            Report { next_alarm: 9.0, now: 1.5, ..idle(1, round) },
        ]
    };
    // An alarm at the end itself still fires.
    assert_eq!(round(&mut c, &rs(0, 2.0)), Decision::Recount);
    assert_eq!(round(&mut c, &rs(1, 2.0)), Decision::Advance(2.0));
    assert_eq!(round(&mut c, &rs(2, 3.0)), Decision::Recount);
    assert_eq!(round(&mut c, &rs(3, 3.0)), end(EndReason::TimeLimit, 2.0));
}

#[test]
fn with_an_end_time_and_no_alarm_left_the_run_is_idle_unless_it_does_not_pause() {
    // As one kernel and the runtime's lockstep do (RunOptions::seconds).
    let mut c = Coordinator::new(2, Some(10.0));
    assert_eq!(round(&mut c, &[idle(0, 0), idle(1, 0)]), Decision::Recount);
    assert_eq!(round(&mut c, &[idle(0, 1), idle(1, 1)]), end(EndReason::Idle, 0.0));
    // Without pause_if_idle the clock goes to the end.
    let mut c = Coordinator::new(2, Some(10.0)).pause_if_idle(false);
    assert_eq!(round(&mut c, &[idle(0, 0), idle(1, 0)]), Decision::Recount);
    assert_eq!(round(&mut c, &[idle(0, 1), idle(1, 1)]), end(EndReason::TimeLimit, 10.0));
}

#[test]
fn a_host_whose_window_went_past_the_end_time_keeps_its_clock() {
    let mut c = Coordinator::new(2, Some(2.0));
    let past = Report { now: 2.5, next_alarm: 3.0, ..idle(1, 0) };
    assert_eq!(round(&mut c, &[idle(0, 0), past]), Decision::Recount);
    let past = Report { round: 1, ..past };
    assert_eq!(round(&mut c, &[idle(0, 1), past]), end(EndReason::TimeLimit, 2.5));
}

#[test]
fn stops_are_ranked_failure_cancelled_paused_iterations() {
    use StopCode::*;
    // (stop, failed) per host.
    type Hosts<'a> = &'a [(Option<StopCode>, bool)];
    let cases: [(Hosts, EndReason); 7] = [
        (&[(Some(Iterations), false), (None, false), (None, false)], EndReason::Iterations),
        (&[(Some(Iterations), false), (Some(Paused), false), (None, false)], EndReason::Paused),
        (
            &[(Some(Paused), false), (Some(Cancelled), false), (Some(Iterations), false)],
            EndReason::Cancelled,
        ),
        (&[(Some(Cancelled), false), (None, false), (Some(Paused), false)], EndReason::Cancelled),
        (&[(Some(Cancelled), false), (None, true), (None, false)], EndReason::Failed { host: 1 }),
        // The lowest failed host is named.
        (&[(None, false), (None, true), (Some(Paused), true)], EndReason::Failed { host: 1 }),
        (&[(None, true), (Some(Cancelled), false), (None, true)], EndReason::Failed { host: 0 }),
    ];
    for (hosts, want) in cases {
        let mut c = Coordinator::new(3, Some(100.0));
        // A stop ends the run whatever else holds: activity, busy agents,
        // mail in flight, no recount.
        let reports: Vec<Report> = hosts
            .iter()
            .enumerate()
            .map(|(h, &(stop, failed))| Report {
                stop,
                failed,
                idle: h != 0,
                busy: h == 2,
                sent: 5,
                now: h as f64,
                ..idle(h as u16, 0)
            })
            .collect();
        assert_eq!(round(&mut c, &reports), end(want, 2.0), "{hosts:?}");
        assert!(c.is_over());
    }
}

#[test]
fn a_stop_after_rounds_ends_at_the_latest_clock() {
    let mut c = Coordinator::new(2, None);
    let a = Report { idle: false, now: 1.0, ..idle(0, 0) };
    assert_eq!(round(&mut c, &[a, idle(1, 0)]), Decision::Round);
    let a = Report { stop: Some(StopCode::Paused), now: 3.0, ..idle(0, 1) };
    assert_eq!(round(&mut c, &[idle(1, 1), a]), end(EndReason::Paused, 3.0));
}

/// The case from the project's issue: A sends one message to B and reports
/// idle; B had reported idle before the message came. Counting one report
/// round would see a difference first, then matching totals, and could
/// end there: the totals must also have stayed the same over two rounds.
#[test]
fn the_totals_must_match_and_stay_unchanged_over_two_report_rounds() {
    let mut c = Coordinator::new(2, None);
    let a = |round| Report { sent: 1, next_alarm: 5.0, ..idle(0, round) };
    let b = |round, received| Report { received, ..idle(1, round) };
    // 1 sent, 0 received: in flight.
    assert_eq!(round(&mut c, &[b(0, 0), a(0)]), Decision::Recount);
    // 1 and 1, but not the totals of the round before: once more.
    assert_eq!(round(&mut c, &[a(1), b(1, 1)]), Decision::Recount);
    // Unchanged: nothing was in flight.
    assert_eq!(round(&mut c, &[a(2), b(2, 1)]), Decision::Advance(5.0));
}

/// The same, as the hosts live it: B's counter saw the message arrive
/// after its idle flag was read. Its next report shows it has work.
#[test]
fn a_host_whose_idle_flag_lagged_its_counts_is_caught_by_the_second_report() {
    let mut c = Coordinator::new(2, None);
    let a = |round| Report { sent: 1, ..idle(0, round) };
    assert_eq!(round(&mut c, &[idle(1, 0), a(0)]), Decision::Recount);
    // Totals 1 and 1, everyone idle: one report round would end here.
    let b = Report { received: 1, ..idle(1, 1) };
    assert_eq!(round(&mut c, &[a(1), b]), Decision::Recount);
    // B has the message in an inbox now.
    let b = Report { idle: false, received: 1, ..idle(1, 2) };
    assert_eq!(round(&mut c, &[a(2), b]), Decision::Round);
    // Its round answered nothing: the quiet totals are confirmed afresh.
    let b = |round| Report { received: 1, ..idle(1, round) };
    assert_eq!(round(&mut c, &[a(3), b(3)]), Decision::Recount);
    assert_eq!(round(&mut c, &[a(4), b(4)]), end(EndReason::Idle, 0.0));
}

/// Mattern's counter-example for one round of reports: a message received
/// before its receiver reported but sent after its sender reported pays
/// for one still in flight.
#[test]
fn a_message_sent_after_its_sender_reported_cannot_hide_one_in_flight() {
    let mut c = Coordinator::new(3, None);
    // A reports (0, 0); then m0 from C reaches A, whose agents send m1 to B
    // and m2 to C; B takes m1 in and handles it; C sent m0.
    let reports =
        [idle(0, 0), Report { received: 1, ..idle(1, 0) }, Report { sent: 1, ..idle(2, 0) }];
    // 1 sent, 1 received, all idle, while m2 is in flight.
    assert_eq!(round(&mut c, &reports), Decision::Recount);
    // A's counts now show what it did; m2 still on its way.
    let reports = [
        Report { sent: 2, received: 1, ..idle(0, 1) },
        Report { received: 1, ..idle(1, 1) },
        Report { sent: 1, ..idle(2, 1) },
    ];
    assert_eq!(round(&mut c, &reports), Decision::Recount);
    // m2 arrived: C has work.
    let reports = [
        Report { sent: 2, received: 1, ..idle(0, 2) },
        Report { received: 1, ..idle(1, 2) },
        Report { sent: 1, received: 1, idle: false, ..idle(2, 2) },
    ];
    assert_eq!(round(&mut c, &reports), Decision::Round);
}

#[test]
fn mail_in_flight_holds_the_clock_for_as_long_as_it_takes() {
    let mut c = Coordinator::new(2, None);
    let a = |round| Report { sent: 3, next_alarm: 1.0, ..idle(0, round) };
    for r in 0..5 {
        let b = Report { received: 2, ..idle(1, r) };
        assert_eq!(round(&mut c, &[a(r), b]), Decision::Recount);
    }
    let b = Report { received: 3, ..idle(1, 5) };
    assert_eq!(round(&mut c, &[a(5), b]), Decision::Recount);
    let b = Report { received: 3, ..idle(1, 6) };
    assert_eq!(round(&mut c, &[a(6), b]), Decision::Advance(1.0));
}

#[test]
fn busy_agents_make_time_wait_once_the_counts_settle() {
    let mut c = Coordinator::new(2, None);
    let busy = |round, received| Report { busy: true, received, ..idle(0, round) };
    let b = |round| Report { sent: 1, next_alarm: 3.0, ..idle(1, round) };
    // Mail in flight: no waiting for the outside world, the mail first.
    assert_eq!(round(&mut c, &[busy(0, 0), b(0)]), Decision::Recount);
    assert_eq!(round(&mut c, &[busy(1, 1), b(1)]), Decision::Recount);
    assert_eq!(round(&mut c, &[busy(2, 1), b(2)]), Decision::Wait);
    // The busy agent woke and has work.
    let woke = Report { idle: false, received: 1, ..idle(0, 3) };
    assert_eq!(round(&mut c, &[woke, b(3)]), Decision::Round);
    let a = Report { received: 1, ..idle(0, 4) };
    assert_eq!(round(&mut c, &[a, b(4)]), Decision::Recount);
    let a = Report { received: 1, ..idle(0, 5) };
    assert_eq!(round(&mut c, &[a, b(5)]), Decision::Advance(3.0));
}

#[test]
fn a_round_or_an_advance_between_quiet_reports_restarts_the_count() {
    let mut c = Coordinator::new(2, None);
    let q = |host, round| Report { next_alarm: 7.0, ..idle(host, round) };
    assert_eq!(round(&mut c, &[q(0, 0), q(1, 0)]), Decision::Recount);
    let active = Report { idle: false, ..q(1, 1) };
    assert_eq!(round(&mut c, &[q(0, 1), active]), Decision::Round);
    // Same totals as two rounds ago, but a round came between.
    assert_eq!(round(&mut c, &[q(0, 2), q(1, 2)]), Decision::Recount);
    assert_eq!(round(&mut c, &[q(0, 3), q(1, 3)]), Decision::Advance(7.0));
    // And an advance.
    assert_eq!(round(&mut c, &[q(0, 4), q(1, 4)]), Decision::Recount);
}

#[test]
fn reports_out_of_turn_are_refused_and_change_nothing() {
    let mut c = Coordinator::new(2, None);
    let e = c.report(idle(2, 0)).unwrap_err();
    assert!(matches!(e, Error::UnknownHost { host: 2, round: 0, hosts: 2 }), "{e:?}");
    assert!(e.to_string().contains("host 2"), "{e}");

    let e = c.report(idle(0, 1)).unwrap_err();
    assert!(matches!(e, Error::EarlyReport { host: 0, round: 1, current: 0 }), "{e:?}");
    assert!(e.to_string().contains("host 0") && e.to_string().contains("round 1"), "{e}");

    assert_eq!(c.report(Report { sent: 2, ..idle(0, 0) }).unwrap(), None);
    let e = c.report(idle(0, 0)).unwrap_err();
    assert!(matches!(e, Error::DuplicateReport { host: 0, round: 0 }), "{e:?}");
    assert!(e.to_string().contains("host 0 reported twice for round 0"), "{e}");

    let nan = Report { next_alarm: f64::NAN, ..idle(1, 0) };
    let e = c.report(nan).unwrap_err();
    assert!(matches!(e, Error::BadReport { host: 1, round: 0, .. }), "{e:?}");

    // None of that was taken: host 1's report completes the round.
    let b = Report { received: 2, ..idle(1, 0) };
    assert_eq!(c.report(b).unwrap(), Some(Decision::Recount));

    let e = c.report(Report { sent: 2, ..idle(0, 0) }).unwrap_err();
    assert!(matches!(e, Error::StaleReport { host: 0, round: 0, current: 1 }), "{e:?}");
    assert!(e.to_string().contains("round 0"), "{e}");

    // Counts only grow.
    let e = c.report(Report { sent: 1, ..idle(0, 1) }).unwrap_err();
    assert!(matches!(e, Error::BadReport { host: 0, round: 1, .. }), "{e:?}");
    assert!(e.to_string().contains("sent 2 -> 1"), "{e}");

    c.report(Report { sent: 2, ..idle(0, 1) }).unwrap();
    let d = c.report(Report { received: 2, ..idle(1, 1) }).unwrap();
    assert_eq!(d, Some(end(EndReason::Idle, 0.0)));
    let e = c.report(idle(0, 2)).unwrap_err();
    assert!(matches!(e, Error::RunOver { host: 0, round: 2, ended: 1 }), "{e:?}");
    assert!(e.to_string().contains("ended with round 1"), "{e}");
}

#[test]
#[should_panic(expected = "at least one host")]
fn a_run_needs_a_host() {
    let _ = Coordinator::new(0, None);
}

// A simulation of hosts under a coordinator: random traffic between them,
// random delivery delays (messages in flight across report rounds), hosts
// reporting in random order with mail arriving in between, agents waiting
// on the outside world, alarms. The randomness comes from a byte string:
// when it runs out every roll is 0, no more mail is sent, and the run must
// end.

struct Dice<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Dice<'_> {
    /// 0..n.
    fn roll(&mut self, n: usize) -> usize {
        let b = self.bytes.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        if n <= 1 {
            0
        } else {
            b as usize % n
        }
    }
}

#[derive(Clone, Debug, Default)]
struct Host {
    /// Messages taken in, not handled yet (round work).
    inbox: u32,
    sent: u64,
    received: u64,
    sent_in_step: bool,
    alarms: Vec<f64>,
    /// Ticks until a busy agent wakes (0: none busy).
    busy: u32,
}

struct Sim {
    hosts: Vec<Host>,
    /// (destination, ticks before it arrives).
    net: Vec<(usize, u32)>,
    /// Messages, alarms and waits the agents may still make.
    budget: u32,
    now: f64,
    max_delay: u32,
    /// Hosts report active after a step that sent mail (the lockstep's
    /// `has_mail`), or only with work in an inbox.
    sender_active: bool,
    /// Mail may arrive between a host reading its idle flag and its counts.
    racy: bool,
}

impl Sim {
    /// Time passes: mail arrives, busy agents wake.
    fn tick(&mut self) {
        let mut still = Vec::with_capacity(self.net.len());
        for (to, left) in self.net.drain(..) {
            if left == 0 {
                self.hosts[to].received += 1;
                self.hosts[to].inbox += 1;
            } else {
                still.push((to, left - 1));
            }
        }
        self.net = still;
        for h in &mut self.hosts {
            if h.busy > 0 {
                h.busy -= 1;
                if h.busy == 0 {
                    h.inbox += 1;
                }
            }
        }
    }

    fn spend(&mut self) -> bool {
        if self.budget == 0 {
            return false;
        }
        self.budget -= 1;
        true
    }

    /// One round on every host: the agents handle their mail, and may
    /// send, set alarms, leave local work for the next round, or wait on
    /// the outside world.
    fn round(&mut self, dice: &mut Dice) {
        let n = self.hosts.len();
        for h in 0..n {
            let mut next = 0;
            for _ in 0..std::mem::take(&mut self.hosts[h].inbox) {
                for _ in 0..dice.roll(3) {
                    if n > 1 && self.spend() {
                        let to = (h + 1 + dice.roll(n - 1)) % n;
                        self.net.push((to, dice.roll(self.max_delay as usize + 1) as u32));
                        self.hosts[h].sent += 1;
                        self.hosts[h].sent_in_step = true;
                    }
                }
                if dice.roll(4) == 1 && self.spend() {
                    next += 1;
                }
                if dice.roll(6) == 1 && self.spend() {
                    let t = self.now + 1.0 + dice.roll(3) as f64;
                    self.hosts[h].alarms.push(t);
                }
                if dice.roll(5) == 1 && self.hosts[h].busy == 0 && self.spend() {
                    self.hosts[h].busy = 1 + dice.roll(4) as u32;
                }
            }
            self.hosts[h].inbox = next;
        }
    }

    fn next_alarm(&self) -> f64 {
        self.hosts.iter().flat_map(|h| &h.alarms).copied().fold(f64::INFINITY, f64::min)
    }

    /// Nothing anywhere: no work, nothing in flight, nobody busy.
    fn quiescent(&self) -> bool {
        self.net.is_empty() && self.hosts.iter().all(|h| h.inbox == 0 && h.busy == 0)
    }

    fn report(&mut self, h: usize, round: u64, dice: &mut Dice) -> Report {
        let host = &self.hosts[h];
        let idle = host.inbox == 0 && !(self.sender_active && host.sent_in_step);
        // Its own state is read at one moment (a host is one thread): idle
        // and busy together. (An outside wake-up is no message: counts
        // cannot catch a busy flag read after it.)
        let busy = host.busy > 0;
        if self.racy && dice.roll(2) == 1 {
            // Mail may reach it between that and the reading of its counts.
            self.tick();
        }
        let host = &self.hosts[h];
        Report {
            host: h as u16,
            round,
            idle,
            busy,
            next_alarm: host.alarms.iter().copied().fold(f64::INFINITY, f64::min),
            now: self.now,
            sent: host.sent,
            received: host.received,
            stop: None,
            failed: false,
        }
    }
}

#[derive(Debug, Clone)]
struct Case {
    hosts: usize,
    max_delay: u32,
    budget: u32,
    alarms: Vec<(usize, u8)>,
    end: Option<u8>,
    sender_active: bool,
    racy: bool,
    dice: Vec<u8>,
}

fn cases() -> impl Strategy<Value = Case> {
    (2usize..6)
        .prop_flat_map(|n| {
            (
                Just(n),
                0u32..6,
                0u32..80,
                prop::collection::vec((0..n, 1u8..10), 0..4),
                prop::option::of(1u8..12),
                any::<bool>(),
                any::<bool>(),
                prop::collection::vec(any::<u8>(), 0..400),
            )
        })
        .prop_map(|(hosts, max_delay, budget, alarms, end, sender_active, racy, dice)| Case {
            hosts,
            max_delay,
            budget,
            alarms,
            end,
            sender_active,
            racy,
            dice,
        })
}

/// Runs a case to its end; fails if the coordinator moves the clock or
/// ends while anything is in flight or left to do, or does not end.
fn simulate(case: &Case) -> Result<(), TestCaseError> {
    let mut dice = Dice { bytes: &case.dice, at: 0 };
    let mut sim = Sim {
        hosts: vec![Host::default(); case.hosts],
        net: Vec::new(),
        budget: case.budget,
        now: 0.0,
        max_delay: case.max_delay,
        sender_active: case.sender_active,
        racy: case.racy,
    };
    for &(h, t) in &case.alarms {
        sim.hosts[h].alarms.push(t as f64);
    }
    let end = case.end.map(f64::from);
    let mut c = Coordinator::new(case.hosts as u16, end);
    // The first step: mail from outside.
    for h in 0..case.hosts {
        sim.hosts[h].inbox = dice.roll(3) as u32;
    }
    sim.round(&mut dice);
    // Report rounds that began with nothing anywhere.
    let mut quiet_rounds = 0;
    for r in 0..20_000u64 {
        quiet_rounds = if sim.quiescent() { quiet_rounds + 1 } else { 0 };
        let mut order: Vec<usize> = (0..case.hosts).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, dice.roll(i + 1));
        }
        let mut decision = None;
        for &h in &order {
            for _ in 0..dice.roll(3) {
                sim.tick();
            }
            let report = sim.report(h, r, &mut dice);
            decision = c.report(report).map_err(|e| TestCaseError::fail(e.to_string()))?;
        }
        let decision = decision.expect("all hosts reported");
        // Time passes while the decision goes out.
        sim.tick();
        if quiet_rounds >= 2 {
            // Quiet for two report rounds: the counts have settled.
            prop_assert!(
                matches!(decision, Decision::Advance(_) | Decision::End { .. }),
                "round {r}: still {decision:?} with nothing left anywhere"
            );
        }
        for h in &mut sim.hosts {
            h.sent_in_step = false;
        }
        match decision {
            Decision::Round => sim.round(&mut dice),
            Decision::Wait => {
                prop_assert!(sim.hosts.iter().any(|h| h.busy > 0 || h.inbox > 0));
                while sim.hosts.iter().any(|h| h.busy > 0) {
                    sim.tick();
                }
                sim.round(&mut dice);
            }
            Decision::Recount => {}
            Decision::Advance(t) => {
                prop_assert!(
                    sim.quiescent(),
                    "round {r}: advance to {t} with {} in flight, work {:?}",
                    sim.net.len(),
                    sim.hosts.iter().map(|h| (h.inbox, h.busy)).collect::<Vec<_>>()
                );
                prop_assert_eq!(t, sim.next_alarm());
                prop_assert!(t > sim.now && end.is_none_or(|e| t <= e));
                sim.now = t;
                for h in &mut sim.hosts {
                    let due = h.alarms.iter().filter(|&&a| a <= t).count();
                    h.alarms.retain(|&a| a > t);
                    h.inbox += due as u32;
                }
            }
            Decision::End { reason, at } => {
                prop_assert!(
                    sim.quiescent(),
                    "round {r}: {reason:?} with {} in flight, work {:?}",
                    sim.net.len(),
                    sim.hosts.iter().map(|h| (h.inbox, h.busy)).collect::<Vec<_>>()
                );
                match end {
                    Some(e) if sim.next_alarm().is_finite() => {
                        prop_assert_eq!(reason, EndReason::TimeLimit);
                        prop_assert!(sim.next_alarm() > e);
                        prop_assert_eq!(at, e.max(sim.now));
                    }
                    _ => {
                        prop_assert_eq!(reason, EndReason::Idle);
                        prop_assert!(sim.next_alarm().is_infinite());
                        prop_assert_eq!(at, sim.now);
                    }
                }
                let sent: u64 = sim.hosts.iter().map(|h| h.sent).sum();
                let received: u64 = sim.hosts.iter().map(|h| h.received).sum();
                prop_assert_eq!(sent, received);
                return Ok(());
            }
        }
    }
    Err(TestCaseError::fail("no end after 20000 report rounds"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// The coordinator never moves the clock or ends while a message is in
    /// flight or a host has work, and always ends once the traffic stops.
    #[test]
    fn never_ends_with_mail_in_flight_and_always_ends(case in cases()) {
        simulate(&case)?;
    }
}

/// The simulation has the hole the second report round closes: when mail
/// can arrive between a host's idle flag and its counts, some report rounds
/// find every host idle with matching totals while a message waits in an
/// inbox; a coordinator that trusted one report round would end there.
/// (Without that race, one report round is never fooled in this model:
/// hosts send only during steps, before they report.)
#[test]
fn one_report_round_would_be_fooled_in_the_simulation() {
    // Counts the report rounds where every host said idle with matching
    // totals while mail was still in flight or unhandled.
    let mut fooled = 0;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    for _ in 0..1000 {
        let case = cases().new_tree(&mut runner).unwrap().current();
        // Mail may arrive between a host's idle flag and its counts.
        let case = Case { racy: true, ..case };
        let mut dice = Dice { bytes: &case.dice, at: 0 };
        let mut sim = Sim {
            hosts: vec![Host::default(); case.hosts],
            net: Vec::new(),
            budget: case.budget,
            now: 0.0,
            max_delay: case.max_delay,
            sender_active: case.sender_active,
            racy: case.racy,
        };
        for h in 0..case.hosts {
            sim.hosts[h].inbox = dice.roll(3) as u32;
        }
        sim.round(&mut dice);
        for r in 0..2_000u64 {
            let mut reports = Vec::new();
            for h in 0..case.hosts {
                for _ in 0..dice.roll(3) {
                    sim.tick();
                }
                reports.push(sim.report(h, r, &mut dice));
            }
            sim.tick();
            let all_idle = reports.iter().all(|r| r.idle && !r.busy);
            let sent: u64 = reports.iter().map(|r| r.sent).sum();
            let received: u64 = reports.iter().map(|r| r.received).sum();
            if all_idle && sent == received && !sim.quiescent() {
                fooled += 1;
            }
            for h in &mut sim.hosts {
                h.sent_in_step = false;
            }
            if sim.quiescent() {
                break;
            }
            sim.round(&mut dice);
        }
    }
    assert!(fooled > 0, "no quiet report round with work left: the simulation is too tame");
}
