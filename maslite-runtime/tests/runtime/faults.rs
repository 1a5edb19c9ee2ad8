//! The multi-partition runtime under bad input and faults: rejected
//! placements and settings, panicking agents, stops while mail is in
//! flight, free mode, the report's counts, `!Send` agents and tokio timers
//! on the simulated clock, and runtimes dropped or stopped while idle.
//!
//! Every run here must end by itself: a hang is a failure (the test never
//! finishes), so no assertion is about how long a run takes. The two
//! exceptions, at the end, guard calls that hang on the runtime as it is: a
//! watchdog cancels the runtime's token after 2 s so that the hang shows as
//! a failure instead of blocking the suite (a correct runtime returns in
//! milliseconds). The report's waits are checked against lower bounds the
//! test itself imposes (a partition whose steps sleep), never against a
//! speed.

use maslite_core::{Agent, AgentId, Cx, Envelope, Error, Phase, RunOptions};
use maslite_runtime::{Runtime, RuntimeReport, StopReason};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

// ---------------------------------------------------------------------------
// Agents and helpers
// ---------------------------------------------------------------------------

/// A ball with the number of hops it has made.
#[derive(Clone, Debug)]
struct Ball(u64);

/// Sends every ball it gets on to `peer`, one hop further, while the ball
/// has made fewer than `last` hops; pauses the run when a ball reaches
/// `pause_at` hops (and keeps sending).
struct Relay {
    peer: AgentId,
    pause_at: u64,
    last: u64,
    got: u64,
}

impl Relay {
    /// Bounces balls forever.
    fn forever(peer: AgentId) -> Relay {
        Relay { peer, pause_at: u64::MAX, last: u64::MAX, got: 0 }
    }
}

impl Agent for Relay {
    async fn update(&mut self, cx: &Cx) {
        while let Some(env) = cx.try_recv() {
            let hops = env.payload::<Ball>().expect("relays get balls").0 + 1;
            self.got += 1;
            if hops == self.pause_at {
                cx.pause();
            }
            if hops < self.last {
                cx.send(Envelope::new(Ball(hops)).to(self.peer));
            }
        }
    }
}

/// Counts what it gets.
#[derive(Default)]
struct Sink {
    got: u64,
}

impl Agent for Sink {
    async fn update(&mut self, cx: &Cx) {
        while cx.try_recv().is_some() {
            self.got += 1;
        }
    }
}

/// Panics on its first message.
struct Bomb;

impl Agent for Bomb {
    async fn update(&mut self, cx: &Cx) {
        if cx.try_recv().is_some() {
            panic!("boom in update");
        }
    }
}

/// Panics while being set up.
struct BadSetup;

impl Agent for BadSetup {
    async fn setup(&mut self, _cx: &Cx) {
        panic!("boom in setup");
    }
    async fn update(&mut self, _cx: &Cx) {}
}

/// The run's books balance: every message sent was delivered, is a dead
/// letter, or is pending.
fn assert_balanced(report: &RuntimeReport) {
    assert_eq!(
        report.sent(),
        report.delivered() + report.dead_letters() + report.pending(),
        "the counts do not add up:\n{report}"
    );
}

/// Asserts `err` is an agent's panic on `partition`, naming `agent` in
/// `phase`, with a message containing `text`.
fn assert_panicked(err: Error, agent: AgentId, phase: Phase, text: &str) {
    match err {
        Error::AgentPanicked { agent: a, phase: ph, message } => {
            assert_eq!((a, ph), (agent, phase), "wrong culprit: {message}");
            assert!(message.contains(text), "panic message {message:?} lacks {text:?}");
        }
        other => panic!("expected agent {agent} panicking, got {other:?}"),
    }
}

/// After a failed run the runtime is spent: every call that would run or
/// send says so; reading the partitions (a post-mortem) still works.
fn assert_spent(rt: &mut Runtime) {
    assert_eq!(rt.run(), Err(Error::Stopped));
    assert_eq!(rt.run_with(RunOptions::new().iterations(1)), Err(Error::Stopped));
    assert_eq!(rt.add(0, Sink::default()), Err(Error::Stopped));
    assert_eq!(rt.spawn(0, |_cx| async {}), Err(Error::Stopped));
    rt.send(Envelope::new(Ball(0)).to(AgentId(1))); // dropped, with a warning
    assert_eq!(rt.run(), Err(Error::Stopped), "a message posted after the stop starts nothing");
    assert!(rt.with_partition(0, |s| s.len()).is_ok(), "a post-mortem reads the partitions");
}

// ---------------------------------------------------------------------------
// 1. Bad input, rejected before anything runs
// ---------------------------------------------------------------------------

#[test]
fn a_duplicate_id_across_partitions_is_rejected_before_any_run() {
    let mut rt = Runtime::new(2).unwrap();
    assert_eq!(rt.add_with_id(0, AgentId(7), Sink::default()), Ok(AgentId(7)));
    assert_eq!(
        rt.add_with_id(1, AgentId(7), Sink::default()),
        Err(Error::DuplicateAgent(AgentId(7)))
    );
    // On the same partition, and for an async-fn agent, too.
    assert_eq!(
        rt.add_with_id(0, AgentId(7), Sink::default()),
        Err(Error::DuplicateAgent(AgentId(7)))
    );
    assert_eq!(
        rt.spawn_with_id(1, AgentId(7), |_cx| async {}),
        Err(Error::DuplicateAgent(AgentId(7)))
    );
    assert_eq!(
        rt.add_made(1, Some(AgentId(7)), Sink::default),
        Err(Error::DuplicateAgent(AgentId(7)))
    );
    // The first one stays where it was put and gets its mail; the rejected
    // ones left no trace.
    assert_eq!(rt.partition_of(AgentId(7)), Some(0));
    rt.send(Envelope::new(Ball(0)).to(AgentId(7)));
    let report = rt.run().unwrap();
    assert_eq!(report.reason, StopReason::Idle);
    assert_eq!((report.delivered(), report.dead_letters()), (1, 0));
    assert_eq!(report.partitions[0].agents, 1);
    assert_eq!(report.partitions[1].agents, 0);
    assert_eq!(rt.with_agent(AgentId(7), |s: &Sink| s.got), Ok(1));
    // Allocated ids step around the ones taken.
    let a = rt.add(1, Sink::default()).unwrap();
    assert_ne!(a, AgentId(7));
    assert_eq!(rt.add_with_id(0, a, Sink::default()), Err(Error::DuplicateAgent(a)));
}

#[test]
fn an_id_taken_at_run_time_is_a_duplicate_for_the_handle() {
    // An agent on partition 1 adds agent 40 while the run goes on; the
    // handle learns of it and refuses the id on partition 0 afterwards.
    let mut rt = Runtime::new(2).unwrap();
    rt.spawn(1, |cx| async move {
        cx.add_with_id(AgentId(40), Sink::default()).unwrap();
    })
    .unwrap();
    let report = rt.run().unwrap();
    assert_eq!(report.reason, StopReason::Idle);
    assert_eq!(rt.partition_of(AgentId(40)), Some(1));
    assert_eq!(
        rt.add_with_id(0, AgentId(40), Sink::default()),
        Err(Error::DuplicateAgent(AgentId(40)))
    );
}

#[test]
fn a_partition_out_of_range_is_no_partition() {
    let mut rt = Runtime::new(2).unwrap();
    let none = Err(Error::NoPartition { partition: 2, partitions: 2 });
    assert_eq!(rt.add(2, Sink::default()), none);
    assert_eq!(rt.add_with_id(2, AgentId(1), Sink::default()), none);
    assert_eq!(rt.add_made(2, None, Sink::default), none);
    assert_eq!(rt.spawn(2, |_cx| async {}), none);
    assert_eq!(
        rt.with_partition(usize::MAX, |s| s.len()),
        Err(Error::NoPartition { partition: usize::MAX, partitions: 2 })
    );
    // Nothing was claimed: id 1 is still free, and the run has no agent.
    assert_eq!(rt.partition_of(AgentId(1)), None);
    assert_eq!(rt.add_with_id(1, AgentId(1), Sink::default()), Ok(AgentId(1)));
    let report = rt.run().unwrap();
    assert_eq!(report.partitions.iter().map(|p| p.agents).sum::<usize>(), 1);
}

#[test]
fn bad_settings_are_config_errors() {
    let config = |r: Result<Runtime, Error>| matches!(r, Err(Error::Config(_)));
    assert!(config(Runtime::new(0)));
    assert!(config(Runtime::builder().partitions(0).build()));
    assert!(config(Runtime::builder().partitions(2).lookahead(-1.0).build()));
    assert!(config(Runtime::builder().partitions(2).lookahead(-f64::MIN_POSITIVE).build()));
    assert!(config(Runtime::builder().partitions(2).lookahead(f64::NAN).build()));
    assert!(config(Runtime::builder().partitions(2).lookahead(f64::INFINITY).build()));
    assert!(config(Runtime::builder().partitions(2).real_time().lookahead(0.5).build()));
    // The good neighbours of those are fine.
    assert!(Runtime::builder().partitions(2).lookahead(0.0).build().is_ok());
    assert!(Runtime::builder().partitions(1).lookahead(0.5).build().is_ok());
}

#[test]
fn reserved_ids_are_rejected() {
    let mut rt = Runtime::new(2).unwrap();
    let top = AgentId(1 << 63);
    let reserved = |id| Err(Error::ReservedId(id));
    assert_eq!(rt.add_with_id(0, AgentId::OUTSIDE, Sink::default()), reserved(AgentId::OUTSIDE));
    assert_eq!(rt.add_with_id(1, top, Sink::default()), reserved(top));
    assert_eq!(
        rt.add_with_id(1, AgentId(u64::MAX - 1), Sink::default()),
        reserved(AgentId(u64::MAX - 1))
    );
    assert_eq!(rt.spawn_with_id(0, top, |_cx| async {}), reserved(top));
    assert_eq!(rt.add_made(0, Some(AgentId::OUTSIDE), Sink::default), reserved(AgentId::OUTSIDE));
    assert_eq!(rt.partition_of(top), None);
    // The largest id without the top bit is an ordinary id.
    let max = AgentId((1 << 63) - 1);
    assert_eq!(rt.add_with_id(1, max, Sink::default()), Ok(max));
    rt.send(Envelope::new(Ball(0)).to(max));
    let report = rt.run().unwrap();
    assert_eq!((report.delivered(), report.dead_letters()), (1, 0));
}

#[test]
fn bad_run_options_and_unknown_agents_are_errors_that_leave_the_runtime_usable() {
    let mut rt = Runtime::new(2).unwrap();
    assert_eq!(rt.run_with(RunOptions::new().seconds(-1.0)), Err(Error::InvalidTime(-1.0)));
    assert!(matches!(
        rt.run_with(RunOptions::new().seconds(f64::NAN)),
        Err(Error::InvalidTime(t)) if t.is_nan()
    ));
    assert_eq!(rt.with_agent(AgentId(3), |s: &Sink| s.got), Err(Error::UnknownAgent(AgentId(3))));
    // Still usable.
    let sink = rt.add(1, Sink::default()).unwrap();
    rt.send(Envelope::new(Ball(0)).to(sink));
    assert_eq!(rt.run().unwrap().delivered(), 1);
}

// ---------------------------------------------------------------------------
// 3. Panics: the run fails naming the partition and the agent, never hangs
// ---------------------------------------------------------------------------

/// A relay on partition `relay_at` passes balls to a bomb (agent 9) on
/// partition `bomb_at`, which blows up on its first one.
fn bomb_run(relay_at: usize, bomb_at: usize) -> (Runtime, Result<RuntimeReport, Error>) {
    let mut rt = Runtime::new(2).unwrap();
    let relay = rt.add_with_id(relay_at, AgentId(1), Relay::forever(AgentId(9))).unwrap();
    rt.add_with_id(bomb_at, AgentId(9), Bomb).unwrap();
    // Something busy on the other partition, too.
    let other = 1 - bomb_at;
    let a = rt.add_with_id(other, AgentId(20), Relay::forever(AgentId(21))).unwrap();
    rt.add_with_id(other, AgentId(21), Relay::forever(a)).unwrap();
    rt.send(Envelope::new(Ball(0)).to(a));
    rt.send(Envelope::new(Ball(0)).to(relay));
    let result = rt.run();
    (rt, result)
}

#[test]
fn a_panic_in_update_on_partition_1_fails_the_run_naming_it() {
    let (mut rt, result) = bomb_run(0, 1);
    assert_panicked(result.unwrap_err(), AgentId(9), Phase::Update, "boom in update");
    assert_spent(&mut rt);
    drop(rt); // joins the threads
}

#[test]
fn after_a_failed_run_the_agents_can_be_read_for_a_post_mortem() {
    let (mut rt, result) = bomb_run(0, 1);
    assert!(result.is_err());
    // The relays on partition 0 bounced the ball until the run failed.
    let got = rt.with_agent(AgentId(20), |r: &Relay| r.got).unwrap();
    let other = rt.with_agent(AgentId(21), |r: &Relay| r.got).unwrap();
    assert!(got + other > 0, "the relays' counts survive the failure");
    assert_eq!(rt.partition_of(AgentId(9)), Some(1), "the culprit is still listed");
    assert_eq!(rt.run(), Err(Error::Stopped), "nothing more runs");
}

#[test]
fn a_panic_in_update_on_partition_0_fails_the_run_naming_it() {
    let (mut rt, result) = bomb_run(1, 0);
    assert_panicked(result.unwrap_err(), AgentId(9), Phase::Update, "boom in update");
    assert_spent(&mut rt);
    // A spent runtime still stops cleanly.
    assert_eq!(rt.stop(), Ok(()));
}

#[test]
fn a_panic_in_setup_fails_the_next_run_naming_it() {
    let mut rt = Runtime::new(2).unwrap();
    let a = rt.add_with_id(0, AgentId(1), Relay::forever(AgentId(2))).unwrap();
    rt.add_with_id(0, AgentId(2), Relay::forever(a)).unwrap();
    // The setup runs on partition 1's thread; adding does not wait for it.
    assert_eq!(rt.add_with_id(1, AgentId(5), BadSetup), Ok(AgentId(5)));
    rt.send(Envelope::new(Ball(0)).to(a));
    let err = rt.run().unwrap_err();
    assert_panicked(err, AgentId(5), Phase::Setup, "boom in setup");
    assert_spent(&mut rt);
}

#[test]
fn a_panic_in_an_agents_constructor_fails_the_next_run() {
    let mut rt = Runtime::new(2).unwrap();
    rt.add_made(1, Some(AgentId(5)), || -> Sink { panic!("boom in make") }).unwrap();
    match rt.run().unwrap_err() {
        Error::AgentPanicked { agent: AgentId(5), phase: Phase::Setup, message } => {
            assert!(message.contains("boom in make"), "{message}")
        }
        other => panic!("expected the constructor's panic on partition 1, got {other:?}"),
    }
    assert_spent(&mut rt);
}

#[test]
fn a_panic_in_a_spawned_async_agent_fails_the_run_naming_it() {
    let mut rt = Runtime::new(2).unwrap();
    // Agents 1 (p0) and 2 (p1) bounce a ball forever; agent 30 (p0) and
    // the fuse (p1) bounce another until the fuse blows up.
    let a = rt.add_with_id(0, AgentId(1), Relay::forever(AgentId(2))).unwrap();
    rt.add_with_id(1, AgentId(2), Relay::forever(a)).unwrap();
    let fuse = rt
        .spawn(1, |cx| async move {
            // Ten balls make it through; the eleventh blows up.
            for _ in 0..10 {
                let env = cx.recv().await;
                let hops = env.payload::<Ball>().unwrap().0;
                cx.send(Envelope::new(Ball(hops + 1)).to(AgentId(30)));
            }
            let _ = cx.recv().await;
            panic!("boom in async body");
        })
        .unwrap();
    rt.add_with_id(0, AgentId(30), Relay::forever(fuse)).unwrap();
    rt.send(Envelope::new(Ball(0)).to(a));
    rt.send(Envelope::new(Ball(0)).to(AgentId(30)));
    let err = rt.run().unwrap_err();
    assert_panicked(err, fuse, Phase::Process, "boom in async body");
    assert_spent(&mut rt);
}

#[test]
fn a_panic_in_free_mode_fails_the_run_naming_it() {
    let mut rt = Runtime::builder().partitions(2).real_time().build().unwrap();
    let a = rt.add_with_id(0, AgentId(1), Relay::forever(AgentId(2))).unwrap();
    rt.add_with_id(1, AgentId(2), Relay { peer: a, pause_at: u64::MAX, last: u64::MAX, got: 0 })
        .unwrap();
    rt.add_with_id(1, AgentId(9), Bomb).unwrap();
    rt.send(Envelope::new(Ball(0)).to(a));
    rt.send(Envelope::new(Ball(0)).to(AgentId(9)));
    let err = rt.run().unwrap_err();
    assert_panicked(err, AgentId(9), Phase::Update, "boom in update");
    assert_spent(&mut rt);
}

// ---------------------------------------------------------------------------
// 4. Stops while mail is in flight: the books balance
// ---------------------------------------------------------------------------

const STREAMS: u64 = 8;

/// Agents 1 (partition 0) and 2 (partition 1) bounce `STREAMS` balls
/// between them; agent 1 pauses when a ball reaches `pause_at` hops.
fn streams(mut rt: Runtime, pause_at: u64) -> Runtime {
    rt.add_with_id(0, AgentId(1), Relay { peer: AgentId(2), pause_at, last: u64::MAX, got: 0 })
        .unwrap();
    rt.add_with_id(1, AgentId(2), Relay::forever(AgentId(1))).unwrap();
    for _ in 0..STREAMS {
        rt.send(Envelope::new(Ball(0)).to(AgentId(1)));
    }
    rt
}

#[test]
fn a_pause_mid_stream_stops_with_the_books_balanced() {
    // Agent 1 sees hop counts 1, 3, 5...: the balls reach 51 hops in round 51.
    let mut rt = streams(Runtime::new(2).unwrap(), 51);
    let report = rt.run().unwrap();
    assert_eq!(report.reason, StopReason::Paused);
    assert_balanced(&report);
    // Lockstep is exact: the outside mail, then 8 balls a round for 51
    // rounds; the last round's balls wait unread in agent 2's inbox.
    assert_eq!(report.sent(), STREAMS * 52);
    assert_eq!(report.delivered(), STREAMS * 52);
    assert_eq!((report.dead_letters(), report.pending()), (0, 0));
    assert_eq!(report.cross_partition(), STREAMS * 51);
    assert_eq!(report.partitions[1].unread, STREAMS);
    assert_eq!(report.partitions[0].unread, 0);
    assert!(report.partitions.iter().all(|p| p.rounds == 51), "{report}");
    // The paused run can go on: the unread balls are still in play.
    let again = rt.run_with(RunOptions::new().iterations(3)).unwrap();
    assert_eq!(again.reason, StopReason::Iterations);
    assert_balanced(&again);
    assert_eq!(again.sent(), STREAMS * 3);
}

#[test]
fn cancelling_the_token_from_another_thread_stops_an_endless_run() {
    let mut rt = streams(Runtime::new(2).unwrap(), u64::MAX);
    let token = rt.cancel_token();
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        token.cancel();
    });
    let report = rt.run().unwrap();
    canceller.join().unwrap();
    assert_eq!(report.reason, StopReason::Cancelled);
    assert_balanced(&report);
    // Even a cancel before the first step lets the outside mail in.
    assert!(report.delivered() >= STREAMS, "{report}");
    assert_eq!(report.pending(), 0);
}

#[test]
fn an_application_token_stops_the_run_and_survives_the_runtime() {
    // Any `CancellationToken` will do as the application's: borrow one
    // from a runtime kept alive for the purpose.
    let holder = Runtime::new(1).unwrap();
    let app = holder.cancel_token();
    let mut rt = streams(
        Runtime::builder().partitions(2).cancel_token(app.clone()).build().unwrap(),
        u64::MAX,
    );
    assert!(!rt.cancel_token().is_cancelled());
    let token = app.clone();
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        token.cancel();
    });
    let report = rt.run().unwrap();
    canceller.join().unwrap();
    assert_eq!(report.reason, StopReason::Cancelled);
    assert_balanced(&report);

    // Stopping a runtime does not cancel the application's token.
    let holder = Runtime::new(1).unwrap();
    let app = holder.cancel_token();
    let rt = Runtime::builder().partitions(2).cancel_token(app.clone()).build().unwrap();
    let own = rt.cancel_token();
    assert_eq!(rt.stop(), Ok(()));
    assert!(own.is_cancelled());
    assert!(!app.is_cancelled());
}

#[test]
fn an_iteration_limit_stops_mid_stream_with_the_books_balanced() {
    let mut rt = streams(Runtime::new(2).unwrap(), u64::MAX);
    let report = rt.run_with(RunOptions::new().iterations(5)).unwrap();
    assert_eq!(report.reason, StopReason::Iterations);
    assert_balanced(&report);
    assert_eq!(report.sent(), STREAMS * 6);
    assert_eq!(report.delivered(), STREAMS * 6);
    assert_eq!(report.cross_partition(), STREAMS * 5);
    assert!(report.partitions.iter().all(|p| p.rounds == 5), "{report}");
    // The balls of round 5 wait unread at agent 2 (odd rounds go 1 -> 2).
    assert_eq!(report.partitions[1].unread, STREAMS);
    // Zero rounds: nothing but the step that would deliver outside mail.
    let report = rt.run_with(RunOptions::new().iterations(0)).unwrap();
    assert_eq!(report.reason, StopReason::Iterations);
    assert_balanced(&report);
    assert!(report.partitions.iter().all(|p| p.rounds == 0), "{report}");
}

#[test]
fn free_mode_a_pause_mid_stream_stops_with_the_books_balanced() {
    let rt = Runtime::builder().partitions(2).real_time().build().unwrap();
    let mut rt = streams(rt, 41);
    let report = rt.run().unwrap();
    assert_eq!(report.reason, StopReason::Paused);
    assert_balanced(&report);
    // One ball at least made its 41 hops (and the outside mail came in).
    assert!(report.delivered() >= 41 + STREAMS - 1, "{report}");
    assert_eq!(report.dead_letters(), 0);
}

#[test]
fn free_mode_cancelling_the_token_stops_an_endless_run() {
    let rt = Runtime::builder().partitions(2).real_time().build().unwrap();
    let mut rt = streams(rt, u64::MAX);
    let token = rt.cancel_token();
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        token.cancel();
    });
    let report = rt.run().unwrap();
    canceller.join().unwrap();
    assert_eq!(report.reason, StopReason::Cancelled);
    assert_balanced(&report);
    assert_eq!(report.dead_letters(), 0);
}

#[test]
fn free_mode_an_iteration_limit_stops_an_endless_run() {
    let rt = Runtime::builder().partitions(2).real_time().build().unwrap();
    let mut rt = streams(rt, u64::MAX);
    let report = rt.run_with(RunOptions::new().iterations(5)).unwrap();
    assert_eq!(report.reason, StopReason::Iterations);
    assert_balanced(&report);
    assert!(report.partitions.iter().any(|p| p.rounds == 5), "{report}");
    assert!(report.partitions.iter().all(|p| p.rounds <= 5), "{report}");
}

// ---------------------------------------------------------------------------
// 5. Free mode on the real-time clock
// ---------------------------------------------------------------------------

/// One ball between agent 1 (partition 0) and agent 2 (partition 1), in
/// free mode; the relays pause at `pause_at` hops and stop passing it on
/// at `last` hops.
fn free_ping_pong(pause_at: u64, last: u64) -> (Runtime, RuntimeReport) {
    let mut rt = Runtime::builder().partitions(2).real_time().build().unwrap();
    rt.add_with_id(0, AgentId(1), Relay { peer: AgentId(2), pause_at, last, got: 0 }).unwrap();
    rt.add_with_id(1, AgentId(2), Relay { peer: AgentId(1), pause_at, last, got: 0 }).unwrap();
    rt.send(Envelope::new(Ball(0)).to(AgentId(1)));
    let report = rt.run().unwrap();
    (rt, report)
}

#[test]
fn free_mode_a_ping_pong_that_pauses_after_n_hops() {
    const N: u64 = 101;
    let (mut rt, report) = free_ping_pong(N, N);
    assert_eq!(report.reason, StopReason::Paused);
    assert_balanced(&report);
    // The outside send, then N - 1 passes; the N-th hop ends at agent 1.
    assert_eq!((report.sent(), report.delivered()), (N, N));
    assert_eq!(report.cross_partition(), N - 1);
    assert_eq!(report.traffic, vec![vec![1, N / 2], vec![N / 2, 0]]);
    assert_eq!(rt.with_agent(AgentId(1), |r: &Relay| r.got), Ok(N / 2 + 1));
    assert_eq!(rt.with_agent(AgentId(2), |r: &Relay| r.got), Ok(N / 2));
}

#[test]
fn free_mode_a_run_that_goes_idle_stops_as_idle() {
    const N: u64 = 100;
    let (mut rt, report) = free_ping_pong(u64::MAX, N);
    assert_eq!(report.reason, StopReason::Idle);
    assert_balanced(&report);
    assert_eq!((report.sent(), report.delivered(), report.pending()), (N, N, 0));
    assert_eq!(rt.with_agent(AgentId(2), |r: &Relay| r.got), Ok(N / 2));
    // Idle again at once, with nothing to do; then the ball is sent anew.
    let report = rt.run_with(RunOptions::default()).unwrap();
    assert_eq!(report.reason, StopReason::Idle);
    assert_eq!(report.sent(), 0);
    rt.send(Envelope::new(Ball(N - 2)).to(AgentId(2)));
    let report = rt.run().unwrap();
    assert_eq!(report.reason, StopReason::Idle);
    assert_eq!((report.sent(), report.delivered()), (2, 2));
}

#[test]
fn free_mode_dead_letters_are_counted() {
    let mut rt = Runtime::builder().partitions(2).real_time().build().unwrap();
    let sink = rt.add(1, Sink::default()).unwrap();
    rt.spawn(0, move |cx| async move {
        for _ in 0..3 {
            cx.send(Envelope::new(Ball(0)).to(AgentId(4242)));
            cx.send(Envelope::new(Ball(0)).to(sink));
        }
    })
    .unwrap();
    let report = rt.run().unwrap();
    assert_eq!(report.reason, StopReason::Idle);
    assert_balanced(&report);
    assert_eq!((report.sent(), report.delivered(), report.dead_letters()), (6, 3, 3));
    assert_eq!(report.partitions[0].dead_letters, 3);
}

// ---------------------------------------------------------------------------
// 2 (counts). Dead letters in lockstep (the log: tests/dead_letter_log.rs)
// ---------------------------------------------------------------------------

#[test]
fn mail_to_an_unknown_receiver_is_a_dead_letter() {
    let mut rt = Runtime::new(2).unwrap();
    let sink = rt.add(1, Sink::default()).unwrap();
    rt.send(Envelope::new(Ball(0)).to(AgentId(4242)));
    rt.spawn(1, move |cx| async move {
        cx.send(Envelope::new(Ball(0)).to(AgentId(4243)));
        cx.send(Envelope::new(Ball(0)).to(sink));
    })
    .unwrap();
    let report = rt.run().unwrap();
    assert_eq!(report.reason, StopReason::Idle);
    assert_balanced(&report);
    assert_eq!((report.sent(), report.delivered(), report.dead_letters()), (3, 1, 2));
    // Outside mail for an unknown receiver is posted on partition 0.
    assert_eq!(report.partitions[0].dead_letters, 1);
    assert_eq!(report.partitions[1].dead_letters, 1);
    // A dead letter is no traffic to anyone.
    assert_eq!(report.traffic, vec![vec![0, 0], vec![0, 1]]);
}

// ---------------------------------------------------------------------------
// 6. The report's per-partition counts and traffic matrix
// ---------------------------------------------------------------------------

/// On a kick, sends `n` messages to each of its targets.
struct Burst {
    targets: Vec<(AgentId, u64)>,
}

impl Agent for Burst {
    async fn update(&mut self, cx: &Cx) {
        while cx.try_recv().is_some() {
            for &(to, n) in &self.targets {
                for i in 0..n {
                    cx.send(Envelope::new(Ball(i)).to(to));
                }
            }
        }
    }
}

#[test]
fn the_report_counts_traffic_per_partition_and_pair() {
    let mut rt = Runtime::new(3).unwrap();
    // p0: burst 1, sink 3; p1: sink 2; p2: burst 5, sink 4.
    rt.add_with_id(0, AgentId(3), Sink::default()).unwrap();
    rt.add_with_id(1, AgentId(2), Sink::default()).unwrap();
    rt.add_with_id(2, AgentId(4), Sink::default()).unwrap();
    let targets = vec![(AgentId(2), 3), (AgentId(3), 1), (AgentId(4), 2)];
    rt.add_with_id(0, AgentId(1), Burst { targets }).unwrap();
    rt.add_with_id(2, AgentId(5), Burst { targets: vec![(AgentId(3), 4)] }).unwrap();
    rt.send(Envelope::new(Ball(0)).to(AgentId(1)));
    rt.send(Envelope::new(Ball(0)).to(AgentId(5)));
    let report = rt.run().unwrap();
    assert_eq!(report.reason, StopReason::Idle);
    assert_balanced(&report);
    assert_eq!(report.partitions.len(), 3);
    assert_eq!(report.traffic, vec![vec![2, 3, 2], vec![0, 0, 0], vec![4, 0, 1]]);
    let per = |f: fn(&maslite_runtime::PartitionReport) -> u64| -> Vec<u64> {
        report.partitions.iter().map(f).collect()
    };
    assert_eq!(per(|p| p.partition as u64), [0, 1, 2]);
    assert_eq!(per(|p| p.agents as u64), [2, 1, 2]);
    assert_eq!(per(|p| p.sent), [7, 0, 5]);
    assert_eq!(per(|p| p.delivered), [6, 3, 3]);
    assert_eq!(per(|p| p.cross_partition), [5, 0, 4]);
    assert_eq!(per(|p| p.dead_letters), [0, 0, 0]);
    assert_eq!(per(|p| p.pending), [0, 0, 0]);
    assert_eq!(per(|p| p.unread), [0, 0, 0]);
    // Row sums are each partition's sends; column sums its deliveries.
    for (p, row) in report.traffic.iter().enumerate() {
        assert_eq!(row.iter().sum::<u64>(), report.partitions[p].sent);
        let column: u64 = report.traffic.iter().map(|r| r[p]).sum();
        assert_eq!(column, report.partitions[p].delivered);
    }
    let pairs: Vec<(u64, u64, usize, usize, u64)> = report
        .top_pairs
        .iter()
        .map(|t| (t.sender.0, t.receiver.0, t.from, t.to, t.messages))
        .collect();
    assert_eq!(pairs, [(5, 3, 2, 0, 4), (1, 2, 0, 1, 3), (1, 4, 0, 2, 2)]);
    assert_eq!(rt.with_agent(AgentId(3), |s: &Sink| s.got), Ok(5));
    assert_eq!(rt.with_agent(AgentId(2), |s: &Sink| s.got), Ok(3));
    assert_eq!(rt.with_agent(AgentId(4), |s: &Sink| s.got), Ok(2));
}

#[test]
fn the_same_traffic_on_one_partition_never_crosses() {
    let mut rt = Runtime::new(1).unwrap();
    let sink = rt.add(0, Sink::default()).unwrap();
    let burst = rt.add(0, Burst { targets: vec![(sink, 3)] }).unwrap();
    rt.send(Envelope::new(Ball(0)).to(burst));
    let report = rt.run().unwrap();
    assert_eq!(report.partitions.len(), 1);
    assert_eq!(report.traffic, vec![vec![4]]);
    assert_eq!(report.cross_partition(), 0);
    assert!(report.top_pairs.is_empty());
    assert_eq!(report.partitions[0].waited, Duration::ZERO, "nobody to wait for");
}

/// Takes `work` of its thread at each update, then sends itself the next
/// note, `left` more times.
struct Toiler {
    work: Duration,
    left: u32,
}

impl Agent for Toiler {
    async fn update(&mut self, cx: &Cx) {
        while cx.try_recv().is_some() {
            std::thread::sleep(self.work);
            if self.left > 0 {
                self.left -= 1;
                cx.send(Envelope::new(Ball(0)).to(cx.id()));
            }
        }
    }
}

#[test]
fn the_report_tells_how_long_each_partition_waited_for_the_others() {
    // Lockstep: both partitions take every step, and p0's steps each take
    // 2 ms of its thread while p1's take none, so p1 waits at least that
    // long at every step's end, 20 times.
    let mut rt = Runtime::new(2).unwrap();
    let slow = rt.add(0, Toiler { work: Duration::from_millis(2), left: 19 }).unwrap();
    let quick = rt.add(1, Toiler { work: Duration::ZERO, left: 19 }).unwrap();
    rt.send(Envelope::new(Ball(0)).to(slow));
    rt.send(Envelope::new(Ball(0)).to(quick));
    let report = rt.run().unwrap();
    assert_eq!(report.partitions[0].updates, 20, "{report}");
    let (p0, p1) = (report.partitions[0].waited, report.partitions[1].waited);
    assert!(p1 >= Duration::from_millis(30), "p1 waited {p1:?} for 20 steps of 2 ms\n{report}");
    assert!(p0 < p1, "the slow partition waited {p0:?}, the quick one {p1:?}\n{report}");
    assert!(p1 <= report.wall, "{p1:?} of {:?}", report.wall);
    // The report names the partition that set the pace.
    assert_eq!(report.uneven_waits(), Some((0, 1)), "{report}");
    assert!(report.to_string().contains("partition 0's work sets the pace"), "{report}");
    // A second run's report counts its own waits only.
    let again = rt.run().unwrap();
    assert!(again.partitions[1].waited < p1, "{again}");
}

// ---------------------------------------------------------------------------
// 7. `!Send` agents, and tokio timers on the simulated clock
// ---------------------------------------------------------------------------

/// Keeps what it gets behind an `Rc`: not `Send`.
struct Shared {
    seen: Rc<RefCell<Vec<u64>>>,
    also: Rc<RefCell<Vec<u64>>>,
}

impl Agent for Shared {
    async fn update(&mut self, cx: &Cx) {
        while let Some(env) = cx.try_recv() {
            let n = env.payload::<Ball>().unwrap().0;
            self.seen.borrow_mut().push(n);
            assert!(Rc::ptr_eq(&self.seen, &self.also));
        }
    }
}

#[test]
fn a_not_send_agent_made_on_its_partition_works() {
    let mut rt = Runtime::new(2).unwrap();
    let shared = rt
        .add_made(1, None, || {
            let seen = Rc::new(RefCell::new(Vec::new()));
            Shared { also: seen.clone(), seen }
        })
        .unwrap();
    assert_eq!(rt.partition_of(shared), Some(1));
    rt.add_with_id(0, AgentId(100), Burst { targets: vec![(shared, 4)] }).unwrap();
    rt.send(Envelope::new(Ball(0)).to(AgentId(100)));
    let report = rt.run().unwrap();
    assert_eq!(report.traffic[0][1], 4);
    let seen = rt.with_agent(shared, |s: &Shared| s.seen.borrow().clone()).unwrap();
    assert_eq!(seen, [0, 1, 2, 3]);
    // And again: the agent lives on between runs.
    rt.send(Envelope::new(Ball(9)).to(shared));
    rt.run().unwrap();
    let seen = rt.with_agent(shared, |s: &Shared| s.seen.borrow().len()).unwrap();
    assert_eq!(seen, 5);
}

#[test]
fn a_tokio_timer_in_an_agent_holds_simulated_time() {
    let log: Arc<Mutex<Vec<(&'static str, f64)>>> = Arc::default();
    let mut rt = Runtime::new(2).unwrap();
    let l = log.clone();
    let waiter = rt
        .spawn(0, move |cx| async move {
            let _kick = cx.recv().await;
            // A wall-clock wait on the partition's tokio runtime: the agent
            // is busy, and the simulated clock must not move meanwhile.
            tokio::time::sleep(Duration::from_millis(5)).await;
            l.lock().unwrap().push(("tokio timer done", cx.now()));
            cx.sleep(1.0).await;
            l.lock().unwrap().push(("slept 1 s", cx.now()));
        })
        .unwrap();
    let l = log.clone();
    rt.spawn(1, move |cx| async move {
        cx.sleep(0.001).await;
        l.lock().unwrap().push(("other partition woke", cx.now()));
    })
    .unwrap();
    rt.send(Envelope::new(Ball(0)).to(waiter));
    let report = rt.run().unwrap();
    assert_eq!(report.reason, StopReason::Idle);
    assert_eq!(report.end_time, 1.0);
    assert_eq!(rt.now(), 1.0);
    assert_eq!(
        *log.lock().unwrap(),
        [("tokio timer done", 0.0), ("other partition woke", 0.001), ("slept 1 s", 1.0)]
    );
    assert_balanced(&report);
}

#[test]
fn a_tokio_timer_in_a_trait_agents_update_holds_simulated_time() {
    /// Waits on a tokio timer inside `update`, then answers.
    struct Slow {
        answer_to: AgentId,
    }
    impl Agent for Slow {
        async fn update(&mut self, cx: &Cx) {
            while cx.try_recv().is_some() {
                tokio::time::sleep(Duration::from_millis(2)).await;
                cx.send(Envelope::new(Ball(0)).to(self.answer_to));
            }
        }
    }
    let mut rt = Runtime::new(2).unwrap();
    let sink = rt.add(0, Sink::default()).unwrap();
    let slow = rt.add(1, Slow { answer_to: sink }).unwrap();
    for _ in 0..3 {
        rt.send(Envelope::new(Ball(0)).to(slow));
    }
    let report = rt.run().unwrap();
    assert_eq!(report.reason, StopReason::Idle);
    assert_eq!(report.end_time, 0.0);
    assert_balanced(&report);
    assert_eq!(report.traffic[1][0], 3);
    assert_eq!(rt.with_agent(sink, |s: &Sink| s.got), Ok(3));
}

// ---------------------------------------------------------------------------
// 8. Dropping and stopping idle runtimes
// ---------------------------------------------------------------------------

#[test]
fn dropping_idle_runtimes_joins_their_threads() {
    for i in 0..50 {
        let mut rt = Runtime::new(4).unwrap();
        if i % 2 == 1 {
            // Some with agents and mail waiting, never run.
            let sink = rt.add(i % 4, Sink::default()).unwrap();
            rt.send(Envelope::new(Ball(0)).to(sink));
        }
        if i % 5 == 0 {
            // Some after a run.
            let a = rt.add(0, Relay { peer: AgentId(1000), pause_at: 3, last: 3, got: 0 }).unwrap();
            rt.add_with_id(3, AgentId(1000), Relay { peer: a, pause_at: 3, last: 3, got: 0 })
                .unwrap();
            rt.send(Envelope::new(Ball(0)).to(a));
            assert_eq!(rt.run().unwrap().reason, StopReason::Paused);
        }
        drop(rt);
    }
}

#[test]
fn stop_returns_ok_for_idle_and_used_runtimes() {
    let rt = Runtime::new(2).unwrap();
    assert_eq!(rt.stop(), Ok(()));
    let mut rt = Runtime::builder().partitions(3).real_time().build().unwrap();
    let sink = rt.add(2, Sink::default()).unwrap();
    rt.send(Envelope::new(Ball(0)).to(sink));
    assert_eq!(rt.run().unwrap().delivered(), 1);
    assert_eq!(rt.stop(), Ok(()));
    // After a cancelled run, too.
    let mut rt = streams(Runtime::new(2).unwrap(), u64::MAX);
    rt.cancel_token().cancel();
    assert_eq!(rt.run().unwrap().reason, StopReason::Cancelled);
    assert_eq!(rt.stop(), Ok(()));
}

#[test]
fn an_agent_adding_an_id_that_lives_on_another_partition_is_a_duplicate() {
    // Agent 7 lives on partition 0. An agent on partition 1, during the
    // run, adds another agent 7. On one kernel `cx.add_with_id` says
    // `DuplicateAgent(7)`; across partitions the duplicate must be caught
    // too: by `cx.add_with_id`, or by failing the run. Two agents with one
    // id must never come out of it.
    let mut rt = Runtime::new(2).unwrap();
    rt.add_with_id(0, AgentId(7), Sink::default()).unwrap();
    let added: Arc<Mutex<Option<Result<AgentId, Error>>>> = Arc::default();
    let record = added.clone();
    let adder = rt
        .spawn(1, move |cx| async move {
            let _kick = cx.recv().await;
            *record.lock().unwrap() = Some(cx.add_with_id(AgentId(7), Sink::default()));
        })
        .unwrap();
    rt.send(Envelope::new(Ball(0)).to(adder));
    let run = rt.run();
    let added = added.lock().unwrap().clone().expect("the adder ran");
    let duplicate = Error::DuplicateAgent(AgentId(7));
    match (&added, &run) {
        (Err(e), Ok(_)) => assert_eq!(e, &duplicate),
        (Ok(_), Err(e)) => assert_eq!(e, &duplicate),
        _ => {
            let on0 = rt.with_partition(0, |s| s.contains(AgentId(7)));
            let on1 = rt.with_partition(1, |s| s.contains(AgentId(7)));
            panic!(
                "agent 7 added twice: cx.add_with_id gave {added:?}, the run {run:?}; \
                 agent 7 on partition 0: {:?}, on partition 1: {:?}; the handle says {:?}",
                on0,
                on1,
                rt.partition_of(AgentId(7)),
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Hangs. A failing runtime would block these tests forever; a watchdog
// cancels the runtime's token if a call has not returned after 2 s (a
// correct runtime returns in milliseconds), so a hang shows as a failure.
// ---------------------------------------------------------------------------

/// Runs `rescue` if `finished` is not called within 2 s.
struct Watchdog {
    done: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<bool>,
}

impl Watchdog {
    fn new(rescue: impl FnOnce() + Send + 'static) -> Watchdog {
        let (done, rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let fired = rx.recv_timeout(Duration::from_secs(2)).is_err();
            if fired {
                rescue();
            }
            fired
        });
        Watchdog { done, thread }
    }

    /// Whether it had to rescue.
    fn finished(self) -> bool {
        let _ = self.done.send(());
        self.thread.join().unwrap()
    }
}

#[test]
fn dropping_a_run_async_future_mid_run_does_not_hang_the_next_run() {
    // An async caller gives up on an endless run (a timeout, a select):
    // the run's future is dropped. The next call must not wait for the
    // abandoned run forever: it runs (or says the runtime is spent).
    let mut rt = streams(Runtime::new(2).unwrap(), u64::MAX);
    let (give_up, gave_up) = futures::channel::oneshot::channel::<()>();
    let timer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        let _ = give_up.send(());
    });
    {
        let run = Box::pin(rt.run_async(RunOptions::default()));
        match futures::executor::block_on(futures::future::select(run, gave_up)) {
            futures::future::Either::Left((result, _)) => {
                panic!("an endless run ended: {result:?}")
            }
            futures::future::Either::Right(_) => {} // the run's future is dropped here
        }
    }
    timer.join().unwrap();
    let token = rt.cancel_token();
    let watchdog = Watchdog::new(move || token.cancel());
    let next = rt.run_with(RunOptions::new().iterations(3));
    let rescued = watchdog.finished();
    match next {
        Ok(report) if report.reason == StopReason::Iterations => assert_balanced(&report),
        Err(Error::Stopped) => {}
        other => panic!(
            "the run after an abandoned one gave {other:?} (watchdog had to cancel: {rescued})"
        ),
    }
}

#[test]
fn a_panic_fails_the_run_while_another_partition_waits_on_the_outside_world() {
    // Agent 9 on partition 1 panics in the same round in which an agent on
    // partition 0 starts an hour-long wait on a tokio timer. The run must
    // fail at once with the panic, not after the hour.
    let mut rt = Runtime::new(2).unwrap();
    let waiter = rt
        .spawn(0, |cx| async move {
            let _kick = cx.recv().await;
            tokio::time::sleep(Duration::from_secs(3600)).await;
        })
        .unwrap();
    rt.add_with_id(1, AgentId(9), Bomb).unwrap();
    rt.send(Envelope::new(Ball(0)).to(waiter));
    rt.send(Envelope::new(Ball(0)).to(AgentId(9)));
    let token = rt.cancel_token();
    let watchdog = Watchdog::new(move || token.cancel());
    let result = rt.run();
    let rescued = watchdog.finished();
    assert_panicked(result.unwrap_err(), AgentId(9), Phase::Update, "boom in update");
    assert!(!rescued, "the run returned only after the watchdog cancelled it");
    assert_spent(&mut rt);
}
