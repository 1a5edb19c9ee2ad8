//! The PHOLD model of `examples/phold.rs` (`maslite-bench phold`), written
//! with nexosim 1.0, the discrete-event peer. Prints one JSON line per run:
//! {"peer", "unit", "value"} plus the run's "events", "hash" and "remote".
//!
//! The model is the same draw for draw: each LP has its own splitmix64
//! stream seeded from (seed, LP id), processing an event hashes (time,
//! receiver, sender, sender's seq) and schedules exactly one new event at
//! `now + lookahead + Exp(mean − lookahead)`, for itself or, with
//! probability `remote`, for an LP chosen uniformly. So the trace hash
//! printed here equals ours for the same parameters.
//!
//! # Design
//!
//! nexosim models talk only through ports wired before the run, and a model
//! can schedule events only on itself. PHOLD needs any LP to reach any LP:
//!
//! - a *self* event is a self-scheduled call of `Lp::process` at the event's
//!   time (`Context::schedule_event`) — one scheduler-queue insert, as in
//!   maslite's alarm;
//! - a *remote* event leaves through the LP's one `Output`, connected to a
//!   single `Router` model that owns one `Output` per LP (each connected to
//!   that LP's `arrive` input): 2 × N connections in all, not N². Routing
//!   happens at once (same simulated time); `arrive` then schedules
//!   `process` on its own LP at the event's time. A remote event so costs
//!   two extra message hops (LP → router → LP, both at the sending time)
//!   on top of the scheduler insert. A remote draw that picks the sender
//!   itself is scheduled directly (same outcome, no hops).
//!
//! Alternatives not taken: an `Output` per LP wired to every LP with
//! `filter_map_connect` is N² connections (16 M here) and every send would
//! run all N filters; holding the simulation's global `Scheduler` inside
//! the models to schedule on other models' inputs bypasses the port model.
//!
//! Time: nexosim's clock is an integer of nanoseconds (`MonotonicTime`), ours
//! an `f64`. Each event carries its exact `f64` time; it is scheduled at
//! that time rounded up to the nanosecond (rounding is monotone, so each
//! LP still sees its events in time order unless two of them fall within the
//! same nanosecond), and the model computes with the `f64`. Events after
//! `end` are dropped unprocessed.
//!
//! The executor: nexosim processes all events of one timestamp in parallel,
//! then moves to the next. PHOLD's times are continuous, so a timestamp
//! holds one event (and its routing) almost always: there is little for a
//! second thread to do. `--threads 1` uses nexosim's single-threaded
//! executor, `--threads N` its multi-threaded one.
//!
//! Timed: `SimInit::init` (the LPs' initial events) and `step_until(end)`,
//! not building and wiring the models — as ours times the run, not adding
//! the agents.
//!
//! Usage: nexosim_phold [--agents 4096] [--events 4] [--remote 0.25]
//! [--lookahead 0.1] [--mean 1] [--end 100] [--seed 1] [--threads 1]
//! [--runs 5] [--warmup 1]

use std::time::{Duration, Instant};

use nexosim::model::{schedulable, Context, Model};
use nexosim::ports::{event_queue, EventSinkReader, EventSource, Output, SinkState};
use nexosim::simulation::{Mailbox, SimInit};
use nexosim::time::MonotonicTime;
use serde::{Deserialize, Serialize};

/// The model's parameters.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct Params {
    agents: u64,
    events: u32,
    remote: f64,
    lookahead: f64,
    mean: f64,
    end: f64,
    seed: u64,
}

/// splitmix64, exactly as `examples/phold.rs`.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64) -> Rng {
        let mut r = Rng(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
        r.next_u64();
        r
    }
    #[inline]
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in (0, 1].
    #[inline]
    fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }
}

/// The hash of one processed event, exactly as `examples/phold.rs`.
fn event_hash(time: f64, receiver: u64, sender: u64, seq: u64) -> u64 {
    let mut r = Rng(time.to_bits() ^ receiver.rotate_left(17) ^ sender.rotate_left(37));
    r.0 ^= seq.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    r.next_u64()
}

/// An event: its exact time, receiver, sender and the sender's count.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Ev {
    time: f64,
    to: u64,
    from: u64,
    seq: u64,
}

/// nexosim's deadline for an `f64` time: rounded up to the nanosecond.
#[inline]
fn deadline(t: f64) -> MonotonicTime {
    MonotonicTime::EPOCH + Duration::from_nanos((t * 1e9).ceil() as u64)
}

/// One logical process.
#[derive(Serialize, Deserialize)]
struct Lp {
    id: u64,
    p: Params,
    rng: Rng,
    sent: u64,
    processed: u64,
    hash: u64,
    /// Remote events, to the router.
    remote_out: Output<Ev>,
    /// (processed, hash), when asked at the end.
    report_out: Output<(u64, u64)>,
}

#[Model]
impl Lp {
    fn new(p: Params, id: u64) -> Lp {
        Lp {
            id,
            p,
            rng: Rng::new(p.seed, id),
            sent: 0,
            processed: 0,
            hash: 0,
            remote_out: Output::new(),
            report_out: Output::new(),
        }
    }

    /// One new event from time `now`: the same draws, in the same order, as
    /// `Lp::schedule` in `examples/phold.rs`.
    async fn schedule(&mut self, now: f64, cx: &Context<Self>) {
        let p = &self.p;
        let delay = p.lookahead - (p.mean - p.lookahead) * self.rng.unit().ln();
        let to = if self.rng.unit() <= p.remote { self.rng.next_u64() % p.agents } else { self.id };
        self.sent += 1;
        let ev = Ev { time: now + delay, to, from: self.id, seq: self.sent };
        if to == self.id {
            cx.schedule_event(deadline(ev.time), schedulable!(Self::process), ev)
                .expect("a future time");
        } else {
            self.remote_out.send(ev).await;
        }
    }

    #[nexosim(init)]
    async fn init(&mut self, cx: &Context<Self>) {
        for _ in 0..self.p.events {
            self.schedule(0.0, cx).await;
        }
    }

    /// Processes an event at its time.
    #[nexosim(schedulable)]
    async fn process(&mut self, ev: Ev, cx: &Context<Self>) {
        if ev.time > self.p.end {
            return;
        }
        self.hash = self.hash.wrapping_add(event_hash(ev.time, self.id, ev.from, ev.seq));
        self.processed += 1;
        self.schedule(ev.time, cx).await;
    }

    /// A remote event, from the router: scheduled on this LP at its time.
    pub fn arrive(&mut self, ev: Ev, cx: &Context<Self>) {
        cx.schedule_event(deadline(ev.time), schedulable!(Self::process), ev)
            .expect("a future time");
    }

    /// Sends (processed, hash) out.
    pub async fn report(&mut self, _: ()) {
        self.report_out.send((self.processed, self.hash)).await;
    }
}

/// Forwards each remote event to its receiver: one output per LP.
#[derive(Serialize, Deserialize)]
struct Router {
    outs: Vec<Output<Ev>>,
}

#[Model]
impl Router {
    pub async fn route(&mut self, ev: Ev) {
        self.outs[ev.to as usize].send(ev).await;
    }
}

/// (events processed, trace hash, events/s) of one run.
fn one_run(p: Params, threads: usize) -> (u64, u64, f64) {
    let n = p.agents as usize;
    // Mailboxes hold more than the default 16: at init every LP sends its
    // remote events at once, and an LP blocked on a full router while the
    // router is blocked on that LP's full mailbox would deadlock.
    let lp_boxes: Vec<Mailbox<Lp>> = (0..n).map(|_| Mailbox::with_capacity(64)).collect();
    let router_box: Mailbox<Router> = Mailbox::with_capacity(1024);
    let mut router = Router { outs: Vec::with_capacity(n) };
    let (sink, mut reports) = event_queue(SinkState::Enabled);
    let mut bench = SimInit::with_num_threads(threads);
    let mut report = EventSource::new();
    let mut lps = Vec::with_capacity(n);
    for (i, mbox) in lp_boxes.iter().enumerate() {
        let mut lp = Lp::new(p, i as u64);
        lp.remote_out.connect(Router::route, &router_box);
        lp.report_out.connect_sink(sink.clone());
        let mut out = Output::new();
        out.connect(Lp::arrive, mbox);
        router.outs.push(out);
        report = report.connect(Lp::report, mbox);
        lps.push(lp);
    }
    let report = report.register(&mut bench);
    bench = bench.add_model(router, router_box, "router");
    for (i, (lp, mbox)) in lps.into_iter().zip(lp_boxes).enumerate() {
        bench = bench.add_model(lp, mbox, &format!("lp{i}"));
    }

    let wall = Instant::now();
    let mut simu = bench.init(MonotonicTime::EPOCH).expect("the bench initializes");
    simu.step_until(deadline(p.end)).expect("the run completes");
    let wall = wall.elapsed().as_secs_f64();

    simu.process_event(&report, ()).expect("the LPs report");
    let (mut events, mut hash, mut lps_seen) = (0u64, 0u64, 0u64);
    while let Some((e, h)) = reports.try_read() {
        events += e;
        hash = hash.wrapping_add(h);
        lps_seen += 1;
    }
    assert_eq!(lps_seen, p.agents, "every LP reports");
    (events, hash, events as f64 / wall)
}

fn parse<T: std::str::FromStr>(flag: &str, value: &str) -> T {
    value.parse().unwrap_or_else(|_| panic!("{flag} {value}: not a valid value"))
}

fn main() {
    let mut p = Params {
        agents: 4096,
        events: 4,
        remote: 0.25,
        lookahead: 0.1,
        mean: 1.0,
        end: 100.0,
        seed: 1,
    };
    let (mut threads, mut runs, mut warmup) = (1usize, 5usize, 1usize);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--agents" => p.agents = parse(&flag, &value),
            "--events" => p.events = parse(&flag, &value),
            "--remote" => p.remote = parse(&flag, &value),
            "--lookahead" => p.lookahead = parse(&flag, &value),
            "--mean" => p.mean = parse(&flag, &value),
            "--end" => p.end = parse(&flag, &value),
            "--seed" => p.seed = parse(&flag, &value),
            "--threads" => threads = parse(&flag, &value),
            "--runs" => runs = parse(&flag, &value),
            "--warmup" => warmup = parse(&flag, &value),
            _ => panic!("unknown flag {flag}"),
        }
    }
    assert!(p.agents >= 1 && threads >= 1, "--agents and --threads must be at least 1");
    assert!((0.0..=1.0).contains(&p.remote), "--remote is a probability");
    assert!(p.lookahead > 0.0 && p.mean > p.lookahead, "need 0 < --lookahead < --mean");
    let peer = format!("nexosim-{threads}-thread");
    for _ in 0..warmup {
        one_run(p, threads);
    }
    for _ in 0..runs {
        let (events, hash, eps) = one_run(p, threads);
        println!(
            "{{\"peer\": \"{peer}\", \"unit\": \"events/s\", \"value\": {eps}, \
             \"remote\": {}, \"events\": {events}, \"hash\": \"{hash:016x}\"}}",
            p.remote
        );
    }
}
