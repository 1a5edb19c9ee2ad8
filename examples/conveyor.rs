//! # conveyor — a box rides four conveyors on two partitions
//!
//! The second demo of maslite's multiprocessing design, on one simulated
//! clock. Four conveyors (1000 mm/s, 2000 mm long) stand in a line; 1 and 2
//! run on partition 0, 3 and 4 on partition 1. A 500 mm box starts on
//! conveyor 1 with its front at 1250 mm and travels the route 1 → 2 → 3 →
//! 4. At each end of a belt the two conveyors talk:
//!
//! 1. the belt's alarm rings when the box's front reaches its end;
//! 2. the conveyor *notifies* the next one that a box is coming;
//! 3. the next conveyor *accepts* it;
//! 4. the conveyor *transfers* the box, and the next one sets its own alarm
//!    for when the box will reach its end.
//!
//! The hand-overs happen at simulated 0.75 s, 2.75 s and 4.75 s; the box
//! ends its route on conveyor 4 and the run ends, idle, at 4.75 s. The 2 →
//! 3 hand-over crosses partitions: its three messages and the alarm after
//! it happen in the same simulated instant, as on one partition.
//!
//! Run it: `cargo run --release --example conveyor`. The last lines read
//! `conveyor: trace <hex>` (a hash of the four logs) and `conveyor: sim
//! 4.75 wall <seconds> ratio <R>x`, the wall time counting the start and
//! stop of both partitions.
//!
//! ## On two hosts
//!
//! With `--hosts 2 --host <h>` the process runs partition `h` only and
//! reaches the other through a NATS server (`--nats`, default
//! `nats://127.0.0.1:4222`; `--run` names the run, default `conveyor`):
//!
//! ```text
//! nats-server -a 127.0.0.1 -p 4222 &
//! cargo run --release --example conveyor -- --hosts 2 --host 0 &
//! cargo run --release --example conveyor -- --hosts 2 --host 1
//! ```
//!
//! Each host prints its conveyors' logs and `conveyor: host <h> of 2 trace
//! <hex>`: the two hashes add up (mod 2⁶⁴) to the one-process trace.

use maslite::prelude::*;
use maslite::runtime::transport::{Placement, Transport};
use maslite::runtime::{RunReport, StopReason};
use maslite_nats::{Codec, NatsTransport};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Belt speed, mm/s.
pub const SPEED: f64 = 1000.0;
/// Belt length, mm.
pub const LENGTH: f64 = 2000.0;

/// A box on the move.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Box {
    pub id: u32,
    pub length_mm: f64,
}

/// Puts a box on a belt, its front at `front_mm` (from outside, or by the
/// previous conveyor: then the front is at 0).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Transfer {
    pub item: Box,
    pub front_mm: f64,
}

/// "A box is coming."
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Notify {
    pub item: Box,
}

/// "Send it."
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Accept {
    pub item: u32,
}

/// The belt's alarm: the box's front is at the end.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AtEnd;

/// What a conveyor saw, for the log.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// The box was put on this belt.
    Loaded { at: f64, item: u32 },
    /// The box left this belt for the next one.
    HandedOver { at: f64, item: u32, to: AgentId },
    /// The box ended its route here.
    Arrived { at: f64, item: u32 },
}

/// One conveyor.
pub struct Conveyor {
    /// The next conveyor on the route (none: the route ends here).
    pub next: Option<AgentId>,
    /// The box on the belt.
    pub on_belt: Option<Box>,
    pub log: Vec<Event>,
}

impl Agent for Conveyor {
    async fn update(&mut self, cx: &Cx) {
        while let Some(env) = cx.receive() {
            if let Ok(t) = env.payload::<Transfer>() {
                let item = t.item.clone();
                self.log.push(Event::Loaded { at: cx.now(), item: item.id });
                match self.next {
                    Some(_) => {
                        let travel = (LENGTH - t.front_mm) / SPEED;
                        cx.set_alarm(Alarm::after(travel, Envelope::new(AtEnd).to(cx.id())))
                            .expect("a travel time is never negative");
                    }
                    None => self.log.push(Event::Arrived { at: cx.now(), item: item.id }),
                }
                self.on_belt = Some(item);
            } else if env.is::<AtEnd>() {
                let (Some(next), Some(item)) = (self.next, self.on_belt.clone()) else { continue };
                cx.send(Envelope::new(Notify { item }).to(next));
            } else if let Ok(n) = env.payload::<Notify>() {
                // A free belt accepts at once.
                if self.on_belt.is_none() {
                    cx.send(Envelope::new(Accept { item: n.item.id }).to(env.sender()));
                }
            } else if let Ok(a) = env.payload::<Accept>() {
                let (Some(next), Some(item)) = (self.next, self.on_belt.take()) else { continue };
                debug_assert_eq!(item.id, a.item);
                self.log.push(Event::HandedOver { at: cx.now(), item: item.id, to: next });
                cx.send(Envelope::new(Transfer { item, front_mm: 0.0 }).to(next));
            }
        }
    }
}

/// Conveyors 1..=4 on `partitions` partitions (1, 2 on partition 0; 3, 4
/// on partition 1 % partitions), with the box loaded on conveyor 1.
pub fn build(partitions: usize) -> Result<Runtime, maslite::runtime::Error> {
    build_on(partitions, None)
}

/// The payload types that cross hosts.
pub fn codec() -> Codec {
    let mut codec = Codec::new();
    codec.register::<Transfer>().expect("registered once");
    codec.register::<Notify>().expect("registered once");
    codec.register::<Accept>().expect("registered once");
    codec.register::<AtEnd>().expect("registered once");
    codec
}

/// Host `host` of 2 (partition `host`), through the NATS server at `url`.
pub fn nats(url: &str, run: &str, host: u16) -> Result<NatsTransport, maslite::runtime::Error> {
    NatsTransport::new(url, run, Placement::new(vec![0, 1], host)?, codec())
}

/// [`build`], this host's share when `transport` spreads the partitions
/// over hosts (every host builds the same model).
pub fn build_on(
    partitions: usize,
    transport: Option<std::boxed::Box<dyn Transport>>,
) -> Result<Runtime, maslite::runtime::Error> {
    let mut builder = Runtime::builder().partitions(partitions);
    if let Some(transport) = transport {
        builder = builder.transport(transport);
    }
    let mut rt = builder.build()?;
    for i in 1..=4u64 {
        let next = (i < 4).then(|| AgentId(i + 1));
        let p = ((i as usize - 1) / 2) % partitions;
        rt.add_with_id(p, AgentId(i), Conveyor { next, on_belt: None, log: Vec::new() })?;
    }
    let item = Box { id: 1, length_mm: 500.0 };
    rt.send(Envelope::new(Transfer { item, front_mm: 1250.0 }).to(AgentId(1)))?;
    Ok(rt)
}

/// The conveyors' logs, 1..=4.
pub fn logs(rt: &mut Runtime) -> Result<Vec<Vec<Event>>, maslite::runtime::Error> {
    (1..=4).map(|i| rt.with_agent(AgentId(i), |c: &Conveyor| c.log.clone())).collect()
}

/// The logs of the conveyors on this host's partitions, by id.
pub fn local_logs(rt: &mut Runtime) -> Result<Vec<(u64, Vec<Event>)>, maslite::runtime::Error> {
    let mut out = Vec::new();
    for i in 1..=4u64 {
        if rt.partition_of(AgentId(i)).is_some_and(|p| rt.is_local(p)) {
            out.push((i, rt.with_agent(AgentId(i), |c: &Conveyor| c.log.clone())?));
        }
    }
    Ok(out)
}

/// A hash of conveyors' logs: a sum over conveyors, so the hosts' hashes
/// add up to the whole model's.
pub fn trace_hash(logs: &[(u64, Vec<Event>)]) -> u64 {
    logs.iter().fold(0u64, |sum, (id, log)| {
        // FNV-1a over the conveyor's id and its log as text.
        let text = format!("{id}:{log:?}");
        let h = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
        });
        sum.wrapping_add(h)
    })
}

/// The times of the hand-overs, in order.
pub fn handovers(logs: &[Vec<Event>]) -> Vec<f64> {
    let mut t: Vec<f64> = logs
        .iter()
        .flatten()
        .filter_map(|e| match e {
            Event::HandedOver { at, .. } => Some(*at),
            _ => None,
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t
}

/// Runs the model: the report, and the wall seconds from starting the
/// partitions to having joined them.
pub fn timed_run(partitions: usize) -> Result<(RunReport, f64), maslite::runtime::Error> {
    let wall = Instant::now();
    let mut rt = build(partitions)?;
    let report = rt.run()?;
    drop(rt); // stops and joins the partitions: counted in the wall time
    Ok((report, wall.elapsed().as_secs_f64()))
}

pub fn main() -> Result<(), maslite::runtime::Error> {
    cli(std::env::args().skip(1))
}

/// The command, given its flags.
pub fn cli(args: impl Iterator<Item = String>) -> Result<(), maslite::runtime::Error> {
    // Logs on stderr: warnings (a dead letter, say) by default; more with
    // RUST_LOG, e.g. `RUST_LOG=maslite_runtime=debug`.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_thread_names(true)
        .with_writer(std::io::stderr)
        .try_init();
    let (hosts, host, url, run) = match flags(args) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("conveyor: {e}");
            std::process::exit(2);
        }
    };
    let transport: Option<std::boxed::Box<dyn Transport>> = match hosts {
        1 => None,
        _ => Some(std::boxed::Box::new(nats(&url, &run, host)?)),
    };
    // The story, with the logs read back from the conveyors.
    let mut rt = build_on(2, transport)?;
    let report = rt.run()?;
    assert_eq!(report.reason, StopReason::Idle);
    let logs = local_logs(&mut rt)?;
    for (i, log) in &logs {
        for e in log {
            println!("conveyor {i}: {e:?}");
        }
    }
    print!("{report}");
    drop(rt);
    if hosts > 1 {
        println!("conveyor: host {host} of {hosts} trace {:016x}", trace_hash(&logs));
        return Ok(());
    }
    println!("conveyor: trace {:016x}", trace_hash(&logs));
    // The timing, start and stop of the partitions included.
    let (report, wall) = timed_run(2)?;
    let sim = report.sim_seconds();
    println!("conveyor: sim {sim} wall {wall:.6} ratio {:.0}x", sim / wall);
    Ok(())
}

/// `--hosts`, `--host`, `--nats`, `--run`: (hosts, host, url, run name).
pub fn flags(args: impl IntoIterator<Item = String>) -> Result<(u16, u16, String, String), String> {
    let (mut hosts, mut host) = (1u16, 0u16);
    let (mut url, mut run) = ("nats://127.0.0.1:4222".to_string(), "conveyor".to_string());
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--hosts" => hosts = value.parse().map_err(|e| bad(&e))?,
            "--host" => host = value.parse().map_err(|e| bad(&e))?,
            "--nats" => url = value,
            "--run" => run = value,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if !(hosts == 1 || hosts == 2) || host >= hosts {
        return Err("--hosts is 1 or 2 (two partitions), and --host < --hosts".into());
    }
    Ok((hosts, host, url, run))
}
