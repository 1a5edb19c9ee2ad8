//! # pingpong — how fast is the kernel?
//!
//! Two agents bounce one ball, as maslite's `benchmark.py` does: each update
//! takes the ball from the inbox, turns it around (`ping` ↔ `pong`) and sends
//! it back. Every message is one round: an update, a send, a delivery. The
//! ball's box is allocated once and travels for the whole run.
//!
//! Run it in release: `cargo run --release --example pingpong [seconds]`.
//! The last line reads `pingpong: <N> messages/s`.

use maslite::prelude::*;
use std::time::{Duration, Instant};

#[derive(Clone)]
struct Ball;

struct Player {
    hits: u64,
}

impl Agent for Player {
    async fn update(&mut self, cx: &Cx) {
        while let Some(mut ball) = cx.receive() {
            self.hits += 1;
            let next = if ball.topic() == "ping" { "pong" } else { "ping" };
            ball.set_topic(next);
            ball.reply().expect("the ball always has a receiver");
            cx.send(ball);
        }
    }
}

fn main() -> Result<(), Error> {
    let seconds: f64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(2.0);
    let mut s = Scheduler::simulated();
    let a = s.add(Player { hits: 0 })?;
    let b = s.add(Player { hits: 0 })?;
    s.send(Envelope::new(Ball).from(a).to(b).topic_is("ping"));

    let budget = Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut rounds = 0u64;
    while start.elapsed() < budget {
        rounds += s.run_with(RunOptions::new().iterations(1_000_000))?.stats.rounds;
    }
    let elapsed = start.elapsed().as_secs_f64();
    // Every round one player hits the ball once: one message.
    let messages = s.agent::<Player>(a)?.hits + s.agent::<Player>(b)?.hits;
    assert_eq!(messages, rounds, "one hit per round");
    println!("pingpong: {} messages in {elapsed:.2} s", messages);
    println!("pingpong: {} messages/s", (messages as f64 / elapsed) as u64);
    Ok(())
}
