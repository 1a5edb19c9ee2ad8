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
//! Run it: `cargo run --release --example conveyor` (`-- --help` says
//! what each flag does). The last lines read `conveyor: trace <hex>` (a
//! hash of the four logs) and `conveyor: sim 4.75 wall <seconds> ratio
//! <R>x`, the wall time counting the start and stop of the partitions.
//!
//! `--partitions 1` runs the four conveyors on one partition: the same
//! story and trace, with no message crossing. The model has two pairs of
//! conveyors, so it runs on 1 or 2 partitions (the default: 2); other
//! counts are refused.
//!
//! ## On two hosts
//!
//! With `--hosts 2 --host <h>` (and two partitions) the process runs
//! partition `h` only and reaches the other through a NATS server
//! (`--nats`, default `nats://127.0.0.1:4222`; `--run` names the run,
//! default `conveyor`):
//!
//! ```text
//! nats-server -a 127.0.0.1 -p 4222 &
//! cargo run -p maslite-nats --example runkey -- run.key   # the run's key, once
//! cargo run --release --example conveyor -- --hosts 2 --host 0 --key-file run.key &
//! cargo run --release --example conveyor -- --hosts 2 --host 1 --key-file run.key
//! ```
//!
//! (The flags of the `phold` example's "On several hosts" for the key and
//! the server's authentication and TLS are the same here.)
//!
//! Each host prints its conveyors' logs and `conveyor: host <h> of 2 trace
//! <hex>`: the two hashes add up (mod 2⁶⁴) to the one-process trace.

// (Both examples hold it: a crate that includes both has it twice.)
#[allow(clippy::duplicate_mod)]
#[path = "common/nats_flags.rs"]
pub mod nats_flags;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};
use maslite::prelude::*;
use maslite::runtime::transport::{Placement, Transport};
use maslite::runtime::{RuntimeReport, StopReason};
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Event {
    /// The box was put on this belt.
    Loaded { at: f64, item: u32 },
    /// The box left this belt for the next one.
    HandedOver { at: f64, item: u32, to: AgentId },
    /// The box ended its route here.
    Arrived { at: f64, item: u32 },
}

/// One conveyor (saveable: its state is all here, see [`types`]).
#[derive(Serialize, Deserialize)]
pub struct Conveyor {
    /// The next conveyor on the route (none: the route ends here).
    pub next: Option<AgentId>,
    /// The box on the belt.
    pub on_belt: Option<Box>,
    pub log: Vec<Event>,
}

impl Agent for Conveyor {
    async fn update(&mut self, cx: &Cx) {
        while let Some(env) = cx.try_recv() {
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

/// Conveyors 1..=4 on `partitions` partitions, 1 or 2 (1, 2 on partition
/// 0; 3, 4 on partition 1 % partitions), with the box loaded on conveyor 1.
pub fn build(partitions: usize) -> Result<Runtime, maslite::Error> {
    build_on(partitions, None)
}

/// The model's types: the payloads (that cross hosts, and are saved) and
/// the conveyor (saved in snapshots).
pub fn types() -> Types {
    let mut types = Types::new();
    types.register::<Transfer>().expect("registered once");
    types.register::<Notify>().expect("registered once");
    types.register::<Accept>().expect("registered once");
    types.register::<AtEnd>().expect("registered once");
    types.register_agent::<Conveyor>().expect("registered once");
    types
}

/// The payload types that cross hosts.
pub fn codec() -> Codec {
    Codec::from_types(types())
}

/// Host `host` of 2 (partition `host`), through the NATS server at `url`.
pub fn nats(url: &str, run: &str, host: u16) -> Result<NatsTransport, maslite::Error> {
    NatsTransport::new(url, run, Placement::new(vec![0, 1], host)?, codec())
}

/// [`build`], this host's share when `transport` spreads the partitions
/// over hosts (every host builds the same model).
pub fn build_on(
    partitions: usize,
    transport: Option<std::boxed::Box<dyn Transport>>,
) -> Result<Runtime, maslite::Error> {
    if !PARTITIONS.contains(&partitions) {
        return Err(maslite::Error::Config(format!(
            "the conveyor model runs on 1 or 2 partitions, not {partitions}"
        )));
    }
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
    rt.send(Envelope::new(Transfer { item, front_mm: 1250.0 }).to(AgentId(1)));
    Ok(rt)
}

/// The conveyors' logs, 1..=4.
pub fn logs(rt: &mut Runtime) -> Result<Vec<Vec<Event>>, maslite::Error> {
    (1..=4).map(|i| rt.with_agent(AgentId(i), |c: &Conveyor| c.log.clone())).collect()
}

/// Conveyors' logs, by id.
pub type Logs = Vec<(u64, Vec<Event>)>;

/// The logs of the conveyors on this host's partitions, by id.
pub fn local_logs(rt: &mut Runtime) -> Result<Logs, maslite::Error> {
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
pub fn timed_run(partitions: usize) -> Result<(RuntimeReport, f64), maslite::Error> {
    let wall = Instant::now();
    let mut rt = build(partitions)?;
    let report = rt.run()?;
    drop(rt); // stops and joins the partitions: counted in the wall time
    Ok((report, wall.elapsed().as_secs_f64()))
}

/// The partition counts the model runs on: its two pairs of conveyors on
/// one partition, or a pair on each of two.
pub const PARTITIONS: std::ops::RangeInclusive<usize> = 1..=2;

/// A box rides four conveyors on one simulated clock, on 1 or 2 partitions.
///
/// The box goes 1 -> 2 -> 3 -> 4, handed over at 0.75, 2.75 and 4.75 s.
/// Prints the conveyors' logs, the run's report, `conveyor: trace <hex>` (a
/// hash of the logs: the same on 1 or 2 partitions, and the sum of the
/// hosts' on two hosts) and the sim/wall ratio of a timed run.
#[derive(Clone, Debug, PartialEq, Parser)]
#[command(name = "conveyor")]
pub struct Options {
    /// Partitions: 1 (all four conveyors on one) or 2 (conveyors 1 and 2
    /// on partition 0, 3 and 4 on partition 1).
    #[arg(long, value_name = "P", default_value_t = 2)]
    pub partitions: usize,
    /// Hosts sharing the partitions over NATS: 1 (all here) or 2 (one
    /// partition each; needs --partitions 2).
    #[arg(long, value_name = "H", default_value_t = 1)]
    pub hosts: u16,
    /// This host (0..--hosts), which runs partition h: start the same
    /// command once per host.
    #[arg(long, value_name = "h", default_value_t = 0)]
    pub host: u16,
    /// The NATS server's URL (with two hosts).
    #[arg(long, value_name = "URL", default_value = "nats://127.0.0.1:4222")]
    pub nats: String,
    /// The run's name, the same on both hosts (with two hosts).
    #[arg(long = "run", value_name = "NAME", default_value = "conveyor")]
    pub run_name: String,
    /// The run's key and the server's authentication and TLS.
    #[command(flatten)]
    pub security: nats_flags::NatsFlags,
}

impl Default for Options {
    /// The command's defaults (as with no flags).
    fn default() -> Self {
        Options::try_parse_from(["conveyor"]).expect("the defaults are valid")
    }
}

impl Options {
    /// Parses a command line, the program's name first (as
    /// `std::env::args_os` gives it), and [`check`](Options::check)s it.
    /// Errors (and `--help`) are clap's: `e.exit()` prints them and exits
    /// as a command does.
    pub fn from_args<I, T>(args: I) -> Result<Options, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let o = Options::try_parse_from(args)?;
        o.check().map_err(|e| Options::command().error(ErrorKind::ValueValidation, e))?;
        Ok(o)
    }

    /// The partition count the model runs on, and hosts that fit it.
    pub fn check(&self) -> Result<(), String> {
        if !PARTITIONS.contains(&self.partitions) {
            return Err(format!(
                "--partitions {}: the model runs on 1 or 2 partitions (conveyors 1 and 2 on \
                 partition 0, 3 and 4 on partition 1)",
                self.partitions
            ));
        }
        if !(self.hosts == 1 || self.hosts == 2) || self.host >= self.hosts {
            return Err("--hosts is 1 or 2 (two partitions), and --host < --hosts".into());
        }
        if self.hosts == 2 && self.partitions != 2 {
            return Err("--hosts 2 runs a partition on each host: it needs --partitions 2".into());
        }
        Ok(())
    }
}

/// The command line: `conveyor --help` says what each flag does.
pub fn main() -> Result<(), maslite::Error> {
    let options = Options::from_args(std::env::args_os()).unwrap_or_else(|e| e.exit());
    command(&options)
}

/// The story as `options` say: the run's report and the logs of this
/// host's conveyors (all four on one host), by id.
pub fn story(options: &Options) -> Result<(RuntimeReport, Logs), maslite::Error> {
    let transport: Option<std::boxed::Box<dyn Transport>> = match options.hosts {
        1 => None,
        _ => {
            let nats = nats(&options.nats, &options.run_name, options.host)?;
            Some(std::boxed::Box::new(options.security.apply(nats)?))
        }
    };
    let mut rt = build_on(options.partitions, transport)?;
    let report = rt.run()?;
    let logs = local_logs(&mut rt)?;
    Ok((report, logs))
}

/// The command, on parsed flags: the story, its trace and (on one host)
/// the timing.
pub fn command(options: &Options) -> Result<(), maslite::Error> {
    // Logs on stderr: warnings (a dead letter, say) by default; more with
    // RUST_LOG, e.g. `RUST_LOG=maslite_runtime=debug`.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_thread_names(true)
        .with_writer(std::io::stderr)
        .try_init();
    // The story, with the logs read back from the conveyors.
    let (report, logs) = story(options)?;
    assert_eq!(report.reason, StopReason::Idle);
    for (i, log) in &logs {
        for e in log {
            println!("conveyor {i}: {e:?}");
        }
    }
    print!("{report}");
    if options.hosts > 1 {
        let (host, hosts) = (options.host, options.hosts);
        println!("conveyor: host {host} of {hosts} trace {:016x}", trace_hash(&logs));
        return Ok(());
    }
    println!("conveyor: trace {:016x}", trace_hash(&logs));
    // The timing, start and stop of the partitions included.
    let (report, wall) = timed_run(options.partitions)?;
    let sim = report.sim_seconds();
    println!("conveyor: sim {sim} wall {wall:.6} ratio {:.0}x", sim / wall);
    Ok(())
}
