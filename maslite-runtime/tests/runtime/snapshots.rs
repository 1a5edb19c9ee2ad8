//! Snapshots across partition counts: a simulation saved on some number of
//! partitions (or on a bare `Scheduler`), restored on another under a
//! random placement, and run on, tells the uninterrupted bare kernel's
//! story — every agent's log, the agents made at run time, the clock.
//!
//! The cells here keep their logs in their own state (it is saved with
//! them), add children at run time (derived ids, ordering keys given after
//! the restore), subscribe by topic and by receiver, and set alarms that
//! tie in time.

use maslite_core::{
    Agent, AgentId, Alarm, Cx, Envelope, Error, Image, RunOptions, Scheduler, Subscription, Types,
    Unsaved,
};
use maslite_runtime::system::System;
use maslite_runtime::Runtime;
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Pulse {
    val: u64,
}

/// A cell: logs what it reads, and answers as its seeded draws say.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Cell {
    peers: Vec<AgentId>,
    rng: u64,
    log: Vec<(u64, u64, u64)>,
    /// Subscribes to "news" in its setup (which a restore does not rerun).
    listens: bool,
    /// Made at run time (such cells make no children of their own).
    child: bool,
}

impl Cell {
    fn draw(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn peer(&mut self) -> AgentId {
        let i = self.draw() % self.peers.len() as u64;
        self.peers[i as usize]
    }
}

impl Agent for Cell {
    async fn setup(&mut self, cx: &Cx) {
        if self.listens {
            cx.subscribe(Subscription::new().topic("news")).unwrap();
        }
    }

    async fn update(&mut self, cx: &Cx) {
        while let Some(env) = cx.try_recv() {
            let val = env.payload::<Pulse>().map_or(0, |p| p.val);
            self.log.push((cx.now().to_bits(), env.sender().0, val));
            if self.log.len() > 120 {
                continue;
            }
            let n = 1 + self.draw().is_multiple_of(4) as u32;
            for _ in 0..n {
                match self.draw() % 8 {
                    0..=2 => {
                        let to = self.peer();
                        cx.send(Envelope::new(Pulse { val: val + 1 }).to(to));
                    }
                    3 => cx.send(Envelope::new(Pulse { val: val + 2 }).topic_is("news")),
                    4 | 5 => {
                        // Delays in halves: equal times tie exactly.
                        let delay = (self.draw() % 3) as f64 * 0.5;
                        let to = self.peer();
                        let env = Envelope::new(Pulse { val: val + 3 }).to(to);
                        cx.set_alarm(Alarm::after(delay, env)).unwrap();
                    }
                    6 if !self.child && self.peers.len() < 12 => {
                        let child = Cell {
                            peers: vec![cx.id()],
                            rng: self.draw(),
                            log: Vec::new(),
                            listens: self.draw().is_multiple_of(2),
                            child: true,
                        };
                        let child = cx.add(child).unwrap();
                        self.peers.push(child);
                        cx.send(Envelope::new(Pulse { val }).to(child));
                    }
                    _ => {}
                }
            }
        }
    }
}

fn types() -> Types {
    let mut types = Types::new();
    types.register::<Pulse>().unwrap().register_agent::<Cell>().unwrap();
    types
}

/// A colony of `n` cells, placed by `place`, with mail and alarms waiting.
fn colony<S: System>(s: &mut S, n: u64, seed: u64, place: impl Fn(usize) -> usize) {
    let ids: Vec<AgentId> = (1..=n).map(AgentId).collect();
    for (i, &id) in ids.iter().enumerate() {
        let cell = Cell {
            peers: ids.clone(),
            rng: seed ^ (i as u64).wrapping_mul(0x2545_F491_4F6C_DD1D),
            log: Vec::new(),
            listens: i % 3 == 0,
            child: false,
        };
        s.add_with_id_on(place(i), id, cell).unwrap();
    }
    s.subscribe(ids[n as usize - 1], Subscription::new().receiver(ids[0])).unwrap();
    for &id in &ids {
        s.send(Envelope::new(Pulse { val: id.0 * 10 }).to(id));
    }
    s.set_alarm(Alarm::at(1.5, Envelope::new(Pulse { val: 99 }).topic_is("news"))).unwrap();
}

/// Runs that stop mid-way keep their alarms (maslite clears them by default).
fn go() -> RunOptions {
    RunOptions::new().clear_alarms_at_end(false)
}

fn stop(kind: u8, amount: u64) -> RunOptions {
    match kind % 3 {
        0 => go().seconds(amount as f64 * 0.25),
        1 => go().iterations(amount),
        _ => go().seconds(0.0).iterations(amount + 1),
    }
}

/// What every agent read, by id, with the clock.
type Story = (u64, Vec<(AgentId, Vec<(u64, u64, u64)>)>);

fn story<S: System>(s: &mut S, image: &Image) -> Story {
    let logs = image
        .agents()
        .map(|id| (id, s.with_agent(id, |c: &Cell| c.log.clone()).unwrap()))
        .collect();
    (image.now().to_bits(), logs)
}

/// Where a system is between two stops.
enum Sys {
    Bare(Scheduler),
    Parts(Runtime),
}

impl Sys {
    fn run(&mut self, opts: RunOptions) {
        match self {
            Sys::Bare(s) => drop(s.run_with(opts).unwrap()),
            Sys::Parts(rt) => drop(rt.run_with(opts).unwrap()),
        }
    }

    fn image(&mut self, types: &Types) -> Image {
        match self {
            Sys::Bare(s) => s.image(types).unwrap(),
            Sys::Parts(rt) => rt.image(types).unwrap(),
        }
    }

    fn story(&mut self, types: &Types) -> Story {
        let image = self.image(types);
        match self {
            Sys::Bare(s) => story(s, &image),
            Sys::Parts(rt) => story(rt, &image),
        }
    }

    /// Saved as bytes and restored on `partitions` (0: a bare kernel),
    /// each agent placed by `seed`.
    fn resumed(mut self, types: &Types, partitions: usize, seed: u64) -> Sys {
        let mut bytes = Vec::new();
        match &mut self {
            Sys::Bare(s) => s.snapshot(types, &mut bytes).unwrap(),
            Sys::Parts(rt) => rt.snapshot(types, &mut bytes).unwrap(),
        }
        drop(self);
        if partitions == 0 {
            return Sys::Bare(Scheduler::restore(types, &bytes[..]).unwrap());
        }
        let place = |id: AgentId| (id.0.wrapping_mul(seed | 1) >> 7) as usize % partitions;
        let builder = Runtime::builder().partitions(partitions);
        Sys::Parts(Runtime::restore(builder, types, &bytes[..], place).unwrap())
    }
}

fn bare(n: u64, seed: u64) -> Sys {
    let mut s = Scheduler::simulated();
    colony(&mut s, n, seed, |_| 0);
    Sys::Bare(s)
}

fn parts(n: u64, seed: u64, partitions: usize) -> Sys {
    let mut rt = Runtime::new(partitions).unwrap();
    colony(&mut rt, n, seed, |i| (i * 7 + seed as usize) % partitions);
    Sys::Parts(rt)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("SNAPSHOT_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(24)
    ))]

    /// Saved at random stops on a random partition count (0: a bare
    /// kernel), restored each time on another under a random placement:
    /// the story is the uninterrupted bare kernel's.
    #[test]
    fn resumed_anywhere_the_story_is_one(
        n in 2u64..7,
        seed in any::<u64>(),
        first in 0usize..4,
        stops in proptest::collection::vec((any::<u8>(), 1u64..10, 0usize..5, any::<u64>()), 1..4),
    ) {
        let types = types();
        let mut whole = bare(n, seed);
        let mut cut = if first == 0 { bare(n, seed) } else { parts(n, seed, first) };
        for &(kind, amount, partitions, place) in &stops {
            whole.run(stop(kind, amount));
            cut.run(stop(kind, amount));
            cut = cut.resumed(&types, partitions, place);
        }
        whole.run(go().seconds(8.0));
        cut.run(go().seconds(8.0));
        prop_assert_eq!(cut.story(&types), whole.story(&types));
    }
}

#[test]
fn a_colony_saved_on_two_partitions_resumes_on_one_and_on_four() {
    let types = types();
    let mut whole = bare(5, 42);
    whole.run(go().seconds(20.0));
    let expected = whole.story(&types);
    assert!(expected.1.len() > 5, "children were made");

    let mut two = parts(5, 42, 2);
    two.run(go().seconds(2.0));
    let image = std::sync::Arc::new(two.image(&types));
    for partitions in [1, 4] {
        let builder = Runtime::builder().partitions(partitions);
        let rt =
            Runtime::from_image(builder, &types, image.clone(), |id| id.0 as usize % partitions);
        let mut resumed = Sys::Parts(rt.unwrap());
        resumed.run(go().seconds(18.0));
        assert_eq!(resumed.story(&types), expected, "on {partitions} partitions");
    }
    let mut bare = Sys::Bare(Scheduler::from_image(&types, &image).unwrap());
    bare.run(go().seconds(18.0));
    assert_eq!(bare.story(&types), expected);
}

#[test]
fn restored_agents_move_like_any_others() {
    let types = types();
    let mut whole = bare(5, 7);
    whole.run(go().seconds(12.0));
    let expected = whole.story(&types);

    let mut first = parts(5, 7, 2);
    first.run(go().seconds(3.0));
    let image = first.image(&types);
    let rt = Runtime::from_image(Runtime::builder().partitions(3), &types, image, |_| 0);
    let mut rt = rt.unwrap();
    // Restored on partition 0, then spread: they move with their state.
    for id in 1..=5u64 {
        rt.place(AgentId(id), id as usize % 3).unwrap();
    }
    assert_eq!(rt.partition_of(AgentId(4)), Some(1));
    let mut resumed = Sys::Parts(rt);
    resumed.run(go().seconds(9.0));
    assert_eq!(resumed.story(&types), expected);
}

#[test]
fn a_runtime_names_what_it_cannot_save_on_every_partition() {
    let mut rt = Runtime::new(2).unwrap();
    let a = rt.add_with_id(0, AgentId(1), Cell { peers: vec![AgentId(1)], ..Cell::default() });
    let a = a.unwrap();
    let p = rt
        .spawn(1, |cx| async move {
            cx.recv().await;
        })
        .unwrap();
    rt.run().unwrap();
    let err = rt.snapshot(&types(), &mut Vec::new()).unwrap_err();
    let Error::CannotSave(all) = &err else { panic!("{err}") };
    assert_eq!(all.len(), 1, "{err}");
    assert_eq!((all[0].agent, all[0].why), (p, Unsaved::AsyncFn));
    // With the cell's type unregistered, both are named.
    let err = rt.snapshot(&Types::new(), &mut Vec::new()).unwrap_err();
    let Error::CannotSave(all) = &err else { panic!("{err}") };
    let mut named: Vec<_> = all.iter().map(|u| (u.agent, u.why)).collect();
    named.sort_by_key(|n| n.0);
    assert_eq!(named, [(a, Unsaved::AgentNotRegistered), (p, Unsaved::AsyncFn)]);
}

#[test]
fn bad_placements_and_real_time_are_refused() {
    let types = types();
    let mut s = bare(3, 1);
    let image = s.image(&types);
    let builder = Runtime::builder().partitions(2);
    let err = Runtime::from_image(builder, &types, image.clone(), |_| 2).err().unwrap();
    assert_eq!(err, Error::NoPartition { partition: 2, partitions: 2 });
    let builder = Runtime::builder().partitions(2).real_time();
    let err = Runtime::from_image(builder, &types, image, |_| 0).err().unwrap();
    assert!(err.to_string().contains("simulated"), "{err}");
    let mut rt = Runtime::builder().partitions(2).real_time().build().unwrap();
    let err = rt.image(&types).unwrap_err();
    let Error::CannotSave(all) = &err else { panic!("{err}") };
    assert_eq!(all.len(), 1, "said once: {err}");
    assert_eq!(all[0].why, Unsaved::RealTime);
}

// ----- the seam's random programs, saved and resumed ----------------------------

mod programs_saved {
    //! The scripted agents of `programs` (the ones `same_trace` and
    //! `one_order` draw) with a sink that survives a snapshot: a key into
    //! a table of this process's traces, so that the restored agents write
    //! on where the saved ones stopped. Their scripts leave out what cannot
    //! be saved (a sleep inside an update, async-fn children).

    use crate::programs::{
        cases, plain_outside, topic, Action, Actor, Cast, Journal, Moment, Msg, Outside, Posted,
    };
    use maslite_core::{AgentId, Cx, Envelope, RunOptions, Subscription, Types};
    use maslite_runtime::Runtime;
    use proptest::prelude::*;
    use serde::{Deserialize, Serialize};
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Mutex, OnceLock};

    /// One line of an agent's trace: (time's bits, what).
    type Line = (u64, String);
    type Traces = BTreeMap<AgentId, Vec<Line>>;

    /// Every run's traces, by the run's key.
    fn table() -> &'static Mutex<BTreeMap<u64, Traces>> {
        static TABLE: OnceLock<Mutex<BTreeMap<u64, Traces>>> = OnceLock::new();
        TABLE.get_or_init(Mutex::default)
    }

    /// A sink that is a key: saved with the agents, it still names the run.
    #[derive(Clone, Copy, Debug, Serialize, Deserialize)]
    struct Keyed(u64);

    impl Keyed {
        fn new() -> Keyed {
            static NEXT: AtomicU64 = AtomicU64::new(1);
            Keyed(NEXT.fetch_add(1, Ordering::Relaxed))
        }

        fn log(&self, id: AgentId, line: Line) {
            let mut table = table().lock().unwrap();
            table.entry(self.0).or_default().entry(id).or_default().push(line);
        }

        fn take(&self) -> Traces {
            table().lock().unwrap().remove(&self.0).unwrap_or_default()
        }
    }

    impl Journal for Keyed {
        fn got(&self, cx: &Cx, env: &Envelope) -> Msg {
            let m = Msg::of(env);
            let what = format!("got {} from {} on {}: {:?}", m.val, env.sender(), env.topic(), m);
            self.log(cx.id(), (cx.now().to_bits(), what));
            m
        }

        fn note(&self, cx: &Cx, what: Moment) {
            self.log(cx.id(), (cx.now().to_bits(), format!("{what:?}")));
        }
    }

    /// The seam's actions that can be saved between runs: all but a sleep
    /// inside an update and async-fn or placed children.
    fn action() -> impl Strategy<Value = Action> {
        let small = 0u8..16;
        prop_oneof![
            4 => (small.clone(), any::<bool>()).prop_map(|(to, direct)| Action::Send { to, direct }),
            2 => (small.clone(), 0u8..3).prop_map(|(to, topic)| Action::SendTopic { to, topic }),
            2 => (0u8..3).prop_map(|topic| Action::Broadcast { topic }),
            4 => (prop::option::weighted(0.8, small.clone()), 0u8..4, 0u8..3)
                .prop_map(|(to, delay, topic)| Action::Alarm { to, delay, topic }),
            1 => (small.clone(), 0u8..12).prop_map(|(to, at)| Action::AlarmAt { to, at }),
            2 => (0u8..3).prop_map(Action::SubTopic),
            1 => (0u8..3).prop_map(Action::UnsubTopic),
            1 => small.clone().prop_map(Action::SubSender),
            1 => small.clone().prop_map(Action::SubReceiver),
            1 => small.prop_map(Action::UnsubPeer),
            1 => Just(Action::UnsubEach),
            1 => Just(Action::UnsubAll),
            1 => (0u8..16).prop_map(Action::RemovePeer),
            2 => Just(Action::AddChild),
            1 => Just(Action::RemoveChild),
            1 => Just(Action::RemoveSelf),
        ]
    }

    #[derive(Clone, Debug)]
    struct Program {
        cast: Cast<Action>,
        subs: Vec<(u8, u8)>,
        outside: Vec<Outside>,
        allocated: bool,
        /// Where it stops: (kind, amount), and where it resumes:
        /// (partitions, placement seed).
        stops: Vec<((u8, u8), (usize, u64))>,
        first: usize,
    }

    fn program() -> impl Strategy<Value = Program> {
        (3usize..=8).prop_flat_map(|k| {
            (
                Cast::of(k, action()),
                prop::collection::vec((0u8..8, 0u8..3), 0..4),
                prop::collection::vec(plain_outside(), 2..8),
                any::<bool>(),
                prop::collection::vec(((0u8..3, 1u8..8), (1usize..=4, any::<u64>())), 1..4),
                1usize..=3,
            )
                .prop_map(|(cast, subs, outside, allocated, stops, first)| Program {
                    cast,
                    subs,
                    outside,
                    allocated,
                    stops,
                    first,
                })
        })
    }

    fn types() -> Types {
        let mut types = Types::new();
        types.register::<Msg>().unwrap().register_agent::<Actor<Keyed>>().unwrap();
        types
    }

    fn stop((kind, amount): (u8, u8)) -> RunOptions {
        let keep = RunOptions::new().clear_alarms_at_end(false);
        match kind {
            0 => keep.seconds(amount as f64 * 0.25),
            1 => keep.iterations(amount as u64),
            _ => keep.seconds(0.0).iterations(amount as u64 + 1),
        }
    }

    fn build(prog: &Program, partitions: usize, sink: Keyed) -> Runtime {
        let k = prog.cast.len();
        let ids = prog.cast.ids();
        let mut rt = Runtime::new(partitions).unwrap();
        for (i, &id) in ids.iter().enumerate() {
            let actor =
                Actor::new(prog.cast.mind(i, ids.clone()), Vec::new(), prog.allocated, sink);
            rt.add_with_id(i % partitions, id, actor.on_partitions(partitions)).unwrap();
        }
        for &(a, t) in &prog.subs {
            rt.subscribe(ids[a as usize % k], Subscription::new().topic(topic(t))).unwrap();
        }
        for o in &prog.outside {
            match o.posted(&ids) {
                Posted::Mail(env) => rt.send(env),
                Posted::Alarm(alarm) => rt.set_alarm(alarm).unwrap(),
            }
        }
        rt
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: cases("SNAPSHOT_CASES", 24),
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// The seam's programs stopped at random, saved, resumed on 1-4
        /// partitions under random placements, and run to the end: every
        /// agent's trace is the one of the same stops never saved.
        #[test]
        fn the_seams_programs_resumed_anywhere_tell_the_same_story(prog in program()) {
            let types = types();
            let (whole_sink, cut_sink) = (Keyed::new(), Keyed::new());
            let mut whole = build(&prog, 1, whole_sink);
            let mut cut = build(&prog, prog.first, cut_sink);
            for &(at, (partitions, seed)) in &prog.stops {
                whole.run_with(stop(at)).unwrap();
                cut.run_with(stop(at)).unwrap();
                let image = cut.image(&types).unwrap();
                drop(cut);
                let builder = Runtime::builder().partitions(partitions);
                let place = |id: AgentId| (id.0.wrapping_mul(seed | 1) >> 3) as usize % partitions;
                cut = Runtime::from_image(builder, &types, image, place).unwrap();
                prop_assert_eq!(cut.now(), whole.now());
            }
            let a = whole.run().unwrap();
            let b = cut.run().unwrap();
            prop_assert_eq!(a.end_time, b.end_time);
            prop_assert_eq!(cut_sink.take(), whole_sink.take());
        }
    }
}
