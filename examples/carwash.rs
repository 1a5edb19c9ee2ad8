//! # carwash — cars queue for a few washing machines
//!
//! A model in the style of SimPy's car wash, in our own words: a car wash
//! has `machines` washing machines (a [`Resource`]); cars arrive every few
//! minutes (drawn at random, the same draws for every run with the same
//! seed), queue for a free machine, are washed for `wash` minutes and
//! leave. Four cars are already waiting when the wash opens.
//!
//! Every car is a process (`cx.spawn_on`, placed round-robin over the
//! partitions); the machines are one resource agent. Written once against
//! [`System`], the model runs on one kernel or on many partitions and tells
//! the same story: `cargo run --example carwash -- --partitions 3` prints
//! what `--partitions 0` (a bare `Scheduler`) prints.
//!
//! ```text
//! t=0: car 0 arrives
//! t=0: car 0 enters a machine
//! ...
//! ```

// (Both examples hold it: a crate that includes both has it twice.)
#[allow(clippy::duplicate_mod)]
#[path = "common/draws.rs"]
mod draws;

use clap::Parser;
use draws::Draws;
use maslite::prelude::*;
use std::sync::{Arc, Mutex};

/// The car wash's settings.
#[derive(Clone, Debug, Parser)]
#[command(about = "Cars queue for a few washing machines (SimPy's car wash, our way)")]
pub struct Options {
    /// Washing machines.
    #[arg(long, default_value_t = 2)]
    pub machines: usize,
    /// Minutes a wash takes.
    #[arg(long, default_value_t = 5.0)]
    pub wash: f64,
    /// Mean minutes between arrivals (cars arrive every mean-2..mean+2).
    #[arg(long, default_value_t = 7.0)]
    pub every: f64,
    /// Minutes the wash is open.
    #[arg(long, default_value_t = 20.0)]
    pub minutes: f64,
    /// Seed of the arrival draws.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Partitions (0: one bare kernel, a `Scheduler`).
    #[arg(long, default_value_t = 0)]
    pub partitions: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options::parse_from(["carwash"])
    }
}

/// The story, one line per event, in time order (equal times: by car).
pub type Story = Vec<(f64, u32, &'static str)>;

/// Builds the car wash on `sys` and runs it for `o.minutes`.
pub fn run<S: System>(sys: &mut S, o: &Options) -> Result<Story, Error> {
    let story: Arc<Mutex<Story>> = Arc::default();
    let parts = sys.partitions();
    let machines = sys.add_on(parts - 1, Resource::new(o.machines))?;
    let (wash, every, seed) = (o.wash, o.every, o.seed);
    let log = story.clone();
    sys.spawn_on(0, move |cx| async move {
        let mut draws = Draws(seed);
        let mut n = 0u32;
        let car = |cx: &Cx, n: u32| {
            let log = log.clone();
            cx.spawn_on(n as usize % parts, move |cx| async move {
                let say = |what| log.lock().unwrap().push((cx.now(), n, what));
                say("arrives");
                let machine = cx.request(machines).await;
                say("enters a machine");
                cx.sleep(wash).await;
                say("leaves, clean");
                drop(machine);
            })
            .expect("a car starts");
        };
        // Four cars wait at the opening, then one every few minutes.
        for _ in 0..4 {
            car(&cx, n);
            n += 1;
        }
        loop {
            cx.sleep(draws.minutes(every - 2.0, every + 2.0)).await;
            car(&cx, n);
            n += 1;
        }
    })?;
    sys.run_with(RunOptions::new().seconds(o.minutes))?;
    let mut story = story.lock().unwrap().clone();
    // Partitions log concurrently: one order for the story.
    story.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    Ok(story)
}

/// Runs the options' system: a bare kernel, or a runtime of `partitions`.
pub fn story(o: &Options) -> Result<Story, Error> {
    if o.partitions == 0 {
        run(&mut Scheduler::simulated(), o)
    } else {
        run(&mut Runtime::new(o.partitions)?, o)
    }
}

pub fn main() -> Result<(), Error> {
    let o = Options::parse();
    for (t, car, what) in story(&o)? {
        println!("t={t}: car {car} {what}");
    }
    Ok(())
}
