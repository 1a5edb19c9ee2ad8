//! # snapshot — save a market, resume it anywhere, branch "what if" runs
//!
//! A market of traders and one exchange runs to t = 100 on two partitions
//! and is saved to a file. Then:
//!
//! 1. it resumes on one partition and on four (the agents placed anew) and
//!    runs on to t = 200: the same trades, price for price, as a run that
//!    never stopped;
//! 2. two "what if" runs branch from the same snapshot: as it was, and with
//!    a tax on every trade announced at t = 100.
//!
//! What makes an agent saveable: its type is registered in [`Types`] and is
//! `Serialize + Deserialize`, and everything it needs between updates is in
//! its struct (a trader's next decision is an alarm to itself, not a
//! `sleep` inside an update).
//!
//! Run it: `cargo run --release --example snapshot`.

use maslite::prelude::*;
use maslite::Image;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A trader's order: buy (or sell) one unit at up to (at least) `price`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Order {
    pub buy: bool,
    pub price: u32,
}

/// A trade made by the exchange, broadcast on "trade".
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trade {
    pub at: u64,
    pub price: u32,
    pub buyer: AgentId,
    pub seller: AgentId,
}

/// The trader's own reminder to decide again.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Decide;

/// News for everyone: from now on, `tax` is added to every trade's price.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Tax(pub u32);

/// Trades around its own idea of the value, which follows the last trades.
#[derive(Debug, Serialize, Deserialize)]
pub struct Trader {
    pub exchange: AgentId,
    pub value: u32,
    pub rng: u64,
    pub traded: u32,
}

impl Trader {
    fn draw(&mut self, n: u64) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng % n
    }
}

impl Agent for Trader {
    async fn setup(&mut self, cx: &Cx) {
        // Opinions differ: a value between 90 and 110.
        self.value = 90 + self.draw(21) as u32;
        cx.subscribe(Subscription::new().topic("trade")).unwrap();
        cx.set_alarm(Alarm::after(1.0, Envelope::new(Decide).to(cx.id()))).unwrap();
    }

    async fn update(&mut self, cx: &Cx) {
        while let Some(env) = cx.try_recv() {
            if let Ok(trade) = env.payload::<Trade>() {
                // Drift toward the market.
                self.value = (3 * self.value + trade.price) / 4;
                if trade.buyer == cx.id() || trade.seller == cx.id() {
                    self.traded += 1;
                }
            } else if env.is::<Decide>() {
                let buy = self.draw(2) == 0;
                let spread = self.draw(10) as u32;
                let price =
                    if buy { self.value.saturating_sub(spread) } else { self.value + spread };
                cx.send(Envelope::new(Order { buy, price }).to(self.exchange));
                let next = 0.5 + self.draw(4) as f64 * 0.5;
                cx.set_alarm(Alarm::after(next, Envelope::new(Decide).to(cx.id()))).unwrap();
            }
        }
    }
}

/// Matches a buy with the best sell it crosses, and the reverse.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Exchange {
    pub bids: Vec<(u32, AgentId)>,
    pub asks: Vec<(u32, AgentId)>,
    pub tax: u32,
    pub trades: Vec<Trade>,
}

impl Agent for Exchange {
    async fn update(&mut self, cx: &Cx) {
        while let Some(env) = cx.try_recv() {
            if let Ok(Tax(t)) = env.payload::<Tax>() {
                self.tax = *t;
                continue;
            }
            let Ok(order) = env.payload::<Order>() else { continue };
            let trader = env.sender();
            let (book, other) = if order.buy {
                (&mut self.bids, &mut self.asks)
            } else {
                (&mut self.asks, &mut self.bids)
            };
            let crosses = |p: u32| if order.buy { p <= order.price } else { p >= order.price };
            let best = other
                .iter()
                .enumerate()
                .filter(|(_, (p, _))| crosses(*p))
                .min_by_key(|(_, (p, _))| if order.buy { *p } else { u32::MAX - *p })
                .map(|(i, _)| i);
            match best {
                Some(i) => {
                    let (price, counterpart) = other.remove(i);
                    let (buyer, seller) =
                        if order.buy { (trader, counterpart) } else { (counterpart, trader) };
                    let trade =
                        Trade { at: cx.now() as u64, price: price + self.tax, buyer, seller };
                    self.trades.push(trade.clone());
                    cx.send(Envelope::new(trade).topic_is("trade"));
                }
                None => {
                    book.push((order.price, trader));
                    // A book of the latest 20 orders a side.
                    if book.len() > 20 {
                        book.remove(0);
                    }
                }
            }
        }
    }
}

/// The market's types, registered once: payloads and agents.
pub fn types() -> Types {
    let mut types = Types::new();
    types.register::<Order>().unwrap().register::<Trade>().unwrap();
    types.register::<Decide>().unwrap().register::<Tax>().unwrap();
    types.register_agent::<Trader>().unwrap().register_agent::<Exchange>().unwrap();
    types
}

/// The exchange's id.
pub const EXCHANGE: AgentId = AgentId(1);

/// A market of `traders` on `partitions` partitions, not yet run.
pub fn market(traders: u64, partitions: usize) -> Result<Runtime, Error> {
    let mut rt = Runtime::new(partitions)?;
    rt.add_with_id(0, EXCHANGE, Exchange::default())?;
    for i in 0..traders {
        let id = AgentId(100 + i);
        let trader =
            Trader { exchange: EXCHANGE, value: 100, rng: 0x9E37_79B9 ^ (i + 1) << 7, traded: 0 };
        rt.add_with_id(i as usize % partitions, id, trader)?;
    }
    Ok(rt)
}

/// Runs on to `t`, keeping the alarms (the run is to go on).
pub fn run_to(rt: &mut Runtime, t: f64) -> Result<(), Error> {
    rt.run_with(RunOptions::new().until(t).clear_alarms_at_end(false)).map(drop)
}

/// The exchange's trades so far.
pub fn trades(rt: &mut Runtime) -> Result<Vec<Trade>, Error> {
    rt.with_agent(EXCHANGE, |e: &Exchange| e.trades.clone())
}

/// The story the example tells: returns (uninterrupted trades, resumed on
/// 1 and 4 partitions, the taxed branch's), all to t = 200.
pub fn story(traders: u64, dir: &std::path::Path) -> Result<[Vec<Trade>; 4], Error> {
    let types = types();
    let mut whole = market(traders, 2)?;
    run_to(&mut whole, 200.0)?;
    let uninterrupted = trades(&mut whole)?;

    // To t = 100 on two partitions, then saved to a file.
    let mut first = market(traders, 2)?;
    run_to(&mut first, 100.0)?;
    let path = dir.join("market.snap");
    let file = std::fs::File::create(&path).map_err(|e| Error::SnapshotIo(e.to_string()))?;
    first.snapshot(&types, std::io::BufWriter::new(file))?;
    drop(first);

    // Read once, shared by the runs that go on from it.
    let file = std::fs::File::open(&path).map_err(|e| Error::SnapshotIo(e.to_string()))?;
    let saved = Arc::new(Image::read(&types, std::io::BufReader::new(file))?);
    let mut resumed = Vec::new();
    for partitions in [1, 4] {
        let builder = Runtime::builder().partitions(partitions);
        let place = |id: AgentId| (id.0 as usize * 7) % partitions;
        let mut rt = Runtime::from_image(builder, &types, saved.clone(), place)?;
        run_to(&mut rt, 200.0)?;
        resumed.push(trades(&mut rt)?);
    }

    // What if every trade were taxed from t = 100 on?
    let mut taxed = Runtime::from_image(Runtime::builder().partitions(2), &types, saved, |_| 0)?;
    taxed.send(Envelope::new(Tax(5)).to(EXCHANGE));
    run_to(&mut taxed, 200.0)?;
    let taxed = trades(&mut taxed)?;
    let [one, four] = <[Vec<Trade>; 2]>::try_from(resumed).expect("two runs");
    Ok([uninterrupted, one, four, taxed])
}

pub fn main() -> Result<(), Error> {
    let dir = std::env::temp_dir();
    let [whole, one, four, taxed] = story(40, &dir)?;
    let mean = |t: &[Trade]| t.iter().map(|t| t.price as f64).sum::<f64>() / t.len().max(1) as f64;
    let after = |t: &[Trade]| t.iter().filter(|t| t.at >= 100).cloned().collect::<Vec<_>>();
    println!("uninterrupted: {} trades, mean price {:.2}", whole.len(), mean(&whole));
    println!("saved at t=100 on 2 partitions, resumed on 1: same trades: {}", one == whole);
    println!("resumed on 4, agents placed anew: same trades: {}", four == whole);
    println!(
        "what if a tax of 5 from t=100: {} trades after, mean price {:.2} (untaxed: {} trades, {:.2})",
        after(&taxed).len(),
        mean(&after(&taxed)),
        after(&whole).len(),
        mean(&after(&whole)),
    );
    Ok(())
}
