//! The ping-pong of `maslite-bench pingpong`, written with ractor: two
//! actors bounce one ball, counting hits, for a fixed number of messages.
//! Prints one JSON line per run: {"peer", "unit", "value"}.
//!
//! Why ractor: it is a maintained, widely used tokio actor framework whose
//! actors, like maslite's agents, own their state and take one message at a
//! time from a mailbox — the closest established peer to the kernel's
//! ping-pong.
//!
//! Usage: ractor_pingpong [messages] [runs] [multi|current] — the tokio
//! runtime to run on (default: multi-thread, ractor's usual setting).

use ractor::{Actor, ActorProcessingErr, ActorRef};
use std::time::Instant;
use tokio::sync::oneshot;

enum Msg {
    /// Who to send the ball to.
    Peer(ActorRef<Msg>),
    /// The ball, with the number of hits so far.
    Ball(u64),
}

struct Player;

struct State {
    peer: Option<ActorRef<Msg>>,
    limit: u64,
    done: Option<oneshot::Sender<u64>>,
}

impl Actor for Player {
    type Msg = Msg;
    type State = State;
    type Arguments = (u64, Option<oneshot::Sender<u64>>);

    async fn pre_start(
        &self,
        _me: ActorRef<Msg>,
        (limit, done): Self::Arguments,
    ) -> Result<State, ActorProcessingErr> {
        Ok(State { peer: None, limit, done })
    }

    async fn handle(
        &self,
        _me: ActorRef<Msg>,
        msg: Msg,
        state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            Msg::Peer(p) => state.peer = Some(p),
            Msg::Ball(hits) => {
                if hits >= state.limit {
                    if let Some(done) = state.done.take() {
                        let _ = done.send(hits);
                    }
                } else if let Some(peer) = &state.peer {
                    peer.cast(Msg::Ball(hits + 1))?;
                }
            }
        }
        Ok(())
    }
}

async fn one_run(messages: u64) -> f64 {
    let (tx_a, rx_a) = oneshot::channel();
    let (tx_b, rx_b) = oneshot::channel();
    let (a, ha) = Actor::spawn(None, Player, (messages, Some(tx_a))).await.expect("spawn a");
    let (b, hb) = Actor::spawn(None, Player, (messages, Some(tx_b))).await.expect("spawn b");
    a.cast(Msg::Peer(b.clone())).unwrap();
    b.cast(Msg::Peer(a.clone())).unwrap();
    let start = Instant::now();
    a.cast(Msg::Ball(0)).unwrap();
    // Whichever hits the limit first reports.
    let hits = tokio::select! {
        h = rx_a => h.unwrap(),
        h = rx_b => h.unwrap(),
    };
    let wall = start.elapsed().as_secs_f64();
    a.stop(None);
    b.stop(None);
    let _ = ha.await;
    let _ = hb.await;
    hits as f64 / wall
}

fn main() {
    let mut args = std::env::args().skip(1);
    let messages: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(2_000_000);
    let runs: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(5);
    let flavor = args.next().unwrap_or_else(|| "multi".to_string());
    let rt = match flavor.as_str() {
        "current" => tokio::runtime::Builder::new_current_thread().enable_all().build(),
        _ => tokio::runtime::Builder::new_multi_thread().enable_all().build(),
    }
    .unwrap();
    let peer = format!("ractor-{flavor}-thread");
    rt.block_on(async {
        one_run(messages / 10).await; // warm-up
        for _ in 0..runs {
            let v = one_run(messages).await;
            println!("{{\"peer\": \"{peer}\", \"unit\": \"messages/s\", \"value\": {v}}}");
        }
    });
}
