//! Property: on the simulated clock, the runtime gives the same trace
//! whatever the number of partitions and wherever the agents are placed.
//!
//! Random agent programs (scripts of sends, broadcasts, alarms with tied
//! times, subscriptions, agents added and removed at run time, sleeps) run
//! on 1, 2, 3 and 4 partitions under two placements; every agent's record
//! of what it received (time, receiver, sender, topic, payload) must be the
//! same in every run, and every run's counts must add up.
//!
//! A second property does the same for lookahead windows (agents on
//! different partitions talk only through alarms at least `L` ahead) and
//! runs each program on a bare `Scheduler` too; a test checks that breaking
//! that promise stops the run with `LookaheadBroken`.
//!
//! The last section holds small deterministic tests, one per runtime bug
//! found while writing the properties (by them, or by reading the code they
//! exercise), kept as regression tests. `SAME_TRACE_CASES=2000` runs the
//! properties longer.

use maslite_core::{Agent, AgentId, Alarm, Cx, Envelope, Scheduler, Subscription};
use maslite_runtime::{Error as RtError, RunReport, Runtime, StopReason};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

// ----- what agents exchange and record ---------------------------------------

#[derive(Clone, Debug, PartialEq)]
struct Msg {
    val: u64,
    hops: u8,
}

/// One line of an agent's trace.
#[derive(Clone, Debug, PartialEq)]
enum Event {
    /// Setup ran (for agents added before the run and at run time).
    Started { now: f64 },
    /// A message was taken from the inbox.
    Got { now: f64, me: AgentId, sender: AgentId, topic: String, val: u64, hops: u8 },
    /// A sleep inside an update ended.
    Woke { now: f64 },
    /// Teardown ran (the agent was removed).
    Torn { now: f64 },
    /// An async-fn agent's body returned.
    Ended { now: f64 },
    /// It asked to remove agent `id`; `ok`: `cx.remove` said yes.
    Removed { id: AgentId, ok: bool },
}

type Traces = BTreeMap<AgentId, Vec<Event>>;
/// Where all agents of one run, on all partitions, write their traces.
type Sink = Arc<Mutex<Traces>>;

fn log(sink: &Sink, id: AgentId, event: Event) {
    sink.lock().unwrap().entry(id).or_default().push(event);
}

fn got(sink: &Sink, cx: &Cx, env: &Envelope) -> Msg {
    let m = env.payload::<Msg>().expect("only Msg is ever sent").clone();
    log(
        sink,
        cx.id(),
        Event::Got {
            now: cx.now(),
            me: cx.id(),
            sender: env.sender(),
            topic: env.topic().to_string(),
            val: m.val,
            hops: m.hops,
        },
    );
    m
}

/// splitmix64: the scripts' only source of "randomness".
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Alarm and sleep delays: exact in binary, so equal times tie exactly.
const DELAYS: [f64; 4] = [0.0, 0.25, 0.5, 1.0];
const TOPICS: [&str; 3] = ["red", "green", "blue"];
/// An agent acts on a message only if it has made fewer hops than this.
const MAX_HOPS: u8 = 6;
/// An id nobody has: mail to it is a dead letter.
const NOBODY: AgentId = AgentId(99);

fn delay(d: u8) -> f64 {
    DELAYS[d as usize % DELAYS.len()]
}

fn topic(t: u8) -> &'static str {
    TOPICS[t as usize % TOPICS.len()]
}

// ----- the lockstep program ----------------------------------------------------

/// One step of an agent's script.
#[derive(Clone, Debug)]
enum Action {
    /// To a known agent (maybe unknown or removed: a dead letter).
    Send {
        to: u8,
        direct: bool,
    },
    /// To a known agent, under a topic (its subscribers get copies).
    SendTopic {
        to: u8,
        topic: u8,
    },
    /// To whoever subscribes to the topic.
    Broadcast {
        topic: u8,
    },
    /// An alarm for a known agent (or, `to: None`, a broadcast on a topic).
    Alarm {
        to: Option<u8>,
        delay: u8,
        topic: u8,
    },
    SubTopic(u8),
    UnsubTopic(u8),
    SubSender(u8),
    SubReceiver(u8),
    UnsubPeer(u8),
    /// Drops each of its subscriptions, one by one.
    UnsubEach,
    /// Drops all its subscriptions at once.
    UnsubAll,
    /// Asks to remove an agent it knows (wherever it is; maybe gone).
    RemovePeer(u8),
    AddChild,
    SpawnChild {
        delay: u8,
    },
    RemoveChild,
    RemoveSelf,
    Sleep(u8),
}

fn action() -> impl Strategy<Value = Action> {
    let small = 0u8..16;
    prop_oneof![
        4 => (small.clone(), any::<bool>()).prop_map(|(to, direct)| Action::Send { to, direct }),
        2 => (small.clone(), 0u8..3).prop_map(|(to, topic)| Action::SendTopic { to, topic }),
        2 => (0u8..3).prop_map(|topic| Action::Broadcast { topic }),
        4 => (prop::option::weighted(0.8, small.clone()), 0u8..4, 0u8..3)
            .prop_map(|(to, delay, topic)| Action::Alarm { to, delay, topic }),
        2 => (0u8..3).prop_map(Action::SubTopic),
        1 => (0u8..3).prop_map(Action::UnsubTopic),
        1 => small.clone().prop_map(Action::SubSender),
        1 => small.clone().prop_map(Action::SubReceiver),
        1 => small.prop_map(Action::UnsubPeer),
        1 => Just(Action::UnsubEach),
        1 => Just(Action::UnsubAll),
        1 => (0u8..16).prop_map(Action::RemovePeer),
        1 => Just(Action::AddChild),
        1 => (0u8..4).prop_map(|delay| Action::SpawnChild { delay }),
        1 => Just(Action::RemoveChild),
        1 => Just(Action::RemoveSelf),
        1 => (0u8..4).prop_map(Action::Sleep),
    ]
}

/// A trait agent that runs its script, driven by what it receives.
struct Actor {
    script: Vec<Action>,
    seed: u64,
    /// Messages it still acts on.
    budget: u32,
    /// Agents it may address (the initial ones, [`NOBODY`], and those it
    /// heard from or made).
    known: Vec<AgentId>,
    /// The async-fn children it started: the only ones it removes (they
    /// never subscribe; a trait child might have subscribed in the same
    /// step, see `an_agent_that_subscribes_and_leaves_in_one_step_leaves_no_subscription`).
    spawned: Vec<AgentId>,
    made: u32,
    generation: u8,
    parent: Option<AgentId>,
    sink: Sink,
}

impl Actor {
    /// The agent `known[i]` (indices wrap).
    fn peer(&self, i: u8) -> AgentId {
        self.known[i as usize % self.known.len()]
    }

    fn may_have_children(&self) -> bool {
        self.generation < 2 && self.made < 2
    }

    /// Does `action`; false if the agent removed itself (stop acting).
    async fn act(&mut self, cx: &Cx, action: &Action, r: u64, hops: u8) -> bool {
        let msg = Msg { val: r >> 44, hops };
        match *action {
            Action::Send { to, direct } => {
                let env = Envelope::new(msg).to(self.peer(to));
                cx.send(if direct { env.direct().unwrap() } else { env });
            }
            Action::SendTopic { to, topic: t } => {
                cx.send(Envelope::new(msg).to(self.peer(to)).topic_is(topic(t)));
            }
            Action::Broadcast { topic: t } => cx.send(Envelope::new(msg).topic_is(topic(t))),
            Action::Alarm { to, delay: d, topic: t } => {
                let env = Envelope::new(msg).topic_is(topic(t));
                let env = match to {
                    Some(to) => env.to(self.peer(to)),
                    None => env,
                };
                cx.set_alarm(Alarm::after(delay(d), env)).unwrap();
            }
            Action::SubTopic(t) => {
                cx.subscribe(Subscription::new().topic(topic(t))).unwrap();
            }
            Action::UnsubTopic(t) => cx.unsubscribe(&Subscription::new().topic(topic(t))).unwrap(),
            Action::SubSender(i) => {
                cx.subscribe(Subscription::new().sender(self.peer(i))).unwrap();
            }
            Action::SubReceiver(i) => {
                cx.subscribe(Subscription::new().receiver(self.peer(i))).unwrap();
            }
            Action::UnsubPeer(i) => {
                let p = self.peer(i);
                cx.unsubscribe(&Subscription::new().sender(p)).unwrap();
                cx.unsubscribe(&Subscription::new().receiver(p)).unwrap();
            }
            Action::UnsubEach => {
                for pattern in cx.subscriptions() {
                    cx.unsubscribe(&pattern).unwrap();
                }
            }
            Action::UnsubAll => cx.unsubscribe_all(),
            Action::RemovePeer(i) => {
                let p = self.peer(i);
                if p != cx.id() {
                    cx.remove(p).unwrap();
                }
            }
            Action::AddChild if self.may_have_children() => {
                self.made += 1;
                let mut script = self.script.clone();
                script.rotate_left(1);
                let mut known = self.known.clone();
                known.push(cx.id());
                let child = Actor {
                    script,
                    seed: mix(r),
                    budget: 4,
                    known,
                    spawned: Vec::new(),
                    made: 0,
                    generation: self.generation + 1,
                    parent: Some(cx.id()),
                    sink: self.sink.clone(),
                };
                let id = cx.add(child).unwrap();
                self.known.push(id);
            }
            Action::SpawnChild { delay: d } if self.may_have_children() => {
                self.made += 1;
                let (sink, parent) = (self.sink.clone(), cx.id());
                let id = cx
                    .spawn(move |cx| async move {
                        log(&sink, cx.id(), Event::Started { now: cx.now() });
                        cx.send(Envelope::new(Msg { val: 7, hops }).to(parent));
                        for _ in 0..2 {
                            let env = cx.recv().await;
                            let m = got(&sink, &cx, &env);
                            cx.sleep(delay(d)).await;
                            if m.hops < MAX_HOPS {
                                let reply = Msg { val: m.val * 3 + 1, hops: m.hops + 1 };
                                cx.send(Envelope::new(reply).to(env.sender()));
                            }
                        }
                        log(&sink, cx.id(), Event::Ended { now: cx.now() });
                    })
                    .unwrap();
                self.spawned.push(id);
                self.known.push(id);
            }
            Action::AddChild | Action::SpawnChild { .. } => {}
            Action::RemoveChild => {
                if let Some(c) = self.spawned.pop() {
                    // A child is always on its creator's partition; one that
                    // has ended already is unknown, the same everywhere.
                    let _ = cx.remove(c);
                }
            }
            Action::RemoveSelf => {
                cx.remove(cx.id()).unwrap();
                return false;
            }
            Action::Sleep(d) => {
                cx.sleep(delay(d)).await;
                log(&self.sink, cx.id(), Event::Woke { now: cx.now() });
            }
        }
        true
    }
}

impl Agent for Actor {
    async fn setup(&mut self, cx: &Cx) {
        log(&self.sink, cx.id(), Event::Started { now: cx.now() });
        if let Some(parent) = self.parent {
            cx.send(Envelope::new(Msg { val: self.seed >> 50, hops: 1 }).to(parent));
        }
    }

    async fn update(&mut self, cx: &Cx) {
        while let Some(env) = cx.receive() {
            let m = got(&self.sink, cx, &env);
            let s = env.sender();
            if s != AgentId::OUTSIDE && !self.known.contains(&s) && self.known.len() < 16 {
                self.known.push(s);
            }
            if m.hops >= MAX_HOPS || self.budget == 0 {
                continue;
            }
            self.budget -= 1;
            self.seed = mix(self.seed ^ m.val.rotate_left(17) ^ m.hops as u64);
            let n = 1 + self.seed % 3;
            for k in 0..n {
                let r = mix(self.seed.wrapping_add(k));
                let action = self.script[(r % self.script.len() as u64) as usize].clone();
                if !self.act(cx, &action, r, m.hops + 1).await {
                    return;
                }
            }
        }
    }

    async fn teardown(&mut self, cx: &Cx) {
        log(&self.sink, cx.id(), Event::Torn { now: cx.now() });
    }
}

/// Something the test sends from outside before the run.
#[derive(Clone, Debug)]
enum Outside {
    Send { to: u8, val: u64, topic: Option<u8> },
    Broadcast { topic: u8, val: u64 },
    Alarm { to: u8, delay: u8, val: u64 },
}

fn outside() -> impl Strategy<Value = Outside> {
    prop_oneof![
        3 => (0u8..8, 0u64..1000, prop::option::of(0u8..3))
            .prop_map(|(to, val, topic)| Outside::Send { to, val, topic }),
        1 => (0u8..3, 0u64..1000).prop_map(|(topic, val)| Outside::Broadcast { topic, val }),
        2 => (0u8..8, 0u8..4, 0u64..1000).prop_map(|(to, delay, val)| Outside::Alarm { to, delay, val }),
    ]
}

#[derive(Clone, Debug)]
struct Program {
    scripts: Vec<Vec<Action>>,
    seeds: Vec<u64>,
    budgets: Vec<u32>,
    /// Subscriptions made from outside before the run: (agent, topic).
    subs: Vec<(u8, u8)>,
    outside: Vec<Outside>,
    place_seed: u64,
}

fn program() -> impl Strategy<Value = Program> {
    (3usize..=8).prop_flat_map(|k| {
        (
            prop::collection::vec(prop::collection::vec(action(), 1..6), k),
            prop::collection::vec(any::<u64>(), k),
            prop::collection::vec(3u32..12, k),
            prop::collection::vec((0u8..8, 0u8..3), 0..4),
            prop::collection::vec(outside(), 2..8),
            any::<u64>(),
        )
            .prop_map(|(scripts, seeds, budgets, subs, outside, place_seed)| Program {
                scripts,
                seeds,
                budgets,
                subs,
                outside,
                place_seed,
            })
    })
}

/// How agents (or groups of agents) are spread over partitions.
#[derive(Clone, Copy, Debug)]
enum Placement {
    RoundRobin,
    Seeded(u64),
}

impl Placement {
    fn of(self, i: usize, partitions: usize) -> usize {
        match self {
            Placement::RoundRobin => i % partitions,
            Placement::Seeded(seed) => (mix(seed ^ i as u64) % partitions as u64) as usize,
        }
    }
}

/// What one run gave: the traces and the report's totals.
#[derive(Debug, PartialEq)]
struct Outcome {
    traces: Traces,
    /// (seed, budget, known) of the initial agents still there at the end.
    states: Vec<Option<(u64, u32, Vec<AgentId>)>>,
    sent: u64,
    delivered: u64,
    dead: u64,
    end_time: f64,
}

/// Checks what holds for every run, and keeps what must match across runs.
fn outcome(
    report: &RunReport,
    traces: Traces,
    states: Vec<Option<(u64, u32, Vec<AgentId>)>>,
) -> Outcome {
    assert_eq!(report.reason, StopReason::Idle, "{report}");
    assert_eq!(
        report.sent(),
        report.delivered() + report.dead_letters() + report.pending(),
        "the counts add up: {report}"
    );
    assert_eq!(report.pending(), 0, "an idle run leaves nothing pending: {report}");
    Outcome {
        traces,
        states,
        sent: report.sent(),
        delivered: report.delivered(),
        dead: report.dead_letters(),
        end_time: report.end_time,
    }
}

fn run_program(prog: &Program, partitions: usize, placement: Placement) -> Outcome {
    let sink: Sink = Arc::default();
    let k = prog.scripts.len();
    let ids: Vec<AgentId> = (1..=k as u64).map(AgentId).collect();
    let mut known = ids.clone();
    known.push(NOBODY);
    let mut rt = Runtime::new(partitions).unwrap();
    // Added in id order whatever the placement: the runtime numbers agents'
    // ordering keys in the order they are added.
    for (i, &id) in ids.iter().enumerate() {
        let actor = Actor {
            script: prog.scripts[i].clone(),
            seed: prog.seeds[i],
            budget: prog.budgets[i],
            known: known.clone(),
            spawned: Vec::new(),
            made: 0,
            generation: 0,
            parent: None,
            sink: sink.clone(),
        };
        rt.add_with_id(placement.of(i, partitions), id, actor).unwrap();
    }
    for &(a, t) in &prog.subs {
        rt.subscribe(ids[a as usize % k], Subscription::new().topic(topic(t))).unwrap();
    }
    for o in &prog.outside {
        match *o {
            Outside::Send { to, val, topic: t } => {
                let env = Envelope::new(Msg { val, hops: 0 }).to(ids[to as usize % k]);
                rt.send(match t {
                    Some(t) => env.topic_is(topic(t)),
                    None => env,
                })
                .unwrap();
            }
            Outside::Broadcast { topic: t, val } => {
                rt.send(Envelope::new(Msg { val, hops: 0 }).topic_is(topic(t))).unwrap();
            }
            Outside::Alarm { to, delay: d, val } => {
                let env = Envelope::new(Msg { val, hops: 0 }).to(ids[to as usize % k]);
                rt.set_alarm(Alarm::after(delay(d), env)).unwrap();
            }
        }
    }
    let report = rt.run().unwrap();
    let states = ids
        .iter()
        .map(|&id| rt.with_agent::<Actor, _, _>(id, |a| (a.seed, a.budget, a.known.clone())).ok())
        .collect();
    drop(rt);
    let traces = std::mem::take(&mut *sink.lock().unwrap());
    outcome(&report, traces, states)
}

/// Cases per property: `n`, or `SAME_TRACE_CASES` from the environment for
/// a longer hunt.
fn cases(n: u32) -> u32 {
    std::env::var("SAME_TRACE_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(n)
}

/// The partition counts and placements every program runs under.
fn layouts(place_seed: u64) -> Vec<(usize, Placement)> {
    let mut all = vec![(1, Placement::RoundRobin)];
    for p in 2..=4 {
        all.push((p, Placement::RoundRobin));
        all.push((p, Placement::Seeded(place_seed)));
    }
    all
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(40),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn same_trace_on_any_number_of_partitions_and_any_placement(prog in program()) {
        let reference = run_program(&prog, 1, Placement::RoundRobin);
        for (p, placement) in layouts(prog.place_seed).into_iter().skip(1) {
            let other = run_program(&prog, p, placement);
            prop_assert_eq!(&other, &reference, "{} partitions, {:?}", p, placement);
        }
    }
}

// ----- lookahead windows ----------------------------------------------------------

/// Delays of alarms between agents that may be on different partitions: at
/// least the lookahead, one of them exactly.
const LOOKAHEAD: f64 = 0.5;
const FAR: [f64; 3] = [0.5, 1.0, 1.5];

/// One step of a grouped agent's script. Agents come in pairs (a group)
/// that always share a partition; children live on their creator's. Mail
/// goes only within a group (partner, children, parent, a group topic);
/// anyone else is reached by alarms at least [`LOOKAHEAD`] ahead.
#[derive(Clone, Debug)]
enum GAction {
    ToPartner {
        direct: bool,
    },
    ToChild,
    GroupCast,
    SubGroup,
    UnsubGroup,
    /// An alarm for itself or its partner, any delay.
    NearAlarm {
        partner: bool,
        delay: u8,
    },
    /// An alarm for any agent it knows, at least the lookahead ahead.
    FarAlarm {
        to: u8,
        delay: u8,
    },
    Sleep(u8),
    AddChild,
    /// A child removes itself (nobody sets it an alarm less than the
    /// lookahead ahead: see `an_alarm_for_nobody_does_not_break_the_lookahead`).
    Leave,
}

fn gaction() -> impl Strategy<Value = GAction> {
    prop_oneof![
        3 => any::<bool>().prop_map(|direct| GAction::ToPartner { direct }),
        1 => Just(GAction::ToChild),
        2 => Just(GAction::GroupCast),
        1 => Just(GAction::SubGroup),
        1 => Just(GAction::UnsubGroup),
        2 => (any::<bool>(), 0u8..4).prop_map(|(partner, delay)| GAction::NearAlarm { partner, delay }),
        4 => (0u8..16, 0u8..3).prop_map(|(to, delay)| GAction::FarAlarm { to, delay }),
        1 => (0u8..4).prop_map(GAction::Sleep),
        2 => Just(GAction::AddChild),
        2 => Just(GAction::Leave),
    ]
}

struct Grouped {
    script: Vec<GAction>,
    seed: u64,
    budget: u32,
    group: &'static str,
    /// Its pair (for a child: its creator); always on its partition.
    partner: AgentId,
    known: Vec<AgentId>,
    /// Its children, with the time each was added.
    children: Vec<(AgentId, f64)>,
    child: bool,
    sink: Sink,
}

const GROUP_TOPICS: [&str; 4] = ["g0", "g1", "g2", "g3"];

impl Grouped {
    /// Does `action`; false if the agent removed itself (stop acting).
    async fn act(&mut self, cx: &Cx, action: &GAction, r: u64, hops: u8) -> bool {
        let msg = Msg { val: r >> 44, hops };
        match *action {
            GAction::ToPartner { direct } => {
                let env = Envelope::new(msg).to(self.partner);
                cx.send(if direct { env.direct().unwrap() } else { env });
            }
            GAction::ToChild => {
                // Its latest child, maybe added in this very window.
                let to = self.children.last().map_or(self.partner, |&(id, _)| id);
                cx.send(Envelope::new(msg).to(to));
            }
            GAction::GroupCast => cx.send(Envelope::new(msg).topic_is(self.group)),
            GAction::SubGroup => cx.subscribe(Subscription::new().topic(self.group)).unwrap(),
            GAction::UnsubGroup => {
                cx.unsubscribe(&Subscription::new().topic(self.group)).unwrap();
            }
            GAction::NearAlarm { partner, delay: d } => {
                let to = if partner { self.partner } else { cx.id() };
                cx.set_alarm(Alarm::after(delay(d), Envelope::new(msg).to(to))).unwrap();
            }
            GAction::FarAlarm { to, delay: d } => {
                let to = self.known[to as usize % self.known.len()];
                let at = FAR[d as usize % FAR.len()];
                cx.set_alarm(Alarm::after(at, Envelope::new(msg).to(to))).unwrap();
            }
            GAction::Sleep(d) => {
                cx.sleep(delay(d)).await;
                log(&self.sink, cx.id(), Event::Woke { now: cx.now() });
            }
            GAction::AddChild if !self.child && self.children.len() < 2 => {
                let mut script = self.script.clone();
                script.rotate_left(1);
                let child = Grouped {
                    script,
                    seed: mix(r),
                    budget: 6,
                    group: self.group,
                    partner: cx.id(),
                    known: self.known.clone(),
                    children: Vec::new(),
                    child: true,
                    sink: self.sink.clone(),
                };
                let id = cx.add(child).unwrap();
                self.children.push((id, cx.now()));
            }
            GAction::AddChild => {}
            GAction::Leave if self.child => {
                cx.remove(cx.id()).unwrap();
                return false;
            }
            GAction::Leave => {}
        }
        true
    }
}

impl Agent for Grouped {
    async fn setup(&mut self, cx: &Cx) {
        log(&self.sink, cx.id(), Event::Started { now: cx.now() });
        if self.child {
            cx.send(Envelope::new(Msg { val: self.seed >> 50, hops: 1 }).to(self.partner));
            // And a kick for itself, the lookahead ahead or more (sooner, it
            // is lost: see `mail_to_an_agent_added_in_the_same_window_is_delivered`).
            let kick = Envelope::new(Msg { val: self.seed >> 52, hops: 1 }).to(cx.id());
            cx.set_alarm(Alarm::after(FAR[self.seed as usize % FAR.len()], kick)).unwrap();
        }
    }

    async fn update(&mut self, cx: &Cx) {
        while let Some(env) = cx.receive() {
            let m = got(&self.sink, cx, &env);
            let s = env.sender();
            if s != AgentId::OUTSIDE && !self.known.contains(&s) && self.known.len() < 16 {
                self.known.push(s);
            }
            if m.hops >= MAX_HOPS || self.budget == 0 {
                continue;
            }
            self.budget -= 1;
            self.seed = mix(self.seed ^ m.val.rotate_left(17) ^ m.hops as u64);
            let n = 1 + self.seed % 3;
            for k in 0..n {
                let r = mix(self.seed.wrapping_add(k));
                let action = self.script[(r % self.script.len() as u64) as usize].clone();
                if !self.act(cx, &action, r, m.hops + 1).await {
                    return;
                }
            }
        }
    }

    async fn teardown(&mut self, cx: &Cx) {
        log(&self.sink, cx.id(), Event::Torn { now: cx.now() });
    }
}

#[derive(Clone, Debug)]
struct GProgram {
    /// Two agents per group.
    scripts: Vec<Vec<GAction>>,
    seeds: Vec<u64>,
    budgets: Vec<u32>,
    /// Mail from outside at the start: (agent, value).
    kicks: Vec<(u8, u64)>,
    place_seed: u64,
}

fn gprogram() -> impl Strategy<Value = GProgram> {
    (2usize..=4).prop_flat_map(|groups| {
        let k = 2 * groups;
        (
            prop::collection::vec(prop::collection::vec(gaction(), 1..6), k),
            prop::collection::vec(any::<u64>(), k),
            prop::collection::vec(3u32..12, k),
            prop::collection::vec((0u8..8, 0u64..1000), 2..6),
            any::<u64>(),
        )
            .prop_map(|(scripts, seeds, budgets, kicks, place_seed)| GProgram {
                scripts,
                seeds,
                budgets,
                kicks,
                place_seed,
            })
    })
}

fn run_grouped(
    prog: &GProgram,
    partitions: usize,
    placement: Placement,
    lookahead: f64,
) -> Outcome {
    let sink: Sink = Arc::default();
    let k = prog.scripts.len();
    let ids: Vec<AgentId> = (1..=k as u64).map(AgentId).collect();
    let mut rt = Runtime::builder().partitions(partitions).lookahead(lookahead).build().unwrap();
    for i in 0..k {
        let group = i / 2;
        let agent = Grouped {
            script: prog.scripts[i].clone(),
            seed: prog.seeds[i],
            budget: prog.budgets[i],
            group: GROUP_TOPICS[group],
            partner: ids[i ^ 1],
            known: ids.clone(),
            children: Vec::new(),
            child: false,
            sink: sink.clone(),
        };
        rt.add_with_id(placement.of(group, partitions), ids[i], agent).unwrap();
    }
    for &(to, val) in &prog.kicks {
        rt.send(Envelope::new(Msg { val, hops: 0 }).to(ids[to as usize % k])).unwrap();
    }
    let report = match rt.run() {
        Ok(report) => report,
        Err(e) => panic!("{partitions} partitions, {placement:?}, lookahead {lookahead}: {e}"),
    };
    drop(rt);
    let traces = std::mem::take(&mut *sink.lock().unwrap());
    outcome(&report, traces, Vec::new())
}

/// The same program on a bare kernel: its traces and end time.
fn run_grouped_bare(prog: &GProgram) -> (Traces, f64) {
    let sink: Sink = Arc::default();
    let k = prog.scripts.len();
    let ids: Vec<AgentId> = (1..=k as u64).map(AgentId).collect();
    let mut s = Scheduler::simulated();
    for i in 0..k {
        let agent = Grouped {
            script: prog.scripts[i].clone(),
            seed: prog.seeds[i],
            budget: prog.budgets[i],
            group: GROUP_TOPICS[i / 2],
            partner: ids[i ^ 1],
            known: ids.clone(),
            children: Vec::new(),
            child: false,
            sink: sink.clone(),
        };
        s.add_with_id(ids[i], agent).unwrap();
    }
    for &(to, val) in &prog.kicks {
        s.send(Envelope::new(Msg { val, hops: 0 }).to(ids[to as usize % k]));
    }
    let report = s.run().unwrap();
    assert_eq!(report.reason, StopReason::Idle);
    drop(s);
    let traces = std::mem::take(&mut *sink.lock().unwrap());
    (traces, report.end_time)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(32),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn lookahead_windows_give_the_lockstep_trace(prog in gprogram()) {
        let reference = run_grouped(&prog, 1, Placement::RoundRobin, 0.0);
        // One kernel tells the same story.
        let (bare, end_time) = run_grouped_bare(&prog);
        prop_assert_eq!(&bare, &reference.traces, "a bare Scheduler");
        prop_assert_eq!(end_time, reference.end_time, "a bare Scheduler");
        for lookahead in [0.0, LOOKAHEAD] {
            for (p, placement) in layouts(prog.place_seed) {
                if p == 1 && lookahead == 0.0 {
                    continue;
                }
                let other = run_grouped(&prog, p, placement, lookahead);
                prop_assert_eq!(
                    &other, &reference,
                    "{} partitions, {:?}, lookahead {}", p, placement, lookahead
                );
            }
        }
    }
}

// ----- a broken promise ---------------------------------------------------------

/// Forwards whatever it gets to `to`, by mail or by an alarm `delay` ahead.
struct Forward {
    to: AgentId,
    alarm: Option<f64>,
}

impl Agent for Forward {
    async fn update(&mut self, cx: &Cx) {
        while let Some(env) = cx.receive() {
            let m = env.payload::<Msg>().unwrap().clone();
            if m.hops > 0 {
                continue;
            }
            let out = Envelope::new(Msg { val: m.val, hops: 1 }).to(self.to);
            match self.alarm {
                Some(d) => cx.set_alarm(Alarm::after(d, out)).unwrap(),
                None => cx.send(out),
            }
        }
    }
}

fn broken_run(alarm: Option<f64>) -> Result<RunReport, RtError> {
    let mut rt = Runtime::builder().partitions(2).lookahead(LOOKAHEAD).build().unwrap();
    rt.add_with_id(0, AgentId(1), Forward { to: AgentId(2), alarm }).unwrap();
    rt.add_with_id(1, AgentId(2), Forward { to: AgentId(1), alarm }).unwrap();
    // From outside, mail may cross at the start.
    rt.send(Envelope::new(Msg { val: 1, hops: 0 }).to(AgentId(1))).unwrap();
    rt.run()
}

#[test]
fn crossing_partitions_sooner_than_the_lookahead_is_an_error() {
    // Direct mail to another partition.
    match broken_run(None) {
        Err(RtError::LookaheadBroken { sender, receiver, from, to, lookahead, .. }) => {
            assert_eq!((sender, receiver, from, to), (AgentId(1), AgentId(2), 0, 1));
            assert_eq!(lookahead, LOOKAHEAD);
        }
        other => panic!("expected LookaheadBroken, got {other:?}"),
    }
    // An alarm for another partition, less than the lookahead ahead.
    match broken_run(Some(0.25)) {
        Err(RtError::LookaheadBroken { sender, receiver, from, to, delay, lookahead }) => {
            assert_eq!((sender, receiver, from, to), (AgentId(1), AgentId(2), 0, 1));
            assert_eq!((delay, lookahead), (0.25, LOOKAHEAD));
        }
        other => panic!("expected LookaheadBroken, got {other:?}"),
    }
    // The same program keeping the promise runs: both get their message.
    let report = broken_run(Some(LOOKAHEAD)).unwrap();
    assert_eq!(report.reason, StopReason::Idle);
    assert_eq!(report.end_time, LOOKAHEAD);
    assert_eq!(report.delivered(), 2);
    assert_eq!(report.sent(), report.delivered() + report.dead_letters() + report.pending());
}

// ----- runtime bugs found by the properties, minimised (regression tests) -------

fn take_traces(sink: &Sink) -> Traces {
    std::mem::take(&mut *sink.lock().unwrap())
}

/// B subscribes to "blue"; on a kick it unsubscribes from everything and
/// asks A to broadcast on "blue". Nobody listens any more: on one kernel
/// the broadcast is a dead letter. Returns the traces and the dead letters.
fn unsubscribe_all_run(partitions: usize) -> (Traces, u64) {
    let sink: Sink = Arc::default();
    let (a, b) = (AgentId(1), AgentId(2));
    let mut rt = Runtime::new(partitions).unwrap();
    let s = sink.clone();
    rt.spawn_with_id(0, a, move |cx| async move {
        let env = cx.recv().await;
        got(&s, &cx, &env);
        cx.send(Envelope::new(Msg { val: 2, hops: 2 }).topic_is("blue"));
    })
    .unwrap();
    let s = sink.clone();
    rt.spawn_with_id(partitions - 1, b, move |cx| async move {
        cx.subscribe(Subscription::new().topic("blue")).unwrap();
        loop {
            let env = cx.recv().await;
            if got(&s, &cx, &env).hops == 0 {
                cx.unsubscribe_all();
                cx.send(Envelope::new(Msg { val: 1, hops: 1 }).to(a));
            }
        }
    })
    .unwrap();
    rt.send(Envelope::new(Msg { val: 0, hops: 0 }).to(b)).unwrap();
    let report = rt.run().unwrap();
    assert_eq!(report.sent(), report.delivered() + report.dead_letters() + report.pending());
    (take_traces(&sink), report.dead_letters())
}

/// Was: `cx.unsubscribe_all()` is not journaled for the other partitions
/// (`Shared::unsubscribe_all` in maslite-core/src/context.rs records no
/// `Change::Unsubscribed`), so they keep routing mail to the agent.
#[test]
fn unsubscribe_all_reaches_the_other_partitions() {
    let (one, dead) = unsubscribe_all_run(1);
    assert_eq!(one[&AgentId(2)].len(), 1, "B gets only its kick: {one:?}");
    assert_eq!(dead, 1, "the broadcast nobody hears is a dead letter");
    let (two, dead_two) = unsubscribe_all_run(2);
    assert_eq!(two, one, "2 partitions vs 1");
    assert_eq!(dead_two, dead);
}

/// Agent 1, kicked at t = 0, adds a child and mails it at once.
fn child_mail_run(partitions: usize, lookahead: f64) -> (Traces, u64) {
    let sink: Sink = Arc::default();
    let mut rt = Runtime::builder().partitions(partitions).lookahead(lookahead).build().unwrap();
    let s = sink.clone();
    rt.spawn_with_id(0, AgentId(1), move |cx| async move {
        let env = cx.recv().await;
        got(&s, &cx, &env);
        let s2 = s.clone();
        let child = cx
            .spawn(move |cx| async move {
                let env = cx.recv().await;
                got(&s2, &cx, &env);
            })
            .unwrap();
        cx.send(Envelope::new(Msg { val: 1, hops: 1 }).to(child));
    })
    .unwrap();
    rt.send(Envelope::new(Msg { val: 0, hops: 0 }).to(AgentId(1))).unwrap();
    let report = rt.run().unwrap();
    assert_eq!(report.sent(), report.delivered() + report.dead_letters() + report.pending());
    (take_traces(&sink), report.dead_letters())
}

/// Was: with lookahead windows, mail to an agent added earlier in the same
/// window is a dead letter. `settle_window` (maslite-runtime/src/lockstep.rs)
/// routes with `Router::route` against the partition's directory, which
/// learns of agents added here only from the `Added` changes applied at the
/// window's end (`Partition::apply_changes`); `dir.get(child)` is `None`, so
/// the router counts the mail dead instead of delivering it locally.
#[test]
fn mail_to_an_agent_added_in_the_same_window_is_delivered() {
    let (lockstep, dead) = child_mail_run(1, 0.0);
    assert_eq!(lockstep.len(), 2, "the child got its mail: {lockstep:?}");
    assert_eq!(dead, 0);
    for partitions in [1, 2] {
        let (windows, dead_windows) = child_mail_run(partitions, LOOKAHEAD);
        assert_eq!(windows, lockstep, "{partitions} partitions, lookahead {LOOKAHEAD}");
        assert_eq!(dead_windows, dead);
    }
}

/// Agent 1, kicked at t = 0, sets an alarm 0.25 ahead for `to`.
fn alarm_for_run(lookahead: f64, to: AgentId) -> Result<RunReport, RtError> {
    let mut rt = Runtime::builder().partitions(1).lookahead(lookahead).build().unwrap();
    rt.spawn_with_id(0, AgentId(1), move |cx| async move {
        cx.recv().await;
        cx.set_alarm(Alarm::after(0.25, Envelope::new(Msg { val: 1, hops: 1 }).to(to))).unwrap();
    })
    .unwrap();
    rt.send(Envelope::new(Msg { val: 0, hops: 0 }).to(AgentId(1))).unwrap();
    rt.run()
}

/// Was: with lookahead windows, an alarm for an agent that is not there
/// (never was, or has left) is taken for one crossing partitions:
/// `Shared::set_alarm` (maslite-core/src/context.rs) exports every alarm
/// whose receiver is not registered locally, and `Partition::take_exported`
/// (maslite-runtime/src/lockstep.rs) calls any exported alarm due before the
/// window's end a broken promise — here on a runtime of one partition,
/// "from partition 0 to partition 0". Without lookahead it is a dead letter.
#[test]
fn an_alarm_for_nobody_does_not_break_the_lookahead() {
    let lockstep = alarm_for_run(0.0, NOBODY).unwrap();
    assert_eq!(lockstep.dead_letters(), 1);
    let windows = alarm_for_run(LOOKAHEAD, NOBODY);
    assert!(windows.is_ok(), "lookahead {LOOKAHEAD}: {windows:?}");
    assert_eq!(windows.unwrap().dead_letters(), 1);
}

/// A, kicked at t = 0, sets an alarm 1 s ahead for B and tells C; C clears
/// the alarms for B. On one kernel B never hears of it.
fn clear_alarms_run(partitions: usize) -> Traces {
    let sink: Sink = Arc::default();
    let (a, b, c) = (AgentId(1), AgentId(2), AgentId(3));
    let mut rt = Runtime::new(partitions).unwrap();
    rt.spawn_with_id(0, a, move |cx| async move {
        cx.recv().await;
        cx.set_alarm(Alarm::after(1.0, Envelope::new(Msg { val: 1, hops: 1 }).to(b))).unwrap();
        cx.send(Envelope::new(Msg { val: 2, hops: 1 }).to(c));
    })
    .unwrap();
    let s = sink.clone();
    rt.spawn_with_id(0, b, move |cx| async move {
        let env = cx.recv().await;
        got(&s, &cx, &env);
    })
    .unwrap();
    rt.spawn_with_id(partitions - 1, c, move |cx| async move {
        cx.recv().await;
        cx.clear_alarms(Some(b), None);
    })
    .unwrap();
    rt.send(Envelope::new(Msg { val: 0, hops: 0 }).to(a)).unwrap();
    let report = rt.run().unwrap();
    assert_eq!(report.sent(), report.delivered() + report.dead_letters() + report.pending());
    take_traces(&sink)
}

/// Was: in lockstep an alarm is queued on the partition of the agent that
/// set it (`Shared::set_alarm`, maslite-core/src/context.rs), and
/// `Cx::clear_alarms` clears only the local queue, so an agent clears (and
/// `Cx::list_alarms` lists) only the alarms set on its own partition.
#[test]
fn clearing_alarms_reaches_those_set_on_other_partitions() {
    let one = clear_alarms_run(1);
    assert!(one.is_empty(), "the alarm was cleared: {one:?}");
    assert_eq!(clear_alarms_run(2), one, "2 partitions vs 1");
}

/// A, kicked at t = 0, removes B and then mails it. On one kernel B is gone
/// before the mail is delivered: a dead letter.
fn remove_other_run(partitions: usize) -> Traces {
    let sink: Sink = Arc::default();
    let (a, b) = (AgentId(1), AgentId(2));
    let mut rt = Runtime::new(partitions).unwrap();
    let s = sink.clone();
    rt.spawn_with_id(0, a, move |cx| async move {
        cx.recv().await;
        let ok = cx.remove(b).is_ok();
        log(&s, cx.id(), Event::Removed { id: b, ok });
        cx.send(Envelope::new(Msg { val: 1, hops: 1 }).to(b));
    })
    .unwrap();
    let s = sink.clone();
    rt.spawn_with_id(partitions - 1, b, move |cx| async move {
        let env = cx.recv().await;
        got(&s, &cx, &env);
    })
    .unwrap();
    rt.send(Envelope::new(Msg { val: 0, hops: 0 }).to(a)).unwrap();
    let report = rt.run().unwrap();
    assert_eq!(report.sent(), report.delivered() + report.dead_letters() + report.pending());
    take_traces(&sink)
}

/// Was: `Cx::remove` (maslite-core/src/context.rs) checks `Cx::exists`,
/// which sees only the agents of the caller's partition, so removing an
/// agent on another partition is `Err(UnknownAgent)` and the agent stays.
#[test]
fn removing_an_agent_on_another_partition_works() {
    let one = remove_other_run(1);
    assert_eq!(one.len(), 1, "B was removed before its mail came: {one:?}");
    assert_eq!(remove_other_run(2), one, "2 partitions vs 1");
}

/// B, kicked at t = 0, subscribes to A's mail and leaves in the same
/// update; then A (told by B) sends. Returns the report and what each
/// partition's mailing list holds for B afterwards.
fn subscribe_and_leave_run(partitions: usize) -> (RunReport, Vec<Vec<AgentId>>) {
    let (a, b) = (AgentId(1), AgentId(2));
    let mut rt = Runtime::new(partitions).unwrap();
    rt.spawn_with_id(0, a, move |cx| async move {
        cx.recv().await;
        cx.send(Envelope::new(Msg { val: 1, hops: 1 }).to(cx.id()));
        cx.recv().await;
    })
    .unwrap();
    rt.spawn_with_id(partitions - 1, b, move |cx| async move {
        cx.recv().await;
        cx.subscribe(Subscription::new().sender(a)).unwrap();
        cx.send(Envelope::new(Msg { val: 0, hops: 1 }).to(a));
        // The body returns: B leaves in this step.
    })
    .unwrap();
    rt.send(Envelope::new(Msg { val: 0, hops: 0 }).to(b)).unwrap();
    let report = rt.run().unwrap();
    assert_eq!(report.sent(), report.delivered() + report.dead_letters() + report.pending());
    let lists = (0..partitions)
        .map(|q| {
            rt.with_partition(q, move |s| s.subscribers(&Subscription::new().sender(a))).unwrap()
        })
        .collect();
    (report, lists)
}

/// Was: `Partition::apply_step_changes` (maslite-runtime/src/partition.rs)
/// applies every partition's `Removed` changes of a step before the others,
/// so a `[Subscribed(b), Removed(b)]` journal from one step is replayed as
/// `Removed(b)` then `Subscribed(b)`: every other partition keeps the
/// departed agent's subscription for good and routes copies to it (dead
/// letters that one partition does not have; an agent later added with that
/// id would inherit the subscription there only).
#[test]
fn an_agent_that_subscribes_and_leaves_in_one_step_leaves_no_subscription() {
    let (one, lists) = subscribe_and_leave_run(1);
    assert_eq!(lists, [Vec::<AgentId>::new()]);
    assert_eq!(one.dead_letters(), 0);
    let (two, lists) = subscribe_and_leave_run(2);
    assert_eq!(lists, [Vec::<AgentId>::new(), Vec::new()], "B's subscription outlives it");
    assert_eq!((two.sent(), two.dead_letters()), (one.sent(), one.dead_letters()));
}

/// Agent 1, kicked at t = 0, adds a child and removes it in the same update.
fn add_and_remove_run(partitions: usize) -> (Option<usize>, AgentId) {
    let mut rt = Runtime::new(partitions).unwrap();
    let child: Arc<Mutex<Option<AgentId>>> = Arc::default();
    let slot = child.clone();
    rt.spawn_with_id(partitions - 1, AgentId(1), move |cx| async move {
        cx.recv().await;
        let c = cx
            .spawn(|cx| async move {
                cx.recv().await;
            })
            .unwrap();
        cx.remove(c).unwrap();
        *slot.lock().unwrap() = Some(c);
    })
    .unwrap();
    rt.send(Envelope::new(Msg { val: 0, hops: 0 }).to(AgentId(1))).unwrap();
    rt.run().unwrap();
    let c = child.lock().unwrap().expect("the child was made");
    (rt.partition_of(c), c)
}

/// Agent 1 adds agent 500 and removes it in the same update, then tells
/// agent 2 (on the last partition), which adds an agent 500 of its own.
fn re_add_run(partitions: usize) -> Result<StopReason, RtError> {
    let mut rt = Runtime::new(partitions).unwrap();
    rt.spawn_with_id(0, AgentId(1), move |cx| async move {
        cx.recv().await;
        let c = cx.add_with_id(AgentId(500), Forward { to: NOBODY, alarm: None }).unwrap();
        cx.remove(c).unwrap();
        cx.send(Envelope::new(Msg { val: 0, hops: 0 }).to(AgentId(2)));
    })
    .unwrap();
    rt.spawn_with_id(partitions - 1, AgentId(2), move |cx| async move {
        cx.recv().await;
        cx.add_with_id(AgentId(500), Forward { to: NOBODY, alarm: None }).unwrap();
    })
    .unwrap();
    rt.send(Envelope::new(Msg { val: 0, hops: 0 }).to(AgentId(1))).unwrap();
    rt.run().map(|report| report.reason)
}

/// Was: the same reordering in `Partition::apply_step_changes` replays
/// `[Added(c), Removed(c)]` as `Removed(c)` then `Added(c)`, so every
/// partition's directory (and the handle's, through `joined`) keeps an
/// agent that has left: adding an agent with that id later on another
/// partition fails the run with `DuplicateAgent` (one partition runs), and
/// `Runtime::partition_of` still names a partition for it.
#[test]
fn an_agent_added_and_removed_in_one_step_is_gone_from_the_directory() {
    assert_eq!(re_add_run(1), Ok(StopReason::Idle));
    assert_eq!(re_add_run(2), Ok(StopReason::Idle), "2 partitions");
    for partitions in [1, 2] {
        let (at, c) = add_and_remove_run(partitions);
        assert_eq!(at, None, "{partitions} partitions: {c} has left");
    }
}
