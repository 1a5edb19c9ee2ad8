//! # loopback — what crossing hosts through NATS costs, on one machine
//!
//! Starts a `nats-server` on a free port of 127.0.0.1 (or uses `--url`),
//! connects two hosts of one run — links only, no runtime — and measures
//! - a stream of `--messages` (default 1 000 000) u64 envelopes from host 0
//!   to host 1 in mail packets of `--batch` (default 1 000): messages/s,
//!   each packet encoded, framed, published, flushed, received, checked,
//!   decoded;
//! - `--rounds` (default 2 000) empty packets bounced between the hosts:
//!   the floor of one lockstep exchange across 2 hosts (µs per round
//!   trip);
//! - for comparison, one flush (a PING to the server and its PONG) and one
//!   bare NATS request and reply.
//!
//! Run it: `cargo run --release -p maslite-nats --example loopback`. It
//! prints one line per measurement, medians of `--runs` (default 5).

use maslite_core::{AgentId, Envelope};
use maslite_nats::link::HostLink;
use maslite_nats::packet::{Arrival, PacketReader, PacketWriter};
use maslite_nats::Codec;
use maslite_runtime::transport::{Packet, Sent};
use std::time::{Duration, Instant};

/// Sends a mail packet from host `from` to the other one, and flushes.
async fn send(link: &HostLink, w: &mut PacketWriter, c: &Codec, mail: Vec<(AgentId, Envelope)>) {
    let from = link.host() as usize;
    let sent = Sent { from, to: 1 - from, packet: Packet::Mail(mail) };
    let mut frames = Vec::new();
    w.packet(c, sent, &mut frames).unwrap();
    for f in frames {
        link.publish(1 - from as u16, f).await.unwrap();
    }
    link.flush().await.unwrap();
}

/// The next whole mail packet's length.
async fn recv(link: &mut HostLink, r: &mut PacketReader, c: &Codec) -> usize {
    loop {
        let frame = link.next_frame().await.unwrap();
        match r.read(c, &frame).unwrap() {
            Arrival::Packet { packet: Packet::Mail(m), .. } => return m.len(),
            Arrival::Partial => {}
            other => panic!("{other:?}"),
        }
    }
}

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
    let max = a.max_payload();
    let (mut wa, mut wb) = (PacketWriter::new(0, 1, max), PacketWriter::new(1, 0, max));
    let (mut ra, mut rb) = (PacketReader::new(0, 2), PacketReader::new(1, 2));

    let mut rates = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        let receiver = async {
            let mut n = 0u64;
            while n < messages {
                n += recv(&mut b, &mut rb, &codec).await as u64;
            }
        };
        let sender = async {
            let mut sent = 0u64;
            while sent < messages {
                let k = batch.min(messages - sent);
                let mail = (sent..sent + k).map(|i| (AgentId(1), Envelope::new(i).to(AgentId(1))));
                send(&a, &mut wa, &codec, mail.collect()).await;
                sent += k;
            }
        };
        tokio::join!(sender, receiver);
        rates.push(messages as f64 / start.elapsed().as_secs_f64());
    }
    println!(
        "loopback: stream {messages} messages, packets of {batch}: {:.2} M messages/s (median of {runs})",
        median(rates) / 1e6
    );

    let mut trips = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        for _ in 0..rounds {
            send(&a, &mut wa, &codec, Vec::new()).await;
            recv(&mut b, &mut rb, &codec).await;
            send(&b, &mut wb, &codec, Vec::new()).await;
            recv(&mut a, &mut ra, &codec).await;
        }
        trips.push(start.elapsed().as_secs_f64() * 1e6 / rounds as f64);
    }
    println!(
        "loopback: empty packet there and back: {:.1} µs per round trip (median of {runs})",
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
