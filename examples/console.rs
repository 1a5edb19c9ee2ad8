//! # console — a live system, watched in tokio-console
//!
//! A small market served in the background of a tokio application, on the
//! wall clock, for you to watch in
//! [tokio-console](https://github.com/tokio-rs/console): a price feed on
//! partition 0 quotes every 10 ms (an alarm it sets itself) to a desk on
//! partition 1; the application sends the desk an order every 50 ms
//! through the service's inlet, and reads the desk's fills from an
//! endpoint. The console lists the tasks `maslite-partition-0` and
//! `maslite-partition-1` (each partition's kernel, agents and routing: there
//! is no separate router task) and `maslite-service` (the service's run,
//! on the application's runtime), with their busy and idle times, polls and
//! wake-ups.
//!
//! Run it (for 60 s; `--seconds S` to change), then watch it from another
//! terminal:
//!
//! ```sh
//! RUSTFLAGS="--cfg tokio_unstable" cargo run --features console --example console
//! tokio-console http://127.0.0.1:6669
//! ```
//!
//! The console's server listens on `--console HOST:PORT`, or
//! `$TOKIO_CONSOLE_BIND`, or 127.0.0.1:6669 (`-- --help` says what each
//! flag does). Each second a line of live figures is printed; the last line
//! reads `console: <n> orders filled, <m> quotes in <s> s`.

use clap::Parser;
use futures::StreamExt;
use maslite::prelude::*;
use maslite::runtime::{RuntimeReport, ServeOptions};
use std::future::Future;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// A price, in cents.
#[derive(Clone, Debug)]
pub struct Quote(pub u64);

/// An order for a number of units, from the application.
#[derive(Clone, Debug)]
pub struct Order(pub u32);

/// An order filled: units and price.
#[derive(Clone, Debug)]
pub struct Fill(pub u32, pub u64);

/// The feed's own clock tick.
#[derive(Clone)]
struct Tick;

/// The feed, on partition 0.
pub const FEED: AgentId = AgentId(1);
/// The desk, on partition 1.
pub const DESK: AgentId = AgentId(2);
/// The application's endpoint for fills, on partition 1.
pub const FILLS: AgentId = AgentId(100);

/// Quotes a price to the desk every `every` seconds.
struct Feed {
    every: f64,
    price: u64,
}

impl Feed {
    fn tick(&self, cx: &Cx) {
        let tick = Envelope::new(Tick).to(cx.id());
        cx.set_alarm(Alarm::after(self.every, tick).keep_alive()).expect("a positive delay");
    }
}

impl Agent for Feed {
    async fn setup(&mut self, cx: &Cx) {
        // The opening quote, at once: the desk (on the other partition)
        // has a price from the market's first step on.
        cx.send(Envelope::new(Quote(self.price)).to(DESK));
        self.tick(cx);
    }

    async fn update(&mut self, cx: &Cx) {
        while cx.try_recv().is_some() {
            // A small deterministic walk.
            self.price = self.price * 1009 % 10_007 + 9_000;
            cx.send(Envelope::new(Quote(self.price)).to(DESK));
            self.tick(cx);
        }
    }
}

/// Fills orders at the last quote, to the application's endpoint.
struct Desk {
    last: Option<u64>,
}

impl Agent for Desk {
    async fn update(&mut self, cx: &Cx) {
        while let Some(env) = cx.try_recv() {
            if let Ok(Quote(price)) = env.payload::<Quote>() {
                self.last = Some(*price);
            } else if let Ok(Order(qty)) = env.payload::<Order>() {
                // Before the first quote: at the opening price.
                let price = self.last.unwrap_or(10_000);
                cx.send(Envelope::new(Fill(*qty, price)).to(FILLS));
            }
        }
    }
}

/// What a session of the market did.
#[derive(Debug)]
pub struct Summary {
    /// The service's run report.
    pub report: RuntimeReport,
    /// Orders the application sent.
    pub orders: u64,
    /// Fills it read.
    pub fills: u64,
}

/// Serves the market in the current tokio runtime until `until` completes,
/// printing live figures every `every`, then stops it gracefully.
pub async fn market(
    until: impl Future<Output = ()>,
    every: Duration,
) -> Result<Summary, maslite::Error> {
    let mut rt = Runtime::builder().partitions(2).real_time().build()?;
    rt.add_with_id(0, FEED, Feed { every: 0.01, price: 10_000 })?;
    rt.add_with_id(1, DESK, Desk { last: None })?;
    let mut fills_out = rt.endpoint(1, FILLS)?;
    let service = rt.serve(ServeOptions::new())?;

    // The application's side: a task sends orders, another reads fills.
    let inlet = service.inlet();
    let orders = tokio::spawn(async move {
        let mut sent = 0u64;
        let mut every = tokio::time::interval(Duration::from_millis(50));
        loop {
            every.tick().await;
            let qty = (sent % 5 + 1) as u32;
            let order = Envelope::new(Order(qty)).to(DESK);
            if inlet.send(order).await.is_err() {
                return sent; // the service is stopping
            }
            sent += 1;
        }
    });
    let fills = tokio::spawn(async move {
        let mut n = 0u64;
        while fills_out.next().await.is_some() {
            n += 1;
        }
        n
    });

    tokio::pin!(until);
    let mut ticker = tokio::time::interval(every);
    ticker.tick().await;
    loop {
        tokio::select! {
            () = &mut until => break,
            _ = ticker.tick() => {
                let s = service.stats();
                println!(
                    "t = {:5.1} s: {} orders in, {} messages, {} updates",
                    s.uptime.as_secs_f64(),
                    s.accepted,
                    s.messages,
                    s.updates
                );
            }
        }
    }
    let report = service.shutdown(Duration::from_secs(5)).await?;
    let orders = orders.await.expect("the order task ends when the service stops");
    let fills = fills.await.expect("the fill stream ends with the service");
    Ok(Summary { report, orders, fills })
}

/// A small market on the wall clock, served in the background of a tokio
/// application, to watch in tokio-console: a feed quotes every 10 ms, the
/// application orders every 50 ms. Build with `RUSTFLAGS="--cfg
/// tokio_unstable"` and `--features console`, then run `tokio-console
/// http://<address>`.
#[derive(Debug, Parser)]
#[command(name = "console")]
struct Args {
    /// The console server's address [default: $TOKIO_CONSOLE_BIND, else
    /// 127.0.0.1:6669].
    #[arg(long, value_name = "HOST:PORT")]
    console: Option<String>,
    /// How long to run, in wall-clock seconds.
    #[arg(long, value_name = "S", default_value_t = 60.0)]
    seconds: f64,
}

/// The console's address: `--console HOST:PORT`, else
/// `$TOKIO_CONSOLE_BIND`, else 127.0.0.1:6669; and how long to run:
/// `--seconds S` (default 60).
fn options() -> (SocketAddr, f64) {
    let args = Args::parse();
    let addr = args.console.or_else(|| std::env::var("TOKIO_CONSOLE_BIND").ok());
    let addr = addr.map_or(maslite::runtime::console::DEFAULT_ADDR, |a| {
        let mut found = a.to_socket_addrs().into_iter().flatten();
        found.next().expect("the console's address as HOST:PORT, e.g. 127.0.0.1:6669")
    });
    if !(args.seconds.is_finite() && args.seconds >= 0.0) {
        use clap::CommandFactory;
        let e = "--seconds: a number of seconds >= 0";
        Args::command().error(clap::error::ErrorKind::ValueValidation, e).exit();
    }
    (addr, args.seconds)
}

pub fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (addr, seconds) = options();
    // Before any runtime: tasks spawned earlier are not seen. Also logs
    // warnings on stderr (more with RUST_LOG).
    maslite::runtime::console::init(addr)?;
    if !cfg!(tokio_unstable) {
        eprintln!(
            "console: built without RUSTFLAGS=\"--cfg tokio_unstable\": tokio reports no tasks"
        );
    }
    println!("console: watch with `tokio-console http://{addr}` for {seconds} s");
    let app = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let until = async move { tokio::time::sleep(Duration::from_secs_f64(seconds)).await };
    let Summary { report, orders, fills } = app.block_on(market(until, Duration::from_secs(1)))?;
    print!("{report}");
    let quotes = report.traffic[0][1]; // every quote crosses from 0 to 1
    let wall = report.wall.as_secs_f64();
    println!("console: {fills} orders filled of {orders}, {quotes} quotes in {wall:.1} s");
    Ok(())
}
