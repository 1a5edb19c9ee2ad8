//! # service — an order-matching service over HTTP, with agents behind axum
//!
//! For applications that host agents inside a tokio service. Each traded
//! symbol has an order book, an agent (on one partition by default). HTTP
//! requests become messages to the books, and the books' answers become
//! HTTP responses:
//!
//! - `POST /orders` with `{"symbol": "ACME", "side": "buy", "price": 101,
//!   "qty": 5}` answers what the order traded against the book (`fills`)
//!   and what rests in it.
//! - `GET /stats` answers the service's live figures.
//!
//! The runtime runs in the background ([`Runtime::serve`]). Each request is
//! sent in through the service's bounded inlet, so a flood of requests
//! waits instead of growing memory. The books reply to an answerer, an
//! agent on their own partition that hands each answer to the request
//! waiting for it (a oneshot channel): the answer crosses no partition and
//! waits for no task on its way out. (An endpoint's stream read by a
//! dispatcher task, as in the README, works too; under load it costs a
//! hop more per request, and one more again for books whose answers cross
//! to the endpoint's partition.)
//!
//! Where the HTTP server runs (`--http`):
//! - `on-partitions` (the default): an accept loop on each partition's
//!   thread, all on one listening socket ([`Service::host`], thread per
//!   core). A request taken on the partition of its book goes in and comes
//!   back on that one thread: no thread hand-off. At 32 connections on 2
//!   cores this did 0.88 of a bare axum handler's requests per second.
//! - `beside`: on the application's tokio runtime, its own workers. Each
//!   order goes to its book's thread and its answer comes back: two thread
//!   hand-offs, 0.75 of the bare handler at 32 connections. Its one
//!   strength: a book that blocks its thread (`Book::slowed`) does not
//!   hold up the connections (the overloaded case of `maslite-bench
//!   service` runs so).
//!
//! A bad request gets a 400 that says what is wrong; an unknown symbol, a
//! 404. An order that finds no room in the inlet within a deadline
//! (`--admission-ms`: the books are behind) gets a 503 instead of hanging;
//! an order taken in is always answered with what the book did.
//!
//! Ctrl-C stops the service gracefully, and under load: orders already
//! taken in are matched and answered (200), later ones get a 503, and every
//! answer from then on says `Connection: close`, so each keep-alive
//! connection closes right after an answer — never under a request that a
//! client is sending (see `graceful.rs`, the HTTP server). A second after
//! the books stop (`--drain-ms`), the listener closes.
//!
//! Run it: `cargo run --example service -- --addr 127.0.0.1:3000`, then
//! `curl -s localhost:3000/orders -d '{"symbol":"ACME","side":"sell","price":100,"qty":3}' -H 'content-type: application/json'`.
//! The first line reads `service: listening on http://<addr>`. Flags
//! (defaults): `--addr 127.0.0.1:3000 --partitions 1` (with more, the books
//! of ACME, GLOBEX and INITECH go round the partitions), `--http
//! on-partitions --admission-ms 2000 --drain-ms 1000`; `-- --help` says
//! more. One partition is the default because on 2 cores a second one cost
//! more than it gave: with the server on the partitions, an order taken on
//! one partition for a book on the other crosses threads both ways
//! (BENCHMARKS.md, "Services"). `maslite-bench service` loads it with 32
//! and 256 connections beside a bare axum handler.

pub mod graceful;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Parser;
use graceful::OpenConnections;
use maslite::prelude::*;
use maslite::runtime::CancellationToken;
use maslite::runtime::{Inlet, RuntimeReport, ServeOptions, Service};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Buy or sell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Buy,
    Sell,
}

/// An order, as posted.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderRequest {
    pub symbol: String,
    pub side: Side,
    /// A limit price, in cents.
    pub price: u64,
    pub qty: u64,
}

/// An order, as a message to a book.
#[derive(Clone, Debug)]
struct Order {
    /// The request it answers (the answerer's key).
    request: u64,
    side: Side,
    price: u64,
    qty: u64,
}

/// A trade against an order resting in the book.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fill {
    pub price: u64,
    pub qty: u64,
    /// The resting order traded against.
    pub with: u64,
}

/// What a book answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// The order's id in the book.
    pub order: u64,
    pub symbol: String,
    pub fills: Vec<Fill>,
    /// What rests in the book, unfilled.
    pub resting: u64,
}

/// What a book did with an order: an [`Ack`] but the symbol, which the
/// request has (so the book's thread allocates no copy of it for the
/// server's thread to free).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Traded {
    /// The order's id in the book.
    pub order: u64,
    pub fills: Vec<Fill>,
    /// What rests in the book, unfilled.
    pub resting: u64,
}

impl Traded {
    /// The answer to an order for `symbol`.
    pub fn ack(self, symbol: String) -> Ack {
        Ack { order: self.order, symbol, fills: self.fills, resting: self.resting }
    }
}

/// A book agent's answer to request `request`.
#[derive(Clone, Debug)]
struct Answer {
    request: u64,
    traded: Traded,
}

/// One symbol's order book: price-time priority.
#[derive(Default)]
pub struct Book {
    next: u64,
    /// Price → resting (order, qty), oldest first.
    bids: BTreeMap<u64, VecDeque<(u64, u64)>>,
    asks: BTreeMap<u64, VecDeque<(u64, u64)>>,
    /// Time each order takes on top of matching it (see [`Book::slowed`]).
    work: Duration,
}

impl Book {
    pub fn new() -> Book {
        Book::default()
    }

    /// A book slowed on purpose: each order also takes `work` of its
    /// partition's thread, a stand-in for a book that falls behind (the
    /// overload test: requests pile up at the inlet).
    pub fn slowed(mut self, work: Duration) -> Book {
        self.work = work;
        self
    }

    /// Trades an order against the book and rests what is left of it.
    pub fn trade(&mut self, side: Side, price: u64, qty: u64) -> Traded {
        let o = Order { request: 0, side, price, qty };
        self.next += 1;
        let id = self.next;
        let mut left = o.qty;
        let mut fills = Vec::new();
        let opposite = match o.side {
            Side::Buy => &mut self.asks,
            Side::Sell => &mut self.bids,
        };
        while left > 0 {
            // The best opposite price: the lowest ask, the highest bid.
            let best = match o.side {
                Side::Buy => opposite.keys().next().copied().filter(|&p| p <= o.price),
                Side::Sell => opposite.keys().next_back().copied().filter(|&p| p >= o.price),
            };
            let Some(price) = best else { break };
            let queue = opposite.get_mut(&price).expect("a best price has orders");
            while left > 0 {
                let Some((with, qty)) = queue.front_mut() else { break };
                let traded = left.min(*qty);
                fills.push(Fill { price, qty: traded, with: *with });
                left -= traded;
                *qty -= traded;
                if *qty == 0 {
                    queue.pop_front();
                }
            }
            if queue.is_empty() {
                opposite.remove(&price);
            }
        }
        if left > 0 {
            let own = match o.side {
                Side::Buy => &mut self.bids,
                Side::Sell => &mut self.asks,
            };
            own.entry(o.price).or_default().push_back((id, left));
        }
        Traded { order: id, fills, resting: left }
    }
}

impl Agent for Book {
    async fn update(&mut self, cx: &Cx) {
        while let Some(mut env) = cx.try_recv() {
            let Ok(order) = env.payload::<Order>() else { continue };
            if !self.work.is_zero() {
                std::thread::sleep(self.work); // the partition's own thread
            }
            let traded = self.trade(order.side, order.price, order.qty);
            let answer = Answer { request: order.request, traded };
            env.reply().expect("orders come from an answerer");
            cx.send(Envelope::new(answer).to(env.receiver().expect("replied")));
        }
    }
}

/// Hands each answer from the books to the request waiting for it, on the
/// partition's own thread: one per partition, beside its books, so that an
/// answer crosses no partition and waits for no task on its way out.
struct Answerer {
    waiting: Waiting,
    counts: Arc<AnswerCounts>,
}

/// What the answerers counted (see [`Answers`]).
#[derive(Debug, Default)]
struct AnswerCounts {
    sent: AtomicU64,
    unclaimed: AtomicU64,
}

impl Agent for Answerer {
    async fn update(&mut self, cx: &Cx) {
        while let Some(env) = cx.try_recv() {
            let Ok(answer) = env.into_payload::<Answer>() else { continue };
            self.counts.sent.fetch_add(1, Ordering::Relaxed);
            let tx = self.waiting.lock().unwrap().remove(&answer.request);
            // (A oneshot's send does not block: it wakes the request.)
            if tx.is_none_or(|tx| tx.send(answer.traded).is_err()) {
                self.counts.unclaimed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The answerer of partition `p`.
fn answerer(p: usize) -> AgentId {
    AgentId(1 + p as u64)
}

/// Requests waiting for their answer, by request number.
type Waiting = Arc<Mutex<HashMap<u64, oneshot::Sender<Traded>>>>;

/// What the HTTP handlers share (one `Arc`: a handler's clone of it is
/// one count, not one per field).
#[derive(Clone)]
pub struct App(Arc<Shared>);

struct Shared {
    inlet: Inlet,
    /// Each symbol's book, and the answerer on its partition.
    books: HashMap<String, (AgentId, AgentId)>,
    waiting: Waiting,
    next: AtomicU64,
    /// Requests that reached a handler.
    received: AtomicU64,
    /// How long an order waits for room in the inlet before a 503.
    admission: Duration,
}

impl App {
    /// Requests waiting for a book's answer now.
    pub fn in_flight(&self) -> usize {
        self.0.waiting.lock().unwrap().len()
    }

    /// Requests that reached a handler so far.
    pub fn received(&self) -> u64 {
        self.0.received.load(Ordering::Relaxed)
    }
}

/// An error response: a status and a message in JSON.
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": message.into() }))).into_response()
}

async fn post_order(State(App(app)): State<App>, body: axum::body::Bytes) -> Response {
    app.received.fetch_add(1, Ordering::Relaxed);
    let req: OrderRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid order: {e}")),
    };
    if req.qty == 0 || req.price == 0 {
        return error(StatusCode::BAD_REQUEST, "invalid order: price and qty must be > 0");
    }
    let Some(&(book, answers)) = app.books.get(&req.symbol) else {
        return error(StatusCode::NOT_FOUND, format!("unknown symbol {:?}", req.symbol));
    };
    let request = app.next.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = oneshot::channel();
    // Registered before it is sent: the answer cannot come first.
    app.waiting.lock().unwrap().insert(request, tx);
    let order = Order { request, side: req.side, price: req.price, qty: req.qty };
    let envelope = Envelope::new(order).from(answers).to(book);
    if let Err(e) = app.inlet.send_timeout(envelope, app.admission).await {
        app.waiting.lock().unwrap().remove(&request);
        return match e {
            Error::Stopped => error(StatusCode::SERVICE_UNAVAILABLE, "the service is stopping"),
            Error::Full => {
                let ms = app.admission.as_millis();
                error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("busy: no room for the order in {ms} ms"),
                )
            }
            e => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        };
    }
    // Taken in: the book will match it, and its answer is this response.
    // No time limit here — giving up would leave an order matched without
    // its answer (the limit is on getting in, above).
    match rx.await {
        Ok(traded) => Json(traded.ack(req.symbol)).into_response(),
        // The run was cut short (the grace ran out) before the book had it.
        Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "the service stopped before answering"),
    }
}

/// The service's live figures.
#[derive(Debug, Serialize, Deserialize)]
pub struct StatsBody {
    pub accepted: u64,
    pub messages: u64,
    pub updates: u64,
    pub uptime_seconds: f64,
    pub in_flight: usize,
    pub running: bool,
}

async fn get_stats(State(app): State<App>) -> Json<StatsBody> {
    let s = app.0.inlet.stats();
    Json(StatsBody {
        accepted: s.accepted,
        messages: s.messages,
        updates: s.updates,
        uptime_seconds: s.uptime.as_secs_f64(),
        in_flight: app.in_flight(),
        running: s.running,
    })
}

/// What the books answered over a service's life (see [`Stopped`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Answers {
    /// Answers the books sent: orders matched or rested.
    pub sent: u64,
    /// Of those, answers whose request was gone (its client hung up).
    pub unclaimed: u64,
}

/// How a service is started (see [`start`]).
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Partitions the books go round (book i on partition i mod P).
    pub partitions: usize,
    /// How long an order waits for room in the inlet before a 503.
    pub admission: Duration,
    /// Room in the inlet, orders per partition.
    pub capacity: usize,
    /// After the books stop, how long the HTTP server drains (answering
    /// with `Connection: close`) before it closes; `None`: until
    /// [`Running::close_http`] is cancelled.
    pub drain: Option<Duration>,
    /// Extra time each order takes in its book ([`Book::slowed`]; zero:
    /// none).
    pub book_work: Duration,
    /// Where the HTTP server runs.
    pub http: Http,
}

/// Where the HTTP server runs (see [`start`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Http {
    /// On the partitions' threads, an accept loop on each
    /// ([`Service::host`]): thread per core. An order for a book on the
    /// partition that took its connection crosses no thread, nor does its
    /// answer.
    #[default]
    OnPartitions,
    /// Beside the partitions, on the application's tokio runtime: each
    /// order goes to its book's partition through the inlet, and its
    /// answer comes back to the server's thread.
    Beside,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            partitions: 1,
            admission: Duration::from_secs(2),
            capacity: 1024,
            drain: Some(Duration::from_secs(1)),
            book_work: Duration::ZERO,
            http: Http::OnPartitions,
        }
    }
}

/// What a stopped service reports.
#[derive(Debug)]
pub struct Stopped {
    /// The agents' run.
    pub report: RuntimeReport,
    /// What the books answered.
    pub answers: Answers,
}

/// A running service (see [`start`]).
pub struct Running {
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    /// What the handlers share (counters for tests).
    pub app: App,
    /// Cancel it to stop gracefully.
    pub stop: CancellationToken,
    /// Cancel it (after `stop`) to close the HTTP server; until then it
    /// drains: 503 to new orders, `Connection: close` on every answer.
    /// [`start`] cancels it itself [`Options::drain`] after the books stop.
    pub close_http: CancellationToken,
    /// The HTTP connections open now.
    pub connections: OpenConnections,
    /// What the run did, once the service and its HTTP server stopped.
    pub done: tokio::task::JoinHandle<maslite::Result<Stopped>>,
}

/// Starts the service on `listener` with `symbols`, one book per partition
/// in turn.
pub async fn start(
    listener: TcpListener,
    symbols: &[&str],
    options: Options,
) -> maslite::Result<Running> {
    let partitions = options.partitions.max(1);
    let mut rt = Service::builder().partitions(partitions).build()?;
    let waiting: Waiting = Arc::default();
    let counts = Arc::new(AnswerCounts::default());
    // The answerers' ids first: the books take the next free ids.
    for p in 0..partitions {
        let answers = Answerer { waiting: waiting.clone(), counts: counts.clone() };
        rt.add_with_id(p, answerer(p), answers)?;
    }
    let mut books = HashMap::new();
    for (i, symbol) in symbols.iter().enumerate() {
        let p = i % partitions;
        let id = rt.add(p, Book::new().slowed(options.book_work))?;
        books.insert(symbol.to_string(), (id, answerer(p)));
    }
    let service = rt.serve(ServeOptions::new().capacity(options.capacity))?;
    let app = App(Arc::new(Shared {
        inlet: service.inlet(),
        books,
        waiting: waiting.clone(),
        next: AtomicU64::new(0),
        received: AtomicU64::new(0),
        admission: options.admission,
    }));
    let router = Router::new()
        .route("/orders", post(post_order))
        .route("/stats", get(get_stats))
        .with_state(app.clone());
    let addr = listener.local_addr().map_err(|e| Error::Config(e.to_string()))?;
    let stop = CancellationToken::new();
    let close_http = CancellationToken::new();
    let connections = OpenConnections::default();
    let mut http = Vec::new();
    match options.http {
        Http::Beside => http.push(tokio::spawn(graceful::serve(
            listener,
            router,
            stop.clone(),
            close_http.clone(),
            connections.clone(),
        ))),
        Http::OnPartitions => {
            // One listening socket, an accept loop on each partition's
            // thread (each registers it with its own tokio runtime).
            let listening = listener.into_std().map_err(|e| Error::Config(e.to_string()))?;
            for p in 0..partitions {
                let (router, stop, close) = (router.clone(), stop.clone(), close_http.clone());
                let open = connections.clone();
                let (ready, listens) = oneshot::channel();
                let server = match listening.try_clone() {
                    Err(e) => Err(Error::Config(format!("the listener: {e}"))),
                    Ok(listening) => {
                        service
                            .host(p, move || {
                                // Here, on the partition's thread: registered
                                // with its tokio runtime.
                                let listener = TcpListener::from_std(listening);
                                let _ = ready.send(listener.as_ref().map(|_| ()).map_err(|e| {
                                    Error::Config(format!("listening on partition {p}: {e}"))
                                }));
                                async move {
                                    if let Ok(l) = listener {
                                        graceful::serve(l, router, stop, close, open).await;
                                    }
                                }
                            })
                            .await
                    }
                };
                // (Not `listening`: that is the socket, cloned each turn.)
                let listened = match server {
                    Ok(server) => {
                        http.push(server);
                        listens.await.unwrap_or(Err(Error::Stopped))
                    }
                    Err(e) => Err(e),
                };
                if let Err(e) = listened {
                    // The servers started on other partitions stop too (and
                    // the service with its handle, dropped here).
                    close_http.cancel();
                    return Err(e);
                }
            }
        }
    }
    let (stop2, close2) = (stop.clone(), close_http.clone());
    let done = tokio::spawn(async move {
        stop2.cancelled().await;
        // Orders taken in are matched and answered; new ones get a 503.
        let report = service.shutdown(Duration::from_secs(10)).await;
        // Requests whose orders the run did not reach (its grace ran out)
        // get a 503.
        waiting.lock().unwrap().clear();
        let answers = Answers {
            sent: counts.sent.load(Ordering::Relaxed),
            unclaimed: counts.unclaimed.load(Ordering::Relaxed),
        };
        if let Some(drain) = options.drain {
            tokio::select! {
                _ = tokio::time::sleep(drain) => close2.cancel(),
                _ = close2.cancelled() => {}
            }
        }
        close2.cancelled().await;
        for server in http {
            let _ = server.await;
        }
        Ok(Stopped { report: report?, answers })
    });
    Ok(Running { addr, app, stop, close_http, connections, done })
}

/// An order-matching HTTP service: POST /orders (JSON: symbol, side, price
/// in cents, qty) trades against the symbol's book, an agent; GET /stats
/// answers live figures. The books are ACME, GLOBEX and INITECH. Ctrl-C
/// stops it gracefully: orders taken in are answered, later ones get a 503,
/// and every connection closes after an answer.
#[allow(dead_code)] // the tests start the service themselves
#[derive(Debug, Parser)]
#[command(name = "service")]
struct Args {
    /// The address to listen on (port 0: any free port).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:3000")]
    addr: String,
    /// Partitions the books go round (book i on partition i mod P), at
    /// least 1.
    #[arg(long, value_name = "P", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..))]
    partitions: u16,
    /// How long an order may wait for room in the inlet (the books are
    /// behind) before it gets a 503, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    admission_ms: u64,
    /// After a stop, how long open connections keep getting answers (each
    /// its last, with `Connection: close`) before the listener closes, in
    /// milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    drain_ms: u64,
    /// Where the HTTP server runs: on the partitions' threads (thread per
    /// core), or beside them on the application's tokio runtime.
    #[arg(long, value_enum, default_value_t = Http::OnPartitions)]
    http: Http,
}

#[allow(dead_code)]
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_thread_names(true).try_init();
    let listener = TcpListener::bind(&args.addr).await?;
    let symbols = ["ACME", "GLOBEX", "INITECH"];
    let options = Options {
        partitions: args.partitions.into(),
        admission: Duration::from_millis(args.admission_ms),
        drain: Some(Duration::from_millis(args.drain_ms)),
        http: args.http,
        ..Options::default()
    };
    let running = start(listener, &symbols, options).await?;
    println!("service: listening on http://{}", running.addr);
    tokio::signal::ctrl_c().await?;
    println!("service: stopping");
    running.stop.cancel();
    let Stopped { report, answers } = running.done.await??;
    println!(
        "service: stopped after {:.1} s, {} messages, {} dead letters, {} orders answered",
        report.wall.as_secs_f64(),
        report.delivered(),
        report.dead_letters(),
        answers.sent - answers.unclaimed,
    );
    Ok(())
}
