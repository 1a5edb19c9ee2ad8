//! An HTTP load generator for the `service` case, on hyper's client: a
//! number of keep-alive connections, each sending orders one after another
//! (as `oha` does), every answer's latency kept.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// How hard to load a server.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    /// Keep-alive connections, each with one request at a time.
    pub connections: usize,
    /// Orders in all, spread evenly over the connections.
    pub requests: u64,
}

/// What one load run measured (connections opened before the clock
/// starts).
#[derive(Clone, Debug)]
pub struct Measured {
    /// Answers per second of wall time.
    pub requests_per_second: f64,
    /// Latencies, request sent to answer read.
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    /// Answers that were not a 200.
    pub not_ok: u64,
}

/// The orders the connections cycle through: buys and sells at prices
/// that cross, so the books trade and stay small.
fn orders() -> Vec<Bytes> {
    let mut out = Vec::new();
    for symbol in ["ACME", "GLOBEX", "INITECH"] {
        for (i, side) in ["buy", "sell", "sell", "buy"].iter().enumerate() {
            let (price, qty) = (99 + i as u64 % 3, 1 + i as u64 % 2);
            out.push(Bytes::from(format!(
                r#"{{"symbol":"{symbol}","side":"{side}","price":{price},"qty":{qty}}}"#
            )));
        }
    }
    out
}

/// Drives `load` against `POST http://addr/orders`; panics if a request
/// gets no answer.
pub async fn drive(addr: SocketAddr, load: Load) -> Measured {
    let connections = load.connections.max(1);
    let bodies = orders();
    let mut senders = Vec::with_capacity(connections);
    for _ in 0..connections {
        let stream = TcpStream::connect(addr).await.expect("the server accepts");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        let (sender, conn) = http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
            .await
            .expect("an HTTP/1.1 connection");
        tokio::spawn(conn);
        senders.push(sender);
    }
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(connections);
    for (c, mut sender) in senders.into_iter().enumerate() {
        let share = load.requests / connections as u64
            + u64::from((c as u64) < load.requests % connections as u64);
        let bodies = bodies.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(share as usize);
            let mut not_ok = 0u64;
            for i in 0..share {
                let body = bodies[(c + i as usize) % bodies.len()].clone();
                let request = Request::post("/orders")
                    .header("host", "bench")
                    .header("content-type", "application/json")
                    .body(Full::new(body))
                    .expect("a well-formed request");
                let sent = Instant::now();
                sender.ready().await.expect("the connection stays open");
                let response = sender.send_request(request).await.expect("an answer");
                let ok = response.status() == 200;
                response.into_body().collect().await.expect("the whole answer");
                latencies.push(sent.elapsed());
                not_ok += u64::from(!ok);
            }
            (latencies, not_ok)
        }));
    }
    let mut latencies = Vec::with_capacity(load.requests as usize);
    let mut not_ok = 0;
    for t in tasks {
        let (l, n) = t.await.expect("a load task");
        latencies.extend(l);
        not_ok += n;
    }
    let wall = start.elapsed();
    latencies.sort_unstable();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Measured {
        requests_per_second: latencies.len() as f64 / wall.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
        max: latencies.last().copied().unwrap_or_default(),
        not_ok,
    }
}
