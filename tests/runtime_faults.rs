//! The multi-partition runtime under bad input and faults: rejected
//! placements and settings, panicking agents, stops while mail is in
//! flight, free mode, the report's counts, `!Send` agents and tokio timers
//! on the simulated clock, and runtimes dropped or stopped while idle.
//!
//! Every run here must end by itself: a hang is a failure (the test never
//! finishes), so no test measures wall time.

use maslite::kernel::{Error as KernelError, Phase};
use maslite::prelude::{Agent, AgentId, Cx, Envelope, RunOptions, Runtime};
use maslite::runtime::{Error, RunReport, StopReason};
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
        while let Some(env) = cx.receive() {
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
        while cx.receive().is_some() {
            self.got += 1;
        }
    }
}

/// Panics on its first message.
struct Bomb;

impl Agent for Bomb {
    async fn update(&mut self, cx: &Cx) {
        if cx.receive().is_some() {
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
fn assert_balanced(report: &RunReport) {
    assert_eq!(
        report.sent(),
        report.delivered() + report.dead_letters() + report.pending(),
        "the counts do not add up:\n{report}"
    );
}

/// Asserts `err` is an agent's panic on `partition`, naming `agent` in
/// `phase`, with a message containing `text`.
fn assert_panicked(err: Error, partition: usize, agent: AgentId, phase: Phase, text: &str) {
    match err {
        Error::Partition {
            partition: p,
            source: KernelError::AgentPanicked { agent: a, phase: ph, message },
        } => {
            assert_eq!((p, a, ph), (partition, agent, phase), "wrong culprit: {message}");
            assert!(message.contains(text), "panic message {message:?} lacks {text:?}");
        }
        other => panic!("expected agent {agent} panicking on partition {partition}, got {other:?}"),
    }
}

/// After a failed run the runtime is spent: every call says so.
fn assert_spent(rt: &mut Runtime) {
    assert_eq!(rt.run(), Err(Error::Stopped));
    assert_eq!(rt.run_with(RunOptions::new().iterations(1)), Err(Error::Stopped));
    assert_eq!(rt.add(0, Sink::default()), Err(Error::Stopped));
    assert_eq!(rt.spawn(0, |_cx| async {}), Err(Error::Stopped));
    assert_eq!(rt.send(Envelope::new(Ball(0)).to(AgentId(1))), Err(Error::Stopped));
    assert_eq!(rt.with_partition(0, |s| s.len()), Err(Error::Stopped));
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
        Err(Error::Kernel(KernelError::DuplicateAgent(AgentId(7))))
    );
    // On the same partition, and for an async-fn agent, too.
    assert_eq!(
        rt.add_with_id(0, AgentId(7), Sink::default()),
        Err(Error::Kernel(KernelError::DuplicateAgent(AgentId(7))))
    );
    assert_eq!(
        rt.spawn_with_id(1, AgentId(7), |_cx| async {}),
        Err(Error::Kernel(KernelError::DuplicateAgent(AgentId(7))))
    );
    assert_eq!(
        rt.add_made(1, Some(AgentId(7)), Sink::default),
        Err(Error::Kernel(KernelError::DuplicateAgent(AgentId(7))))
    );
    // The first one stays where it was put and gets its mail; the rejected
    // ones left no trace.
    assert_eq!(rt.partition_of(AgentId(7)), Some(0));
    rt.send(Envelope::new(Ball(0)).to(AgentId(7))).unwrap();
    let report = rt.run().unwrap();
    assert_eq!(report.reason, StopReason::Idle);
    assert_eq!((report.delivered(), report.dead_letters()), (1, 0));
    assert_eq!(report.partitions[0].agents, 1);
    assert_eq!(report.partitions[1].agents, 0);
    assert_eq!(rt.with_agent(AgentId(7), |s: &Sink| s.got), Ok(1));
    // Allocated ids step around the ones taken.
    let a = rt.add(1, Sink::default()).unwrap();
    assert_ne!(a, AgentId(7));
    assert_eq!(
        rt.add_with_id(0, a, Sink::default()),
        Err(Error::Kernel(KernelError::DuplicateAgent(a)))
    );
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
        Err(Error::Kernel(KernelError::DuplicateAgent(AgentId(40))))
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
    let reserved = |id| Err(Error::Kernel(KernelError::ReservedId(id)));
    assert_eq!(rt.add_with_id(0, AgentId::OUTSIDE, Sink::default()), reserved(AgentId::OUTSIDE));
    assert_eq!(rt.add_with_id(1, top, Sink::default()), reserved(top));
    assert_eq!(rt.add_with_id(1, AgentId(u64::MAX - 1), Sink::default()), reserved(AgentId(u64::MAX - 1)));
    assert_eq!(rt.spawn_with_id(0, top, |_cx| async {}), reserved(top));
    assert_eq!(rt.add_made(0, Some(AgentId::OUTSIDE), Sink::default), reserved(AgentId::OUTSIDE));
    assert_eq!(rt.partition_of(top), None);
    // The largest id without the top bit is an ordinary id.
    let max = AgentId((1 << 63) - 1);
    assert_eq!(rt.add_with_id(1, max, Sink::default()), Ok(max));
    rt.send(Envelope::new(Ball(0)).to(max)).unwrap();
    let report = rt.run().unwrap();
    assert_eq!((report.delivered(), report.dead_letters()), (1, 0));
}

#[test]
fn bad_run_options_and_unknown_agents_are_errors_that_leave_the_runtime_usable() {
    let mut rt = Runtime::new(2).unwrap();
    assert_eq!(
        rt.run_with(RunOptions::new().seconds(-1.0)),
        Err(Error::Kernel(KernelError::InvalidTime(-1.0)))
    );
    assert!(matches!(
        rt.run_with(RunOptions::new().seconds(f64::NAN)),
        Err(Error::Kernel(KernelError::InvalidTime(t))) if t.is_nan()
    ));
    assert_eq!(
        rt.with_agent(AgentId(3), |s: &Sink| s.got),
        Err(Error::Kernel(KernelError::UnknownAgent(AgentId(3))))
    );
    // Still usable.
    let sink = rt.add(1, Sink::default()).unwrap();
    rt.send(Envelope::new(Ball(0)).to(sink)).unwrap();
    assert_eq!(rt.run().unwrap().delivered(), 1);
}

// ---------------------------------------------------------------------------
// 3. Panics: the run fails naming the partition and the agent, never hangs
// ---------------------------------------------------------------------------

/// A relay on partition `relay_at` passes balls to a bomb (agent 9) on
/// partition `bomb_at`, which blows up on its first one.
fn bomb_run(relay_at: usize, bomb_at: usize) -> (Runtime, Result<RunReport, Error>) {
    let mut rt = Runtime::new(2).unwrap();
    let relay = rt.add_with_id(relay_at, AgentId(1), Relay::forever(AgentId(9))).unwrap();
    rt.add_with_id(bomb_at, AgentId(9), Bomb).unwrap();
    // Something busy on the other partition, too.
    let other = 1 - bomb_at;
    let a = rt.add_with_id(other, AgentId(20), Relay::forever(AgentId(21))).unwrap();
    rt.add_with_id(other, AgentId(21), Relay::forever(a)).unwrap();
    rt.send(Envelope::new(Ball(0)).to(a)).unwrap();
    rt.send(Envelope::new(Ball(0)).to(relay)).unwrap();
    let result = rt.run();
    (rt, result)
}

#[test]
fn a_panic_in_update_on_partition_1_fails_the_run_naming_it() {
    let (mut rt, result) = bomb_run(0, 1);
    assert_panicked(result.unwrap_err(), 1, AgentId(9), Phase::Update, "boom in update");
    assert_spent(&mut rt);
    drop(rt); // joins the threads
}

#[test]
fn a_panic_in_update_on_partition_0_fails_the_run_naming_it() {
    let (mut rt, result) = bomb_run(1, 0);
    assert_panicked(result.unwrap_err(), 0, AgentId(9), Phase::Update, "boom in update");
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
    rt.send(Envelope::new(Ball(0)).to(a)).unwrap();
    let err = rt.run().unwrap_err();
    assert_panicked(err, 1, AgentId(5), Phase::Setup, "boom in setup");
    assert_spent(&mut rt);
}

#[test]
fn a_panic_in_an_agents_constructor_fails_the_next_run() {
    let mut rt = Runtime::new(2).unwrap();
    rt.add_made(1, Some(AgentId(5)), || -> Sink { panic!("boom in make") }).unwrap();
    match rt.run().unwrap_err() {
        Error::Partition {
            partition: 1,
            source: KernelError::AgentPanicked { phase: Phase::Setup, message, .. },
        } => assert!(message.contains("boom in make"), "{message}"),
        other => panic!("expected the constructor's panic on partition 1, got {other:?}"),
    }
    assert_spent(&mut rt);
}

#[test]
fn a_panic_in_a_spawned_async_agent_fails_the_run_naming_it() {
    let mut rt = Runtime::new(2).unwrap();
    let a = rt.add_with_id(0, AgentId(1), Relay::forever(AgentId(2))).unwrap();
    rt.add_with_id(0, AgentId(2), Relay::forever(a)).unwrap();
    let fuse = rt
        .spawn(1, |cx| async move {
            // Ten balls make it through; the eleventh blows up.
            for _ in 0..10 {
                let env = cx.recv().await;
                let hops = env.payload::<Ball>().unwrap().0;
                cx.send(Envelope::new(Ball(hops + 1)).to(AgentId(1)));
            }
            let _ = cx.recv().await;
            panic!("boom in async body");
        })
        .unwrap();
    // Agent 1 relays to agent 2 and back; the fuse gets its own stream.
    rt.add_with_id(1, AgentId(3), Relay::forever(fuse)).unwrap();
    rt.send(Envelope::new(Ball(0)).to(a)).unwrap();
    rt.send(Envelope::new(Ball(0)).to(AgentId(3))).unwrap();
    let err = rt.run().unwrap_err();
    assert_panicked(err, 1, fuse, Phase::Process, "boom in async body");
    assert_spent(&mut rt);
}

#[test]
fn a_panic_in_free_mode_fails_the_run_naming_it() {
    let mut rt = Runtime::builder().partitions(2).real_time().build().unwrap();
    let a = rt.add_with_id(0, AgentId(1), Relay::forever(AgentId(2))).unwrap();
    rt.add_with_id(1, AgentId(2), Relay { peer: a, pause_at: u64::MAX, last: u64::MAX, got: 0 })
        .unwrap();
    rt.add_with_id(1, AgentId(9), Bomb).unwrap();
    rt.send(Envelope::new(Ball(0)).to(a)).unwrap();
    rt.send(Envelope::new(Ball(0)).to(AgentId(9))).unwrap();
    let err = rt.run().unwrap_err();
    assert_panicked(err, 1, AgentId(9), Phase::Update, "boom in update");
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
        rt.send(Envelope::new(Ball(0)).to(AgentId(1))).unwrap();
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

