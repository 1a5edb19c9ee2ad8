//! # realtime — two partitions on the wall clock (free mode)
//!
//! For agents that live in real time rather than in a simulation: a price
//! feed on partition 0 publishes a quote every 10 ms of wall time (an alarm
//! it sets itself), and a trader on partition 1 — built on its own thread,
//! holding an `Rc`, so not `Send` — buys on the fifth quote and stops the
//! run. In free mode there are no rounds in step: each quote crosses to the
//! other partition as soon as the feed's round has produced it.
//!
//! Run it: `cargo run --example realtime`. The last line reads
//! `realtime: bought at <price> after 5 quotes in <ms> ms`.

use maslite::prelude::*;
use maslite::runtime::{RuntimeReport, StopReason};
use std::cell::RefCell;
use std::rc::Rc;

/// A price, in cents.
#[derive(Clone, Debug)]
pub struct Quote(pub u64);

/// The feed's own clock tick.
#[derive(Clone)]
struct Tick;

/// Publishes a quote every `every` seconds to `to`.
pub struct Feed {
    pub to: AgentId,
    pub every: f64,
    pub price: u64,
}

impl Agent for Feed {
    async fn setup(&mut self, cx: &Cx) {
        let tick = Envelope::new(Tick).to(cx.id());
        cx.set_alarm(Alarm::after(self.every, tick).keep_alive()).expect("a positive delay");
    }

    async fn update(&mut self, cx: &Cx) {
        while cx.try_recv().is_some() {
            // A small deterministic walk.
            self.price = self.price * 1009 % 10_007 + 9_000;
            cx.send(Envelope::new(Quote(self.price)).to(self.to));
            let tick = Envelope::new(Tick).to(cx.id());
            cx.set_alarm(Alarm::after(self.every, tick).keep_alive()).expect("a positive delay");
        }
    }
}

/// Buys on the `patience`-th quote, then stops the run.
pub struct Trader {
    pub patience: usize,
    /// Quotes seen: an `Rc`, shared with nobody here, but it makes the
    /// trader `!Send` (it lives and dies on its partition's thread).
    pub seen: Rc<RefCell<Vec<u64>>>,
    pub bought: Option<u64>,
}

impl Agent for Trader {
    async fn update(&mut self, cx: &Cx) {
        while let Some(env) = cx.try_recv() {
            let Quote(price) = env.into_payload::<Quote>().expect("quotes only");
            self.seen.borrow_mut().push(price);
            if self.seen.borrow().len() == self.patience && self.bought.is_none() {
                self.bought = Some(price);
                cx.pause(); // stops both partitions
            }
        }
    }
}

/// Runs the market; returns the report, the price bought at and the number
/// of quotes the trader saw.
pub fn run() -> Result<(RuntimeReport, Option<u64>, usize), maslite::Error> {
    let mut rt = Runtime::builder().partitions(2).real_time().build()?;
    let trader = AgentId(2);
    rt.add_with_id(0, AgentId(1), Feed { to: trader, every: 0.01, price: 10_000 })?;
    rt.add_made(1, Some(trader), || Trader {
        patience: 5,
        seen: Rc::new(RefCell::new(Vec::new())),
        bought: None,
    })?;
    let report = rt.run()?;
    let (bought, seen) = rt.with_agent(trader, |t: &Trader| (t.bought, t.seen.borrow().len()))?;
    Ok((report, bought, seen))
}

pub fn main() -> Result<(), maslite::Error> {
    // Logs on stderr: warnings (a dead letter, say) by default; more with
    // RUST_LOG, e.g. `RUST_LOG=maslite_runtime=debug`.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_thread_names(true)
        .with_writer(std::io::stderr)
        .try_init();
    let (report, bought, seen) = run()?;
    assert_eq!(report.reason, StopReason::Paused);
    print!("{report}");
    let price = bought.expect("the trader bought");
    let ms = report.wall.as_secs_f64() * 1e3;
    println!("realtime: bought at {price} after {seen} quotes in {ms:.0} ms");
    Ok(())
}
