//! maslite's benchmark suite.
//!
//! `cargo run --release -p maslite-bench -- <case> [flags]` runs one case
//! (or `all`) and prints one JSON line per measured configuration:
//! `{"case", "params", "unit", "median", "min", "max", "runs"}`, over
//! `--runs` runs (default 5) after `--warmup` unmeasured ones (default 1).
//! `--smoke` runs every case once on a tiny model: CI uses it to check the
//! suite works, not to measure. BENCHMARKS.md has the results and the
//! commands.

#[global_allocator]
static ALLOCATOR: counting::Counting = counting::Counting::new();

mod bare;
mod cases;
mod counting;
mod floors;
mod load;
mod measure;
mod plot;
mod ratios;

use clap::{Parser, ValueEnum};
use measure::{line, median, peak_rss_bytes, repeat, rss_bytes};
use serde_json::{json, Map, Value};

/// The cases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Case {
    /// Two agents, one ball, one kernel (messages/s).
    Pingpong,
    /// One sender broadcasting to 1 000 topic subscribers (deliveries/s).
    Fanout,
    /// 2 partitions, a one-way stream of messages (messages/s).
    Xstream,
    /// 2 partitions, one ball bounced across (µs per hop).
    Xpingpong,
    /// PHOLD on 1 and 2 partitions, remote 0, 0.25 and 0.9, the partition
    /// counts taking turns run by run (events/s; the share of the run the
    /// partitions waited for each other).
    Phold,
    /// PHOLD with 1 M agents and one event each on one partition, beside
    /// its floor at the same size, runs interleaved (events/s; heap bytes
    /// per pending event).
    #[value(name = "phold-1m")]
    PholdLarge,
    /// The conveyor demo end to end, start and stop included (sim/wall).
    Conveyor,
    /// 1 M agents added to one partition (seconds, peak RSS bytes).
    Spawn,
    /// 1 M agents made at run time on 2 partitions, then all leaving in
    /// one step (seconds).
    Churn,
    /// Sparse alarms on idle agents (time jumps/s).
    IdleAdvance,
    /// The floor of `pingpong`: the same ping-pong as two bare async
    /// agents, no framework (messages/s).
    FloorPingpong,
    /// The floor of `phold`: the same model, draws and hash as one
    /// sequential loop over a binary heap, no framework; on 2 and more
    /// partitions (up to `--max-partitions`, in turns with 1), the same
    /// split into blocks of ids, a thread and a heap each, in lookahead
    /// windows with a spinning barrier (events/s).
    FloorPhold,
    /// The `bank` example: 100 000 reneging customers, one kernel, no log
    /// (customers/s; compare.sh runs SimPy's version beside it).
    Bank,
    /// The HTTP `service` example under load at 32 and 256 connections,
    /// beside a bare axum handler, runs interleaved (requests/s, latency).
    Service,
    /// PHOLD with 1 M agents saved to memory and restored (seconds each;
    /// bytes per agent).
    Snapshot,
    /// Placement advice: the factories model on 2 partitions placed at
    /// random against placed by the advice, runs interleaved (speedup,
    /// crossing cut, same hash), and the advice's time on 1 M agents and
    /// 10 M pairs (seconds).
    Placement,
    /// Every case, in this order.
    All,
}

/// Every case, in the order `all` runs them.
const CASES: [Case; 16] = [
    Case::FloorPingpong,
    Case::Pingpong,
    Case::Fanout,
    Case::Xstream,
    Case::Xpingpong,
    Case::FloorPhold,
    Case::Phold,
    Case::PholdLarge,
    Case::Conveyor,
    Case::Spawn,
    Case::Churn,
    Case::IdleAdvance,
    Case::Bank,
    Case::Snapshot,
    Case::Service,
    Case::Placement,
];

#[derive(Parser, Debug)]
#[command(about = "maslite's benchmark suite: one JSON line per case")]
struct Args {
    /// The case to run.
    #[arg(value_enum)]
    case: Case,
    /// Measured runs per configuration (at least 1).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Unmeasured runs first.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Tiny models, one run, no warm-up: checks the suite, measures nothing.
    #[arg(long)]
    smoke: bool,
    /// phold and floor-phold: measure 1..=N partitions (default 2).
    #[arg(long, default_value_t = 2)]
    max_partitions: usize,
    /// phold: also draw events/s against partitions to this SVG file, with
    /// the floors (measured after the cases, in this invocation).
    #[arg(long)]
    plot: Option<std::path::PathBuf>,
}

fn main() {
    let args = Args::parse();
    let (runs, warmup) = if args.smoke { (1, 0) } else { (args.runs.max(1), args.warmup) };
    if args.case != Case::All {
        let lines = run_case_with(args.case, args.smoke, runs, warmup, args.max_partitions.max(1));
        for l in &lines {
            println!("{l}");
        }
        if let (Case::Phold, Some(path)) = (args.case, &args.plot) {
            // The floors, measured in this invocation too, after the cases.
            let floor_lines = run_case_with(Case::FloorPhold, args.smoke, runs, warmup, 1);
            let floors: Vec<plot::Floor> = floor_lines
                .iter()
                .map(|l| {
                    println!("{l}");
                    let v: Value = serde_json::from_str(l).expect("our own JSON");
                    let remote = v["params"]["remote"].as_f64().unwrap_or(0.0);
                    (remote, v["median"].as_f64().unwrap_or(0.0))
                })
                .collect();
            let points: Vec<plot::Point> = lines
                .iter()
                .map(|l| {
                    let v: Value = serde_json::from_str(l).expect("our own JSON");
                    let p = &v["params"];
                    let partitions = p["partitions"].as_u64().unwrap_or(1) as usize;
                    (
                        partitions,
                        p["remote"].as_f64().unwrap_or(0.0),
                        v["median"].as_f64().unwrap_or(0.0),
                    )
                })
                .collect();
            if let Err(e) = plot::phold_svg(&points, &floors, path) {
                eprintln!("maslite-bench: cannot draw {}: {e}", path.display());
                std::process::exit(1);
            }
        }
        return;
    }
    // Each case in a process of its own: what one case leaves behind (a
    // big heap, the peak memory) must not colour the next one's figures.
    let me = std::env::current_exe().expect("the path of this program");
    let mut seen = Vec::new();
    for case in CASES {
        let name = case.to_possible_value().expect("a named case").get_name().to_string();
        let mut cmd = std::process::Command::new(&me);
        cmd.arg(&name).arg("--runs").arg(runs.to_string()).arg("--warmup").arg(warmup.to_string());
        if args.smoke {
            cmd.arg("--smoke");
        }
        cmd.stderr(std::process::Stdio::inherit());
        let out = cmd.output().expect("the case's process starts");
        let text = String::from_utf8_lossy(&out.stdout);
        print!("{text}");
        seen.extend(text.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()));
        if !out.status.success() {
            eprintln!("maslite-bench: case {name} failed: {}", out.status);
            std::process::exit(1);
        }
    }
    // Each case against its floor, from this run.
    print!("\n{}", ratios::table(&seen));
}

/// Runs one case with the default settings; returns its lines.
#[cfg(test)]
fn run_case(case: Case, smoke: bool, runs: usize, warmup: usize) -> Vec<String> {
    run_case_with(case, smoke, runs, warmup, 2)
}

/// Runs one case (PHOLD on 1..=`max_partitions`); returns its lines.
fn run_case_with(
    case: Case,
    smoke: bool,
    runs: usize,
    warmup: usize,
    max_partitions: usize,
) -> Vec<String> {
    let pick = |full: u64, tiny: u64| if smoke { tiny } else { full };
    let none = Map::new;
    match case {
        Case::Pingpong => {
            let messages = pick(20_000_000, 10_000);
            let v = repeat(runs, warmup, || cases::pingpong(messages));
            vec![line("pingpong", json!({"messages": messages}), "messages/s", &v, none())]
        }
        Case::Fanout => {
            let (subs, casts) = (1000, pick(20_000, 20));
            let v = repeat(runs, warmup, || cases::fanout(subs, casts));
            let params = json!({"subscribers": subs, "broadcasts": casts});
            vec![line("fanout", params, "deliveries/s", &v, none())]
        }
        Case::Xstream => {
            let (messages, batch) = (pick(10_000_000, 10_000), 1000);
            let v = repeat(runs, warmup, || cases::xstream(messages, batch));
            let params = json!({"messages": messages, "batch": batch, "partitions": 2});
            vec![line("xstream", params, "messages/s", &v, none())]
        }
        Case::Xpingpong => {
            let hops = pick(200_000, 1_000);
            let v = repeat(runs, warmup, || cases::xpingpong(hops));
            vec![line("xpingpong", json!({"hops": hops, "partitions": 2}), "us/hop", &v, none())]
        }
        Case::Phold => {
            let mut out = Vec::new();
            for remote in [0.0, 0.25, 0.9] {
                // The partition counts take turns, run by run, so that their
                // ratios come from the same stretch of the machine's noise.
                let params: Vec<_> =
                    (1..=max_partitions).map(|p| phold_params(smoke, remote, p)).collect();
                let mut rates = vec![Vec::new(); params.len()];
                let mut waited = vec![Vec::new(); params.len()];
                let mut hash = None;
                for i in 0..warmup + runs.max(1) {
                    for (k, p) in params.iter().enumerate() {
                        let (eps, h, w) = cases::phold(p);
                        // One trace on any number of partitions, every run.
                        let first = *hash.get_or_insert(h);
                        assert_eq!(h, first, "the hash on {} partitions", p.partitions);
                        if i >= warmup {
                            rates[k].push(eps);
                            waited[k].push(w);
                        }
                    }
                }
                let hash = hash.expect("at least one run");
                for (k, params) in params.iter().enumerate() {
                    let mut extra = Map::new();
                    extra.insert("hash".into(), Value::String(format!("{hash:016x}")));
                    // The share of the wall time the partitions waited for
                    // each other (median of the measured runs; 0 on one).
                    extra.insert("waited_share".into(), json!(median(&waited[k])));
                    let p = json!({
                        "agents": params.agents, "events": params.events, "remote": remote,
                        "lookahead": params.lookahead, "mean": params.mean, "end": params.end,
                        "partitions": params.partitions, "seed": params.seed,
                    });
                    out.push(line("phold", p, "events/s", &rates[k], extra));
                }
            }
            out
        }
        Case::PholdLarge => {
            let params = cases::phold::Params {
                agents: pick(1_000_000, 1_000),
                events: 1,
                end: if smoke { 2.0 } else { 5.0 },
                ..phold_params(smoke, 0.25, 1)
            };
            let (mut floor, mut ours, mut hashes) = (vec![], vec![], None);
            let mut floor_bytes = 0;
            for i in 0..warmup + runs {
                let (floor_eps, _, floor_hash, floor_per_event) = floors::phold(&params);
                floor_bytes = floor_per_event;
                let (eps, hash) = cases::phold_large(&params);
                assert_eq!(floor_hash, hash, "the floor and the kernel tell one story");
                if i >= warmup {
                    floor.push(floor_eps);
                    ours.push(eps);
                }
                hashes = Some(hash);
            }
            let bytes = cases::phold_bytes(&params);
            let p = json!({
                "agents": params.agents, "events": params.events, "remote": params.remote,
                "lookahead": params.lookahead, "mean": params.mean, "end": params.end,
                "partitions": 1, "seed": params.seed,
            });
            let hash = json!(format!("{:016x}", hashes.unwrap_or(0)));
            let mut extra = Map::new();
            extra.insert("hash".into(), hash.clone());
            extra.insert("bytes_per_pending_event".into(), json!(bytes));
            extra.insert("ratio_to_floor".into(), json!(median(&ours) / median(&floor)));
            let mut floor_extra = Map::new();
            floor_extra.insert("hash".into(), hash);
            floor_extra.insert("bytes_per_pending_event".into(), json!(floor_bytes));
            vec![
                line("floor-phold-1m", p.clone(), "events/s", &floor, floor_extra),
                line("phold-1m", p, "events/s", &ours, extra),
            ]
        }
        Case::Conveyor => {
            let mut phases = [vec![], vec![], vec![]];
            let v = repeat(runs, warmup, || {
                let (ratio, times) = cases::conveyor_ratio();
                for (all, t) in phases.iter_mut().zip(times) {
                    all.push(t);
                }
                ratio
            });
            // The phases' medians, warm-up runs left out as in `v`.
            let mut extra = Map::new();
            for (name, mut all) in ["build_us", "run_us", "stop_us"].into_iter().zip(phases) {
                let measured = all.split_off(all.len() - v.len());
                extra.insert(name.into(), json!(median(&measured)));
            }
            vec![line("conveyor", json!({"partitions": 2}), "sim/wall", &v, extra)]
        }
        Case::Spawn => {
            let n = pick(1_000_000, 1_000);
            let v = repeat(runs, warmup, || cases::spawn(n));
            let mut extra = Map::new();
            extra.insert("peak_rss_bytes".into(), json!(peak_rss_bytes()));
            vec![line("spawn", json!({"agents": n, "partitions": 1}), "s", &v, extra)]
        }
        Case::Churn => {
            let n = pick(1_000_000, 1_000);
            let v = repeat(runs, warmup, || cases::churn(n));
            vec![line("churn", json!({"agents": n, "partitions": 2}), "s", &v, none())]
        }
        Case::IdleAdvance => {
            let (idle, jumps) = (pick(100_000, 100) as usize, pick(1_000_000, 1_000));
            let v = repeat(runs, warmup, || cases::idle_advance(idle, jumps));
            let params = json!({"idle_agents": idle, "jumps": jumps});
            vec![line("idle-advance", params, "jumps/s", &v, none())]
        }
        Case::FloorPingpong => {
            let messages = pick(20_000_000, 10_000);
            let v = repeat(runs, warmup, || floors::pingpong(messages));
            vec![line("floor-pingpong", json!({"messages": messages}), "messages/s", &v, none())]
        }
        Case::FloorPhold => {
            let mut out = Vec::new();
            for remote in [0.0, 0.25, 0.9] {
                // As `phold`: the partition counts take turns, run by run.
                let params: Vec<_> =
                    (1..=max_partitions).map(|p| phold_params(smoke, remote, p)).collect();
                let mut rates = vec![Vec::new(); params.len()];
                let (mut hash, mut bytes) = (None, 0);
                for i in 0..warmup + runs.max(1) {
                    for (k, p) in params.iter().enumerate() {
                        let (eps, h) = if p.partitions == 1 {
                            let (eps, _, h, b) = floors::phold(p);
                            bytes = b;
                            (eps, h)
                        } else {
                            let (eps, _, h) = floors::phold_split(p);
                            (eps, h)
                        };
                        let first = *hash.get_or_insert(h);
                        assert_eq!(h, first, "the floor's hash on {} partitions", p.partitions);
                        if i >= warmup {
                            rates[k].push(eps);
                        }
                    }
                }
                let hash = hash.expect("at least one run");
                for (k, params) in params.iter().enumerate() {
                    let mut extra = Map::new();
                    extra.insert("hash".into(), Value::String(format!("{hash:016x}")));
                    if params.partitions == 1 {
                        extra.insert("bytes_per_pending_event".into(), json!(bytes));
                    }
                    let p = json!({
                        "agents": params.agents, "events": params.events, "remote": remote,
                        "lookahead": params.lookahead, "mean": params.mean, "end": params.end,
                        "partitions": params.partitions, "seed": params.seed,
                    });
                    out.push(line("floor-phold", p, "events/s", &rates[k], extra));
                }
            }
            out
        }
        Case::Bank => {
            let n = pick(100_000, 100) as u32;
            let v = repeat(runs, warmup, || cases::bank(n));
            let params = json!({"customers": n, "partitions": 0});
            vec![line("bank", params, "customers/s", &v, none())]
        }
        Case::Snapshot => {
            let agents = pick(1_000_000, 1_000);
            let mut saves = Vec::new();
            let mut restores = Vec::new();
            let mut last = None;
            for i in 0..warmup + runs.max(1) {
                let s = cases::snapshot(agents);
                if i >= warmup {
                    saves.push(s.save_s);
                    restores.push(s.restore_s);
                }
                last = Some(s);
            }
            let s = last.expect("one run at least");
            let per = |b: usize| b as f64 / s.agents as f64;
            let kernel = s.bytes - s.state_bytes - s.payload_bytes;
            let mut extra = Map::new();
            extra.insert("bytes_per_agent".into(), json!(per(s.bytes)));
            extra.insert("state_bytes_per_agent".into(), json!(per(s.state_bytes)));
            extra.insert("payload_bytes_per_agent".into(), json!(per(s.payload_bytes)));
            extra.insert("kernel_bytes_per_agent".into(), json!(per(kernel)));
            let params = json!({"agents": agents, "pending_events": agents, "partitions": 1});
            let mut restore_extra = Map::new();
            restore_extra.insert("bytes_per_agent".into(), json!(per(s.bytes)));
            vec![
                line("snapshot-save", params.clone(), "s", &saves, extra),
                line("snapshot-restore", params, "s", &restores, restore_extra),
            ]
        }
        Case::Service => {
            let mut out = Vec::new();
            for (connections, requests) in [(32, 20_000), (256, 50_000)] {
                let load = if smoke {
                    load::Load { connections: connections / 16, requests: 200 }
                } else {
                    load::Load { connections, requests }
                };
                // The service on 1 and on 2 partitions, its HTTP server on
                // them (the example's default) and beside them, each
                // against the bare handler in the same turns: on 2 cores
                // the service's own threads compete with the server's and
                // the load's.
                out.extend(service_lines(load, runs, warmup));
            }
            let load = load::Load {
                connections: if smoke { 32 } else { 1024 },
                requests: pick(20_000, 300),
            };
            out.push(overload_line(load, runs, warmup));
            out
        }
        Case::Placement => placement_lines(smoke, runs, warmup),
        Case::All => unreachable!("expanded by main"),
    }
}

/// The `service` case at one load: the bare handler and the service on 1
/// and 2 partitions, its HTTP server on the partitions and beside them,
/// all in turns (each turn starts one later in the list); a line for
/// each, the service's adding the median of its per-turn ratios to the
/// bare handler.
fn service_lines(load: load::Load, runs: usize, warmup: usize) -> Vec<String> {
    use cases::service::Http;
    use cases::Server;
    let mut servers = vec![("bare-axum", Server::BareAxum, 0)];
    for (http, name) in [(Http::OnPartitions, "maslite"), (Http::Beside, "maslite-beside")] {
        for partitions in [1, 2] {
            let options = cases::service::Options {
                drain: Some(std::time::Duration::ZERO),
                partitions,
                http,
                ..Default::default()
            };
            servers.push((name, Server::Maslite(options), partitions));
        }
    }
    let mut measured: Vec<Vec<load::Measured>> = vec![Vec::new(); servers.len()];
    for turn in 0..warmup + runs.max(1) {
        for k in 0..servers.len() {
            let i = (turn + k) % servers.len();
            let m = cases::service(servers[i].1, load);
            assert_eq!(m.not_ok, 0, "{:?}: every order answered 200", servers[i].1);
            if turn >= warmup {
                measured[i].push(m);
            }
        }
    }
    let mut lines = Vec::new();
    for (i, &(name, _, partitions)) in servers.iter().enumerate() {
        let runs = &measured[i];
        let rps: Vec<f64> = runs.iter().map(|m| m.requests_per_second).collect();
        let mut extra = latencies(runs);
        let mut params = json!({
            "server": name, "connections": load.connections, "requests": load.requests,
        });
        if i > 0 {
            let ratios: Vec<f64> = runs
                .iter()
                .zip(&measured[0])
                .map(|(ours, bare)| ours.requests_per_second / bare.requests_per_second)
                .collect();
            extra.insert("ratio_to_bare".into(), json!(median(&ratios)));
            extra.insert("rss_bytes".into(), json!(rss_bytes()));
            params["partitions"] = json!(partitions);
        }
        lines.push(line("service", params, "requests/s", &rps, extra));
    }
    lines
}

/// The medians of runs' p50, p99 and max latencies, in ms.
fn latencies(runs: &[load::Measured]) -> Map<String, Value> {
    let latency = |f: fn(&load::Measured) -> std::time::Duration| {
        median(&runs.iter().map(|m| f(m).as_secs_f64() * 1e3).collect::<Vec<_>>())
    };
    let mut extra = Map::new();
    extra.insert("p50_ms".into(), json!(latency(|m| m.p50)));
    extra.insert("p99_ms".into(), json!(latency(|m| m.p99)));
    extra.insert("max_ms".into(), json!(latency(|m| m.max)));
    extra
}

/// The `service` case overloaded: its books slowed on purpose (200 µs an
/// order), 64 orders of room per partition, 50 ms to get in. The line's
/// figure is the orders answered 200 per second; it adds how many got a
/// 503 ("busy") and the memory after the runs.
fn overload_line(load: load::Load, runs: usize, warmup: usize) -> String {
    use std::time::Duration;
    let options = cases::service::Options {
        capacity: 64,
        admission: Duration::from_millis(50),
        book_work: Duration::from_micros(200),
        drain: Some(Duration::ZERO),
        // (2 partitions, as the line was first measured: the example's
        // default went to 1, which halves the slowed books' capacity.)
        partitions: 2,
        // The HTTP server beside the partitions: a slowed book blocks its
        // thread, and a server on that thread would wait with it (its
        // connections past any admission deadline).
        http: cases::service::Http::Beside,
    };
    let mut measured = Vec::new();
    for turn in 0..warmup + runs.max(1) {
        let m = cases::service(cases::Server::Maslite(options), load);
        if turn >= warmup {
            measured.push(m);
        }
    }
    let answered: Vec<f64> = measured
        .iter()
        .map(|m| m.requests_per_second * (load.requests - m.not_ok) as f64 / load.requests as f64)
        .collect();
    let mut extra = latencies(&measured);
    let busy: Vec<f64> = measured.iter().map(|m| m.not_ok as f64).collect();
    extra.insert("busy_503".into(), json!(median(&busy)));
    extra.insert("rss_bytes".into(), json!(rss_bytes()));
    let params = json!({
        "server": "maslite-overloaded", "connections": load.connections,
        "requests": load.requests, "book_work_us": 200, "capacity": 64, "admission_ms": 50,
        "partitions": 2, "http": "beside",
    });
    line("service", params, "answered/s", &answered, extra)
}

/// The `phold` case's model (and `floor-phold`'s): 4 096 agents with 4
/// events each, lookahead 0.1, mean 1, to t = 100, seed 1.
/// The `placement` case: the advice's time on a synthetic traffic, then
/// the factories model placed at random against placed by the advice, runs
/// interleaved (the last line: `speedup`, `crossing_cut`, `same_hash`).
fn placement_lines(smoke: bool, runs: usize, warmup: usize) -> Vec<String> {
    let (agents, per_agent) = if smoke { (10_000, 10) } else { (1_000_000, 10) };
    let traffic = cases::synthetic_traffic(agents, per_agent);
    let pairs = traffic.pairs().len();
    let mut advice = None;
    let times = repeat(runs.min(3), 0, || {
        let (t, a) = cases::advice_time(&traffic);
        advice = Some(a);
        t
    });
    drop(traffic);
    let a = advice.expect("advised at least once");
    let mut extra = Map::new();
    extra.insert("crossing_cut".into(), json!(a.crossing_cut()));
    extra.insert("imbalance".into(), json!(a.imbalance()));
    let params = json!({"agents": agents, "pairs": pairs, "partitions": 2});
    let advice_line = line("placement-advice", params, "s", &times, extra);
    drop(a);

    let p = if smoke {
        cases::factories::Params { lines: 4, end: 5.0, batch: 8, ..Default::default() }
    } else {
        cases::factories::Params { end: 200.0, ..Default::default() }
    };
    let advice = cases::factories_advice(&p);
    let (mut random, mut advised, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let mut same_hash = true;
    for i in 0..warmup + runs {
        let (r, hr) = cases::factories_run(&p, None);
        let (a, ha) = cases::factories_run(&p, Some(&advice));
        same_hash &= hr == ha;
        if i >= warmup {
            random.push(r);
            advised.push(a);
            ratios.push(r / a);
        }
    }
    let speedup = median(&ratios);
    let mut extra = Map::new();
    extra.insert("crossing_cut".into(), json!(advice.crossing_cut()));
    extra.insert("speedup".into(), json!(speedup));
    extra.insert("same_hash".into(), json!(same_hash));
    extra.insert("imbalance".into(), json!(advice.imbalance()));
    extra.insert("moved".into(), json!(advice.moves.len()));
    extra.insert("random_wall_s".into(), json!(median(&random)));
    extra.insert("advised_wall_s".into(), json!(median(&advised)));
    extra.insert("advice_s".into(), json!(median(&times)));
    let params = json!({
        "lines": p.lines, "conveyors": p.conveyors, "machines": p.machines, "batch": p.batch,
        "parts_every": p.parts_every, "end": p.end, "seed": p.seed, "partitions": p.partitions,
    });
    vec![advice_line, line("placement", params, "speedup", &ratios, extra)]
}

fn phold_params(smoke: bool, remote: f64, partitions: usize) -> cases::phold::Params {
    cases::phold::Params {
        agents: if smoke { 64 } else { 4096 },
        events: 4,
        remote,
        lookahead: 0.1,
        mean: 1.0,
        end: if smoke { 2.0 } else { 100.0 },
        partitions,
        seed: 1,
        window: None,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every case runs on its tiny model and prints well-formed lines.
    #[test]
    fn every_case_runs_in_smoke_mode() {
        for case in CASES {
            let lines = run_case(case, true, 1, 0);
            assert!(!lines.is_empty(), "{case:?}");
            for l in lines {
                let v: Value = serde_json::from_str(&l).unwrap();
                let median = v["median"].as_f64().unwrap();
                assert!(median.is_finite() && median > 0.0, "{case:?}: {l}");
                assert_eq!(v["runs"], 1);
            }
        }
    }

    #[test]
    fn phold_hashes_agree_across_partitions_in_the_suite() {
        let lines = run_case(Case::Phold, true, 1, 0);
        let hashes: Vec<(f64, String)> = lines
            .iter()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                (v["params"]["remote"].as_f64().unwrap(), v["hash"].as_str().unwrap().to_string())
            })
            .collect();
        // Pairs (1 partition, 2 partitions) per remote fraction.
        for pair in hashes.chunks(2) {
            assert_eq!(pair[0], pair[1]);
        }
    }

    /// The PHOLD floor is the same model: the kernel's hash and event count,
    /// on every remote fraction.
    #[test]
    fn the_phold_floor_gives_the_kernels_hash() {
        for remote in [0.0, 0.25, 0.9] {
            let params = cases::phold::Params { end: 10.0, ..phold_params(true, remote, 1) };
            let kernel = cases::phold::run(&params).unwrap();
            let (_, events, hash, _) = floors::phold(&params);
            assert_eq!((events, hash), (kernel.events, kernel.hash), "remote {remote}");
            assert!(events > 500, "{events}");
        }
    }

    /// The floor split over partitions is still the same model: the
    /// sequential floor's events and hash on 2 and 3 partitions (3 blocks
    /// of unequal size; with 2 agents, one of them empty), on every remote
    /// fraction. (The split also asserts, in debug builds, that no event
    /// is processed in a window that started after it.)
    #[test]
    fn the_split_phold_floor_gives_the_sequential_floors_hash() {
        for remote in [0.0, 0.25, 0.9] {
            for agents in [64, 2] {
                let params =
                    cases::phold::Params { agents, end: 10.0, ..phold_params(true, remote, 1) };
                let (_, events, hash, _) = floors::phold(&params);
                for parts in [2, 3] {
                    let split = cases::phold::Params { partitions: parts, ..params.clone() };
                    let (_, e, h) = floors::phold_split(&split);
                    let at = format!("remote {remote}, {agents} agents, {parts} partitions");
                    assert_eq!((e, h), (events, hash), "{at}");
                }
            }
        }
    }
}
