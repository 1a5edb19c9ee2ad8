//! The router's wires: one channel per ordered pair of partitions, carrying
//! whole batches.
//!
//! Partitions talk to each other directly, never through a central thread:
//! at the end of a step each one sends every other one a [`Control`] (what
//! changed, whether it has work, its next alarm, stop or failure), and, if
//! it had mail, one [`Packet::Mail`] batch per partition. Every partition
//! then computes the same decision from the same controls. A channel per
//! pair keeps each sender's packets in order and tells the receiver at once
//! when that sender's thread is gone (the channel closes), so a dead
//! partition never hangs the others.
//!
//! Waiting spins briefly before parking: waking a parked thread costs tens
//! of microseconds here, more than most steps.
//!
//! A partition on another host (see [`crate::transport`]) is reached the
//! same way: its wire's sending end goes to this host's transport, which
//! carries the packet there, and its receiving end is fed by the
//! transport. The partitions' protocol does not change.

use crate::report::StopReason;
use maslite_core::{AgentId, Change, Envelope, Start};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{self, error::TryRecvError, UnboundedReceiver, UnboundedSender};

/// What a partition tells every other one at the end of a step or window.
///
/// Public for [transports](crate::transport), which carry it between
/// hosts; a program never makes one.
#[derive(Debug)]
pub struct Control {
    /// Agents added or removed there, and its agents' subscription changes.
    pub changes: Arc<Vec<Change>>,
    /// It has work for another round at this time (mail sent, agents
    /// marked).
    pub active: bool,
    /// Agents there wait on the outside world (tokio I/O, a channel):
    /// simulated time waits for them.
    pub busy: bool,
    /// It holds alarms for agents it does not know yet (lookahead windows):
    /// one more exchange before the clock moves.
    pub held: bool,
    /// It sends a mail batch in this step.
    pub has_mail: bool,
    /// Its earliest alarm (and of the alarms it exports), or +∞.
    pub next_alarm: f64,
    /// Its clock.
    pub now: f64,
    /// An agent paused, or the token was cancelled, or a limit was reached.
    pub stop: Option<StopReason>,
    /// It failed (its error goes to the caller with its own report).
    pub failed: bool,
    /// Alarms its agents set for agents on the receiving partition
    /// (lookahead windows).
    pub alarms: Vec<(f64, Envelope)>,
    /// A service is stopping and nothing more can come in from outside
    /// here (or the runtime is not serving).
    pub drained: bool,
    /// Agents there are kept awake: updated in a round at every time the
    /// clock reaches (and at a run's start), as on one kernel, whose every
    /// turn has a round.
    pub awake: bool,
    /// Its round in this step updated some agent (lockstep: the rounds that
    /// did anywhere are numbered, see `Cx::round`).
    pub polled: bool,
    /// The run it is in: its count of runs and the run's options, hashed.
    /// All partitions of one system agree; hosts that do not run the same
    /// program (other runs, other options) fail at the first step instead
    /// of waiting for each other.
    pub run: u64,
    /// Agents its agents made for the receiving partition
    /// (`Cx::spawn_on`): installed there at this step's end, started in
    /// the next round. (Never to another host: a body cannot cross.)
    pub starts: Vec<Start>,
    /// An empty buffer with room, given back for the next mail batch to
    /// the receiving partition (batches cross threads both ways, so
    /// steady streams allocate none).
    pub spare: Vec<(AgentId, Envelope)>,
    /// An empty buffer with room, given back for the next alarms to the
    /// receiving partition (lookahead windows: as `spare`, so that a
    /// window's alarms for another partition allocate nothing).
    pub spare_alarms: Vec<(f64, Envelope)>,
}

/// One message on a wire between two partitions.
#[derive(Debug)]
pub enum Packet {
    /// The sender's control for this step (always first in a step).
    Control(Control),
    /// Mail for agents of the receiving partition: (recipient, envelope).
    Mail(Vec<(AgentId, Envelope)>),
    /// Free mode: the sender's changes to agents and subscriptions, sent as
    /// soon as made. (Free mode runs on one host: never handed to a
    /// transport.)
    Changes(Arc<Vec<Change>>),
    /// Free mode: an agent made there for the receiving partition
    /// (`Cx::spawn_on`), after the changes that announced it.
    Start(Start),
    /// Free mode: the sender's last word in a run; nothing more comes from
    /// it until the next.
    LastWord,
}

/// A packet from one partition to a partition of another host, for the
/// transport to carry.
#[derive(Debug)]
pub struct Sent {
    /// The sending partition (on this host).
    pub from: usize,
    /// The receiving partition (on another host).
    pub to: usize,
    /// What it sends.
    pub packet: Packet,
}

/// The sending end of a wire.
enum SendEnd {
    /// To a partition of this process.
    Local(UnboundedSender<Packet>),
    /// To a partition of another host, through this host's transport.
    Remote(UnboundedSender<Sent>),
}

/// A partition's ends of the wires to and from every other partition.
pub(crate) struct Wires {
    me: usize,
    to: Vec<Option<SendEnd>>,
    from: Vec<Option<UnboundedReceiver<Packet>>>,
    /// A packet taken early by [`wait_any`](Wires::wait_any), per sender.
    stash: Vec<Option<Packet>>,
    spin: Duration,
    /// Why a partition of another host is gone, if its transport said
    /// (one slot per partition).
    pub lost: Option<Arc<[std::sync::OnceLock<crate::Error>]>>,
    /// Wall time spent in [`recv`](Wires::recv) waiting for a packet that
    /// was not there yet (read only then: a packet already there costs no
    /// clock read): in lockstep and windows, this partition waiting for the
    /// others at the ends of steps and windows, the exchange's own latency
    /// included; in free mode, only the drain at the run's end (its idle
    /// waits go through [`recv_any`](Wires::recv_any), not counted).
    pub waited: Duration,
}

/// The far end of a wire closed: that partition's thread is gone.
#[derive(Debug)]
pub(crate) struct PeerGone(pub usize);

impl Wires {
    /// The wires of the partitions `local[p]` says are on this host
    /// (`wires[p]` is `Some` for those): channels between them, and for
    /// each partition elsewhere, a sending end into the transport's
    /// receiver and a receiving end fed by the returned senders
    /// (`feeds[from][to]`, for `from` elsewhere and `to` here).
    #[allow(clippy::type_complexity)]
    pub fn hosted(
        local: &[bool],
        spin: Duration,
    ) -> (Vec<Option<Wires>>, UnboundedReceiver<Sent>, Vec<Vec<Option<UnboundedSender<Packet>>>>)
    {
        let n = local.len();
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let mut feeds: Vec<Vec<Option<UnboundedSender<Packet>>>> =
            (0..n).map(|_| (0..n).map(|_| None).collect()).collect();
        let mut wires: Vec<Option<Wires>> = (0..n)
            .map(|me| {
                local[me].then(|| Wires {
                    me,
                    to: (0..n).map(|_| None).collect(),
                    from: (0..n).map(|_| None).collect(),
                    stash: (0..n).map(|_| None).collect(),
                    spin,
                    lost: None,
                    waited: Duration::ZERO,
                })
            })
            .collect();
        for p in 0..n {
            for q in 0..n {
                if p == q || !local[q] {
                    continue;
                }
                let (tx, rx) = mpsc::unbounded_channel();
                if let Some(l) = wires[q].as_mut() {
                    l.from[p] = Some(rx);
                }
                if local[p] {
                    if let Some(l) = wires[p].as_mut() {
                        l.to[q] = Some(SendEnd::Local(tx));
                    }
                } else {
                    feeds[p][q] = Some(tx);
                    if let Some(l) = wires[q].as_mut() {
                        l.to[p] = Some(SendEnd::Remote(out_tx.clone()));
                    }
                }
            }
        }
        (wires, out_rx, feeds)
    }

    /// Why partition `q` is gone, if a transport said.
    pub fn why_gone(&self, q: usize) -> Option<crate::Error> {
        self.lost.as_ref()?.get(q)?.get().cloned()
    }

    /// Whether partition `q` is on another host.
    pub fn is_remote(&self, q: usize) -> bool {
        matches!(self.to.get(q), Some(Some(SendEnd::Remote(_))))
    }

    /// The other partitions' numbers.
    pub fn peers(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.to.len()).filter(move |&q| q != self.me)
    }

    /// Sends `packet` to partition `q`.
    pub fn send(&self, q: usize, packet: Packet) -> Result<(), PeerGone> {
        match &self.to[q] {
            Some(SendEnd::Local(tx)) => tx.send(packet).map_err(|_| PeerGone(q)),
            Some(SendEnd::Remote(tx)) => {
                tx.send(Sent { from: self.me, to: q, packet }).map_err(|_| PeerGone(q))
            }
            None => Err(PeerGone(q)),
        }
    }

    /// The next packet from partition `q`: spins up to the spin time, then
    /// parks until it comes. Await it to the end (not in a `select!`): a
    /// wait cut short is not added to [`waited`](Wires::waited).
    pub async fn recv(&mut self, q: usize) -> Result<Packet, PeerGone> {
        if let Some(p) = self.stash[q].take() {
            return Ok(p);
        }
        // A packet from another host takes hundreds of microseconds:
        // spinning for it would only take the core from its transport_thread.
        let spin = if self.is_remote(q) { Duration::ZERO } else { self.spin };
        let Some(rx) = self.from[q].as_mut() else { return Err(PeerGone(q)) };
        match rx.try_recv() {
            Ok(p) => return Ok(p),
            Err(TryRecvError::Disconnected) => return Err(PeerGone(q)),
            Err(TryRecvError::Empty) => {}
        }
        let start = Instant::now();
        let got = 'wait: {
            if !spin.is_zero() {
                loop {
                    for _ in 0..64 {
                        match rx.try_recv() {
                            Ok(p) => break 'wait Ok(p),
                            Err(TryRecvError::Disconnected) => break 'wait Err(PeerGone(q)),
                            Err(TryRecvError::Empty) => std::hint::spin_loop(),
                        }
                    }
                    if start.elapsed() >= spin {
                        break;
                    }
                }
            }
            rx.recv().await.ok_or(PeerGone(q))
        };
        self.waited += start.elapsed();
        got
    }

    /// Takes the packet from `q` that is already there, if any.
    pub fn try_recv(&mut self, q: usize) -> Result<Option<Packet>, PeerGone> {
        if let Some(p) = self.stash[q].take() {
            return Ok(Some(p));
        }
        let Some(rx) = self.from[q].as_mut() else { return Err(PeerGone(q)) };
        match rx.try_recv() {
            Ok(p) => Ok(Some(p)),
            Err(TryRecvError::Empty) => Ok(None),
            Err(TryRecvError::Disconnected) => Err(PeerGone(q)),
        }
    }

    /// Waits until a packet from some partition is there, without taking
    /// it: the next [`recv`](Wires::recv) from that partition returns it.
    pub async fn wait_any(&mut self) -> Result<(), PeerGone> {
        if self.stash.iter().any(Option::is_some) {
            return Ok(());
        }
        let (q, p) = self.recv_any().await?;
        self.stash[q] = Some(p);
        Ok(())
    }

    /// Waits for a packet from any partition: returns the sender.
    pub async fn recv_any(&mut self) -> Result<(usize, Packet), PeerGone> {
        for q in 0..self.stash.len() {
            if let Some(p) = self.stash[q].take() {
                return Ok((q, p));
            }
        }
        // Every wire polled in turn, each registering the waker: no
        // allocation per wait. (Lower-numbered partitions first; a wait
        // takes one packet, and the caller drains the rest in order.)
        let me = self.me;
        let from = &mut self.from;
        std::future::poll_fn(|cx| {
            for (q, rx) in from.iter_mut().enumerate() {
                if q == me {
                    continue;
                }
                if let Some(rx) = rx.as_mut() {
                    match rx.poll_recv(cx) {
                        std::task::Poll::Ready(Some(p)) => {
                            return std::task::Poll::Ready(Ok((q, p)))
                        }
                        std::task::Poll::Ready(None) => {
                            return std::task::Poll::Ready(Err(PeerGone(q)))
                        }
                        std::task::Poll::Pending => {}
                    }
                }
            }
            std::task::Poll::Pending
        })
        .await
    }
}
