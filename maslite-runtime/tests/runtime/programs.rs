//! What the two trace properties share: `same_trace` (the runtime against
//! itself, on 1 to 4 partitions) and `one_order` (the runtime against a
//! bare `Scheduler`) run random agent programs built from the pieces here:
//! the message agents exchange, the scripts' steps and their only source
//! of "randomness", the scripted agents ([`Actor`], with [`Mind`] deciding
//! what it does; [`Cast`], those a program adds from outside), the async
//! child and its trait twin, what the test does from outside, and the
//! partition counts and placements a program runs under.
//!
//! Each property draws its own programs: its `action()`, `outside()` and
//! `program()` strategies pick from the steps here with weights of their
//! own (some steps belong to one property only, as their docs say). Each
//! keeps its own trace too: its `Event` says what one line records, and its
//! sink implements [`Journal`], through which the agents here write.

use maslite_core::{Agent, AgentId, Alarm, Cx, Envelope, Subscription};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use std::fmt::Debug;

// ----- what agents exchange ----------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Msg {
    pub val: u64,
    pub hops: u8,
}

impl Msg {
    /// The message `env` carries.
    pub fn of(env: &Envelope) -> Msg {
        env.payload::<Msg>().expect("only Msg is ever sent").clone()
    }
}

/// A kick: `Msg { val: 0, hops: 0 }` for `to`.
pub fn kick(to: AgentId) -> Envelope {
    Envelope::new(Msg { val: 0, hops: 0 }).to(to)
}

/// A moment of an agent's life that its trace records (with the time).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Moment {
    /// Setup ran (for agents added before the run and at run time), or an
    /// async body started.
    Started,
    /// A sleep inside an update ended.
    Woke,
    /// Teardown ran (the agent was removed).
    Torn,
    /// An async body (or its trait twin, [`Echo`]) is done.
    Ended,
}

/// Where all agents of one run, on all partitions, write their traces.
/// Each property has a sink of its own, with its own `Event`.
pub trait Journal: Clone + Send + 'static {
    /// `cx.id()` took `env` from its inbox: records it, returns its message.
    fn got(&self, cx: &Cx, env: &Envelope) -> Msg;

    /// Records `what` of `cx.id()`, at `cx.now()`.
    fn note(&self, cx: &Cx, what: Moment);

    /// `creator` made `child` as its `nth` addition (1-based); `allocated`:
    /// the system chose the child's id. Nothing is recorded by default.
    fn made(&self, creator: AgentId, nth: u32, child: AgentId, allocated: bool) {
        let _ = (creator, nth, child, allocated);
    }
}

// ----- the scripts' vocabulary --------------------------------------------------

/// splitmix64: the scripts' only source of "randomness".
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Alarm and sleep delays: exact in binary, so equal times tie exactly.
const DELAYS: [f64; 4] = [0.0, 0.25, 0.5, 1.0];
/// Absolute alarm times: many alarms are due at the same time.
const AT: [f64; 4] = [0.25, 0.5, 1.0, 1.5];
const TOPICS: [&str; 3] = ["red", "green", "blue"];
/// An agent acts on a message only if it has made fewer hops than this.
pub const MAX_HOPS: u8 = 6;

pub fn delay(d: u8) -> f64 {
    DELAYS[d as usize % DELAYS.len()]
}

pub fn at(t: u8) -> f64 {
    AT[t as usize % AT.len()]
}

pub fn topic(t: u8) -> &'static str {
    TOPICS[t as usize % TOPICS.len()]
}

/// The id a program gives the `nth` child of `parent` (explicit ids, in
/// `one_order`): unique, since parents and children are at most two
/// generations deep (1..=8, then 1011..=1082, then 11111..=11822).
pub fn child_id(parent: AgentId, nth: u32) -> AgentId {
    AgentId(1000 + parent.0 * 10 + nth as u64)
}

/// One step of an [`Actor`]'s script. Each property's `action()` picks
/// from these with its own weights; `AlarmAt` is `one_order`'s only,
/// `RemovePeer` and `RemoveChild` are `same_trace`'s only.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Action {
    /// To a known agent (maybe unknown or gone: a dead letter).
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
    /// An alarm `delay` ahead for a known agent (or, `to: None`, a
    /// broadcast on a topic).
    Alarm {
        to: Option<u8>,
        delay: u8,
        topic: u8,
    },
    /// An alarm at an absolute time (if not past) for one of the first
    /// agents: same-time alarms set in different rounds, by different
    /// agents, for one receiver.
    AlarmAt {
        to: u8,
        at: u8,
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
    /// Adds a trait agent (an [`Actor`]).
    AddChild,
    /// Starts an async-fn agent ([`echo`]; programs with allocated ids),
    /// or adds its trait twin [`Echo`] with an explicit id.
    SpawnChild {
        delay: u8,
    },
    /// Places a child on partition `partition` (modulo the partition
    /// count): an async-fn [`echo`] with `cx.spawn_on` (programs with
    /// allocated ids), else its trait twin [`Echo`] with `cx.add_on`. It
    /// starts in the next round, wherever it is.
    PlaceChild {
        delay: u8,
        partition: u8,
    },
    /// Removes the last async-fn child it started, if any.
    RemoveChild,
    RemoveSelf,
    Sleep(u8),
}

// ----- the scripted agents ---------------------------------------------------------

/// What a scripted agent ([`Actor`], `same_trace`'s `Grouped`) decides
/// with: its script, the seed of its random numbers, its budget, the
/// agents it knows.
#[derive(Serialize, Deserialize)]
pub struct Mind<A> {
    pub script: Vec<A>,
    pub seed: u64,
    /// Messages it still acts on.
    pub budget: u32,
    /// Agents it may address (the initial ones, for an [`Actor`] the
    /// property's `NOBODY` too, and those it heard from or made).
    pub known: Vec<AgentId>,
}

impl<A: Clone> Mind<A> {
    /// The agent `known[i]` (indices wrap).
    pub fn peer(&self, i: u8) -> AgentId {
        self.known[i as usize % self.known.len()]
    }

    /// Reading `m` from `sender`: it learns of the sender (while it knows
    /// fewer than 16 agents); then, unless `m` has made [`MAX_HOPS`] hops
    /// or the budget is spent, it spends one message of its budget on 1 to
    /// 3 steps of its script, each with the random number it acts on. The
    /// agent takes them in this order; no step changes the script, the
    /// seed or the budget, so they can be drawn before it takes the first.
    pub fn react(&mut self, m: &Msg, sender: AgentId) -> Vec<(A, u64)> {
        if sender != AgentId::OUTSIDE && !self.known.contains(&sender) && self.known.len() < 16 {
            self.known.push(sender);
        }
        if m.hops >= MAX_HOPS || self.budget == 0 {
            return Vec::new();
        }
        self.budget -= 1;
        self.seed = mix(self.seed ^ m.val.rotate_left(17) ^ m.hops as u64);
        let n = 1 + self.seed % 3;
        (0..n)
            .map(|k| {
                let r = mix(self.seed.wrapping_add(k));
                (self.script[(r % self.script.len() as u64) as usize].clone(), r)
            })
            .collect()
    }

    /// A child's, made on the random number `r`: the script rotated by
    /// one, a seed of its own, `budget`, the agents this one knows.
    pub fn child(&self, r: u64, budget: u32) -> Mind<A> {
        let mut script = self.script.clone();
        script.rotate_left(1);
        Mind { script, seed: mix(r), budget, known: self.known.clone() }
    }
}

/// A scripted agent: what it reads is logged, then its [`Mind`] picks the
/// steps it takes.
pub trait Scripted {
    type Step: Clone;

    fn mind(&mut self) -> &mut Mind<Self::Step>;

    /// Logs the message `env` it took from its inbox; returns it.
    fn got(&self, cx: &Cx, env: &Envelope) -> Msg;

    /// Takes `step`, on the random number `r`, sending messages that have
    /// made `hops` hops; false if the agent removed itself (stop acting).
    async fn act(&mut self, cx: &Cx, step: &Self::Step, r: u64, hops: u8) -> bool;

    /// Reads its inbox (its `Agent::update`).
    async fn read_mail(&mut self, cx: &Cx) {
        while let Some(env) = cx.try_recv() {
            let m = self.got(cx, &env);
            for (step, r) in self.mind().react(&m, env.sender()) {
                if !self.act(cx, &step, r, m.hops + 1).await {
                    return;
                }
            }
        }
    }
}

/// The scripted agents a program adds from outside: agent `i` (of `k`)
/// runs `scripts[i]` from `seeds[i]`, acting on `budgets[i]` messages.
#[derive(Clone, Debug)]
pub struct Cast<A> {
    pub scripts: Vec<Vec<A>>,
    pub seeds: Vec<u64>,
    pub budgets: Vec<u32>,
}

impl<A: Clone + Debug> Cast<A> {
    /// `k` agents, each with a script of 1 to 5 steps drawn from `step`,
    /// any seed, and a budget of 3 to 11 messages.
    pub fn of(k: usize, step: impl Strategy<Value = A>) -> impl Strategy<Value = Cast<A>> {
        (
            prop::collection::vec(prop::collection::vec(step, 1..6), k),
            prop::collection::vec(any::<u64>(), k),
            prop::collection::vec(3u32..12, k),
        )
            .prop_map(|(scripts, seeds, budgets)| Cast { scripts, seeds, budgets })
    }

    pub fn len(&self) -> usize {
        self.scripts.len()
    }

    /// The ids of its agents, 1 to `k`: added in that order.
    pub fn ids(&self) -> Vec<AgentId> {
        (1..=self.len() as u64).map(AgentId).collect()
    }

    /// Agent `i`'s mind, knowing `known`.
    pub fn mind(&self, i: usize, known: Vec<AgentId>) -> Mind<A> {
        Mind {
            script: self.scripts[i].clone(),
            seed: self.seeds[i],
            budget: self.budgets[i],
            known,
        }
    }
}

/// A trait agent that runs its script, driven by what it receives (saved
/// in snapshots when its sink can be: see `snapshots`).
#[derive(Serialize, Deserialize)]
pub struct Actor<J> {
    pub mind: Mind<Action>,
    /// Topics it subscribes to in its setup (`one_order`; none in
    /// `same_trace`).
    setup_topics: Vec<u8>,
    /// Children get allocated ids (`cx.add`, `cx.spawn`), else explicit
    /// ones (`cx.add_with_id`; in `one_order` only).
    allocated: bool,
    /// The async-fn children it started: the only ones it removes (they
    /// never subscribe; a trait child might have subscribed in the same
    /// step, see `same_trace`'s
    /// `an_agent_that_subscribes_and_leaves_in_one_step_leaves_no_subscription`).
    spawned: Vec<AgentId>,
    made: u32,
    generation: u8,
    parent: Option<AgentId>,
    sink: J,
    /// The partition count of the system it runs on (`PlaceChild`).
    parts: usize,
}

impl<J: Journal> Actor<J> {
    /// An agent added from outside: no parent, no children yet.
    pub fn new(mind: Mind<Action>, setup_topics: Vec<u8>, allocated: bool, sink: J) -> Actor<J> {
        let (spawned, made, generation, parent) = (Vec::new(), 0, 0, None);
        Actor { mind, setup_topics, allocated, spawned, made, generation, parent, sink, parts: 1 }
    }

    /// On a system of `parts` partitions (children are placed over them).
    pub fn on_partitions(mut self, parts: usize) -> Actor<J> {
        self.parts = parts;
        self
    }

    fn may_have_children(&self) -> bool {
        self.generation < 2 && self.made < 2
    }
}

impl<J: Journal> Scripted for Actor<J> {
    type Step = Action;

    fn mind(&mut self) -> &mut Mind<Action> {
        &mut self.mind
    }

    fn got(&self, cx: &Cx, env: &Envelope) -> Msg {
        self.sink.got(cx, env)
    }

    async fn act(&mut self, cx: &Cx, action: &Action, r: u64, hops: u8) -> bool {
        let msg = Msg { val: r >> 44, hops };
        match *action {
            Action::Send { to, direct } => {
                let env = Envelope::new(msg).to(self.mind.peer(to));
                cx.send(if direct { env.direct().unwrap() } else { env });
            }
            Action::SendTopic { to, topic: t } => {
                cx.send(Envelope::new(msg).to(self.mind.peer(to)).topic_is(topic(t)));
            }
            Action::Broadcast { topic: t } => cx.send(Envelope::new(msg).topic_is(topic(t))),
            Action::Alarm { to, delay: d, topic: t } => {
                let env = Envelope::new(msg).topic_is(topic(t));
                let env = match to {
                    Some(to) => env.to(self.mind.peer(to)),
                    None => env,
                };
                cx.set_alarm(Alarm::after(delay(d), env)).unwrap();
            }
            Action::AlarmAt { to, at: t } => {
                if at(t) >= cx.now() {
                    let env = Envelope::new(msg).to(self.mind.peer(to));
                    cx.set_alarm(Alarm::at(at(t), env)).unwrap();
                }
            }
            Action::SubTopic(t) => {
                cx.subscribe(Subscription::new().topic(topic(t))).unwrap();
            }
            Action::UnsubTopic(t) => cx.unsubscribe(&Subscription::new().topic(topic(t))).unwrap(),
            Action::SubSender(i) => {
                cx.subscribe(Subscription::new().sender(self.mind.peer(i))).unwrap();
            }
            Action::SubReceiver(i) => {
                cx.subscribe(Subscription::new().receiver(self.mind.peer(i))).unwrap();
            }
            Action::UnsubPeer(i) => {
                let p = self.mind.peer(i);
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
                let p = self.mind.peer(i);
                if p != cx.id() {
                    cx.remove(p).unwrap();
                }
            }
            Action::AddChild if self.may_have_children() => {
                self.made += 1;
                let mut mind = self.mind.child(r, 4);
                mind.known.push(cx.id());
                let mut setup_topics = self.setup_topics.clone();
                if !setup_topics.is_empty() {
                    setup_topics.rotate_left(1);
                }
                let child = Actor {
                    mind,
                    setup_topics,
                    allocated: self.allocated,
                    spawned: Vec::new(),
                    made: 0,
                    generation: self.generation + 1,
                    parts: self.parts,
                    parent: Some(cx.id()),
                    sink: self.sink.clone(),
                };
                let id = if self.allocated {
                    cx.add(child).unwrap()
                } else {
                    cx.add_with_id(child_id(cx.id(), self.made), child).unwrap()
                };
                self.sink.made(cx.id(), self.made, id, self.allocated);
                self.mind.known.push(id);
            }
            Action::SpawnChild { delay: d } if self.may_have_children() => {
                self.made += 1;
                let (sink, parent, pause) = (self.sink.clone(), cx.id(), delay(d));
                let id = if self.allocated {
                    let id = cx.spawn(move |cx| echo(cx, sink, parent, hops, pause)).unwrap();
                    self.spawned.push(id);
                    id
                } else {
                    let echo = Echo { parent, hops, pause, left: 2, sink };
                    cx.add_with_id(child_id(cx.id(), self.made), echo).unwrap()
                };
                self.sink.made(cx.id(), self.made, id, self.allocated);
                self.mind.known.push(id);
            }
            Action::PlaceChild { delay: d, partition } if self.may_have_children() => {
                self.made += 1;
                let (sink, parent, pause) = (self.sink.clone(), cx.id(), delay(d));
                let on = partition as usize % self.parts;
                let id = if self.allocated {
                    cx.spawn_on(on, move |cx| echo(cx, sink, parent, hops, pause)).unwrap()
                } else {
                    cx.add_on(on, Echo { parent, hops, pause, left: 2, sink }).unwrap()
                };
                self.sink.made(cx.id(), self.made, id, true);
                self.mind.known.push(id);
            }
            Action::AddChild | Action::SpawnChild { .. } | Action::PlaceChild { .. } => {}
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
                self.sink.note(cx, Moment::Woke);
            }
        }
        true
    }
}

impl<J: Journal> Agent for Actor<J> {
    async fn setup(&mut self, cx: &Cx) {
        self.sink.note(cx, Moment::Started);
        for &t in &self.setup_topics {
            cx.subscribe(Subscription::new().topic(topic(t))).unwrap();
        }
        if let Some(parent) = self.parent {
            // A child tells its creator at once: children made in one round
            // (by one creator or several) are heard in creation order.
            cx.send(Envelope::new(Msg { val: self.mind.seed >> 50, hops: 1 }).to(parent));
        }
    }

    async fn update(&mut self, cx: &Cx) {
        self.read_mail(cx).await;
    }

    async fn teardown(&mut self, cx: &Cx) {
        self.sink.note(cx, Moment::Torn);
    }
}

/// Answers `m`, from `to`, unless it has made [`MAX_HOPS`] hops.
fn answer(cx: &Cx, m: &Msg, to: AgentId) {
    if m.hops < MAX_HOPS {
        let reply = Msg { val: m.val * 3 + 1, hops: m.hops + 1 };
        cx.send(Envelope::new(reply).to(to));
    }
}

/// The async-fn child of `SpawnChild`: tells its creator at once, answers
/// two messages (sleeping `pause` before each answer), then ends.
pub async fn echo<J: Journal>(cx: Cx, sink: J, parent: AgentId, hops: u8, pause: f64) {
    sink.note(&cx, Moment::Started);
    cx.send(Envelope::new(Msg { val: 7, hops }).to(parent));
    for _ in 0..2 {
        let env = cx.recv().await;
        let m = sink.got(&cx, &env);
        cx.sleep(pause).await;
        answer(&cx, &m, env.sender());
    }
    sink.note(&cx, Moment::Ended);
}

/// The trait twin of [`echo`], for programs with explicit ids (`Cx` has no
/// `spawn_with_id`): tells its creator at once, answers two messages
/// (sleeping before each answer), then leaves.
pub struct Echo<J> {
    parent: AgentId,
    hops: u8,
    pause: f64,
    left: u8,
    sink: J,
}

impl<J: Journal> Agent for Echo<J> {
    async fn setup(&mut self, cx: &Cx) {
        self.sink.note(cx, Moment::Started);
        cx.send(Envelope::new(Msg { val: 7, hops: self.hops }).to(self.parent));
    }

    async fn update(&mut self, cx: &Cx) {
        while let Some(env) = cx.try_recv() {
            let m = self.sink.got(cx, &env);
            cx.sleep(self.pause).await;
            answer(cx, &m, env.sender());
            self.left -= 1;
            if self.left == 0 {
                self.sink.note(cx, Moment::Ended);
                cx.remove(cx.id()).unwrap();
                return;
            }
        }
    }

    async fn teardown(&mut self, cx: &Cx) {
        self.sink.note(cx, Moment::Torn);
    }
}

// ----- from outside, and where agents run ------------------------------------------

/// Something the test does from outside, before a run; `to` picks one of
/// the agents added from outside (indices wrap).
#[derive(Clone, Debug)]
pub enum Outside {
    /// Mail for an agent, maybe under a topic; `direct` (drawn in
    /// `one_order` only): for the receiver alone, not its subscribers.
    Send {
        to: u8,
        val: u64,
        topic: Option<u8>,
        direct: bool,
    },
    Broadcast {
        topic: u8,
        val: u64,
    },
    Alarm {
        to: u8,
        delay: u8,
        val: u64,
    },
    /// At an absolute time (`one_order`, before the first run only).
    AlarmAt {
        to: u8,
        at: u8,
        val: u64,
    },
}

/// What the test does from outside, without direct mail or `AlarmAt`
/// (`same_trace`'s mix, and the snapshots').
pub fn plain_outside() -> impl Strategy<Value = Outside> {
    prop_oneof![
        3 => (0u8..8, 0u64..1000, prop::option::of(0u8..3))
            .prop_map(|(to, val, topic)| Outside::Send { to, val, topic, direct: false }),
        1 => (0u8..3, 0u64..1000).prop_map(|(topic, val)| Outside::Broadcast { topic, val }),
        2 => (0u8..8, 0u8..4, 0u64..1000).prop_map(|(to, delay, val)| Outside::Alarm { to, delay, val }),
    ]
}

/// What a deed from outside hands the system.
pub enum Posted {
    Mail(Envelope),
    Alarm(Alarm),
}

impl Outside {
    /// The mail or alarm, for the agents `ids` (added from outside).
    pub fn posted(&self, ids: &[AgentId]) -> Posted {
        let k = ids.len();
        match *self {
            Outside::Send { to, val, topic: t, direct } => {
                let env = Envelope::new(Msg { val, hops: 0 }).to(ids[to as usize % k]);
                let env = match t {
                    Some(t) => env.topic_is(topic(t)),
                    None => env,
                };
                Posted::Mail(if direct { env.direct().unwrap() } else { env })
            }
            Outside::Broadcast { topic: t, val } => {
                Posted::Mail(Envelope::new(Msg { val, hops: 0 }).topic_is(topic(t)))
            }
            Outside::Alarm { to, delay: d, val } => {
                let env = Envelope::new(Msg { val, hops: 0 }).to(ids[to as usize % k]);
                Posted::Alarm(Alarm::after(delay(d), env))
            }
            Outside::AlarmAt { to, at: t, val } => {
                let env = Envelope::new(Msg { val, hops: 0 }).to(ids[to as usize % k]);
                Posted::Alarm(Alarm::at(at(t), env))
            }
        }
    }
}

/// How agents (or groups of agents) are spread over partitions.
#[derive(Clone, Copy, Debug)]
pub enum Placement {
    RoundRobin,
    Seeded(u64),
}

impl Placement {
    pub fn of(self, i: usize, partitions: usize) -> usize {
        match self {
            Placement::RoundRobin => i % partitions,
            Placement::Seeded(seed) => (mix(seed ^ i as u64) % partitions as u64) as usize,
        }
    }
}

/// The partition counts and placements every program runs under on the
/// runtime: 1 partition, then 2, 3 and 4 round robin and seeded by
/// `place_seed`.
pub fn layouts(place_seed: u64) -> Vec<(usize, Placement)> {
    let mut all = vec![(1, Placement::RoundRobin)];
    for p in 2..=4 {
        all.push((p, Placement::RoundRobin));
        all.push((p, Placement::Seeded(place_seed)));
    }
    all
}

/// Cases per property: `n`, or the number in the environment variable
/// `var` (`SAME_TRACE_CASES`, `ONE_ORDER_CASES`) for a longer hunt.
pub fn cases(var: &str, n: u32) -> u32 {
    std::env::var(var).ok().and_then(|s| s.parse().ok()).unwrap_or(n)
}
