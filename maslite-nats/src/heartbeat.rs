//! Heartbeats: a host that dies or is cut off is named, in bounded time.
//!
//! NATS is fire and forget: when a host dies nothing fails anywhere, its
//! frames just stop coming, and a host waiting for them waits forever. A
//! killed process's TCP connection is closed, but only the server sees
//! that; a host cut off by the network is not even noticed by the server
//! before its ping interval (minutes). So every host publishes a small beat
//! on `maslite.<run>.beat.<host>` ([`subject`]) every `every`, and watches
//! everyone's beats, its own included (`maslite.<run>.beat.*`):
//!
//! - Another host silent for `missed × every` is lost: [`Error::HostLost`]
//!   names it and how long it was silent. Silence counts from its last
//!   beat or, if none came yet, from the start: a host that never comes is
//!   lost after a start-up grace, by default the same `missed × every`
//!   ([`Heartbeat::with_grace`]; start heartbeats after
//!   [`HostLink::ready`](crate::link::HostLink::ready), and every host is
//!   up by then).
//! - A host's own beats come back to it through the server. If they have
//!   stopped too (for half the limit, at least two beats), or the
//!   connection is down, when another host falls silent, it is this host
//!   that is cut off: [`Error::CutOff`]. When the server dies, every host
//!   says so instead of blaming the others.
//! - A host that ends cleanly says "bye" ([`Heartbeat::stop`], or best
//!   effort on drop): the others report [`HostEvent::Left`], not an error,
//!   and stop watching it. (The transport takes a bye on the beats only
//!   with the bye frame after the host's last packet: see
//!   [`transport`](crate::transport).) [`Heartbeat::forget`] stops
//!   watching a host that is known to have ended otherwise.
//! - With a run key ([`Heartbeat::open`]) beats and byes are authenticated
//!   and numbered ([`seal`](crate::seal)): a forged or replayed beat is
//!   dropped and counted, so it can neither hide a death nor fake a bye.
//!
//! The verdict is not a message: it is computed from the times of the last
//! beats whenever it is asked, by [`Heartbeat::check`] (a few atomic loads,
//! cheap enough for every round of a loop) or [`Heartbeat::dead`] /
//! [`Heartbeat::event`] (awaitable and cancel safe, to `select!` next to a
//! frame receive). So nothing that stops, a task, a subscription, the
//! server, can hide a death: silence is what is measured. The first
//! verdict stands.
//!
//! Choosing `every` and `missed`: beats go on the connection they are given
//! and queue behind what was published on it before, so with the
//! [`HostLink`](crate::link::HostLink)'s connection (which makes a beat
//! prove that the link itself moves) `missed × every` must be well over
//! the time the largest batch takes through the server; a connection of
//! their own avoids that. The task beats on the tokio runtime that calls
//! [`Heartbeat::start`]: one whose thread a long step blocks (a
//! partition's) stops the beats. `missed` of 3 or more absorbs scheduling
//! jitter.

use crate::error::{Error, Result};
use crate::rejections::{Rejection, Rejections};
use crate::seal::{Beat, BeatSeal, RunSeal};
use bytes::Bytes;
use futures::StreamExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

/// A host's slot: no beat yet.
const NEVER: u64 = 0;
/// A host's slot: it said bye.
const LEFT: u64 = u64::MAX;

/// The subject host `host` of run `run` beats on.
pub fn subject(run: &str, host: u16) -> String {
    format!("maslite.{run}.beat.{host}")
}

/// What [`Heartbeat::event`] reports.
#[derive(Debug)]
pub enum HostEvent {
    /// The host said bye: it ended cleanly and is watched no more.
    Left(u16),
    /// The verdict, final: [`Error::HostLost`], [`Error::CutOff`], or
    /// [`Error::Nats`] when the connection closed for good.
    Lost(Error),
}

/// A verdict, kept (an [`Error`] is not `Clone`).
#[derive(Clone, Copy, Debug)]
enum Verdict {
    Lost { host: u16, silent_for: Duration },
    CutOff { host: u16, silent_for: Duration },
    Closed,
}

impl From<Verdict> for Error {
    fn from(v: Verdict) -> Error {
        match v {
            Verdict::Lost { host, silent_for } => Error::HostLost { host, silent_for },
            Verdict::CutOff { host, silent_for } => Error::CutOff { host, silent_for },
            Verdict::Closed => Error::Nats("connection closed: heartbeats stopped".into()),
        }
    }
}

#[derive(Debug)]
struct Shared {
    start: Instant,
    /// Per host: [`NEVER`], [`LEFT`], or 1 + the nanoseconds from `start`
    /// to its last beat. Only the watching task writes.
    seen: Vec<AtomicU64>,
    /// The subscription ended: the connection is closed for good.
    closed: AtomicBool,
    /// A host left, or the connection closed.
    notify: Notify,
}

/// A host's heartbeats: its own, sent, and the others', watched.
///
/// Dropping it says bye (best effort: the bye goes out from the beating
/// task, if the runtime lives on); [`Heartbeat::stop`] says it and waits
/// for the server to have it.
#[derive(Debug)]
pub struct Heartbeat {
    shared: Arc<Shared>,
    client: async_nats::Client,
    me: u16,
    every: Duration,
    limit: Duration,
    grace: Duration,
    /// Hosts whose bye [`Heartbeat::event`] has reported.
    reported: Vec<bool>,
    /// The first verdict: it stands, even if the host beats again.
    verdict: OnceLock<Verdict>,
    /// Dropped or sent: the beating task says bye and ends.
    stop: Option<oneshot::Sender<()>>,
    beater: Option<JoinHandle<Result<()>>>,
    watcher: JoinHandle<()>,
}

fn nats(e: impl std::fmt::Display) -> Error {
    Error::Nats(e.to_string())
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        // Dropping `stop` (a field) tells the beating task to say bye.
        self.watcher.abort();
    }
}

impl Heartbeat {
    /// Starts host `me` (of `hosts`) of run `run` beating on `client` every
    /// `every`, and watching the others: one silent for `missed × every`
    /// is lost. Returns once the subscription to the beats is on the
    /// server (bounded by that same time). Beats are not authenticated:
    /// see [`open`](Self::open).
    pub async fn start(
        client: async_nats::Client,
        run: &str,
        me: u16,
        hosts: u16,
        every: Duration,
        missed: u32,
    ) -> Result<Heartbeat> {
        if me >= hosts {
            return Err(Error::Nats(format!("host {me} of {hosts}: no such host")));
        }
        let seal = RunSeal::insecure(me, hosts);
        Heartbeat::open(client, run, &seal, every, missed, Rejections::new()).await
    }

    /// As [`start`](Self::start), for the host and hosts of `seal`, with
    /// its keys: beats that are not authentic (or replayed) are dropped
    /// and counted in `rejections`. Call it after the readiness handshake
    /// (which tells the hosts' sessions).
    pub async fn open(
        client: async_nats::Client,
        run: &str,
        seal: &RunSeal,
        every: Duration,
        missed: u32,
        rejections: Rejections,
    ) -> Result<Heartbeat> {
        let (me, hosts) = (seal.host(), seal.hosts());
        if me >= hosts {
            return Err(Error::Nats(format!("host {me} of {hosts}: no such host")));
        }
        let keys: Vec<Option<BeatSeal>> = (0..hosts).map(|h| seal.beats_of(h)).collect();
        let Some(mine) = keys[me as usize].clone() else {
            return Err(Error::Nats("heartbeats: this host has no key".into()));
        };
        if every.is_zero() || missed == 0 {
            return Err(Error::Nats(format!(
                "heartbeat every {every:?}, lost after {missed} missed: both must be over zero"
            )));
        }
        let limit = every.saturating_mul(missed);
        let beats = client.subscribe(format!("maslite.{run}.beat.*")).await.map_err(nats)?;
        // A flush round-trips a PING: the subscription is on the server.
        match tokio::time::timeout(limit, client.flush()).await {
            Ok(r) => r.map_err(nats)?,
            Err(_) => {
                return Err(Error::Nats(format!(
                    "heartbeats: the server did not answer within {:.3} s",
                    limit.as_secs_f64()
                )))
            }
        }
        let shared = Arc::new(Shared {
            start: Instant::now(),
            seen: (0..hosts).map(|_| AtomicU64::new(NEVER)).collect(),
            closed: AtomicBool::new(false),
            notify: Notify::new(),
        });
        let watcher = tokio::spawn(watch(beats, shared.clone(), keys, me, rejections));
        let (stop, stopped) = oneshot::channel();
        let to = async_nats::Subject::from(subject(run, me));
        let beater = tokio::spawn(beat(client.clone(), to, mine, every, limit, stopped));
        Ok(Heartbeat {
            shared,
            client,
            me,
            every,
            limit,
            grace: limit,
            reported: vec![false; hosts as usize],
            verdict: OnceLock::new(),
            stop: Some(stop),
            beater: Some(beater),
            watcher,
        })
    }

    /// Gives hosts `grace` from the start for their first beat (instead of
    /// `missed × every`): for hosts that start heartbeats at quite
    /// different times.
    pub fn with_grace(mut self, grace: Duration) -> Heartbeat {
        self.grace = grace;
        self
    }

    /// `Ok` while every host beats (or has left); else the verdict, as
    /// [`Heartbeat::dead`] gives it. Does not wait.
    pub fn check(&self) -> Result<()> {
        self.verdict(Instant::now()).map(|_| ())
    }

    /// Waits for the verdict: a host lost ([`Error::HostLost`]), this host
    /// cut off ([`Error::CutOff`]), or the connection closed for good
    /// ([`Error::Nats`]). Hosts that leave are not a verdict. Cancel safe.
    /// The first verdict stands: a lost host that beats again is still
    /// lost (its frames may be), and later calls return it at once.
    pub async fn dead(&mut self) -> Error {
        match self.next(false).await {
            HostEvent::Lost(e) => e,
            HostEvent::Left(_) => unreachable!("lefts are not asked for"),
        }
    }

    /// Waits for the next host to leave (each reported once) or for the
    /// verdict (as [`Heartbeat::dead`]). Cancel safe.
    pub async fn event(&mut self) -> HostEvent {
        self.next(true).await
    }

    /// The hosts that said bye.
    pub fn left(&self) -> Vec<u16> {
        let seen = self.shared.seen.iter().map(|s| s.load(Relaxed));
        (0..).zip(seen).filter(|&(h, s)| s == LEFT && h != self.me).map(|(h, _)| h).collect()
    }

    /// Stops watching host `host`: it ended (its bye frame came), and its
    /// silence is no verdict. It is reported once as
    /// [`HostEvent::Left`].
    pub fn forget(&self, host: u16) {
        if let Some(seen) = self.shared.seen.get(host as usize) {
            if host != self.me {
                seen.store(LEFT, Relaxed);
                self.shared.notify.notify_one();
            }
        }
    }

    /// Says bye and waits until the server has it (an error after
    /// `every` + `missed × every` without): the others report this host
    /// as left.
    pub async fn stop(mut self) -> Result<()> {
        self.watcher.abort();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.beater.take() {
            Some(beater) => beater.await.map_err(|e| nats(format!("heartbeat task: {e}")))?,
            None => Ok(()),
        }
    }

    async fn next(&mut self, lefts: bool) -> HostEvent {
        loop {
            if lefts {
                for h in self.left() {
                    if !std::mem::replace(&mut self.reported[h as usize], true) {
                        return HostEvent::Left(h);
                    }
                }
            }
            // A host leaving or the connection closing between the verdict
            // and the wait leaves a permit in `notify`: nothing is missed.
            match self.verdict(Instant::now()) {
                Err(e) => return HostEvent::Lost(e),
                Ok(Some(at)) => tokio::select! {
                    _ = self.shared.notify.notified() => {}
                    _ = tokio::time::sleep_until(at) => {}
                },
                Ok(None) => self.shared.notify.notified().await,
            }
        }
    }

    /// The verdict at `now` (the first one stands), or when the next host
    /// is due to be lost if its beats stop now (`None`: no host is
    /// watched).
    fn verdict(&self, now: Instant) -> Result<Option<Instant>> {
        if let Some(&v) = self.verdict.get() {
            return Err(v.into());
        }
        let v = match self.judge(now) {
            Ok(next) => return Ok(next),
            Err(v) => v,
        };
        Err((*self.verdict.get_or_init(|| v)).into())
    }

    fn judge(&self, now: Instant) -> Result<Option<Instant>, Verdict> {
        let shared = &*self.shared;
        if shared.closed.load(Relaxed) {
            return Err(Verdict::Closed);
        }
        let mut next: Option<Instant> = None;
        let mut lost: Option<(u16, Duration)> = None;
        let (mut own, mut own_over) = (Duration::ZERO, false);
        for (h, seen) in (0u16..).zip(&shared.seen) {
            let (since, allowed) = match seen.load(Relaxed) {
                LEFT => continue,
                NEVER => (shared.start, self.grace),
                at => (shared.start + Duration::from_nanos(at - 1), self.limit),
            };
            let silent = now.saturating_duration_since(since);
            let over = silent >= allowed;
            if h == self.me {
                (own, own_over) = (silent, over);
            } else if over && lost.is_none_or(|(_, longest)| silent > longest) {
                lost = Some((h, silent));
            }
            // (A grace of `Duration::MAX` has no end.)
            if let Some(due) = since.checked_add(allowed).filter(|_| !over) {
                next = Some(next.map_or(due, |n| n.min(due)));
            }
        }
        let cut_off = Verdict::CutOff { host: self.me, silent_for: own };
        if own_over {
            return Err(cut_off);
        }
        let Some((host, silent_for)) = lost else { return Ok(next) };
        // Beats come back within a beat; half the limit (at least two
        // beats) without ours means the silence is ours.
        let late = (self.limit / 2).max(self.every.saturating_mul(2)).min(self.limit);
        if own >= late || self.client.connection_state() != async_nats::connection::State::Connected
        {
            return Err(cut_off);
        }
        Err(Verdict::Lost { host, silent_for })
    }
}

/// The watching task: stamps each host's beats, marks its bye. A beat not
/// authentic, or not numbered above the last one taken from its host, is
/// dropped and counted.
async fn watch(
    mut beats: async_nats::Subscriber,
    shared: Arc<Shared>,
    keys: Vec<Option<BeatSeal>>,
    me: u16,
    rejections: Rejections,
) {
    let mut last = vec![0u64; keys.len()];
    while let Some(m) = beats.next().await {
        let host = m.subject.rsplit('.').next().and_then(|h| h.parse::<usize>().ok());
        let Some((h, seen)) = host.and_then(|h| Some((h, shared.seen.get(h)?))) else {
            rejections.count(Rejection::Beat, me, None);
            continue;
        };
        let opened = keys[h].as_ref().and_then(|k| Some((k.open(&m.payload)?, k.is_sealed())));
        let what = match opened {
            Some(((what, n), sealed)) if !sealed || n > last[h] => {
                last[h] = n;
                what
            }
            _ => {
                rejections.count(Rejection::Beat, me, Some(h as u16));
                continue;
            }
        };
        if what == Beat::Bye {
            seen.store(LEFT, Relaxed);
            shared.notify.notify_one();
        } else if seen.load(Relaxed) != LEFT {
            let nanos = Instant::now().saturating_duration_since(shared.start).as_nanos();
            seen.store(nanos.min(u128::from(LEFT - 2)) as u64 + 1, Relaxed);
        }
    }
    shared.closed.store(true, Relaxed);
    shared.notify.notify_one();
}

/// The beating task: a beat every `every` until told to stop (or
/// dropped), then a bye.
async fn beat(
    client: async_nats::Client,
    to: async_nats::Subject,
    seal: BeatSeal,
    every: Duration,
    limit: Duration,
    mut stop: oneshot::Receiver<()>,
) -> Result<()> {
    let mut counter = 0u64;
    let mut next = move |what| {
        counter += 1;
        seal.seal(what, counter)
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = &mut stop => break,
            _ = tick.tick() => {}
        }
        // Bounded: a connection that is down must not keep this loop from
        // its stop. A beat that does not go is the others' business.
        let _ = tokio::time::timeout(every, send(&client, &to, next(Beat::Alive))).await;
    }
    match tokio::time::timeout(limit, send(&client, &to, next(Beat::Bye))).await {
        Ok(r) => r,
        Err(_) => Err(Error::Nats(format!(
            "heartbeats: the server did not confirm the bye within {:.3} s",
            limit.as_secs_f64()
        ))),
    }
}

/// Publishes and flushes: without the flush the client's writer may hold
/// a small message back.
async fn send(client: &async_nats::Client, to: &async_nats::Subject, what: Bytes) -> Result<()> {
    client.publish(to.clone(), what).await.map_err(nats)?;
    client.flush().await.map_err(nats)
}
