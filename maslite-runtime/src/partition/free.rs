//! Free mode, on the real-time clock: no rounds in step, mail crosses
//! partitions as soon as a round has produced it, alarms fire on wall time.
//!
//! Each partition loops on its own: deliver what arrived, fire due alarms,
//! run a round if anyone has work, route the round's mail (one batch per
//! destination partition), and otherwise wait for a batch, the next alarm,
//! an agent woken from outside, or a stop. Throughput comes first: there is
//! no canonical order across partitions here.
//!
//! The run ends when
//! - an agent pauses, a partition fails, the token is cancelled, or the
//!   time limit is reached: the partition that sees it first cancels the
//!   run's `done` token; or
//! - with `pause_if_idle`, the whole system is quiet. One counter, shared
//!   by the partitions of the run, holds one unit per partition that is
//!   busy and one per batch in flight; a sender adds a batch's unit before
//!   sending it, the receiver becomes busy before taking it back. When the
//!   counter reaches zero nothing can ever happen again (the termination
//!   detection of Dijkstra and Scholten, with a counter in place of the
//!   tree).
//!
//! At the stop every partition tells each other one it is done, then
//! delivers what is still on its wires up to that word, so every message
//! sent is delivered, a dead letter, or counted pending.

use super::Partition;
use crate::error::Error;
use crate::exchange::{Packet, PeerGone};
use crate::report::StopReason;
use maslite_core::{AgentId, Change, Envelope, RunOptions};
use std::future::poll_fn;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// State shared by the partitions of one free-mode run.
pub(crate) struct FreeRun {
    /// Busy partitions plus batches in flight.
    pub activity: AtomicI64,
    /// Cancelled when the run is to stop.
    pub done: CancellationToken,
    /// Why (the first reason given wins).
    pub reason: Mutex<Option<StopReason>>,
}

impl FreeRun {
    pub fn new(partitions: usize) -> FreeRun {
        FreeRun {
            activity: AtomicI64::new(partitions as i64),
            done: CancellationToken::new(),
            reason: Mutex::new(None),
        }
    }

    fn finish(&self, reason: StopReason) {
        self.reason.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(reason);
        self.done.cancel();
    }

    fn release(&self, units: i64) {
        if self.activity.fetch_sub(units, Ordering::AcqRel) == units {
            self.finish(StopReason::Idle);
        }
    }
}

/// What a free-mode run of one partition carries from loop to loop.
struct Free {
    run: Arc<FreeRun>,
    end: Option<f64>,
    rounds: u64,
    /// This partition holds a unit of the run's activity.
    busy: bool,
    error: Option<Error>,
    peers: Vec<usize>,
    incoming: Vec<(AgentId, Envelope)>,
    /// Peers whose last word (they stopped) has come.
    ended: Vec<bool>,
}

impl Free {
    /// Becomes busy (again), holding a unit of the run's activity.
    fn wake(&mut self) {
        if !self.busy {
            self.run.activity.fetch_add(1, Ordering::AcqRel);
            self.busy = true;
        }
    }
}

impl Partition {
    /// A free-mode run: deliver what arrived, run a round if anyone has
    /// work and send its mail, see whether to stop, else wait; at the stop,
    /// the last words.
    pub(crate) async fn run_free(
        &mut self,
        opts: &RunOptions,
        run: Arc<FreeRun>,
    ) -> (Result<StopReason, Error>, u64) {
        self.kernel.tick();
        let start = self.kernel.now();
        let mut f = Free {
            end: opts.end_from(start).ok().flatten(),
            rounds: 0,
            busy: true, // counted in `activity` from the start
            error: self.deferred.take(),
            peers: self.wires.peers().collect(),
            incoming: Vec::new(),
            ended: vec![false; self.count],
            run,
        };
        if f.error.is_some() {
            f.run.finish(StopReason::Cancelled);
        }
        while !f.run.done.is_cancelled() {
            self.yield_to_hosted().await;
            self.take_arrivals(&mut f);
            self.free_round(&mut f);
            self.publish();
            if self.free_stop(&mut f, opts) {
                break;
            }
            if self.kernel.has_round_work() {
                continue;
            }
            self.wait_free(&mut f, opts).await;
        }
        self.last_words(&mut f).await;
        let reason =
            f.run.reason.lock().unwrap_or_else(|e| e.into_inner()).unwrap_or(StopReason::Idle);
        match f.error {
            Some(e) => (Err(e), f.rounds),
            None if self.stop.is_cancelled() => (Ok(StopReason::Cancelled), f.rounds),
            None => (Ok(reason), f.rounds),
        }
    }

    /// Takes every packet waiting on the wires, delivers the mail, carries
    /// out removals asked for, and takes messages from outside.
    fn take_arrivals(&mut self, f: &mut Free) {
        for i in 0..f.peers.len() {
            let q = f.peers[i];
            loop {
                match self.wires.try_recv(q) {
                    Ok(Some(packet)) => {
                        f.wake();
                        f.ended[q] |= self.take_packet(q, packet, f);
                    }
                    Ok(None) => break,
                    Err(PeerGone(q)) => {
                        f.error.get_or_insert(self.peer_gone(q));
                        f.run.finish(StopReason::Cancelled);
                        break;
                    }
                }
            }
        }
        self.router.deliver(&mut self.kernel, &mut f.incoming, &mut self.counters);
        if let Err(e) = self.remove_requested() {
            f.error.get_or_insert(e);
        }
        if self.take_intake() > 0 {
            f.wake();
        }
    }

    /// A round, if anyone has work; then the changes and the mail it made
    /// go out.
    fn free_round(&mut self, f: &mut Free) {
        self.kernel.tick();
        self.kernel.fire_due_alarms();
        if self.kernel.has_round_work() || self.kernel.kept_awake() > 0 {
            f.rounds += 1;
            if let Err(e) = self.kernel.step_round() {
                f.error.get_or_insert(e);
            }
            self.kernel.fire_due_alarms();
        }
        self.share_changes(f);
        self.kernel.take_outbox_into(&mut self.router.outbox);
        if !self.router.outbox.is_empty() {
            let _ = self.route_outbox(true);
            for &q in &f.peers {
                if !self.router.batches[q].is_empty() {
                    let batch = std::mem::take(&mut self.router.batches[q]);
                    f.run.activity.fetch_add(1, Ordering::AcqRel);
                    if self.wires.send(q, Packet::Mail(batch)).is_err() {
                        f.run.release(1);
                    }
                }
            }
            let mut none = Vec::new();
            self.router.deliver(&mut self.kernel, &mut none, &mut self.counters);
        }
    }

    /// Whether the run stops now (for a reason seen here or elsewhere).
    fn free_stop(&mut self, f: &mut Free, opts: &RunOptions) -> bool {
        if f.error.is_some() || self.stop.is_cancelled() {
            f.run.finish(StopReason::Cancelled);
        } else if self.kernel.take_pause() {
            f.run.finish(StopReason::Paused);
        } else if opts.rounds_limit().is_some_and(|n| f.rounds >= n) {
            f.run.finish(StopReason::Iterations);
        } else if f.end.is_some_and(|e| self.kernel.now() >= e) {
            f.run.finish(StopReason::TimeLimit);
        }
        f.run.done.is_cancelled()
    }

    /// Quiet here: gives up this partition's unit if nothing here can
    /// happen by itself, then waits for the next thing to happen (a packet,
    /// a message from outside, the next alarm, an agent woken from outside,
    /// a stop).
    async fn wait_free(&mut self, f: &mut Free, opts: &RunOptions) {
        // (Serving: quiet once a graceful stop has closed the inlet and it
        // is empty; alarms set for later do not hold the stop up.)
        let quiet = self.kernel.busy_agents() == 0
            && match &self.intake {
                Some(_) => self.intake_exhausted(),
                None => !self.kernel.has_required_alarms() && opts.pauses_if_idle(),
            };
        if quiet && f.busy {
            f.busy = false;
            f.run.release(1);
        }
        let mut wait = self.kernel.next_alarm_time().map(|t| t - self.kernel.now());
        if let Some(e) = f.end {
            let left = e - self.kernel.now();
            wait = Some(wait.map_or(left, |w| w.min(left)));
        }
        if self.kernel.kept_awake() > 0 {
            // Kept-awake agents are updated at 1 kHz, as in maslite.
            wait = Some(wait.map_or(0.001, |w| w.min(0.001)));
        }
        let sleep = wait.map(|w| Duration::from_secs_f64(w.max(0.0)));
        let kernel = &self.kernel;
        let (me, count) = (self.me, self.count);
        let outside = async {
            match self.intake.as_mut() {
                Some(intake) => intake.wait(me, count).await,
                None => std::future::pending().await,
            }
        };
        let mut came = None;
        let mut packet = None;
        tokio::select! {
            got = outside => came = got,
            got = self.wires.recv_any() => packet = Some(got),
            _ = async { match sleep { Some(d) => tokio::time::sleep(d).await, None => std::future::pending().await } } => {}
            _ = poll_fn(|cx| kernel.poll_woken(cx)) => {}
            _ = f.run.done.cancelled() => {}
            _ = self.stop.cancelled() => {}
        }
        match packet {
            Some(Ok((q, packet))) => {
                f.wake();
                f.ended[q] |= self.take_packet(q, packet, f);
            }
            Some(Err(PeerGone(q))) => {
                f.error.get_or_insert(self.peer_gone(q));
                f.run.finish(StopReason::Cancelled);
            }
            None => {}
        }
        if let Some(env) = came {
            self.kernel.send(env);
        }
        if !f.run.done.is_cancelled() {
            f.wake();
        }
    }

    /// Tells every peer this partition is done, then takes what is on the
    /// wires up to each peer's last word, so that every message sent is
    /// delivered, a dead letter, or counted pending.
    async fn last_words(&mut self, f: &mut Free) {
        for &q in &f.peers {
            let _ = self.wires.send(q, Packet::LastWord);
        }
        for i in 0..f.peers.len() {
            let q = f.peers[i];
            while !f.ended[q] {
                match self.wires.recv(q).await {
                    Ok(packet) => f.ended[q] = self.take_packet(q, packet, f),
                    Err(_) => break,
                }
            }
        }
        self.router.deliver(&mut self.kernel, &mut f.incoming, &mut self.counters);
        // Mail sent since the last round (teardowns of agents removed in the
        // drain) is counted pending, and goes out at the next run.
        self.kernel.take_outbox_into(&mut self.router.outbox);
        // An id added on two partitions whose first holder never left.
        if let Some(&(id, _)) = self.replica.conflicts.first() {
            f.error.get_or_insert(Error::DuplicateAgent(id));
        }
        self.replica.conflicts.clear();
    }

    /// Sends this partition's changes to agents and subscriptions to every
    /// other partition at once.
    fn share_changes(&mut self, f: &mut Free) {
        self.kernel.take_changes_into(&mut self.changes);
        if self.changes.is_empty() {
            return;
        }
        let changes: Arc<Vec<Change>> = Arc::new(std::mem::take(&mut self.changes));
        let _ = self.apply_changes(self.me, &changes);
        for q in self.wires.peers().collect::<Vec<_>>() {
            // In flight until applied there (a removal asked for may be in
            // it): the run is not idle meanwhile.
            f.run.activity.fetch_add(1, Ordering::AcqRel);
            if self.wires.send(q, Packet::Changes(changes.clone())).is_err() {
                f.run.release(1);
            }
        }
        // Agents made here for other partitions follow the changes that
        // announced them, on the same wires.
        self.kernel.take_starts_into(&mut self.starting);
        for start in self.starting.drain(..) {
            let q = start.partition;
            if q >= self.count {
                let e = Error::NoPartition { partition: q, partitions: self.count };
                f.error.get_or_insert(e);
                continue;
            }
            f.run.activity.fetch_add(1, Ordering::AcqRel);
            if self.wires.send(q, Packet::Start(start)).is_err() {
                f.run.release(1);
            }
        }
    }

    /// Takes one packet from partition `q`; returns whether it was `q`'s
    /// last word.
    fn take_packet(&mut self, q: usize, packet: Packet, f: &mut Free) -> bool {
        match packet {
            Packet::Mail(mut batch) => {
                f.incoming.append(&mut batch);
                f.run.release(1);
                false
            }
            Packet::Changes(changes) => {
                if let Err(e) = self.apply_changes(q, &changes) {
                    f.error.get_or_insert(e);
                }
                if let Err(e) = self.remove_requested() {
                    f.error.get_or_insert(e);
                }
                f.run.release(1);
                false
            }
            Packet::Start(start) => {
                if let Err(e) = self.kernel.start(start) {
                    f.error.get_or_insert(e);
                }
                f.wake();
                f.run.release(1);
                false
            }
            // The last word carries no unit of activity.
            Packet::LastWord => true,
            // Free mode sends no step controls (and runs on one host): a
            // control here fails the run rather than panicking.
            Packet::Control(_) => {
                f.error.get_or_insert(Error::Transport {
                    message: format!(
                        "partition {q} -> partition {}: a step control in free mode breaks the \
                         protocol",
                        self.me
                    ),
                });
                false
            }
        }
    }

    fn peer_gone(&self, q: usize) -> Error {
        Error::PartitionDied { partition: q, message: "seen gone by a peer".into() }
    }
}
