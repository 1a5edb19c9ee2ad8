//! The service example over real HTTP: concurrent clients on an ephemeral
//! port, bad requests, live stats, and graceful shutdowns with requests in
//! flight — each gets its answer or a clear 503, none is lost.

use crate::service;

use maslite::runtime::StopReason;
use service::{Ack, StatsBody};
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::net::TcpListener;

async fn started(linger: bool) -> (service::Running, reqwest::Client, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = service::start(listener, &["ACME", "GLOBEX"], 2, linger).await.unwrap();
    let base = format!("http://{}", running.addr);
    (running, reqwest::Client::new(), base)
}

fn order(symbol: &str, side: &str, price: u64, qty: u64) -> serde_json::Value {
    serde_json::json!({ "symbol": symbol, "side": side, "price": price, "qty": qty })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_trade_and_every_fill_has_two_sides() {
    let (running, client, base) = started(false).await;
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
    let report = running.done.await.unwrap().unwrap();
    assert_eq!(report.reason, StopReason::Idle);
    assert_eq!(report.dead_letters(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_a_400_that_says_what_is_wrong() {
    let (running, client, base) = started(false).await;
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
    let (running, client, base) = started(false).await;
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
        while running.app.received.load(Ordering::Relaxed) < n {
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
    let report = running.done.await.unwrap().unwrap();
    assert_eq!(report.reason, StopReason::Idle);
    assert_eq!(report.dead_letters(), 0);
    assert_eq!(report.pending(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_agents_stop_new_orders_get_a_503() {
    let (running, client, base) = started(true).await;
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
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"], "the service is stopping");
    running.close_http.cancel();
    running.done.await.unwrap().unwrap();
}
