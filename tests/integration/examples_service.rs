//! The service example over real HTTP: concurrent clients on an ephemeral
//! port, bad requests, live stats, and graceful shutdowns with requests in
//! flight — each gets its answer or a clear 503, none is lost.

use crate::service;

use maslite::runtime::StopReason;
use service::{Ack, Http, StatsBody};
use std::time::Duration;
use tokio::net::TcpListener;

/// Where the HTTP server runs: each test runs with both.
const BOTH: [Http; 2] = [Http::OnPartitions, Http::Beside];

/// The service on an ephemeral port, its HTTP server where `http` says;
/// with `linger`, the server drains until the test cancels `close_http`.
async fn started(linger: bool, http: Http) -> (service::Running, reqwest::Client, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let drain = if linger { None } else { Some(Duration::ZERO) };
    // Two partitions (the example defaults to one): a book on each, each
    // answered by its own partition's answerer (and, with the server on
    // the partitions, an accept loop on each).
    let options = service::Options { drain, partitions: 2, http, ..service::Options::default() };
    let running = service::start(listener, &["ACME", "GLOBEX"], options).await.unwrap();
    let base = format!("http://{}", running.addr);
    (running, reqwest::Client::new(), base)
}

fn order(symbol: &str, side: &str, price: u64, qty: u64) -> serde_json::Value {
    serde_json::json!({ "symbol": symbol, "side": side, "price": price, "qty": qty })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_trade_and_every_fill_has_two_sides() {
    for http in BOTH {
        concurrent_clients_trade_and_every_fill_has_two_sides_with(http).await;
    }
}

async fn concurrent_clients_trade_and_every_fill_has_two_sides_with(http: Http) {
    println!("the HTTP server {http:?}");
    let (running, client, base) = started(false, http).await;
    let clients = 8u64;
    let per = 40u64;
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (client, base) = (client.clone(), base.clone());
        tasks.push(tokio::spawn(async move {
            let mut acks = Vec::new();
            for i in 0..per {
                let side = if (c + i) % 2 == 0 { "buy" } else { "sell" };
                let symbol = if c % 2 == 0 { "ACME" } else { "GLOBEX" };
                let price = 100 + (c * 7 + i * 3) % 5;
                let r = client
                    .post(format!("{base}/orders"))
                    .json(&order(symbol, side, price, 1 + i % 4))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                acks.push((side == "buy", 1 + i % 4, r.json::<Ack>().await.unwrap()));
            }
            acks
        }));
    }
    let mut bought = 0;
    let mut sold = 0;
    let mut answered = 0;
    for t in tasks {
        for (buy, qty, ack) in t.await.unwrap() {
            let filled: u64 = ack.fills.iter().map(|f| f.qty).sum();
            assert_eq!(filled + ack.resting, qty, "{ack:?}");
            // Each trade is counted once by the order that took liquidity;
            // the resting side is that order's counterpart.
            if buy {
                bought += filled;
            } else {
                sold += filled;
            }
            answered += 1;
        }
    }
    assert_eq!(answered, clients * per);
    assert!(bought + sold > 0, "prices cross: some orders trade");
    let stats: StatsBody =
        client.get(format!("{base}/stats")).send().await.unwrap().json().await.unwrap();
    assert_eq!(stats.accepted, clients * per);
    assert!(stats.running);
    assert_eq!(stats.in_flight, 0);
    running.stop.cancel();
    let report = running.done.await.unwrap().unwrap().report;
    assert_eq!(report.reason, StopReason::Idle);
    assert_eq!(report.dead_letters(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_a_400_that_says_what_is_wrong() {
    for http in BOTH {
        bad_requests_get_a_400_that_says_what_is_wrong_with(http).await;
    }
}

async fn bad_requests_get_a_400_that_says_what_is_wrong_with(http: Http) {
    println!("the HTTP server {http:?}");
    let (running, client, base) = started(false, http).await;
    let post = |body: &'static str| {
        client
            .post(format!("{base}/orders"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let cases = [
        ("{\"symbol\": \"ACME\", \"side\": ", 400, "EOF"),
        ("{\"symbol\": \"ACME\", \"side\": \"buy\", \"price\": 1}", 400, "missing field `qty`"),
        (
            "{\"symbol\": \"ACME\", \"side\": \"hold\", \"price\": 1, \"qty\": 1}",
            400,
            "unknown variant `hold`",
        ),
        (
            "{\"symbol\": \"ACME\", \"side\": \"buy\", \"price\": -1, \"qty\": 1}",
            400,
            "invalid value",
        ),
        ("{\"symbol\": \"ACME\", \"side\": \"buy\", \"price\": 1, \"qty\": 0}", 400, "must be > 0"),
        (
            "{\"symbol\": \"NOPE\", \"side\": \"buy\", \"price\": 1, \"qty\": 1}",
            404,
            "unknown symbol",
        ),
    ];
    for (body, status, says) in cases {
        let r = post(body).await.unwrap();
        assert_eq!(r.status(), status, "{body}");
        let v: serde_json::Value = r.json().await.unwrap();
        let message = v["error"].as_str().unwrap();
        assert!(message.contains(says), "{body}: {message}");
    }
    running.stop.cancel();
    running.done.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_answers_every_request_in_flight() {
    for http in BOTH {
        a_graceful_stop_answers_every_request_in_flight_with(http).await;
    }
}

async fn a_graceful_stop_answers_every_request_in_flight_with(http: Http) {
    println!("the HTTP server {http:?}");
    let (running, client, base) = started(false, http).await;
    let n = 200u64;
    let mut tasks = Vec::new();
    for i in 0..n {
        let (client, base) = (client.clone(), base.clone());
        let side = if i % 2 == 0 { "buy" } else { "sell" };
        tasks.push(tokio::spawn(async move {
            client.post(format!("{base}/orders")).json(&order("ACME", side, 100, 1)).send().await
        }));
    }
    // Every request has reached the server: stop now.
    tokio::time::timeout(Duration::from_secs(20), async {
        while running.app.received() < n {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("all requests reach the server");
    let in_flight = running.app.in_flight();
    running.stop.cancel();
    let (mut ok, mut unavailable) = (0, 0);
    for t in tasks {
        let r = t.await.unwrap().expect("no request in flight is dropped");
        match r.status().as_u16() {
            200 => {
                r.json::<Ack>().await.unwrap();
                ok += 1;
            }
            503 => {
                let v: serde_json::Value = r.json().await.unwrap();
                assert!(v["error"].as_str().unwrap().contains("stop"), "{v}");
                unavailable += 1;
            }
            s => panic!("status {s}"),
        }
    }
    assert_eq!(ok + unavailable, n);
    println!("in flight at the stop: {in_flight}; answered {ok}, 503 {unavailable}");
    // Orders taken in before the stop are all answered.
    let report = running.done.await.unwrap().unwrap().report;
    assert_eq!(report.reason, StopReason::Idle);
    assert_eq!(report.dead_letters(), 0);
    assert_eq!(report.pending(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_agents_stop_new_orders_get_a_503() {
    for http in BOTH {
        after_the_agents_stop_new_orders_get_a_503_with(http).await;
    }
}

async fn after_the_agents_stop_new_orders_get_a_503_with(http: Http) {
    println!("the HTTP server {http:?}");
    let (running, client, base) = started(true, http).await;
    let r = client.post(format!("{base}/orders")).json(&order("ACME", "buy", 1, 1)).send().await;
    assert_eq!(r.unwrap().status(), 200);
    running.stop.cancel();
    // The HTTP server lingers; the agents stop.
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let s: StatsBody =
                client.get(format!("{base}/stats")).send().await.unwrap().json().await.unwrap();
            if !s.running {
                break;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the agents stop");
    let r = client.post(format!("{base}/orders")).json(&order("ACME", "buy", 1, 1)).send().await;
    let r = r.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["connection"], "close", "the server drains");
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"], "the service is stopping");
    // Every answer while draining closes its connection, a 404 included.
    let r = client.get(format!("{base}/nowhere")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["connection"], "close");
    running.close_http.cancel();
    running.done.await.unwrap().unwrap();
}

/// How one keep-alive client's run ended: the answers to its orders, then
/// the 503 that stopped it (whether it said `Connection: close`, and its
/// message).
type ClientRun = (Vec<Ack>, bool, String);

/// One client with a keep-alive connection of its own, sending orders one
/// after another until it gets a 503. A request without an HTTP answer
/// (the connection closed or reset under it) is an error.
async fn keep_alive_client(base: String, c: u64) -> Result<ClientRun, String> {
    let client = reqwest::Client::new();
    let mut acks = Vec::new();
    for i in 0u64.. {
        let side = if (c + i).is_multiple_of(2) { "buy" } else { "sell" };
        let symbol = if c.is_multiple_of(2) { "ACME" } else { "GLOBEX" };
        let r = client
            .post(format!("{base}/orders"))
            .json(&order(symbol, side, 100 + i % 3, 1 + i % 2))
            .send()
            .await
            .map_err(|e| format!("client {c}, order {i}: no answer: {e:?}"))?;
        let status = r.status().as_u16();
        let close = r.headers().get("connection").is_some_and(|v| v == "close");
        match status {
            200 => acks.push(r.json::<Ack>().await.map_err(|e| format!("client {c}: {e}"))?),
            503 => {
                let v: serde_json::Value =
                    r.json().await.map_err(|e| format!("client {c}: {e}"))?;
                return Ok((acks, close, v["error"].as_str().unwrap_or_default().to_string()));
            }
            s => return Err(format!("client {c}, order {i}: status {s}")),
        }
    }
    unreachable!("a client sends until refused")
}

/// Waits (without a timer standing in for it) until `ready` holds.
async fn until(what: &str, ready: impl Fn() -> bool) {
    tokio::time::timeout(Duration::from_secs(30), async {
        while !ready() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("waited 30 s for {what}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_under_load_answers_every_request_and_closes_only_after_answers() {
    for http in BOTH {
        a_stop_under_load_answers_every_request_and_closes_only_after_answers_with(http).await;
    }
}

async fn a_stop_under_load_answers_every_request_and_closes_only_after_answers_with(http: Http) {
    println!("the HTTP server {http:?}");
    let (running, _, base) = started(true, http).await;
    let clients = 64u64;
    let tasks: Vec<_> =
        (0..clients).map(|c| tokio::spawn(keep_alive_client(base.clone(), c))).collect();
    // Mid-load: every client's connection is open and orders stream in.
    until("every client connected", || running.connections.get() == clients as usize).await;
    until("orders under way", || running.app.received() >= 20 * clients).await;
    let in_flight = running.app.in_flight();
    let received = running.app.received();
    running.stop.cancel();
    let mut errors = Vec::new();
    let mut acks = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok((got, close, message)) => {
                assert!(close, "a 503 during the stop says Connection: close");
                assert_eq!(message, "the service is stopping");
                acks.extend(got);
            }
            Err(e) => errors.push(e),
        }
    }
    assert_eq!(errors, Vec::<String>::new(), "every request sent got an HTTP answer");
    // The server closed each connection after its last answer.
    until("every connection closed", || running.connections.get() == 0).await;
    running.close_http.cancel();
    let stopped = running.done.await.unwrap().unwrap();
    // One 200 per order a book matched or rested, none unclaimed...
    assert_eq!(acks.len() as u64, stopped.answers.sent);
    assert_eq!(stopped.answers.unclaimed, 0);
    // ...and each book's numbers answered once each, with no gap: no
    // order was matched without its answer reaching its client.
    for symbol in ["ACME", "GLOBEX"] {
        let mut numbers: Vec<u64> =
            acks.iter().filter(|a| a.symbol == symbol).map(|a| a.order).collect();
        numbers.sort_unstable();
        let want: Vec<u64> = (1..=numbers.len() as u64).collect();
        assert_eq!(numbers, want, "{symbol}");
    }
    // Stopped mid-load: what reached a handler before the stop was
    // answered, but for an order per client that may not have got in yet.
    assert!(acks.len() as u64 >= received - clients, "{} answered of {received}", acks.len());
    println!("in flight at the stop: {in_flight}; answered {}", acks.len());
    let report = stopped.report;
    assert_eq!(report.reason, StopReason::Idle);
    assert_eq!(report.dead_letters(), 0);
    assert_eq!(report.pending(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overloaded_service_refuses_what_waits_too_long_and_answers_the_rest() {
    for http in BOTH {
        an_overloaded_service_refuses_what_waits_too_long_and_answers_the_rest_with(http).await;
    }
}

async fn an_overloaded_service_refuses_what_waits_too_long_and_answers_the_rest_with(http: Http) {
    println!("the HTTP server {http:?}");
    // One slow book (5 ms an order), room for 4 orders in the inlet, 100
    // ms to get in: 200 orders at once (a second of the book's work)
    // cannot all get in in time.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let options = service::Options {
        capacity: 4,
        admission: Duration::from_millis(100),
        book_work: Duration::from_millis(5),
        drain: Some(Duration::ZERO),
        http,
        ..service::Options::default()
    };
    let running = service::start(listener, &["ACME"], options).await.unwrap();
    let base = format!("http://{}", running.addr);
    let client = reqwest::Client::new();
    let n = 200u64;
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let side = if i.is_multiple_of(2) { "buy" } else { "sell" };
            let post = client.post(format!("{base}/orders")).json(&order("ACME", side, 100, 1));
            tokio::spawn(async move {
                let sent = std::time::Instant::now();
                let r = post.send().await.expect("every request is answered");
                let status = r.status().as_u16();
                let v: serde_json::Value = r.json().await.unwrap();
                (status, v, sent.elapsed())
            })
        })
        .collect();
    let (mut ok, mut busy) = (Vec::new(), 0u64);
    for t in tasks {
        let (status, v, waited) = t.await.unwrap();
        match status {
            200 => ok.push(serde_json::from_value::<Ack>(v).unwrap().order),
            503 => {
                assert_eq!(v["error"], "busy: no room for the order in 100 ms");
                assert!(waited >= Duration::from_millis(100), "refused after the deadline");
                busy += 1;
            }
            s => panic!("status {s}: {v}"),
        }
    }
    assert!(busy > 0, "200 orders at 5 ms each cannot all get in within 100 ms");
    assert!(!ok.is_empty(), "the first ones get in at once");
    assert_eq!(ok.len() as u64 + busy, n);
    running.stop.cancel();
    let stopped = running.done.await.unwrap().unwrap();
    // Refused orders were never taken in: the book answered exactly the
    // 200s, numbered 1..=n without a gap.
    assert_eq!(stopped.answers.sent, ok.len() as u64);
    ok.sort_unstable();
    assert_eq!(ok, (1..=ok.len() as u64).collect::<Vec<_>>());
    println!("answered {}, busy {busy}", ok.len());
}
