//! Property: the direct delivery path (a send goes straight into the
//! receiver's inbox) and the outbox path (delivery after the round) give
//! exactly the same run. Any subscription forces every message through the
//! outbox, so each random program runs twice — once bare, once with a
//! subscription that matches nothing — and the traces must be equal.

use maslite_core::{
    Agent, AgentId, Alarm, Cx, Envelope, RunOptions, Scheduler, Stats, Subscription,
};
use proptest::prelude::*;
use std::cell::RefCell;
use std::rc::Rc;

#[derive(Clone, Debug, PartialEq)]
struct Token {
    hops: u32,
    tag: u64,
}

/// What each agent got, in order: (time in ms, receiver, sender, tag, hops).
type Events = Vec<(u64, AgentId, AgentId, u64, u32)>;
type Trace = Rc<RefCell<Events>>;

/// A tiny deterministic generator (the program's script, not the kernel's).
fn next(seed: &mut u64) -> u64 {
    *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    *seed >> 33
}

/// An agent whose reactions are drawn from its seed: forward to random
/// agents (some unknown), set alarms, subscribe and unsubscribe, add a
/// child, remove someone, all driven by the messages it gets.
struct Actor {
    seed: u64,
    peers: Vec<AgentId>,
    trace: Trace,
    children: u32,
}

impl Agent for Actor {
    async fn update(&mut self, cx: &Cx) {
        while let Some(env) = cx.try_recv() {
            let token = env.payload::<Token>().unwrap().clone();
            self.trace.borrow_mut().push((
                (cx.now() * 1000.0) as u64,
                cx.id(),
                env.sender(),
                token.tag,
                token.hops,
            ));
            if token.hops == 0 {
                continue;
            }
            let fanout = 1 + next(&mut self.seed) % 2;
            for _ in 0..fanout {
                let r = next(&mut self.seed);
                let to = if r.is_multiple_of(11) {
                    AgentId(9_999) // unknown: a dead letter
                } else {
                    self.peers[(r as usize) % self.peers.len()]
                };
                let t = Token { hops: token.hops - 1, tag: next(&mut self.seed) };
                match r % 7 {
                    0 => {
                        let delay = (r % 3) as f64;
                        cx.set_alarm(Alarm::after(delay, Envelope::new(t).to(to))).unwrap();
                    }
                    _ => cx.send(Envelope::new(t).to(to)),
                }
            }
            match next(&mut self.seed) % 13 {
                0 => {
                    let _ = cx.subscribe(Subscription::new().sender(self.peers[0]));
                }
                1 => cx.unsubscribe_all(),
                2 if self.children < 2 => {
                    self.children += 1;
                    let child = Actor {
                        seed: next(&mut self.seed),
                        peers: self.peers.clone(),
                        trace: self.trace.clone(),
                        children: 2,
                    };
                    let _ = cx.add(child);
                }
                3 => {
                    let victim = self.peers[(next(&mut self.seed) as usize) % self.peers.len()];
                    if victim != cx.id() && cx.exists(victim) {
                        let _ = cx.remove(victim);
                    }
                }
                _ => {}
            }
        }
    }
}

fn run(seeds: &[u64], kicks: &[(usize, u32)], force_outbox: bool) -> (Events, Stats) {
    let trace: Trace = Rc::default();
    let mut s = Scheduler::simulated();
    let ids: Vec<AgentId> = (1..=seeds.len() as u64).map(AgentId).collect();
    for (i, &seed) in seeds.iter().enumerate() {
        let actor = Actor { seed, peers: ids.clone(), trace: trace.clone(), children: 0 };
        s.add_with_id(ids[i], actor).unwrap();
    }
    if force_outbox {
        // Matches nothing; its only effect is to route all mail via the outbox.
        s.subscribe(ids[0], Subscription::new().sender(AgentId(77_777))).unwrap();
    }
    for &(i, hops) in kicks {
        s.send(Envelope::new(Token { hops, tag: i as u64 }).to(ids[i % ids.len()]));
    }
    s.run_with(RunOptions::new().iterations(10_000)).unwrap();
    let t = trace.borrow().clone();
    (t, s.stats())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn direct_and_outbox_delivery_give_the_same_run(
        seeds in prop::collection::vec(any::<u64>(), 2..6),
        kicks in prop::collection::vec((0usize..6, 1u32..6), 1..5),
    ) {
        let (direct, d_stats) = run(&seeds, &kicks, false);
        let (outbox, o_stats) = run(&seeds, &kicks, true);
        prop_assert_eq!(&direct, &outbox);
        prop_assert_eq!(d_stats.messages, o_stats.messages);
        prop_assert_eq!(d_stats.deliveries, o_stats.deliveries);
        prop_assert_eq!(d_stats.dead_letters, o_stats.dead_letters);
        prop_assert_eq!(d_stats.rounds, o_stats.rounds);
        // And a run is repeatable.
        prop_assert_eq!(run(&seeds, &kicks, false).0, direct);
    }
}

#[test]
fn the_random_programs_exercise_both_paths() {
    // A fixed program: mail flows for many rounds, some of it dead.
    let (trace, stats) = run(&[1, 2, 3, 4], &[(0, 5), (1, 5), (2, 4)], false);
    assert!(trace.len() > 20, "only {} deliveries", trace.len());
    assert!(stats.dead_letters > 0);
    assert!(stats.rounds > 5);
    let (again, _) = run(&[1, 2, 3, 4], &[(0, 5), (1, 5), (2, 4)], true);
    assert_eq!(trace, again);
}
