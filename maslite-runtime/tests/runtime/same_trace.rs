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
//!
//! The programs' pieces (the message, the scripted agents and their steps,
//! what the test does from outside, the placements) are in `programs.rs`,
//! shared with `one_order`; this file draws its own mix of them and keeps
//! its own trace (`Event`).

use crate::programs::{
    cases, delay, kick, layouts, plain_outside, topic, Action, Actor, Cast, Journal, Mind, Moment,
    Msg, Outside, Placement, Posted, Scripted,
};
use maslite_core::{Agent, AgentId, Alarm, Cx, Envelope, Error, Scheduler, Subscription};
use maslite_runtime::{Runtime, RuntimeReport, StopReason};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

// ----- what agents record ------------------------------------------------------

/// One line of an agent's trace.
#[derive(Clone, Debug, PartialEq)]
enum Event {
    /// Started, woke from a sleep, torn down, ended.
    Life { now: f64, what: Moment },
    /// A message was taken from the inbox.
    Got { now: f64, me: AgentId, sender: AgentId, topic: String, val: u64, hops: u8 },
    /// It asked to remove agent `id`; `ok`: `cx.remove` said yes.
    Removed { id: AgentId, ok: bool },
}

type Traces = BTreeMap<AgentId, Vec<Event>>;
/// Where all agents of one run, on all partitions, write their traces.
type Sink = Arc<Mutex<Traces>>;

fn log(sink: &Sink, id: AgentId, event: Event) {
    sink.lock().unwrap().entry(id).or_default().push(event);
}

impl Journal for Sink {
    fn got(&self, cx: &Cx, env: &Envelope) -> Msg {
        let m = Msg::of(env);
        let event = Event::Got {
            now: cx.now(),
            me: cx.id(),
            sender: env.sender(),
            topic: env.topic().to_string(),
            val: m.val,
            hops: m.hops,
        };
        log(self, cx.id(), event);
        m
    }

    fn note(&self, cx: &Cx, what: Moment) {
        log(self, cx.id(), Event::Life { now: cx.now(), what });
    }
}

/// An id nobody has: mail to it is a dead letter.
const NOBODY: AgentId = AgentId(99);

/// The environment variable that sets the properties' number of cases.
const CASES: &str = "SAME_TRACE_CASES";

// ----- the lockstep program ----------------------------------------------------

/// This property's mix of [`Action`]s (all but `AlarmAt`).
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

#[derive(Clone, Debug)]
struct Program {
    cast: Cast<Action>,
    /// Subscriptions made from outside before the run: (agent, topic).
    subs: Vec<(u8, u8)>,
    outside: Vec<Outside>,
    place_seed: u64,
}

fn program() -> impl Strategy<Value = Program> {
    (3usize..=8).prop_flat_map(|k| {
        (
            Cast::of(k, action()),
            prop::collection::vec((0u8..8, 0u8..3), 0..4),
            prop::collection::vec(plain_outside(), 2..8),
            any::<u64>(),
        )
            .prop_map(|(cast, subs, outside, place_seed)| Program {
                cast,
                subs,
                outside,
                place_seed,
            })
    })
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
    report: &RuntimeReport,
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
    let k = prog.cast.len();
    let ids = prog.cast.ids();
    let mut known = ids.clone();
    known.push(NOBODY);
    let mut rt = Runtime::new(partitions).unwrap();
    // Added in id order whatever the placement: the runtime numbers agents'
    // ordering keys in the order they are added.
    for (i, &id) in ids.iter().enumerate() {
        let actor = Actor::new(prog.cast.mind(i, known.clone()), Vec::new(), true, sink.clone());
        rt.add_with_id(placement.of(i, partitions), id, actor).unwrap();
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
    let report = rt.run().unwrap();
    let states = ids
        .iter()
        .map(|&id| {
            let state = |a: &Actor<Sink>| (a.mind.seed, a.mind.budget, a.mind.known.clone());
            rt.with_agent::<Actor<Sink>, _, _>(id, state).ok()
        })
        .collect();
    drop(rt);
    let traces = take_traces(&sink);
    outcome(&report, traces, states)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(CASES, 40),
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
    mind: Mind<GAction>,
    group: &'static str,
    /// Its pair (for a child: its creator); always on its partition.
    partner: AgentId,
    /// Its children, with the time each was added.
    children: Vec<(AgentId, f64)>,
    child: bool,
    sink: Sink,
}

const GROUP_TOPICS: [&str; 4] = ["g0", "g1", "g2", "g3"];

impl Scripted for Grouped {
    type Step = GAction;

    fn mind(&mut self) -> &mut Mind<GAction> {
        &mut self.mind
    }

    fn got(&self, cx: &Cx, env: &Envelope) -> Msg {
        self.sink.got(cx, env)
    }

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
                let to = self.mind.peer(to);
                let at = FAR[d as usize % FAR.len()];
                cx.set_alarm(Alarm::after(at, Envelope::new(msg).to(to))).unwrap();
            }
            GAction::Sleep(d) => {
                cx.sleep(delay(d)).await;
                self.sink.note(cx, Moment::Woke);
            }
            GAction::AddChild if !self.child && self.children.len() < 2 => {
                let child = Grouped {
                    mind: self.mind.child(r, 6),
                    group: self.group,
                    partner: cx.id(),
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
        self.sink.note(cx, Moment::Started);
        if self.child {
            let seed = self.mind.seed;
            cx.send(Envelope::new(Msg { val: seed >> 50, hops: 1 }).to(self.partner));
            // And a kick for itself, the lookahead ahead or more (sooner, it
            // is lost: see `mail_to_an_agent_added_in_the_same_window_is_delivered`).
            let kick = Envelope::new(Msg { val: seed >> 52, hops: 1 }).to(cx.id());
            cx.set_alarm(Alarm::after(FAR[seed as usize % FAR.len()], kick)).unwrap();
        }
    }

    async fn update(&mut self, cx: &Cx) {
        self.read_mail(cx).await;
    }

    async fn teardown(&mut self, cx: &Cx) {
        self.sink.note(cx, Moment::Torn);
    }
}

#[derive(Clone, Debug)]
struct GProgram {
    /// Two agents per group.
    cast: Cast<GAction>,
    /// Mail from outside at the start: (agent, value).
    kicks: Vec<(u8, u64)>,
    place_seed: u64,
}

fn gprogram() -> impl Strategy<Value = GProgram> {
    (2usize..=4).prop_flat_map(|groups| {
        let k = 2 * groups;
        (Cast::of(k, gaction()), prop::collection::vec((0u8..8, 0u64..1000), 2..6), any::<u64>())
            .prop_map(|(cast, kicks, place_seed)| GProgram { cast, kicks, place_seed })
    })
}

impl GProgram {
    /// Its agent `i` (of `ids`, all the agents added from outside), in
    /// group `i / 2`.
    fn agent(&self, i: usize, ids: &[AgentId], sink: &Sink) -> Grouped {
        Grouped {
            mind: self.cast.mind(i, ids.to_vec()),
            group: GROUP_TOPICS[i / 2],
            partner: ids[i ^ 1],
            children: Vec::new(),
            child: false,
            sink: sink.clone(),
        }
    }
}

fn run_grouped(
    prog: &GProgram,
    partitions: usize,
    placement: Placement,
    lookahead: f64,
) -> Outcome {
    let sink: Sink = Arc::default();
    let k = prog.cast.len();
    let ids = prog.cast.ids();
    let mut rt = Runtime::builder().partitions(partitions).lookahead(lookahead).build().unwrap();
    for i in 0..k {
        let group = i / 2;
        let agent = prog.agent(i, &ids, &sink);
        rt.add_with_id(placement.of(group, partitions), ids[i], agent).unwrap();
    }
    for &(to, val) in &prog.kicks {
        rt.send(Envelope::new(Msg { val, hops: 0 }).to(ids[to as usize % k]));
    }
    let report = match rt.run() {
        Ok(report) => report,
        Err(e) => panic!("{partitions} partitions, {placement:?}, lookahead {lookahead}: {e}"),
    };
    drop(rt);
    let traces = take_traces(&sink);
    outcome(&report, traces, Vec::new())
}

/// The same program on a bare kernel: its traces and end time.
fn run_grouped_bare(prog: &GProgram) -> (Traces, f64) {
    let sink: Sink = Arc::default();
    let k = prog.cast.len();
    let ids = prog.cast.ids();
    let mut s = Scheduler::simulated();
    for i in 0..k {
        let agent = prog.agent(i, &ids, &sink);
        s.add_with_id(ids[i], agent).unwrap();
    }
    for &(to, val) in &prog.kicks {
        s.send(Envelope::new(Msg { val, hops: 0 }).to(ids[to as usize % k]));
    }
    let report = s.run().unwrap();
    assert_eq!(report.reason, StopReason::Idle);
    drop(s);
    let traces = take_traces(&sink);
    (traces, report.end_time)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(CASES, 32),
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
        while let Some(env) = cx.try_recv() {
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

fn broken_run(alarm: Option<f64>) -> Result<RuntimeReport, Error> {
    let mut rt = Runtime::builder().partitions(2).lookahead(LOOKAHEAD).build().unwrap();
    rt.add_with_id(0, AgentId(1), Forward { to: AgentId(2), alarm }).unwrap();
    rt.add_with_id(1, AgentId(2), Forward { to: AgentId(1), alarm }).unwrap();
    // From outside, mail may cross at the start.
    rt.send(Envelope::new(Msg { val: 1, hops: 0 }).to(AgentId(1)));
    rt.run()
}

#[test]
fn crossing_partitions_sooner_than_the_lookahead_is_an_error() {
    // Direct mail to another partition.
    match broken_run(None) {
        Err(Error::LookaheadBroken { sender, receiver, from, to, lookahead, .. }) => {
            assert_eq!((sender, receiver, from, to), (AgentId(1), AgentId(2), 0, 1));
            assert_eq!(lookahead, LOOKAHEAD);
        }
        other => panic!("expected LookaheadBroken, got {other:?}"),
    }
    // An alarm for another partition, less than the lookahead ahead.
    match broken_run(Some(0.25)) {
        Err(Error::LookaheadBroken { sender, receiver, from, to, delay, lookahead }) => {
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
        s.got(&cx, &env);
        cx.send(Envelope::new(Msg { val: 2, hops: 2 }).topic_is("blue"));
    })
    .unwrap();
    let s = sink.clone();
    rt.spawn_with_id(partitions - 1, b, move |cx| async move {
        cx.subscribe(Subscription::new().topic("blue")).unwrap();
        loop {
            let env = cx.recv().await;
            if s.got(&cx, &env).hops == 0 {
                cx.unsubscribe_all();
                cx.send(Envelope::new(Msg { val: 1, hops: 1 }).to(a));
            }
        }
    })
    .unwrap();
    rt.send(kick(b));
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
        s.got(&cx, &env);
        let s2 = s.clone();
        let child = cx
            .spawn(move |cx| async move {
                let env = cx.recv().await;
                s2.got(&cx, &env);
            })
            .unwrap();
        cx.send(Envelope::new(Msg { val: 1, hops: 1 }).to(child));
    })
    .unwrap();
    rt.send(kick(AgentId(1)));
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
fn alarm_for_run(lookahead: f64, to: AgentId) -> Result<RuntimeReport, Error> {
    let mut rt = Runtime::builder().partitions(1).lookahead(lookahead).build().unwrap();
    rt.spawn_with_id(0, AgentId(1), move |cx| async move {
        cx.recv().await;
        cx.set_alarm(Alarm::after(0.25, Envelope::new(Msg { val: 1, hops: 1 }).to(to))).unwrap();
    })
    .unwrap();
    rt.send(kick(AgentId(1)));
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
        s.got(&cx, &env);
    })
    .unwrap();
    rt.spawn_with_id(partitions - 1, c, move |cx| async move {
        cx.recv().await;
        cx.clear_alarms(Some(b), None);
    })
    .unwrap();
    rt.send(kick(a));
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
        s.got(&cx, &env);
    })
    .unwrap();
    rt.send(kick(a));
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
fn subscribe_and_leave_run(partitions: usize) -> (RuntimeReport, Vec<Vec<AgentId>>) {
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
    rt.send(kick(b));
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
    rt.send(kick(AgentId(1)));
    rt.run().unwrap();
    let c = child.lock().unwrap().expect("the child was made");
    (rt.partition_of(c), c)
}

/// Agent 1 adds agent 500 and removes it in the same update, then tells
/// agent 2 (on the last partition), which adds an agent 500 of its own.
fn re_add_run(partitions: usize) -> Result<StopReason, Error> {
    let mut rt = Runtime::new(partitions).unwrap();
    rt.spawn_with_id(0, AgentId(1), move |cx| async move {
        cx.recv().await;
        let c = cx.add_with_id(AgentId(500), Forward { to: NOBODY, alarm: None }).unwrap();
        cx.remove(c).unwrap();
        cx.send(kick(AgentId(2)));
    })
    .unwrap();
    rt.spawn_with_id(partitions - 1, AgentId(2), move |cx| async move {
        cx.recv().await;
        cx.add_with_id(AgentId(500), Forward { to: NOBODY, alarm: None }).unwrap();
    })
    .unwrap();
    rt.send(kick(AgentId(1)));
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
