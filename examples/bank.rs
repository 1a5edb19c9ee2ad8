//! # bank — customers who will not wait forever
//!
//! A model in the style of SimPy's bank with reneging customers, in our own
//! words: customers arrive at a bank with one counter (a [`Resource`]) at
//! random intervals; each waits for the counter at most its patience, then
//! leaves unserved (reneges); a served customer takes a random time at the
//! counter. The draws are seeded: every run with the same seed sees the
//! same customers.
//!
//! The customer is the SimPy process line for line: a request raced against
//! a timeout with `futures::future::select`, the loser dropped (a dropped
//! request is cancelled at the counter). The source that makes customers
//! joins them all ([`Process::join`]) and returns the day's figures, which
//! the kernel keeps for `take_result`. Written once against [`System`], it
//! runs on one kernel (`--partitions 0`) or on many, with the same log.
//!
//! `cargo run --example bank -- --customers 10` prints the day; `--quiet`
//! only the figures (the `bank` benchmark runs 100 000 customers so).

// (Both examples hold it: a crate that includes both has it twice.)
#[allow(clippy::duplicate_mod)]
#[path = "common/draws.rs"]
mod draws;

use clap::Parser;
use draws::Draws;
use futures::future::{select, Either};
use maslite::prelude::*;
use std::sync::{Arc, Mutex};

/// The bank's settings.
#[derive(Clone, Debug, Parser)]
#[command(about = "Customers who renege when the queue is too slow (SimPy's bank, our way)")]
pub struct Options {
    /// Customers that come.
    #[arg(long, default_value_t = 10)]
    pub customers: u32,
    /// Mean minutes between arrivals.
    #[arg(long, default_value_t = 10.0)]
    pub every: f64,
    /// Mean minutes at the counter.
    #[arg(long, default_value_t = 12.0)]
    pub service: f64,
    /// Patience: each customer waits between this and twice this.
    #[arg(long, default_value_t = 1.0)]
    pub patience: f64,
    /// Seed of the draws.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Partitions (0: one bare kernel, a `Scheduler`).
    #[arg(long, default_value_t = 0)]
    pub partitions: usize,
    /// Print only the day's figures (no log: the benchmark's setting).
    #[arg(long)]
    pub quiet: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options::parse_from(["bank"])
    }
}

/// The day's figures.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Day {
    /// Customers served.
    pub served: u32,
    /// Customers who left unserved.
    pub reneged: u32,
    /// Minutes waited, all customers.
    pub waited: f64,
    /// When the last customer left.
    pub closed: f64,
}

/// What one customer did: (time, customer, what, minutes waited).
pub type Log = Vec<(f64, u32, &'static str, f64)>;

/// One customer's visit: queue for the counter, or give up after
/// `patience`; returns whether served and how long it waited.
async fn customer(
    cx: Cx,
    n: u32,
    counter: AgentId,
    patience: f64,
    service: f64,
    log: Option<Arc<Mutex<Log>>>,
) -> (bool, f64) {
    let say = |what, waited| {
        if let Some(log) = &log {
            log.lock().unwrap().push((cx.now(), n, what, waited));
        }
    };
    let arrived = cx.now();
    say("arrives", 0.0);
    match select(cx.request(counter), cx.sleep(patience)).await {
        Either::Left((at_counter, _)) => {
            let waited = cx.now() - arrived;
            say("is served", waited);
            cx.sleep(service).await;
            drop(at_counter);
            say("leaves, done", waited);
            (true, waited)
        }
        Either::Right(_) => {
            say("reneges", patience);
            (false, patience)
        }
    }
}

/// Builds the bank on `sys` and runs the day: the day's figures and, unless
/// quiet, the log.
pub fn run<S: System>(sys: &mut S, o: &Options) -> Result<(Day, Log), Error> {
    let log: Option<Arc<Mutex<Log>>> = (!o.quiet).then(Arc::default);
    let parts = sys.partitions();
    let counter = sys.add_on(parts - 1, Resource::new(1))?;
    let o2 = o.clone();
    let l = log.clone();
    let source = sys.process_on(0, move |cx| async move {
        let mut draws = Draws(o2.seed);
        let mut visits = Vec::with_capacity(o2.customers as usize);
        for n in 0..o2.customers {
            let patience = o2.patience * (1.0 + draws.uniform());
            let service = draws.exponential(o2.service);
            let l = l.clone();
            let visit = cx
                .process_on(n as usize % parts, move |cx| {
                    customer(cx, n, counter, patience, service, l)
                })
                .expect("a customer comes");
            visits.push(visit);
            cx.sleep(draws.exponential(o2.every)).await;
        }
        let mut day = Day::default();
        for visit in &visits {
            let (served, waited) = visit.join(&cx).await;
            if served {
                day.served += 1;
            } else {
                day.reneged += 1;
            }
            day.waited += waited;
        }
        day
    })?;
    let report = sys.run_with(RunOptions::new())?;
    let mut day: Day = sys.take_result(source)?.expect("the source joined every customer");
    day.closed = report.end_time();
    let mut log = log.map(|l| l.lock().unwrap().clone()).unwrap_or_default();
    log.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    Ok((day, log))
}

/// Runs the options' system: a bare kernel, or a runtime of `partitions`.
pub fn day(o: &Options) -> Result<(Day, Log), Error> {
    if o.partitions == 0 {
        run(&mut Scheduler::simulated(), o)
    } else {
        run(&mut Runtime::new(o.partitions)?, o)
    }
}

pub fn main() -> Result<(), Error> {
    let o = Options::parse();
    let (day, log) = day(&o)?;
    for (t, n, what, waited) in log {
        match what {
            "reneges" | "is served" => {
                println!("{t:8.3}: customer {n} {what} (waited {waited:.3})")
            }
            _ => println!("{t:8.3}: customer {n} {what}"),
        }
    }
    println!(
        "served {}, reneged {}, waited {:.3} minutes in all, closed at {:.3}",
        day.served, day.reneged, day.waited, day.closed
    );
    Ok(())
}
