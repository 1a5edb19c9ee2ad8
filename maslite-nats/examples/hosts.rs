//! # hosts — what spreading 2 partitions over 2 hosts costs, on one machine
//!
//! Two models, each measured three ways in the same invocation (so the
//! ratios compare like with like):
//!
//! - **ping-pong**: one u64 bounced `--hops` times (default 5 000) between
//!   agent 1 on partition 0 and agent 2 on partition 1; every hop is one
//!   lockstep step: µs per hop.
//! - **stream**: agent 1 on partition 0 sends `--batch` (default 1 000)
//!   messages per step to agent 2 on partition 1 (a note to itself keeps
//!   it going, as maslite-bench's `xstream`), `--messages` in all (default
//!   1 000 000): messages/s.
//!
//! The three ways:
//!
//! 1. `local`: one runtime, 2 partitions, no transport;
//! 2. `inproc`: 2 hosts as 2 runtimes of this process joined by
//!    [`InProcess`] (the cost of the transport threads' hop);
//! 3. `nats`: 2 OS processes through a `nats-server` on a free port of
//!    127.0.0.1 (or `--url`): this program starts the server, re-executes
//!    itself as host 1 (`--host 1 --url …`) and is host 0; both build the
//!    same runtime and add the same agents in the same order.
//!
//! Each run builds its runtime, does one empty run (so both hosts start
//! the measured run together: lockstep needs every host's control), adds
//! the model and times `run` on host 0. It prints medians and min–max of
//! `--runs` (default 5), each median's wall time as a multiple of
//! `local`'s, and what the codec costs per step, measured on its own.
//!
//! Run it: `cargo run --release -p maslite-nats --example hosts`.
//!
//! Every runtime is built with the defaults (partitions pinned to cores,
//! the default spin before parking) unless `--no-pin` or `--spin-us S` say
//! otherwise. Other flags: `--only local|inproc|nats` (the others are
//! skipped: for a profiler), `--case pingpong|stream`, `--url` (a running
//! server), `--protect mac|encrypt|insecure` (the NATS frames
//! authenticated with a run key, the default; also encrypted; or neither,
//! to measure what that costs).

use maslite_core::{AgentId, Envelope};
use maslite_nats::key::RUN_KEY_ENV;
use maslite_nats::packet::{Arrival, PacketReader, PacketWriter};
use maslite_nats::{Codec, NatsTransport, RunKey};
use maslite_runtime::transport::{Control, InProcess, Packet, Placement, Sent};
use maslite_runtime::{Builder, Runtime, RuntimeReport, StopReason};
use serde::{Deserialize, Serialize};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// A streamed message.
#[derive(Clone, Serialize, Deserialize)]
struct Item(u64);

/// The two models.
#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
enum Case {
    /// One u64 bounced between two agents on two partitions.
    #[value(name = "pingpong")]
    PingPong,
    /// Batches of messages one way.
    Stream,
}

/// The three ways.
#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
enum Way {
    /// One runtime, 2 partitions.
    Local,
    /// 2 hosts as 2 runtimes of this process.
    #[value(name = "inproc")]
    InProc,
    /// 2 OS processes through a nats-server.
    Nats,
}

impl Way {
    fn name(self) -> &'static str {
        match self {
            Way::Local => "local",
            Way::InProc => "inproc",
            Way::Nats => "nats",
        }
    }
}

/// What spreading 2 partitions over 2 hosts costs: ping-pong and stream,
/// each measured locally, as in-process hosts and as NATS processes.
#[derive(Clone, Debug, clap::Parser)]
#[command(name = "hosts")]
struct Opts {
    /// Ping-pong hops per run.
    #[arg(long, default_value_t = 5000)]
    hops: u64,
    /// Stream: messages per run.
    #[arg(long, default_value_t = 1_000_000)]
    messages: u64,
    /// Stream: messages per step (at least 1).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    batch: u64,
    /// Measured runs per case and way (at least 1).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    runs: u64,
    /// A running NATS server [default: start one on a free port].
    #[arg(long)]
    url: Option<String>,
    /// This process is host N (the benchmark starts host 1 itself).
    #[arg(long, hide = true)]
    host: Option<u16>,
    /// Names this invocation's NATS runs (unique on a shared server).
    #[arg(long, default_value_t = format!("hosts{}", std::process::id()))]
    tag: String,
    /// Measure one way only.
    #[arg(long, value_enum)]
    only: Option<Way>,
    /// Measure one case only.
    #[arg(long, value_enum)]
    case: Option<Case>,
    /// Do not pin the partitions' threads to cores.
    #[arg(long)]
    no_pin: bool,
    /// Microseconds a partition spins for packets before it parks.
    #[arg(long = "spin-us", value_parser = parse_micros)]
    spin: Option<Duration>,
    /// How the NATS runs' frames are protected.
    #[arg(long, value_enum, default_value_t = Protect::Mac)]
    protect: Protect,
}

fn parse_micros(s: &str) -> Result<Duration, String> {
    s.parse::<u64>().map(Duration::from_micros).map_err(|e| format!("{s}: {e}"))
}

/// How frames between hosts are protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Protect {
    /// HMAC-SHA256 on every frame (the default).
    Mac,
    /// ChaCha20-Poly1305: frames authenticated and unreadable.
    Encrypt,
    /// No run key.
    Insecure,
}

impl Opts {
    fn cases(&self) -> Vec<Case> {
        [Case::PingPong, Case::Stream]
            .into_iter()
            .filter(|c| self.case.is_none_or(|o| o == *c))
            .collect()
    }

    fn ways(&self) -> Vec<Way> {
        [Way::Local, Way::InProc, Way::Nats]
            .into_iter()
            .filter(|w| self.only.is_none_or(|o| o == *w))
            .collect()
    }

    /// A builder for a runtime of 2 partitions (all of them, or one
    /// host's share once given a transport).
    fn builder(&self) -> Builder {
        let mut b = Runtime::builder().partitions(2);
        if self.no_pin {
            b = b.pin_cores(false);
        }
        if let Some(spin) = self.spin {
            b = b.spin(spin);
        }
        b
    }
}

/// The payload types that cross hosts.
fn codec() -> Codec {
    let mut codec = Codec::new();
    codec.register::<u64>().expect("one registration");
    codec.register::<Item>().expect("one registration");
    codec
}

/// Adds `case`'s agents and first message: the same on every host.
fn model(rt: &mut Runtime, case: Case, o: &Opts) {
    let (a, b) = (AgentId(1), AgentId(2));
    match case {
        Case::PingPong => {
            let hops = o.hops;
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
        }
        Case::Stream => {
            let (messages, batch) = (o.messages, o.batch);
            rt.spawn_with_id(1, b, move |cx| async move {
                let mut got = 0;
                while got < messages {
                    cx.recv().await;
                    got += 1;
                }
            })
            .unwrap();
            rt.spawn_with_id(0, a, move |cx| async move {
                let mut sent = 0;
                while sent < messages {
                    for _ in 0..batch.min(messages - sent) {
                        cx.send(Envelope::new(Item(sent)).to(b));
                        sent += 1;
                    }
                    // The next batch in the next step: a note to itself.
                    cx.send(Envelope::new(Item(sent)).to(cx.id()));
                    cx.recv().await;
                }
            })
            .unwrap();
        }
    }
}

/// Checks this host's share of the run: messages crossing from each of
/// its partitions, and why it stopped.
fn check(case: Case, o: &Opts, report: &RuntimeReport) {
    let (reason, crossing): (StopReason, [u64; 2]) = match case {
        // Agent 1 answers the even counts below `hops`, agent 2 the odd.
        Case::PingPong => (StopReason::Paused, [o.hops.div_ceil(2), o.hops / 2]),
        Case::Stream => (StopReason::Idle, [o.messages, 0]),
    };
    assert_eq!(report.reason, reason, "{case:?}: the run's stop");
    for p in &report.partitions {
        assert_eq!(p.cross_partition, crossing[p.partition], "{case:?}: partition {}", p.partition);
    }
}

/// Builds with `builder`, syncs the hosts with an empty run, adds the
/// model and runs it: the measured run's wall time and steps.
fn measure(builder: Builder, case: Case, o: &Opts, sync: Option<&Barrier>) -> (Duration, u64) {
    let mut rt = builder.build().unwrap_or_else(|e| panic!("{case:?}: building: {e}"));
    // Lockstep waits for every host's control: both hosts leave this run
    // together (within one packet's trip).
    rt.run().unwrap_or_else(|e| panic!("{case:?}: the empty run: {e}"));
    model(&mut rt, case, o);
    if let Some(b) = sync {
        b.wait();
    }
    let start = Instant::now();
    let report = rt.run().unwrap_or_else(|e| panic!("{case:?}: the run: {e}"));
    let wall = start.elapsed();
    check(case, o, &report);
    rt.stop().unwrap_or_else(|e| panic!("{case:?}: stopping: {e}"));
    (wall, report.steps)
}

fn nats_builder(o: &Opts, url: &str, run: &str, me: u16) -> Builder {
    let placement = Placement::new(vec![0, 1], me).unwrap();
    let nats = NatsTransport::new(url, run, placement, codec())
        .unwrap()
        .ready_within(Duration::from_secs(120));
    // Host 0 made the key and gave it to host 1 in its environment.
    let key = || RunKey::from_env(RUN_KEY_ENV).unwrap().expect("the run key in $MASLITE_RUN_KEY");
    let nats = match o.protect {
        Protect::Mac => nats.key(key()),
        Protect::Encrypt => nats.key(key()).encrypted(),
        Protect::Insecure => nats.insecure(),
    };
    o.builder().transport(nats)
}

fn run_name(o: &Opts, case: Case, r: u64) -> String {
    format!("{}-{case:?}-{r}", o.tag)
}

/// One measurement of `case` the `way` way (host 0's side, for nats).
fn once(way: Way, case: Case, o: &Opts, url: &str, r: u64) -> (Duration, u64) {
    match way {
        Way::Local => measure(o.builder(), case, o, None),
        Way::InProc => {
            let barrier = Arc::new(Barrier::new(2));
            let hosts = InProcess::hosts(vec![0, 1]).unwrap();
            let threads: Vec<_> = hosts
                .into_iter()
                .map(|host| {
                    let (o, barrier) = (o.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        measure(o.builder().transport(host), case, &o, Some(&barrier))
                    })
                })
                .collect();
            let walls: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
            assert_eq!(walls[0].1, walls[1].1, "{case:?}: both hosts ran the same steps");
            walls[0]
        }
        Way::Nats => measure(nats_builder(o, url, &run_name(o, case, r), 0), case, o, None),
    }
}

/// Host 1: the NATS runs, in host 0's order.
fn child(o: &Opts) {
    let url = o.url.clone().expect("host 1 needs --url");
    if !o.ways().contains(&Way::Nats) {
        return;
    }
    for r in 0..o.runs {
        for case in o.cases() {
            measure(nats_builder(o, &url, &run_name(o, case, r), 1), case, o, None);
        }
    }
}

/// Kills what it holds when dropped (a panic included).
struct Reap(Vec<(&'static str, Child)>);

impl Drop for Reap {
    fn drop(&mut self) {
        for (_, c) in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start_server() -> (String, Child) {
    let port = free_port();
    let server = Command::new("nats-server")
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server (apt-get install -y nats-server), or pass --url");
    // Wait until it listens.
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(10), "nats-server did not listen");
        std::thread::sleep(Duration::from_millis(10));
    }
    (format!("nats://127.0.0.1:{port}"), server)
}

fn start_child(o: &Opts, url: &str) -> Child {
    let mut args: Vec<String> = vec![
        "--host".into(),
        "1".into(),
        "--url".into(),
        url.into(),
        "--tag".into(),
        o.tag.clone(),
        "--hops".into(),
        o.hops.to_string(),
        "--messages".into(),
        o.messages.to_string(),
        "--batch".into(),
        o.batch.to_string(),
        "--runs".into(),
        o.runs.to_string(),
    ];
    if o.no_pin {
        args.push("--no-pin".into());
    }
    let protect = match o.protect {
        Protect::Mac => "mac",
        Protect::Encrypt => "encrypt",
        Protect::Insecure => "insecure",
    };
    args.extend(["--protect".into(), protect.into()]);
    if let Some(s) = o.spin {
        args.extend(["--spin-us".into(), s.as_micros().to_string()]);
    }
    if let Some(c) = o.case {
        let c = if c == Case::PingPong { "pingpong" } else { "stream" };
        args.extend(["--case".into(), c.into()]);
    }
    Command::new(std::env::current_exe().unwrap()).args(args).spawn().expect("host 1")
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// What the codec costs per step, without NATS (µs, medians of 5
/// rounds).
struct Costs {
    /// A control, encoded and framed, then read and decoded.
    control: f64,
    /// Making a mail batch's envelopes (also done on one host).
    make: f64,
    /// A mail batch encoded and framed (its envelopes dropped).
    encode: f64,
    /// Its frames read and decoded (the envelopes made, then dropped).
    decode: f64,
    /// The mail batch's frames.
    bytes: usize,
}

fn codec_costs(o: &Opts) -> Costs {
    let codec = codec();
    let mut writer = PacketWriter::new(0, 1, 1 << 20);
    let mut reader = PacketReader::new(1, 2);
    let control = || Control {
        changes: Arc::new(Vec::new()),
        active: true,
        busy: false,
        held: false,
        has_mail: true,
        next_alarm: f64::INFINITY,
        now: 0.0,
        stop: None,
        failed: false,
        alarms: Vec::new(),
        drained: false,
        awake: false,
        polled: false,
        run: 1,
        starts: Vec::new(),
        spare: Vec::new(),
        spare_alarms: Vec::new(),
    };
    let mut frames = Vec::new();
    let b = o.batch;
    let reps = (200_000 / b).max(20);
    let mut rounds = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        for _ in 0..20_000 {
            frames.clear();
            let sent = Sent { from: 0, to: 1, packet: Packet::Control(control()) };
            writer.packet(&codec, sent, &mut frames).unwrap();
            std::hint::black_box(reader.read(&codec, &frames[0]).unwrap());
        }
        let control = start.elapsed().as_secs_f64() * 1e6 / 20_000.0;
        let (mut make, mut encode, mut decode) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
        for i in 0..reps {
            let t0 = Instant::now();
            let batch: Vec<_> = (0..b)
                .map(|j| (AgentId(2), Envelope::new(Item(i * b + j)).to(AgentId(2))))
                .collect();
            let t1 = Instant::now();
            frames.clear();
            writer
                .packet(&codec, Sent { from: 0, to: 1, packet: Packet::Mail(batch) }, &mut frames)
                .unwrap();
            let t2 = Instant::now();
            for f in &frames {
                if let Arrival::Packet { packet, .. } = reader.read(&codec, f).unwrap() {
                    drop(std::hint::black_box(packet));
                }
            }
            let t3 = Instant::now();
            (make, encode, decode) = (make + (t1 - t0), encode + (t2 - t1), decode + (t3 - t2));
        }
        let us = |d: Duration| d.as_secs_f64() * 1e6 / reps as f64;
        let bytes = frames.iter().map(|f| f.len()).sum();
        rounds.push(Costs {
            control,
            make: us(make),
            encode: us(encode),
            decode: us(decode),
            bytes,
        });
    }
    let med = |f: fn(&Costs) -> f64| sorted(rounds.iter().map(f).collect())[2];
    Costs {
        control: med(|c| c.control),
        make: med(|c| c.make),
        encode: med(|c| c.encode),
        decode: med(|c| c.decode),
        bytes: rounds[0].bytes,
    }
}

fn main() {
    let o = <Opts as clap::Parser>::parse();
    if o.host.is_some_and(|h| h != 0) {
        child(&o);
        return;
    }
    if std::env::var_os(RUN_KEY_ENV).is_none() {
        // A key for this invocation's runs; host 1 inherits it.
        std::env::set_var(RUN_KEY_ENV, RunKey::generate().unwrap().to_hex());
    }
    let mut reap = Reap(Vec::new());
    let ways = o.ways();
    let mut url = o.url.clone().unwrap_or_default();
    if ways.contains(&Way::Nats) {
        if o.url.is_none() {
            let (u, server) = start_server();
            url = u;
            reap.0.push(("nats-server", server));
        }
        reap.0.push(("host 1", start_child(&o, &url)));
    }
    let cases = o.cases();
    // walls[case][way]: seconds per run.
    let mut walls = vec![vec![Vec::new(); ways.len()]; cases.len()];
    // steps[case]: the measured run's steps, the same every way.
    let mut steps = vec![None; cases.len()];
    let total = Instant::now();
    for r in 0..o.runs {
        for (c, &case) in cases.iter().enumerate() {
            for (w, &way) in ways.iter().enumerate() {
                let (wall, n) = once(way, case, &o, &url, r);
                let first = *steps[c].get_or_insert(n);
                assert_eq!(n, first, "{case:?}: {} ran {n} steps, not {first}", way.name());
                walls[c][w].push(wall.as_secs_f64());
            }
        }
    }
    let elapsed = total.elapsed();
    // Host 1 ends by itself after its last run.
    if let Some(i) = reap.0.iter().position(|(n, _)| *n == "host 1") {
        let (_, mut c) = reap.0.remove(i);
        let status = c.wait().expect("host 1's status");
        assert!(status.success(), "host 1 failed: {status}");
    }
    println!(
        "hosts: 2 partitions on 2 hosts; {} runs each: median (min-max); \
         runtimes: pinned {}, spin {}",
        o.runs,
        if o.no_pin { "no" } else { "yes (default)" },
        o.spin.map_or("default".into(), |s| format!("{} µs", s.as_micros()))
    );
    println!("  {:<34} {:<7} {:>22} {:>9}", "case", "way", "median (min-max)", "vs local");
    for (c, &case) in cases.iter().enumerate() {
        let base = (ways[0] == Way::Local).then(|| {
            let v = sorted(walls[c][0].clone());
            v[v.len() / 2]
        });
        for (w, &way) in ways.iter().enumerate() {
            let v = sorted(walls[c][w].clone());
            let (lo, med, hi) = (v[0], v[v.len() / 2], v[v.len() - 1]);
            // How many times local's wall time (local's rate / this rate).
            let ratio = base.map_or(String::new(), |b| format!("{:.1}x", med / b));
            let (name, cell) = match case {
                Case::PingPong => {
                    let per = |s: f64| s * 1e6 / o.hops as f64;
                    (
                        format!("ping-pong, {} hops (µs/hop)", o.hops),
                        format!("{:.2} ({:.2}-{:.2})", per(med), per(lo), per(hi)),
                    )
                }
                Case::Stream => {
                    let rate = |s: f64| o.messages as f64 / s / 1e6;
                    (
                        format!("stream {}k, {}/step (M msgs/s)", o.messages / 1000, o.batch),
                        format!("{:.3} ({:.3}-{:.3})", rate(med), rate(hi), rate(lo)),
                    )
                }
            };
            println!("  {name:<34} {:<7} {cell:>22} {ratio:>9}", way.name());
        }
        if case == Case::Stream {
            let steps = o.messages.div_ceil(o.batch) as f64;
            let per: Vec<String> = ways
                .iter()
                .enumerate()
                .map(|(w, way)| {
                    let v = sorted(walls[c][w].clone());
                    format!("{} {:.1}", way.name(), v[v.len() / 2] * 1e6 / steps)
                })
                .collect();
            println!("  {:<34} {}", "stream, µs per step", per.join(", "));
        }
        if let Some(n) = steps[c] {
            println!("  {:<34} {n}, the same every way", "  steps in the run");
        }
    }
    if ways.contains(&Way::Nats) {
        let c = codec_costs(&o);
        println!(
            "  codec alone, per step: a control {:.2} µs (encoded, framed, read, decoded); \
             a mail batch of {} ({} bytes): encoded + framed {:.1} µs, read + decoded {:.1} µs \
             (making its envelopes: {:.1} µs)",
            c.control, o.batch, c.bytes, c.encode, c.decode, c.make
        );
    }
    println!("  (all measured in {:.1} s)", elapsed.as_secs_f64());
}
