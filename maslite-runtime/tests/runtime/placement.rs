//! Placement: measured traffic, advice, and agents that move between runs.
//!
//! - `moving_agents_keeps_the_trace`: a property over random programs of
//!   `Send` trait agents (mail, alarms set for others, broadcasts to
//!   subscribers, agents kept awake) run in slices on 2-3 partitions, with
//!   random moves between slices: every agent's trace equals the one of the
//!   same program run without moves.
//! - the advice recovers planted communities, within the load tolerance;
//! - bad input (unknown agents or partitions, k = 0, agents that cannot
//!   move) is a typed error, and nothing moves.

use super::programs::{cases, mix};
use maslite_core::Subscription;
use maslite_core::{Agent, AgentId, Alarm, Cx, Envelope, Error, Immovable, RunOptions};
use maslite_runtime::{AgentPlacement, Runtime, Traffic};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug, PartialEq)]
struct Note {
    val: u64,
    hops: u8,
}

/// Every agent's trace: (time, round, sender, value) of what it read.
type Traces = Arc<Mutex<Seen>>;

const TOPICS: [&str; 2] = ["a", "b"];

/// A scripted agent: what it does with a note depends on its seed and the
/// note alone.
struct Scripted {
    seed: u64,
    peers: Vec<AgentId>,
    traces: Traces,
    /// Its own state, which must travel with it.
    read: u64,
}

impl Agent for Scripted {
    async fn setup(&mut self, cx: &Cx) {
        if self.seed.is_multiple_of(3) {
            let t = TOPICS[(self.seed / 3 % 2) as usize];
            cx.subscribe(Subscription::new().topic(t)).unwrap();
        }
    }

    async fn update(&mut self, cx: &Cx) {
        while let Some(env) = cx.try_recv() {
            let note = env.payload::<Note>().unwrap().clone();
            self.read += 1;
            self.traces.lock().unwrap().entry(cx.id().0).or_default().push((
                cx.now().to_bits(),
                self.read,
                env.sender().0,
                note.val,
            ));
            if note.hops >= 7 {
                continue;
            }
            let r = mix(self.seed ^ note.val.wrapping_mul(31) ^ self.read);
            let next = Note { val: r % 1000, hops: note.hops + 1 };
            let peer = self.peers[(r >> 10) as usize % self.peers.len()];
            match (r >> 20) % 6 {
                0 | 1 => cx.send(Envelope::new(next).to(peer)),
                2 => {
                    let delay = [0.25, 0.5, 1.0][(r >> 30) as usize % 3];
                    cx.set_alarm(Alarm::after(delay, Envelope::new(next).to(peer))).unwrap();
                }
                3 => cx.send(Envelope::new(next).topic_is(TOPICS[(r >> 30) as usize % 2])),
                4 => {
                    cx.send(Envelope::new(next.clone()).to(peer));
                    cx.send(Envelope::new(Note { val: next.val + 1, ..next }).to(cx.id()));
                }
                _ => cx.set_keep_awake(self.read % 4 == 1),
            }
        }
    }
}

/// A program: agents' seeds and first partitions, the kicks, and the moves
/// between slices (agent index, partition).
#[derive(Clone, Debug)]
struct Program {
    seeds: Vec<(u64, usize)>,
    kicks: Vec<(usize, u64)>,
    moves: Vec<Vec<(usize, usize)>>,
    partitions: usize,
}

fn program() -> impl Strategy<Value = Program> {
    (2usize..=3, 3usize..=9).prop_flat_map(|(partitions, n)| {
        (
            prop::collection::vec((any::<u64>(), 0..partitions), n),
            prop::collection::vec((0..n, any::<u64>()), 1..4),
            prop::collection::vec(prop::collection::vec((0..n, 0..partitions), 0..4), 3),
            Just(partitions),
        )
            .prop_map(|(seeds, kicks, moves, partitions)| Program {
                seeds,
                kicks,
                moves,
                partitions,
            })
    })
}

/// Every agent's trace, by id.
type Seen = BTreeMap<u64, Vec<(u64, u64, u64, u64)>>;

/// Runs `p` in slices of one simulated second (moves between them if
/// `moving`); every agent's trace and its `read`.
fn run(p: &Program, moving: bool) -> (Seen, Vec<u64>) {
    let traces: Traces = Arc::default();
    let mut rt = Runtime::new(p.partitions).unwrap();
    let ids: Vec<AgentId> = (1..=p.seeds.len() as u64).map(AgentId).collect();
    for (i, &(seed, at)) in p.seeds.iter().enumerate() {
        let agent = Scripted { seed, peers: ids.clone(), traces: traces.clone(), read: 0 };
        rt.add_with_id(at, ids[i], agent).unwrap();
    }
    for &(i, val) in &p.kicks {
        rt.send(Envelope::new(Note { val: val % 1000, hops: 0 }).to(ids[i]));
    }
    let slice = RunOptions::new().seconds(1.0).clear_alarms_at_end(false);
    for moves in &p.moves {
        rt.run_with(slice).unwrap();
        if moving {
            let placement: AgentPlacement = moves.iter().map(|&(i, q)| (ids[i], q)).collect();
            rt.apply_placement(&placement).unwrap();
            for &(i, q) in moves.iter().rev().take(1) {
                assert_eq!(rt.partition_of(ids[i]), Some(q));
            }
        }
    }
    rt.run_with(RunOptions::new().seconds(20.0)).unwrap();
    let read = ids.iter().map(|&id| rt.with_agent(id, |a: &Scripted| a.read).unwrap()).collect();
    let traces = std::mem::take(&mut *traces.lock().unwrap());
    (traces, read)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases("PLACEMENT_CASES", 48)))]

    #[test]
    fn moving_agents_keeps_the_trace(p in program()) {
        let still = run(&p, false);
        let moved = run(&p, true);
        prop_assert!(!still.0.is_empty());
        prop_assert_eq!(still, moved);
    }
}

#[test]
fn a_moved_agent_keeps_its_inbox_alarms_and_subscriptions() {
    let traces: Traces = Arc::default();
    let mut rt = Runtime::new(2).unwrap();
    let ids = [AgentId(1), AgentId(2)];
    // Seed 3: subscribes to "b".
    for (i, id) in ids.iter().enumerate() {
        let agent = Scripted {
            seed: 3 * (i as u64 + 1),
            peers: ids.to_vec(),
            traces: traces.clone(),
            read: 0,
        };
        rt.add_with_id(0, *id, agent).unwrap();
    }
    rt.set_alarm(Alarm::at(2.0, Envelope::new(Note { val: 7, hops: 9 }).to(ids[0]))).unwrap();
    // Due at the run's end: delivered, left unread in the inbox.
    rt.set_alarm(Alarm::at(1.0, Envelope::new(Note { val: 6, hops: 9 }).to(ids[0]))).unwrap();
    rt.send(Envelope::new(Note { val: 8, hops: 9 }).topic_is("b"));
    rt.run_with(RunOptions::new().seconds(1.0).clear_alarms_at_end(false)).unwrap();
    assert_eq!(rt.with_partition(0, move |s| s.inbox_len(AgentId(1))).unwrap(), Ok(1));
    rt.send(Envelope::new(Note { val: 9, hops: 9 }).to(ids[0]));
    rt.place(ids[0], 1).unwrap();
    assert_eq!(rt.partition_of(ids[0]), Some(1));
    rt.send(Envelope::new(Note { val: 10, hops: 9 }).topic_is("b"));
    rt.run().unwrap();
    let t = traces.lock().unwrap();
    let vals: Vec<u64> = t[&1].iter().map(|e| e.3).collect();
    assert_eq!(vals, [8, 6, 9, 10, 7], "subscribed, inbox, outside, subscribed, alarm");
    assert_eq!(rt.with_agent(ids[0], |a: &Scripted| a.read).unwrap(), 5);
}

#[test]
fn bad_placements_are_typed_errors_and_move_nothing() {
    let mut rt = Runtime::new(2).unwrap();
    let a = rt
        .add_with_id(
            0,
            AgentId(1),
            Scripted { seed: 1, peers: vec![AgentId(1)], traces: Arc::default(), read: 0 },
        )
        .unwrap();
    let b = rt
        .spawn_with_id(0, AgentId(2), |cx| async move {
            cx.recv().await;
        })
        .unwrap();
    let c = rt
        .add_made(1, Some(AgentId(3)), || Scripted {
            seed: 1,
            peers: vec![AgentId(1)],
            traces: Arc::default(),
            read: 0,
        })
        .unwrap();
    let d = rt.add_with_id(1, AgentId(4), Napper).unwrap();
    rt.send(Envelope::new(Note { val: 0, hops: 9 }).to(d));
    // It is asleep inside its update when the run stops.
    rt.run_with(RunOptions::new().seconds(1.0)).unwrap();

    let unknown: AgentPlacement = [(a, 1), (AgentId(99), 1)].into_iter().collect();
    let e = rt.apply_placement(&unknown).unwrap_err();
    assert_eq!(e, Error::UnknownAgent(AgentId(99)));
    assert_eq!(e.to_string(), "no agent with id 99");

    let nowhere: AgentPlacement = [(a, 1), (c, 5)].into_iter().collect();
    let e = rt.apply_placement(&nowhere).unwrap_err();
    assert_eq!(e, Error::NoPartition { partition: 5, partitions: 2 });
    assert_eq!(e.to_string(), "no partition 5 (the runtime has 2)");

    let stuck: AgentPlacement = [(a, 1), (b, 1), (c, 0), (d, 0)].into_iter().collect();
    let e = rt.apply_placement(&stuck).unwrap_err();
    assert_eq!(
        e,
        Error::CannotMove(vec![
            (b, Immovable::AsyncFn),
            (c, Immovable::NotSend),
            (d, Immovable::Suspended)
        ])
    );
    assert_eq!(
        e.to_string(),
        "cannot move agent 2 (an async fn agent (its state is inside its future)), \
         agent 3 (added without a Send bound (add_made, cx.add)), \
         agent 4 (suspended inside its setup or update); nothing was moved"
    );
    // The same, asked beforehand; and an advice can leave them out.
    assert_eq!(rt.immovable(&stuck).unwrap(), e_agents(&e));
    let mut movable = stuck.clone();
    let names = e_agents(&e);
    movable.retain(|id, _| names.iter().all(|n| n.0 != id));
    assert_eq!(movable.iter().collect::<Vec<_>>(), [(a, 1)]);
    // Nothing moved: `a` is where it was, and still works there.
    assert_eq!(rt.partition_of(a), Some(0));
    assert_eq!(rt.partition_of(c), Some(1));
    assert!(rt.with_partition(0, move |s| s.contains(a)).unwrap());

    let t = Traffic::from_counts(2, [(a, 1, 0)], []);
    let e = t.suggest_placement(0).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid configuration: placement advice needs k >= 1 partitions, not 0"
    );
    let report = rt.run().unwrap();
    let e = report.suggest_placement(2).unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e}");
    // And a good one moves.
    rt.place(a, 1).unwrap();
    assert!(rt.with_partition(1, move |s| s.contains(a)).unwrap());
    assert!(!rt.with_partition(0, move |s| s.contains(a)).unwrap());
}

/// Sleeps inside its update.
struct Napper;

impl Agent for Napper {
    async fn update(&mut self, cx: &Cx) {
        while cx.try_recv().is_some() {}
        cx.sleep(10.0).await;
    }
}

/// `communities` groups of `size` agents, each talking to its group a lot
/// and to the next group a little; placed round-robin.
fn planted(communities: u64, size: u64) -> Traffic {
    let id = |c: u64, i: u64| AgentId(1 + c * size + i);
    let agents = (0..communities)
        .flat_map(|c| (0..size).map(move |i| (id(c, i), 10, ((c * size + i) % 2) as usize)));
    let mut pairs = Vec::new();
    for c in 0..communities {
        for i in 0..size {
            let r = mix(c * 1000 + i);
            for j in 0..3 {
                pairs.push((id(c, i), id(c, (i + 1 + j + r % 3) % size), 50));
            }
            if i == 0 {
                pairs.push((id(c, i), id((c + 1) % communities, 0), 1));
            }
        }
    }
    Traffic::from_counts(2, agents, pairs)
}

#[test]
fn advice_recovers_planted_communities() {
    for (communities, size, k) in [(8u64, 50u64, 2usize), (12, 40, 4), (6, 400, 3)] {
        let t = planted(communities, size);
        let advice = t.suggest_placement(k).unwrap();
        // Every community whole on one partition.
        for c in 0..communities {
            let parts: std::collections::BTreeSet<usize> = (0..size)
                .map(|i| advice.placement.get(AgentId(1 + c * size + i)).unwrap())
                .collect();
            assert_eq!(parts.len(), 1, "community {c} split: {parts:?} ({advice})");
        }
        assert!(advice.balanced(), "{advice}");
        assert!(advice.crossing <= communities, "{advice}");
        assert!(advice.crossing_cut() > 0.95, "{advice}");
        assert_eq!(advice.placement.len(), (communities * size) as usize);
        // Deterministic.
        assert_eq!(t.suggest_placement(k).unwrap(), advice);
    }
}

#[test]
fn a_measured_run_reports_traffic_and_advice() {
    let traces: Traces = Arc::default();
    let mut rt = Runtime::new(2).unwrap();
    rt.measure_traffic(true).unwrap();
    let ids: Vec<AgentId> = (1..=8).map(AgentId).collect();
    for (i, &id) in ids.iter().enumerate() {
        // Pairs (1,2), (3,4)... talk to each other; placed across.
        let peer = ids[i ^ 1];
        let agent = Scripted {
            seed: 1 + i as u64 * 3 + 1,
            peers: vec![peer],
            traces: traces.clone(),
            read: 0,
        };
        rt.add_with_id(i % 2, id, agent).unwrap();
    }
    for &id in &ids {
        rt.send(Envelope::new(Note { val: 1, hops: 0 }).to(id));
    }
    let report = rt.run().unwrap();
    let measured = report.measured.as_ref().unwrap();
    assert!(measured.is_exact());
    assert_eq!(measured.agents().len(), 8);
    assert!(measured.agents().iter().all(|a| a.1 > 0));
    // Every message to a recipient is in a pair's count (the dead letters
    // here are broadcasts nobody heard).
    let counted: u64 = measured.pairs().iter().map(|p| p.messages).sum();
    assert!(counted > 0);
    assert_eq!(counted + report.dead_letters(), report.sent());
    let advice = report.suggest_placement(2).unwrap();
    assert!(advice.current_crossing > 0);
    assert!(advice.crossing < advice.current_crossing, "{advice}");
    let text = report.to_string();
    assert!(text.contains("placement advice: moving these"), "{text}");
    rt.apply_placement(&advice.placement).unwrap();
    rt.measure_traffic(false).unwrap();
    let again = rt.run().unwrap();
    assert!(again.measured.is_none());
}

/// Passes tokens around a ring through alarms a second ahead (the
/// lookahead's promise), noting what it reads.
struct Relay {
    next: AgentId,
    traces: Traces,
    read: u64,
}

impl Agent for Relay {
    async fn update(&mut self, cx: &Cx) {
        while let Some(env) = cx.try_recv() {
            let note = env.payload::<Note>().unwrap().clone();
            self.read += 1;
            self.traces.lock().unwrap().entry(cx.id().0).or_default().push((
                cx.now().to_bits(),
                self.read,
                env.sender().0,
                note.val,
            ));
            let next = Note { val: mix(note.val) % 1000, hops: 0 };
            cx.set_alarm(Alarm::after(1.0, Envelope::new(next).to(self.next))).unwrap();
        }
    }
}

#[test]
fn moving_agents_in_lookahead_windows_and_free_mode_keeps_the_trace() {
    let run = |moving: bool| {
        let traces: Traces = Arc::default();
        let mut rt = Runtime::builder().partitions(3).lookahead(0.5).build().unwrap();
        let ids: Vec<AgentId> = (1..=6).map(AgentId).collect();
        for (i, &id) in ids.iter().enumerate() {
            let relay = Relay { next: ids[(i + 1) % 6], traces: traces.clone(), read: 0 };
            rt.add_with_id(i % 3, id, relay).unwrap();
        }
        rt.send(Envelope::new(Note { val: 1, hops: 0 }).to(ids[0]));
        rt.send(Envelope::new(Note { val: 2, hops: 0 }).to(ids[3]));
        let slice = RunOptions::new().seconds(2.5).clear_alarms_at_end(false);
        for round in 0..4 {
            rt.run_with(slice).unwrap();
            if moving {
                // Every agent somewhere else, each time.
                let placement: AgentPlacement =
                    ids.iter().enumerate().map(|(i, &id)| (id, (i + round + 1) % 3)).collect();
                assert_eq!(rt.apply_placement(&placement).unwrap(), 6);
            }
        }
        let traces = std::mem::take(&mut *traces.lock().unwrap());
        traces
    };
    let still = run(false);
    assert_eq!(still.values().map(Vec::len).sum::<usize>(), 20);
    assert_eq!(run(true), still);

    // Free mode (the real-time clock): a moved agent still gets its mail.
    let traces: Traces = Arc::default();
    let mut rt = Runtime::builder().partitions(2).real_time().build().unwrap();
    let (a, b) = (AgentId(1), AgentId(2));
    rt.add_with_id(0, a, Relay { next: b, traces: traces.clone(), read: 0 }).unwrap();
    rt.add_with_id(1, b, Scripted { seed: 1, peers: vec![a], traces: traces.clone(), read: 0 })
        .unwrap();
    rt.run_with(RunOptions::new().seconds(0.01)).unwrap();
    rt.place(a, 1).unwrap();
    rt.send(Envelope::new(Note { val: 5, hops: 9 }).to(a));
    rt.run_with(RunOptions::new().seconds(0.05)).unwrap();
    assert_eq!(rt.with_agent(a, |r: &Relay| r.read).unwrap(), 1);
    assert_eq!(rt.partition_of(a), Some(1));
}

/// The agents a `CannotMove` names.
fn e_agents(e: &Error) -> Vec<(AgentId, Immovable)> {
    match e {
        Error::CannotMove(agents) => agents.clone(),
        other => panic!("not CannotMove: {other}"),
    }
}
