//! The cases: each function sets a model up, runs it once and returns the
//! measured figure (the caller repeats it and takes the median).

use maslite::prelude::*;
use maslite::runtime::{PlacementAdvice, StopReason, Traffic};
use std::time::Instant;

#[allow(dead_code)] // the examples' `main`s are not used here
#[path = "../../examples/phold.rs"]
pub mod phold;

#[allow(dead_code)]
#[path = "../../examples/conveyor.rs"]
pub mod conveyor;

#[allow(dead_code)]
#[path = "../../examples/bank.rs"]
pub mod bank;

#[allow(dead_code)] // the example's `main` and its tests' hooks
#[path = "../../examples/service/main.rs"]
pub mod service;

#[allow(dead_code)] // the example's `main`
#[path = "../../examples/factories.rs"]
pub mod factories;

#[derive(Clone)]
struct Ball;

/// Turns the ball around and sends it back, as maslite's `benchmark.py`.
struct Player {
    hits: u64,
}

impl Agent for Player {
    async fn update(&mut self, cx: &Cx) {
        while let Some(mut ball) = cx.try_recv() {
            self.hits += 1;
            ball.reply().expect("the ball has a receiver");
            cx.send(ball);
        }
    }
}

/// Two agents, one ball, one kernel: messages/s over `messages` rounds.
pub fn pingpong(messages: u64) -> f64 {
    let mut s = Scheduler::simulated();
    let a = s.add(Player { hits: 0 }).unwrap();
    let b = s.add(Player { hits: 0 }).unwrap();
    s.send(Envelope::new(Ball).from(a).to(b));
    let start = Instant::now();
    let report = s.run_with(RunOptions::new().iterations(messages)).unwrap();
    let wall = start.elapsed().as_secs_f64();
    assert_eq!(report.stats.rounds, messages);
    messages as f64 / wall
}

#[derive(Clone)]
struct News(#[allow(dead_code)] u64);

/// Counts what it hears.
struct Listener {
    heard: u64,
}

impl Agent for Listener {
    async fn update(&mut self, cx: &Cx) {
        while cx.try_recv().is_some() {
            self.heard += 1;
        }
    }
}

/// One sender broadcasting to `subscribers` topic subscribers, one
/// broadcast per round: deliveries/s.
pub fn fanout(subscribers: usize, broadcasts: u64) -> f64 {
    let mut s = Scheduler::simulated();
    let mut ids = Vec::with_capacity(subscribers);
    for _ in 0..subscribers {
        let id = s.add(Listener { heard: 0 }).unwrap();
        s.subscribe(id, Subscription::new().topic("news")).unwrap();
        ids.push(id);
    }
    s.spawn(move |cx| async move {
        for i in 0..broadcasts {
            cx.send(Envelope::new(News(i)).topic_is("news"));
            // The next broadcast in the next round: a note to itself (a
            // sleep of 0 s would not wait: the clock is there already, and
            // every broadcast went out in one round).
            cx.send(Envelope::new(News(i)).to(cx.id()).direct().expect("a receiver"));
            cx.recv().await;
        }
    })
    .unwrap();
    let start = Instant::now();
    let report = s.run().unwrap();
    let wall = start.elapsed().as_secs_f64();
    let heard: u64 = ids.iter().map(|&id| s.agent::<Listener>(id).unwrap().heard).sum();
    assert_eq!(heard, broadcasts * subscribers as u64);
    assert!(report.stats.rounds >= broadcasts, "one broadcast per round");
    heard as f64 / wall
}

#[derive(Clone)]
struct Item(#[allow(dead_code)] u64);

/// 2 partitions, a one-way stream: an agent on partition 0 sends `batch`
/// messages per round to an agent on partition 1, `messages` in all:
/// messages/s, the start of the run to its end.
pub fn xstream(messages: u64, batch: u64) -> f64 {
    let mut rt = Runtime::new(2).unwrap();
    let sink = AgentId(2);
    rt.spawn_with_id(1, sink, move |cx| async move {
        let mut got = 0;
        while got < messages {
            cx.recv().await;
            got += 1;
        }
    })
    .unwrap();
    let source = rt
        .spawn_with_id(0, AgentId(1), move |cx| async move {
            let mut sent = 0;
            while sent < messages {
                for _ in 0..batch.min(messages - sent) {
                    cx.send(Envelope::new(Item(sent)).to(sink));
                    sent += 1;
                }
                // The next batch in the next round: a note to itself. (A
                // sleep of 0 s would not wait: the clock is there already.)
                cx.send(Envelope::new(Item(sent)).to(cx.id()));
                cx.recv().await;
            }
        })
        .unwrap();
    let _ = source;
    let start = Instant::now();
    let report = rt.run().unwrap();
    let wall = start.elapsed().as_secs_f64();
    assert_eq!(report.cross_partition(), messages);
    assert_eq!(report.reason, StopReason::Idle);
    messages as f64 / wall
}

/// 2 partitions, one ball bounced across `hops` times: µs per hop.
pub fn xpingpong(hops: u64) -> f64 {
    let mut rt = Runtime::new(2).unwrap();
    let (a, b) = (AgentId(1), AgentId(2));
    for (p, me, other) in [(0, a, b), (1, b, a)] {
        rt.spawn_with_id(p, me, move |cx| async move {
            loop {
                let n = cx.recv().await.into_payload::<u64>().expect("a count");
                if n >= hops {
                    cx.pause();
                    return;
                }
                cx.send(Envelope::new(n + 1).to(other));
            }
        })
        .unwrap();
    }
    rt.send(Envelope::new(0u64).to(a));
    let start = Instant::now();
    let report = rt.run().unwrap();
    let wall = start.elapsed().as_secs_f64();
    assert_eq!(report.cross_partition(), hops);
    wall * 1e6 / hops as f64
}

/// PHOLD (see the example): events/s and the trace hash.
pub fn phold(params: &phold::Params) -> (f64, u64, f64) {
    let o = phold::run(params).expect("phold runs");
    (o.events_per_second, o.hash, waited_share(&o.report))
}

/// The share of a run's wall time its partitions spent waiting for each
/// other at the ends of steps and windows, on average over the partitions
/// (see `PartitionReport::waited`): what synchronisation took from the run.
pub fn waited_share(report: &maslite::runtime::RuntimeReport) -> f64 {
    let waited: f64 = report.partitions.iter().map(|p| p.waited.as_secs_f64()).sum();
    waited / (report.partitions.len().max(1) as f64 * report.wall.as_secs_f64().max(1e-9))
}

/// PHOLD with many agents on one partition: events/s and the trace hash.
pub fn phold_large(params: &phold::Params) -> (f64, u64) {
    let mut rt = phold::build(params, None).expect("phold builds");
    let start = Instant::now();
    rt.run_with(RunOptions::new().until(params.end)).expect("phold runs");
    let wall = start.elapsed().as_secs_f64();
    let (events, hash) = phold::totals(&mut rt, params).expect("its agents are there");
    (events as f64 / wall, hash)
}

/// The heap bytes per pending event of PHOLD with many agents, beyond the
/// agents: what a model with two events per agent holds at the end of a
/// run, less what the same model with one event per agent holds, over the
/// agents (counted by the suite's allocator, untimed, to the case's end).
/// The agents and their futures are alike in both and cancel out; the
/// second event's alarm, message and its share of the queue's buffers are
/// what remains. (Until inboxes kept a lone message in the agent's record,
/// an inbox made a buffer at its first message and kept it; more agents had
/// had mail in the 2-event model, and the difference counted 4.4 bytes of
/// their buffers per event.)
pub fn phold_bytes(params: &phold::Params) -> f64 {
    let held = |events: u32| {
        let p = phold::Params { events, ..params.clone() };
        crate::counting::start();
        let mut rt = phold::build(&p, None).expect("phold builds");
        rt.run_with(RunOptions::new().until(p.end).clear_alarms_at_end(false)).expect("runs");
        let held = crate::counting::stop();
        drop(rt);
        held
    };
    let one = held(1);
    let two = held(2);
    (two - one) as f64 / params.agents as f64
}

/// The conveyor demo end to end, start and stop of its 2 partitions
/// included: simulated seconds per wall second, and the microseconds of its
/// three phases (building the runtime, the run, the stop).
pub fn conveyor_ratio() -> (f64, [f64; 3]) {
    let start = Instant::now();
    let mut rt = conveyor::build(2).expect("the conveyor builds");
    let built = Instant::now();
    let report = rt.run().expect("the conveyor runs");
    let ran = Instant::now();
    drop(rt); // stops the partitions: counted in the wall time
    let stopped = Instant::now();
    assert_eq!(report.end_time, 4.75);
    let us = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e6;
    let phases = [us(start, built), us(built, ran), us(ran, stopped)];
    (report.sim_seconds() / (stopped - start).as_secs_f64(), phases)
}

/// The bank example's day for `customers` on one kernel, no log:
/// customers per wall second. Its figures are checked against the ones
/// SimPy's version gives (compare.sh prints both).
pub fn bank(customers: u32) -> f64 {
    let o = bank::Options { customers, quiet: true, ..bank::Options::default() };
    let t = Instant::now();
    let (day, _) = bank::day(&o).expect("the bank runs");
    let wall = t.elapsed().as_secs_f64();
    assert_eq!(day.served + day.reneged, customers);
    f64::from(customers) / wall
}

/// Never updated: it gets no mail.
struct Idle;

impl Agent for Idle {
    async fn update(&mut self, _cx: &Cx) {}
}

/// `n` agents added to one partition through the runtime, up to their
/// setups having run: seconds.
pub fn spawn(n: u64) -> f64 {
    let start = Instant::now();
    let mut rt = Runtime::new(1).unwrap();
    for _ in 0..n {
        rt.add(0, Idle).unwrap();
    }
    let report = rt.run().unwrap();
    let wall = start.elapsed().as_secs_f64();
    assert_eq!(report.partitions[0].agents as u64, n);
    wall
}

/// One spawner per partition of 2 adds `n / 2` agents in one update; each
/// new agent leaves at t = 1 (its own alarm), all in one step: the changes
/// of a step (`n` joins, then `n` departures) applied on every partition.
/// Seconds for the run.
pub fn churn(n: u64) -> f64 {
    #[derive(Clone)]
    struct Go;
    /// Leaves when its alarm comes.
    struct Leaver;
    impl Agent for Leaver {
        async fn setup(&mut self, cx: &Cx) {
            cx.set_alarm(Alarm::after(1.0, Envelope::new(Go).to(cx.id()))).unwrap();
        }
        async fn update(&mut self, cx: &Cx) {
            while cx.try_recv().is_some() {
                cx.remove(cx.id()).unwrap();
            }
        }
    }
    let mut rt = Runtime::new(2).unwrap();
    for p in 0..2 {
        let share = n / 2;
        let spawner = rt
            .spawn(p, move |cx| async move {
                let _go = cx.recv().await;
                for _ in 0..share {
                    cx.add(Leaver).unwrap();
                }
            })
            .unwrap();
        rt.send(Envelope::new(Go).to(spawner));
    }
    let start = Instant::now();
    let report = rt.run().unwrap();
    let wall = start.elapsed().as_secs_f64();
    assert_eq!(report.end_time, 1.0);
    assert_eq!(report.partitions.iter().map(|p| p.agents).sum::<usize>(), 0);
    wall
}

/// `idle` agents that never wake and one that sleeps `jumps` times: the
/// clock jumps `jumps` times; jumps/s.
pub fn idle_advance(idle: usize, jumps: u64) -> f64 {
    let mut s = Scheduler::simulated();
    for _ in 0..idle {
        s.add(Idle).unwrap();
    }
    s.spawn(move |cx| async move {
        for _ in 0..jumps {
            cx.sleep(1.0).await;
        }
    })
    .unwrap();
    let start = Instant::now();
    let report = s.run().unwrap();
    let wall = start.elapsed().as_secs_f64();
    assert_eq!(report.end_time, jumps as f64);
    jumps as f64 / wall
}

/// The server a `service` run loads.
#[derive(Clone, Copy, Debug)]
pub enum Server {
    /// The `service` example: orders through the inlet to book agents on
    /// its partitions, answers back through an endpoint.
    Maslite(service::Options),
    /// The same books behind a bare axum handler ([`crate::bare`]).
    BareAxum,
}

/// Starts `server` on a port of its own (a tokio runtime of 2 workers),
/// drives `load` at it from another runtime of 2 workers, and stops it:
/// what the load generator measured. The service's books answer exactly
/// the orders answered 200.
pub fn service(server: Server, load: crate::load::Load) -> crate::load::Measured {
    let runtime = |name: &str| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(name)
            .enable_all()
            .build()
            .expect("a tokio runtime")
    };
    let (servers, clients) = (runtime("server"), runtime("load"));
    let symbols = ["ACME", "GLOBEX", "INITECH"];
    let listener =
        servers.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("a free port");
    let addr = listener.local_addr().expect("bound");
    let measured = match server {
        Server::Maslite(options) => {
            let running = servers
                .block_on(service::start(listener, &symbols, options))
                .expect("the service starts");
            let measured = clients.block_on(crate::load::drive(addr, load));
            running.stop.cancel();
            let stopped = servers.block_on(running.done).expect("joined").expect("stops");
            assert_eq!(stopped.answers.sent, load.requests - measured.not_ok);
            measured
        }
        Server::BareAxum => {
            let stop = maslite::runtime::CancellationToken::new();
            let router = crate::bare::router(&symbols);
            let open = service::graceful::OpenConnections::default();
            let http = servers.spawn(service::graceful::serve(
                listener,
                router,
                stop.clone(),
                stop.clone(),
                open,
            ));
            let measured = clients.block_on(crate::load::drive(addr, load));
            stop.cancel();
            servers.block_on(http).expect("the server stops");
            measured
        }
    };
    measured
}

/// What saving and restoring a large PHOLD gave (see [`snapshot`]).
pub struct Saved {
    pub save_s: f64,
    pub restore_s: f64,
    pub bytes: usize,
    pub agents: u64,
    pub state_bytes: usize,
    pub payload_bytes: usize,
}

/// PHOLD with `agents` agents and one pending event each, run to t = 1 on
/// one partition, then saved to memory and restored (a runtime of one
/// partition): the seconds each took and the snapshot's size. The restored
/// runtime runs on to t = 2 with the hash of the saved one run on.
pub fn snapshot(agents: u64) -> Saved {
    let params = phold::Params {
        agents,
        events: 1,
        end: 2.0,
        window: Some(0.0),
        ..phold::Params::default()
    };
    let types = phold::types();
    let mut rt = phold::build(&params, None).expect("phold builds");
    let keep = || RunOptions::new().clear_alarms_at_end(false);
    rt.run_with(keep().until(1.0)).expect("phold runs");
    let start = Instant::now();
    let mut bytes = Vec::new();
    let image = rt.image(&types).expect("phold saves");
    image.write(&types, &mut bytes).expect("to memory");
    let save_s = start.elapsed().as_secs_f64();
    let (state_bytes, payload_bytes) = (image.state_bytes(), image.payload_bytes());
    drop(image);
    let start = Instant::now();
    let image = maslite::Image::read(&types, &bytes[..]).expect("reads back");
    let builder = Runtime::builder().partitions(1).lookahead(0.0);
    let mut back = Runtime::from_image(builder, &types, image, |_| 0).expect("restores");
    let restore_s = start.elapsed().as_secs_f64();
    for rt in [&mut rt, &mut back] {
        rt.run_with(keep().until(2.0)).expect("runs on");
    }
    let hash = |rt: &mut Runtime| {
        rt.with_partition(0, |s| {
            s.agent_ids()
                .into_iter()
                .filter_map(|id| s.agent::<phold::Lp>(id).ok().map(|l| l.hash))
                .fold(0u64, u64::wrapping_add)
        })
        .unwrap()
    };
    assert_eq!(hash(&mut back), hash(&mut rt), "the restored run goes on alike");
    Saved { save_s, restore_s, bytes: bytes.len(), agents, state_bytes, payload_bytes }
}

/// The factories model on 2 partitions, placed at random or by `place`:
/// (wall seconds of the run alone, trace hash).
pub fn factories_run(p: &factories::Params, advised: Option<&PlacementAdvice>) -> (f64, u64) {
    let mut rt = match advised {
        Some(a) => factories::build(p, factories::advised(a)),
        None => factories::build(p, |id| factories::random_partition(p, id)),
    }
    .unwrap();
    let start = Instant::now();
    factories::run_for(&mut rt, p.end).unwrap();
    let wall = start.elapsed().as_secs_f64();
    (wall, factories::trace_hash(&mut rt, p).unwrap())
}

/// The advice for the factories model, from a measured run under the
/// random placement.
pub fn factories_advice(p: &factories::Params) -> PlacementAdvice {
    let mut rt = factories::build(p, |id| factories::random_partition(p, id)).unwrap();
    rt.measure_traffic(true).unwrap();
    let report = factories::run_for(&mut rt, p.end).unwrap();
    report.suggest_placement(p.partitions).unwrap()
}

/// A synthetic measured traffic: `agents` agents in communities of 1 000,
/// `pairs_per_agent` distinct pairs each (nine in ten within the
/// community), loads 1..=100, placed at random on 2 partitions.
pub fn synthetic_traffic(agents: u64, pairs_per_agent: u64) -> Traffic {
    let mix = |mut z: u64| {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let community = 1000.min(agents);
    let list = (0..agents).map(|i| (AgentId(i + 1), 1 + mix(i) % 100, (mix(i ^ 77) % 2) as usize));
    let pairs = (0..agents).flat_map(move |i| {
        let base = i / community * community;
        (0..pairs_per_agent).map(move |j| {
            let r = mix(i * 64 + j);
            let to = if r % 10 == 0 {
                mix(r) % agents
            } else {
                // Distinct partners within the community.
                base + (i - base + 1 + j * 37 + (r >> 8) % 5) % community
            };
            (AgentId(i + 1), AgentId(to + 1), 1 + (r >> 32) % 20)
        })
    });
    Traffic::from_counts(2, list, pairs)
}

/// Seconds to advise on `t` for 2 partitions; the advice.
pub fn advice_time(t: &Traffic) -> (f64, PlacementAdvice) {
    let start = Instant::now();
    let advice = t.suggest_placement(2).unwrap();
    (start.elapsed().as_secs_f64(), advice)
}
