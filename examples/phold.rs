//! # phold — the PHOLD benchmark model, on any number of partitions
//!
//! PHOLD is the standard benchmark of parallel discrete-event simulators,
//! as ROSS defines it: `N` logical processes (here, agents) each start with
//! `E` events. Processing an event schedules exactly one new event, at
//! `now + lookahead + Exp(mean − lookahead)`, for the agent itself or, with
//! probability `remote`, for an agent chosen uniformly. Each agent draws
//! from its own random stream, seeded from (seed, agent id), so the model
//! is the same however the agents are placed.
//!
//! Events are alarms. With the runtime's lookahead set to the model's (the
//! default here), partitions process windows of that length on their own
//! and meet only at each window's end.
//!
//! Every processed event is hashed from (time, receiver, sender, sender's
//! sequence number) and the hashes are summed: the total does not depend
//! on the order the partitions processed them in, and it is the same on 1,
//! 2 or N partitions — or the runtime is wrong.
//!
//! Run it: `cargo run --release --example phold -- --partitions 2`
//! (`-- --help` says what each flag does). Flags (defaults): `--agents 4096
//! --events 4 --remote 0.25 --lookahead 0.1 --mean 1 --end 100 --partitions
//! 1 --seed 1`, and `--window <L>` for the runtime's lookahead (default:
//! `--lookahead`; `0` runs lockstep). The last line reads
//! `phold: partitions <P> events <N> hash <hex> events/s <N>`.
//!
//! `--measure` measures the traffic between agents: the report then ends
//! with placement advice (`moving these N agents would cut crossing
//! messages from X to Y ...`).
//!
//! `--placement block|round-robin|random` places the agents on the
//! partitions: contiguous blocks of ids (the default), id mod P, or blocks
//! of a random permutation of the ids, seeded by `--placement-seed`
//! (default: `--seed`). The hash is the same under every placement.
//!
//! ## Checkpoints
//!
//! `--checkpoint-every 10 --checkpoint run.snap` writes the whole
//! simulation to `run.snap` every 10 simulated seconds (atomically: a kill
//! leaves the last good one). `--resume run.snap` goes on from it — on any
//! `--partitions` and `--placement` — to `--end`, and prints the line of
//! the whole run from t = 0: the same events and hash as a run never
//! stopped.
//!
//! ## On several hosts
//!
//! `--hosts H --host h` runs host `h`'s share of the partitions (in
//! blocks) and reaches the other hosts through a NATS server (`--nats`,
//! default `nats://127.0.0.1:4222`; `--run` names the run, default
//! `phold`). Start the same command once per host, each with its own
//! `--host`:
//!
//! ```text
//! nats-server -a 127.0.0.1 -p 4222 &
//! cargo run -p maslite-nats --example runkey -- run.key   # the run's key, once
//! cargo run --release --example phold -- --partitions 2 --hosts 2 --host 0 --key-file run.key &
//! cargo run --release --example phold -- --partitions 2 --hosts 2 --host 1 --key-file run.key
//! ```
//!
//! Every frame between hosts is authenticated with the run's key
//! (`--key-file`, or `$MASLITE_RUN_KEY`; `--encrypt` hides them too);
//! `--nats-creds`, `--nats-user` (password in `$MASLITE_NATS_PASSWORD`),
//! `--tls-ca`, `--tls-cert`/`--tls-key` reach a locked-down server.
//!
//! Each host prints the events and hash of its own agents; the run's hash
//! is the sum of the hosts' hashes (mod 2⁶⁴), the same as on one host.

// (Both examples hold it: a crate that includes both has it twice.)
#[allow(clippy::duplicate_mod)]
#[path = "common/nats_flags.rs"]
pub mod nats_flags;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser, ValueEnum};
use maslite::prelude::*;
use maslite::runtime::transport::{Placement, Transport};
use maslite::runtime::{Checkpoints, RuntimeReport};
use maslite_nats::{Codec, NatsTransport};
use serde::{Deserialize, Serialize};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// How the agents are spread over the partitions (`--placement`). The
/// model, and so the run's hash, is the same under every placement; only
/// the traffic between partitions changes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum AgentPlacement {
    /// Contiguous blocks of ids, one per partition: agents 0..N/P on
    /// partition 0, and so on.
    #[default]
    #[value(alias = "blocks")]
    Block,
    /// Agent i on partition i mod P.
    RoundRobin,
    /// Blocks of a random permutation of the ids (equal shares, the same
    /// on every host), seeded by `--placement-seed`.
    Random,
}

/// The PHOLD benchmark model, on any number of partitions and hosts.
///
/// N agents start with E events each. Processing an event schedules one
/// more, at now + lookahead + Exp(mean - lookahead), for the agent itself
/// or, with probability `remote`, for an agent chosen uniformly. The last
/// line reads `phold: partitions <P> events <N> hash <hex> events/s <N>`:
/// the hash does not depend on the partitions, the placement or the hosts.
#[derive(Clone, Debug, PartialEq, Parser)]
#[command(name = "phold")]
pub struct Params {
    /// Agents (logical processes), at least 1.
    #[arg(long, value_name = "N", default_value_t = 4096)]
    pub agents: u64,
    /// Events each agent starts with.
    #[arg(long, value_name = "E", default_value_t = 4)]
    pub events: u32,
    /// Probability (0..=1) that an event is for an agent chosen uniformly
    /// rather than for the agent itself.
    #[arg(long, value_name = "P", default_value_t = 0.25)]
    pub remote: f64,
    /// The model's lookahead: the least delay of an event after the one
    /// that scheduled it, in simulated seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 0.1)]
    pub lookahead: f64,
    /// The mean delay of an event after the one that scheduled it (more
    /// than --lookahead).
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    pub mean: f64,
    /// The simulated time the run ends at.
    #[arg(long, value_name = "SECONDS", default_value_t = 100.0)]
    pub end: f64,
    /// Partitions (one thread each), at least 1 (and at least --hosts).
    #[arg(long, value_name = "P", default_value_t = 1)]
    pub partitions: usize,
    /// How the agents are placed on the partitions.
    #[arg(long, value_enum, default_value_t = AgentPlacement::Block)]
    pub placement: AgentPlacement,
    /// The seed of `--placement random` [default: --seed].
    #[arg(long, value_name = "SEED")]
    pub placement_seed: Option<u64>,
    /// The seed of the agents' random streams.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The runtime's lookahead, the length of the windows the partitions
    /// run on their own; 0 runs lockstep [default: --lookahead].
    #[arg(long, value_name = "SECONDS")]
    pub window: Option<f64>,
    /// Measure the traffic between agents: the report (on stderr) then
    /// ends with placement advice for --partitions (PHOLD's remote events
    /// go to agents chosen uniformly: expect little to gain). One host only
    /// (ignored with --hosts).
    #[arg(long)]
    pub measure: bool,
    /// Hosts sharing the partitions (in blocks) over NATS; 1: all here.
    #[arg(long, value_name = "H", default_value_t = 1)]
    pub hosts: u16,
    /// This host (0..--hosts): start the same command once per host.
    #[arg(long, value_name = "h", default_value_t = 0)]
    pub host: u16,
    /// The NATS server's URL (with several hosts).
    #[arg(long, value_name = "URL", default_value = "nats://127.0.0.1:4222")]
    pub nats: String,
    /// The run's name, the same on every host (with several hosts).
    #[arg(long = "run", value_name = "NAME", default_value = "phold")]
    pub run_name: String,
    /// Write a checkpoint every SECONDS of simulated time (to
    /// --checkpoint).
    #[arg(long, value_name = "SECONDS", requires = "checkpoint")]
    pub checkpoint_every: Option<f64>,
    /// The checkpoint file (written atomically; the last one is kept).
    #[arg(long, value_name = "PATH", requires = "checkpoint_every")]
    pub checkpoint: Option<std::path::PathBuf>,
    /// Resume from a checkpoint (on any --partitions and --placement) and
    /// run on to --end; the result line is the whole run's, from t = 0.
    #[arg(long, value_name = "PATH")]
    pub resume: Option<std::path::PathBuf>,
    /// The run's key and the server's authentication and TLS.
    #[command(flatten)]
    pub security: nats_flags::NatsFlags,
}

impl Default for Params {
    /// The command's defaults (as with no flags).
    fn default() -> Self {
        Params::try_parse_from(["phold"]).expect("the defaults are valid")
    }
}

impl Params {
    /// Parses a command line, the program's name first (as
    /// `std::env::args_os` gives it), and [`check`](Params::check)s it.
    /// Errors (and `--help`, `--version`) are clap's: `e.exit()` prints
    /// them and exits as a command does.
    pub fn from_args<I, T>(args: I) -> Result<Params, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let p = Params::try_parse_from(args)?;
        p.check().map_err(|e| Params::command().error(ErrorKind::ValueValidation, e))?;
        Ok(p)
    }

    /// What the flags' types do not say: counts of at least 1, a
    /// probability, a lookahead below the mean, a host among the hosts.
    pub fn check(&self) -> Result<(), String> {
        let p = self;
        if p.agents == 0 || p.partitions == 0 {
            return Err("--agents and --partitions must be at least 1".into());
        }
        if p.hosts == 0 || p.host >= p.hosts || p.partitions < p.hosts as usize {
            return Err("need --host < --hosts <= --partitions".into());
        }
        if !(0.0..=1.0).contains(&p.remote) {
            return Err("--remote is a probability (0..=1)".into());
        }
        if !(p.lookahead >= 0.0 && p.mean > p.lookahead && p.end.is_finite() && p.end >= 0.0) {
            return Err("need 0 <= --lookahead < --mean and a finite --end >= 0".into());
        }
        if p.checkpoint_every.is_some_and(|t| !(t.is_finite() && t > 0.0)) {
            return Err("--checkpoint-every is a positive number of seconds".into());
        }
        if p.hosts > 1 && (p.checkpoint.is_some() || p.resume.is_some()) {
            return Err("checkpoints and --resume run on one host".into());
        }
        Ok(())
    }

    /// The partition of each agent, by id (0..agents), as `--placement`
    /// says. Every host computes the same.
    pub fn layout(&self) -> Vec<usize> {
        let (n, parts) = (self.agents, self.partitions as u128);
        let block = |k: u64| (k as u128 * parts / n as u128) as usize;
        match self.placement {
            AgentPlacement::Block => (0..n).map(block).collect(),
            AgentPlacement::RoundRobin => (0..n).map(|i| (i as u128 % parts) as usize).collect(),
            AgentPlacement::Random => {
                // Fisher-Yates on a stream of its own (no agent has the id
                // u64::MAX), then blocks of the shuffled ids.
                let mut rng = Rng::new(self.placement_seed.unwrap_or(self.seed), u64::MAX);
                let mut ids: Vec<u64> = (0..n).collect();
                for k in (1..ids.len()).rev() {
                    let j = (rng.next_u64() % (k as u64 + 1)) as usize;
                    ids.swap(k, j);
                }
                let mut layout = vec![0; ids.len()];
                for (k, id) in ids.into_iter().enumerate() {
                    layout[id as usize] = block(k as u64);
                }
                layout
            }
        }
    }
}

/// splitmix64: a small, fast, well-mixed generator, the same everywhere.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64, stream: u64) -> Rng {
        let mut r = Rng(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
        r.next_u64();
        r
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in (0, 1].
    pub fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }
}

/// An event: who scheduled it, as its `seq`-th event.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Event {
    pub seq: u64,
}

/// What every agent knows of the model (the flags that shape it).
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Model {
    pub agents: u64,
    pub events: u32,
    pub remote: f64,
    pub lookahead: f64,
    pub mean: f64,
}

/// One logical process (saved whole in a snapshot: see `--checkpoint`).
#[derive(Serialize, Deserialize)]
pub struct Lp {
    pub model: Model,
    pub rng: Rng,
    pub sent: u64,
    pub processed: u64,
    /// Sum of the processed events' hashes.
    pub hash: u64,
}

impl Lp {
    pub fn new(params: &Params, id: AgentId) -> Lp {
        let model = Model {
            agents: params.agents,
            events: params.events,
            remote: params.remote,
            lookahead: params.lookahead,
            mean: params.mean,
        };
        Lp { model, rng: Rng::new(params.seed, id.0), sent: 0, processed: 0, hash: 0 }
    }

    fn schedule(&mut self, cx: &Cx) {
        let p = &self.model;
        let delay = p.lookahead - (p.mean - p.lookahead) * self.rng.unit().ln();
        let to = if self.rng.unit() <= p.remote {
            AgentId(self.rng.next_u64() % p.agents)
        } else {
            cx.id()
        };
        self.sent += 1;
        let event = Envelope::new(Event { seq: self.sent }).to(to);
        cx.set_alarm(Alarm::after(delay, event)).expect("delays are finite and >= 0");
    }
}

/// The hash of one processed event.
pub fn event_hash(time: f64, receiver: AgentId, sender: AgentId, seq: u64) -> u64 {
    let mut r = Rng(time.to_bits() ^ receiver.0.rotate_left(17) ^ sender.0.rotate_left(37));
    r.0 ^= seq.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    r.next_u64()
}

impl Agent for Lp {
    async fn setup(&mut self, cx: &Cx) {
        for _ in 0..self.model.events {
            self.schedule(cx);
        }
    }

    async fn update(&mut self, cx: &Cx) {
        while let Some(env) = cx.try_recv() {
            let seq = env.payload::<Event>().map_or(0, |e| e.seq);
            self.hash = self.hash.wrapping_add(event_hash(cx.now(), cx.id(), env.sender(), seq));
            self.processed += 1;
            self.schedule(cx);
        }
    }
}

/// What a run of the model gave.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub report: RuntimeReport,
    pub events: u64,
    pub hash: u64,
    pub events_per_second: f64,
}

/// Builds the model (the agents placed as [`Params::layout`] says) and
/// runs it to `end`.
pub fn run(params: &Params) -> Result<Outcome, maslite::Error> {
    run_watched(params, |_| {})
}

/// The model's types: the payload that crosses hosts, and the agent that
/// snapshots save. One registry for both.
pub fn types() -> Types {
    let mut types = Types::new();
    types.register::<Event>().expect("one registration");
    types.register_agent::<Lp>().expect("one registration");
    types
}

/// The payload types that cross hosts.
pub fn codec() -> Codec {
    Codec::from_types(types())
}

/// The transport to the other hosts, if there are any: NATS, with the
/// partitions in blocks.
pub fn transport(params: &Params) -> Result<Option<Box<dyn Transport>>, maslite::Error> {
    if params.hosts <= 1 {
        return Ok(None);
    }
    let placement = Placement::blocks(params.partitions, params.hosts, params.host)?;
    let nats = NatsTransport::new(&params.nats, &params.run_name, placement, codec())?;
    Ok(Some(Box::new(params.security.apply(nats)?)))
}

/// [`run`], handing the runtime to `watch` just before the run starts
/// (to take its progress stream, say).
pub fn run_watched(
    params: &Params,
    watch: impl FnOnce(&Runtime),
) -> Result<Outcome, maslite::Error> {
    run_hosted(params, transport(params)?, watch)
}

/// [`run_watched`] with a transport to other hosts (or none): this host's
/// share of the events and hash.
pub fn run_hosted(
    params: &Params,
    transport: Option<Box<dyn Transport>>,
    watch: impl FnOnce(&Runtime),
) -> Result<Outcome, maslite::Error> {
    let mut rt = build(params, transport)?;
    if params.measure && params.hosts <= 1 {
        rt.measure_traffic(true)?;
    }
    // Resumed: the events before the checkpoint are in the agents' counts.
    let before = if params.resume.is_some() { totals(&mut rt, params)?.0 } else { 0 };
    watch(&rt);
    let wall = Instant::now();
    let opts = RunOptions::new().until(params.end);
    let report = match (params.checkpoint_every, &params.checkpoint) {
        (Some(every), Some(path)) => {
            let mut checkpoints = Checkpoints::every(every, path, types())?;
            rt.run_with_checkpoints(opts, &mut checkpoints)?
        }
        _ => rt.run_with(opts)?,
    };
    let wall = wall.elapsed().as_secs_f64();
    let (events, hash) = totals(&mut rt, params)?;
    // The whole run's events and hash (from t = 0, when resumed); the
    // speed of this process's share of them.
    let here = events - before;
    Ok(Outcome { report, events, hash, events_per_second: here as f64 / wall })
}

/// The model's runtime, built as the flags say (or resumed from
/// `--resume`), not yet run.
pub fn build(
    params: &Params,
    transport: Option<Box<dyn Transport>>,
) -> Result<Runtime, maslite::Error> {
    let window = params.window.unwrap_or(params.lookahead);
    let mut builder = Runtime::builder().partitions(params.partitions).lookahead(window);
    if let Some(transport) = transport {
        builder = builder.transport(transport);
    }
    let layout = params.layout();
    let rt = match &params.resume {
        Some(path) => {
            let file = std::fs::File::open(path).map_err(|e| {
                maslite::Error::SnapshotIo(format!("opening {}: {e}", path.display()))
            })?;
            let input = std::io::BufReader::new(file);
            let place = |id: AgentId| layout.get(id.0 as usize).copied().unwrap_or(0);
            Runtime::restore(builder, &types(), input, place)?
        }
        None => {
            let mut rt = builder.build()?;
            for (i, &partition) in layout.iter().enumerate() {
                let id = AgentId(i as u64);
                rt.add_with_id(partition, id, Lp::new(params, id))?;
            }
            rt
        }
    };
    Ok(rt)
}

/// The events processed and their hash, summed over this host's agents.
pub fn totals(rt: &mut Runtime, params: &Params) -> Result<(u64, u64), maslite::Error> {
    let (mut events, mut hash) = (0u64, 0u64);
    let here: Vec<usize> = (0..params.partitions).filter(|&q| rt.is_local(q)).collect();
    for q in here {
        let (e, h) = rt.with_partition(q, |s| {
            let (mut e, mut h) = (0u64, 0u64);
            for id in s.agent_ids() {
                if let Ok(lp) = s.agent::<Lp>(id) {
                    e += lp.processed;
                    h = h.wrapping_add(lp.hash);
                }
            }
            (e, h)
        })?;
        events += e;
        hash = hash.wrapping_add(h);
    }
    Ok((events, hash))
}

/// The command line: `phold --help` says what each flag does.
pub fn main() -> ExitCode {
    let params = Params::from_args(std::env::args_os()).unwrap_or_else(|e| e.exit());
    command(&params)
}

/// The command, on parsed flags: the run's progress and report on stderr,
/// its result line on stdout.
pub fn command(params: &Params) -> ExitCode {
    // Logs on stderr: warnings (a dead letter, say) by default; more with
    // RUST_LOG, e.g. `RUST_LOG=maslite_runtime=debug`.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_thread_names(true)
        .with_writer(std::io::stderr)
        .try_init();
    let end = params.end;
    let mut shown = None;
    let outcome = run_watched(params, |rt| {
        let progress = rt.progress(Duration::from_millis(100));
        shown = Some(std::thread::spawn(move || show_progress(progress, end)));
    });
    if let Some(shown) = shown {
        let _ = shown.join();
    }
    match outcome {
        Ok(o) => {
            eprint!("{}", o.report);
            // On several hosts, this host's share: the run's hash is the
            // hosts' sum.
            let who = match params.hosts {
                1 => String::new(),
                n => format!("host {} of {n} ", params.host),
            };
            println!(
                "phold: {who}partitions {} events {} hash {:016x} events/s {:.0}",
                params.partitions, o.events, o.hash, o.events_per_second
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("phold: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Shows a run's progress on stderr until it ends: a bar (indicatif) on a
/// terminal, else a plain line a second.
pub fn show_progress(mut progress: maslite::runtime::Progress, end: f64) {
    use std::io::IsTerminal;
    let line = |s: &maslite::runtime::ProgressSample| {
        format!(
            "sim {:.1}/{end} s, wall {:.1} s, ratio {:.0}x, {:.2} M msgs/s",
            s.now,
            s.wall.as_secs_f64(),
            s.ratio,
            s.messages_per_second / 1e6
        )
    };
    if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(1000);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {msg}").expect("a valid template"),
        );
        while let Some(s) = progress.next_blocking() {
            bar.set_position((s.now / end * 1000.0).clamp(0.0, 1000.0) as u64);
            bar.set_message(line(&s));
        }
        bar.finish_and_clear();
    } else {
        let mut last = None;
        while let Some(s) = progress.next_blocking() {
            if last.is_none_or(|t: Duration| s.wall >= t + Duration::from_secs(1)) {
                eprintln!("phold: {}", line(&s));
                last = Some(s.wall);
            }
        }
    }
}
