//! # loopback — what crossing hosts through NATS costs, on one machine
//!
//! Starts a `nats-server` on a free port of 127.0.0.1 (or uses `--url`),
//! connects two hosts of one run, and measures
//! - a stream of `--messages` (default 1 000 000) u64 envelopes from host 0
//!   to host 1 in batches of `--batch` (default 1 000): messages/s, each
//!   batch encoded, framed, published, flushed, received, checked, decoded;
//! - `--rounds` (default 2 000) empty batches bounced between the hosts:
//!   the floor of one lockstep round across 2 hosts (µs per round trip);
//! - for comparison, one flush (a PING to the server and its PONG) and one
//!   bare NATS request and reply.
//!
//! Run it: `cargo run --release -p maslite-nats --example loopback`. It
//! prints one line per measurement, medians of `--runs` (default 5).

use maslite_core::{AgentId, Envelope};
use maslite_nats::link::HostLink;
use maslite_nats::Codec;
use std::time::{Duration, Instant};

fn flag(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| v.parse().unwrap_or_else(|_| panic!("{name} {v}: not a number")))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let (messages, batch, rounds, runs) = (
        flag("--messages", 1_000_000),
        flag("--batch", 1000),
        flag("--rounds", 2000),
        flag("--runs", 5),
    );
    let args: Vec<String> = std::env::args().collect();
    let mut server = None;
    let url = match args.iter().position(|a| a == "--url").and_then(|i| args.get(i + 1)) {
        Some(u) => u.clone(),
        None => {
            let port =
                std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            server = Some(
                std::process::Command::new("nats-server")
                    .args(["-a", "127.0.0.1", "-p", &port.to_string()])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .expect("nats-server (apt-get install -y nats-server), or pass --url"),
            );
            format!("nats://127.0.0.1:{port}")
        }
    };
    let mut codec = Codec::new();
    codec.register::<u64>().unwrap();
    let connect = |me| {
        let url = url.clone();
        async move {
            let start = Instant::now();
            loop {
                match HostLink::connect(&url, "loopback", me, 2, 4096).await {
                    Ok(l) => return l,
                    Err(_) if start.elapsed() < Duration::from_secs(10) => {
                        tokio::time::sleep(Duration::from_millis(20)).await
                    }
                    Err(e) => panic!("{e}"),
                }
            }
        }
    };
    let mut a = connect(0).await;
    let mut b = connect(1).await;
    let (ra, rb) = tokio::join!(a.ready(Duration::from_secs(10)), b.ready(Duration::from_secs(10)));
    ra.unwrap();
    rb.unwrap();
    let codec = std::sync::Arc::new(codec);

    let mut rates = Vec::new();
    for _ in 0..runs {
        let c2 = codec.clone();
        let start = Instant::now();
        let receiver = async {
            let mut got = Vec::new();
            let mut n = 0u64;
            while n < messages {
                got.clear();
                b.recv_batch(&c2, &mut got).await.unwrap();
                n += got.len() as u64;
            }
        };
        let sender = async {
            let mut sent = 0u64;
            let mut envs = Vec::with_capacity(batch as usize);
            while sent < messages {
                envs.clear();
                let k = batch.min(messages - sent);
                envs.extend((sent..sent + k).map(|i| Envelope::new(i).to(AgentId(1))));
                a.send_batch(&codec, 1, envs.iter().map(|e| (AgentId(1), e))).await.unwrap();
                sent += k;
            }
        };
        tokio::join!(sender, receiver);
        rates.push(messages as f64 / start.elapsed().as_secs_f64());
    }
    println!(
        "loopback: stream {messages} messages, batches of {batch}: {:.2} M messages/s (median of {runs})",
        median(rates) / 1e6
    );

    let mut trips = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        let mut got = Vec::new();
        for _ in 0..rounds {
            a.send_batch(&codec, 1, std::iter::empty()).await.unwrap();
            b.recv_batch(&codec, &mut got).await.unwrap();
            b.send_batch(&codec, 0, std::iter::empty()).await.unwrap();
            a.recv_batch(&codec, &mut got).await.unwrap();
        }
        trips.push(start.elapsed().as_secs_f64() * 1e6 / rounds as f64);
    }
    println!(
        "loopback: empty batch there and back: {:.1} µs per round trip (median of {runs})",
        median(trips)
    );
    // Where the round trip goes: the server's own round trip (a flush is
    // a PING and its PONG), and a bare NATS request and reply.
    let client = a.client();
    let mut flushes = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        for _ in 0..rounds {
            client.flush().await.unwrap();
        }
        flushes.push(start.elapsed().as_secs_f64() * 1e6 / rounds as f64);
    }
    println!(
        "loopback: one flush (PING/PONG with the server): {:.1} µs (median of {runs})",
        median(flushes)
    );
    let responder = b.client();
    let mut asks = responder.subscribe("loopback.echo").await.unwrap();
    responder.flush().await.unwrap();
    let echo = tokio::spawn(async move {
        use futures::StreamExt;
        while let Some(m) = asks.next().await {
            if let Some(r) = m.reply {
                responder.publish(r, m.payload).await.unwrap();
            }
        }
    });
    let mut requests = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        for _ in 0..rounds {
            client.request("loopback.echo", "".into()).await.unwrap();
        }
        requests.push(start.elapsed().as_secs_f64() * 1e6 / rounds as f64);
    }
    echo.abort();
    println!("loopback: one NATS request and reply: {:.1} µs (median of {runs})", median(requests));
    drop((a, b));
    if let Some(mut s) = server {
        let _ = s.kill();
        let _ = s.wait();
    }
}
