//! # pingpong — how fast is the kernel?
//!
//! Two agents bounce one ball, as maslite's `benchmark.py` does: each update
//! takes the ball from the inbox, turns it around (`ping` ↔ `pong`) and sends
//! it back. Every message is one round: an update, a send, a delivery. The
//! ball's box is allocated once and travels for the whole run.
//!
//! Run it in release: `cargo run --release --example pingpong [seconds]`
//! (default 2 s; `-- --help` says so too). The last line reads `pingpong:
//! <N> messages/s`.

use clap::{CommandFactory, Parser};
use maslite::prelude::*;
use std::time::{Duration, Instant};

#[derive(Clone)]
struct Ball;

struct Player {
    hits: u64,
}

impl Agent for Player {
    async fn update(&mut self, cx: &Cx) {
        while let Some(mut ball) = cx.try_recv() {
            self.hits += 1;
            let next = if ball.topic() == "ping" { "pong" } else { "ping" };
            ball.set_topic(next);
            ball.reply().expect("the ball always has a receiver");
            cx.send(ball);
        }
    }
}

/// Two agents bounce one ball as fast as the kernel goes, for a number of
/// wall-clock seconds; prints the messages and messages/s.
#[derive(Debug, Parser)]
#[command(name = "pingpong")]
struct Args {
    /// How long to bounce the ball, in wall-clock seconds.
    #[arg(value_name = "SECONDS", default_value_t = 2.0)]
    seconds: f64,
}

fn main() -> Result<(), Error> {
    let seconds = Args::parse().seconds;
    if !(seconds.is_finite() && seconds >= 0.0) {
        let e = "SECONDS: a number of seconds >= 0";
        Args::command().error(clap::error::ErrorKind::ValueValidation, e).exit();
    }
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
