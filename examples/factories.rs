//! # factories — placement advice, and agents that move between runs
//!
//! Several factory lines, each a source, conveyors, machines and a sink,
//! pass boxes down the line; now and then a machine asks the shared
//! warehouse for parts, and the warehouse answers: the lines talk mostly
//! within themselves and a little between each other. The agents are
//! placed **at random** on 2 partitions (seeded), so about half of every
//! line's mail crosses partitions.
//!
//! The example then shows the placement tools, in three runs of the same
//! model that must tell the same story (one trace hash):
//!
//! 1. random placement, with the traffic measured
//!    (`rt.measure_traffic(true)`): the report prints the advice (how many
//!    agents to move, the crossing messages before and after, the loads);
//! 2. a fresh runtime, the same random placement, the advice applied
//!    before the run (`rt.apply_placement(&advice.placement)`);
//! 3. a fresh runtime, random placement, half the run, the advice applied
//!    between runs — the agents move with their state, inbox and alarms —
//!    and the rest of the run.
//!
//! Run it: `cargo run --release --example factories` (`-- --help` for the
//! flags: `--lines 8 --conveyors 6 --machines 3 --batch 64 --end 50
//! --seed 1 --partitions 2`). The last line reads `factories: hash <hex>
//! random <s> s advised <s> s moved halfway <s> s`.

use clap::Parser;
use maslite::prelude::*;
use maslite::runtime::PlacementAdvice;
use std::time::{Duration, Instant};

/// The model and how to run it.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "factories",
    about = "Factory lines on 2 partitions: placement advice and agents that move"
)]
pub struct Params {
    /// Factory lines.
    #[arg(long, default_value_t = 8)]
    pub lines: u64,
    /// Conveyors per line (between the source and the machines).
    #[arg(long, default_value_t = 6)]
    pub conveyors: u64,
    /// Machines per line (after the conveyors, before the sink).
    #[arg(long, default_value_t = 3)]
    pub machines: u64,
    /// Boxes a source puts on its line every simulated second.
    #[arg(long, default_value_t = 64)]
    pub batch: u64,
    /// A machine asks the warehouse for parts every this many boxes.
    #[arg(long, default_value_t = 50)]
    pub parts_every: u64,
    /// Simulated seconds to run.
    #[arg(long, default_value_t = 50.0)]
    pub end: f64,
    /// Seed of the random placement.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Partitions.
    #[arg(long, default_value_t = 2)]
    pub partitions: usize,
}

impl Default for Params {
    fn default() -> Self {
        Params::parse_from(["factories"])
    }
}

/// A box on a line.
#[derive(Clone, Debug)]
pub struct Crate {
    /// Its number on its line.
    pub n: u64,
}

/// A machine's request for parts, and the warehouse's answer.
#[derive(Clone, Debug)]
pub struct Parts {
    /// Parts asked for or sent.
    pub count: u64,
}

/// The source's clock: time to put the next batch on the line.
#[derive(Clone, Debug)]
struct Tick;

/// What a station does with a box.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Role {
    Source,
    Conveyor,
    Machine,
    Sink,
    Warehouse,
}

/// One station of a line, or the warehouse. Its
/// `hash` folds in every message it read — (time, sender, payload) — so
/// the model's trace hash is the sum of the stations'.
pub struct Station {
    role: Role,
    next: Option<AgentId>,
    warehouse: AgentId,
    batch: u64,
    parts_every: u64,
    made: u64,
    seen: u64,
    /// The trace hash of what it read.
    pub hash: u64,
}

/// splitmix64.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Station {
    fn note(&mut self, cx: &Cx, env: &Envelope, value: u64) {
        self.seen += 1;
        let h = mix(cx.now().to_bits() ^ mix(env.sender().0 ^ mix(value ^ self.seen)));
        self.hash = self.hash.wrapping_add(h);
    }
}

impl Agent for Station {
    async fn setup(&mut self, cx: &Cx) {
        if self.role == Role::Source {
            cx.set_alarm(Alarm::after(1.0, Envelope::new(Tick).to(cx.id()))).unwrap();
        }
    }

    async fn update(&mut self, cx: &Cx) {
        while let Some(env) = cx.try_recv() {
            if env.is::<Tick>() {
                self.note(cx, &env, 0);
                for _ in 0..self.batch {
                    self.made += 1;
                    let next = self.next.expect("a source feeds a line");
                    cx.send(Envelope::new(Crate { n: self.made }).to(next));
                }
                cx.set_alarm(Alarm::after(1.0, Envelope::new(Tick).to(cx.id()))).unwrap();
            } else if let Ok(parts) = env.payload::<Parts>() {
                let count = parts.count;
                self.note(cx, &env, count);
                if self.role == Role::Warehouse {
                    // It answers whoever asked.
                    let mut answer = env.clone();
                    answer.reply().expect("a request has a receiver");
                    cx.send(answer);
                }
            } else if let Ok(c) = env.payload::<Crate>() {
                let n = c.n;
                self.note(cx, &env, n);
                if self.role == Role::Machine && n % self.parts_every == 0 {
                    cx.send(Envelope::new(Parts { count: n % 7 + 1 }).to(self.warehouse));
                }
                if let Some(next) = self.next {
                    cx.send(Envelope::new(Crate { n }).to(next));
                }
            }
        }
    }
}

/// The warehouse's id.
pub const WAREHOUSE: AgentId = AgentId(1);

/// Every agent's id, in the order they are added: the warehouse, then the
/// lines, station by station.
pub fn ids(p: &Params) -> Vec<AgentId> {
    let stations = 2 + p.conveyors + p.machines;
    let mut ids = vec![WAREHOUSE];
    for line in 0..p.lines {
        ids.extend((0..stations).map(|s| AgentId(1000 * (line + 1) + s)));
    }
    ids
}

/// Agent `id`'s partition under the random placement (seeded).
pub fn random_partition(p: &Params, id: AgentId) -> usize {
    (mix(p.seed ^ mix(id.0)) % p.partitions as u64) as usize
}

/// The model on a new runtime, each agent where `place` says.
pub fn build(p: &Params, place: impl Fn(AgentId) -> usize) -> Result<Runtime, Error> {
    let mut rt = Runtime::new(p.partitions)?;
    let stations = 2 + p.conveyors + p.machines;
    let station = |role, next| Station {
        role,
        next,
        warehouse: WAREHOUSE,
        batch: p.batch,
        parts_every: p.parts_every,
        made: 0,
        seen: 0,
        hash: 0,
    };
    rt.add_with_id(place(WAREHOUSE), WAREHOUSE, station(Role::Warehouse, None))?;
    for line in 0..p.lines {
        for s in 0..stations {
            let id = AgentId(1000 * (line + 1) + s);
            let role = match s {
                0 => Role::Source,
                s if s <= p.conveyors => Role::Conveyor,
                s if s + 1 < stations => Role::Machine,
                _ => Role::Sink,
            };
            let next = (s + 1 < stations).then(|| AgentId(id.0 + 1));
            rt.add_with_id(place(id), id, station(role, next))?;
        }
    }
    Ok(rt)
}

/// The trace hash: the sum of every station's.
pub fn trace_hash(rt: &mut Runtime, p: &Params) -> Result<u64, Error> {
    let mut h = 0u64;
    for id in ids(p) {
        h = h.wrapping_add(rt.with_agent(id, |s: &Station| s.hash)?);
    }
    Ok(h)
}

/// Runs `rt` to `until` (simulated seconds from now), keeping its alarms.
pub fn run_for(rt: &mut Runtime, seconds: f64) -> Result<RuntimeReport, Error> {
    rt.run_with(RunOptions::new().seconds(seconds).clear_alarms_at_end(false))
}

/// What the three runs gave.
pub struct Outcome {
    /// The advice the measured run gave.
    pub advice: PlacementAdvice,
    /// The measured run's report.
    pub report: RuntimeReport,
    /// Trace hashes: random placement, advised, moved halfway.
    pub hashes: [u64; 3],
    /// Wall times of the three runs.
    pub walls: [Duration; 3],
}

/// The example's three runs (see the module docs).
pub fn run(p: &Params) -> Result<Outcome, Error> {
    // 1. Random placement, measured.
    let mut rt = build(p, |id| random_partition(p, id))?;
    rt.measure_traffic(true)?;
    let start = Instant::now();
    let report = run_for(&mut rt, p.end)?;
    let random_wall = start.elapsed();
    let random = trace_hash(&mut rt, p)?;
    let advice = report.suggest_placement(p.partitions)?;
    drop(rt);
    // 2. The same placement, the advice applied before the run.
    let mut rt = build(p, |id| random_partition(p, id))?;
    rt.apply_placement(&advice.placement)?;
    let start = Instant::now();
    run_for(&mut rt, p.end)?;
    let advised_wall = start.elapsed();
    let advised = trace_hash(&mut rt, p)?;
    drop(rt);
    // 3. Random placement, moved halfway.
    let mut rt = build(p, |id| random_partition(p, id))?;
    let start = Instant::now();
    run_for(&mut rt, p.end / 2.0)?;
    rt.apply_placement(&advice.placement)?;
    run_for(&mut rt, p.end - p.end / 2.0)?;
    let halfway_wall = start.elapsed();
    let halfway = trace_hash(&mut rt, p)?;
    Ok(Outcome {
        advice,
        report,
        hashes: [random, advised, halfway],
        walls: [random_wall, advised_wall, halfway_wall],
    })
}

/// The advised placement as a function of the id (for a fresh model).
pub fn advised(advice: &PlacementAdvice) -> impl Fn(AgentId) -> usize + '_ {
    |id| advice.placement.get(id).unwrap_or(0)
}

fn main() -> Result<(), Error> {
    let p = Params::parse();
    let o = run(&p)?;
    println!("{}", o.report);
    println!(
        "crossing messages: random {} advised {} ({:.0}% fewer)",
        o.advice.current_crossing,
        o.advice.crossing,
        o.advice.crossing_cut() * 100.0
    );
    let [random, advised, halfway] = o.hashes;
    assert_eq!(random, advised, "the advised placement tells another story");
    assert_eq!(random, halfway, "moving halfway tells another story");
    println!(
        "factories: hash {random:016x} random {:.3} s advised {:.3} s moved halfway {:.3} s",
        o.walls[0].as_secs_f64(),
        o.walls[1].as_secs_f64(),
        o.walls[2].as_secs_f64()
    );
    Ok(())
}
