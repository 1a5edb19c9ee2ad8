//! # spawn — what does an idle agent cost?
//!
//! A model of a city or a market can hold a million agents, most of them
//! idle most of the time. This adds `N` (default 1 000 000) idle agents to one
//! scheduler and reports the time taken and the memory the kernel keeps per
//! agent beyond the agent's own struct (resident memory measured by the
//! operating system, before and after).
//!
//! Then it churns: agents that come, get one message and leave, as customers
//! or orders do in a supply-chain model. Their slots are reused, so memory
//! stays flat however many pass through.
//!
//! Run it in release: `cargo run --release --example spawn [N]` (`-- --help`
//! says what N is). It prints `spawn: <N> agents in <s> s, <B>
//! bytes/agent ...` and then `churn: <N> agents came and went, <B> bytes
//! kept per agent`.

use clap::Parser;
use maslite::prelude::*;
use std::time::Instant;

/// An agent with no state of its own: what is measured is the kernel's part.
struct Idle;

impl Agent for Idle {
    async fn update(&mut self, cx: &Cx) {
        while cx.try_recv().is_some() {}
    }
}

/// Resident set size of this process, in bytes (Linux), or 0.
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    pages * 4096
}

/// Adds N idle agents to one scheduler and reports the time and the memory
/// each costs; then passes 10 waves of N/10 short-lived agents through and
/// reports the memory kept per departed agent.
#[derive(Debug, Parser)]
#[command(name = "spawn")]
struct Args {
    /// Idle agents to add, at least 1.
    #[arg(value_name = "N", default_value_t = 1_000_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    agents: u64,
}

fn main() -> Result<(), Error> {
    let n = Args::parse().agents;
    let mut s = Scheduler::simulated();
    let before = rss_bytes();
    let start = Instant::now();
    for _ in 0..n {
        s.add(Idle)?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let after = rss_bytes();
    assert_eq!(s.len() as u64, n);
    // One round over a million idle agents: nobody is updated.
    let report = s.run()?;
    assert_eq!(report.stats.polls, 0, "idle agents are not polled");
    let per_agent = (after.saturating_sub(before)) as f64 / n as f64;
    println!(
        "spawn: {n} agents in {elapsed:.3} s, {per_agent:.0} bytes/agent (resident memory {:.1} MiB)",
        after as f64 / (1 << 20) as f64
    );
    drop(s);

    // Churn: 10 waves of n/10 short-lived agents; each reads one message
    // and leaves. Memory is measured after the first wave has warmed up.
    let mut s = Scheduler::simulated();
    let wave = (n / 10).max(1);
    let mut baseline = 0;
    for w in 0..10 {
        for _ in 0..wave {
            let id = s.spawn(|cx| async move {
                cx.recv().await;
            })?;
            s.send(Envelope::new(()).to(id));
        }
        s.run()?;
        assert!(s.is_empty(), "every customer left");
        if w == 0 {
            baseline = rss_bytes();
        }
    }
    let kept = rss_bytes().saturating_sub(baseline) as f64 / (9 * wave) as f64;
    println!("churn: {} agents came and went, {kept:.1} bytes kept per agent", 10 * wave);
    Ok(())
}
