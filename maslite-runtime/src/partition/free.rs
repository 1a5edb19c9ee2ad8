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
use crate::exchange::{Control, Gone, Packet};
use crate::report::StopReason;
use maslite_core::{Change, RunOptions};
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

impl Partition {
    pub(crate) async fn run_free(
        &mut self,
        opts: &RunOptions,
        run: Arc<FreeRun>,
    ) -> (Result<StopReason, Error>, u64) {
        self.kernel.tick();
        let start = self.kernel.now();
        let end = opts.seconds_limit().map(|s| start + s);
        let mut error: Option<Error> = self.deferred.take();
        let mut rounds = 0u64;
        let mut busy = true; // counted in `activity` from the start
        let peers: Vec<usize> = self.links.peers().collect();
        let mut incoming = Vec::new();
        // Peers whose last word (they stopped) has come.
        let mut ended = vec![false; self.count];
        if error.is_some() {
            run.finish(StopReason::Cancelled);
        }
        while !run.done.is_cancelled() {
            // What arrived.
            for &q in &peers {
                loop {
                    match self.links.try_recv(q) {
                        Ok(Some(packet)) => {
                            if !busy {
                                run.activity.fetch_add(1, Ordering::AcqRel);
                                busy = true;
                            }
                            ended[q] |=
                                self.take_packet(q, packet, &run, &mut incoming, &mut error);
                        }
                        Ok(None) => break,
                        Err(Gone(q)) => {
                            error.get_or_insert(self.peer_gone(q));
                            run.finish(StopReason::Cancelled);
                            break;
                        }
                    }
                }
            }
            self.router.deliver(&mut self.kernel, &mut incoming, &mut self.counters);
            if let Err(e) = self.remove_requested() {
                error.get_or_insert(e);
            }
            if self.take_intake() > 0 && !busy {
                run.activity.fetch_add(1, Ordering::AcqRel);
                busy = true;
            }

            // A round, if anyone has work.
            self.kernel.tick();
            self.kernel.fire_due_alarms();
            if self.kernel.has_round_work() || self.kernel.kept_awake() > 0 {
                rounds += 1;
                if let Err(e) = self.kernel.step_round() {
                    error.get_or_insert(Error::Partition { partition: self.me, source: e });
                }
                self.kernel.fire_due_alarms();
            }
            self.share_changes(&run);
            self.kernel.take_outbox_into(&mut self.router.outbox);
            if !self.router.outbox.is_empty() {
                let _ = self.route_outbox(true);
                for &q in &peers {
                    if !self.router.batches[q].is_empty() {
                        let batch = std::mem::take(&mut self.router.batches[q]);
                        run.activity.fetch_add(1, Ordering::AcqRel);
                        if self.links.send(q, Packet::Mail(batch)).is_err() {
                            run.release(1);
                        }
                    }
                }
                let mut none = Vec::new();
                self.router.deliver(&mut self.kernel, &mut none, &mut self.counters);
            }

            self.publish();

            // Reasons to stop.
            if error.is_some() || self.stop.is_cancelled() {
                run.finish(StopReason::Cancelled);
            } else if self.kernel.take_pause() {
                run.finish(StopReason::Paused);
            } else if opts.rounds_limit().is_some_and(|n| rounds >= n) {
                run.finish(StopReason::Iterations);
            } else if end.is_some_and(|e| self.kernel.now() >= e) {
                run.finish(StopReason::TimeLimit);
            }
            if run.done.is_cancelled() {
                break;
            }
            if self.kernel.has_round_work() {
                continue;
            }

            // Quiet here: wait for the next thing to happen.
            // (Serving: quiet once a graceful stop has closed the inlet and
            // it is empty; alarms set for later do not hold the stop up.)
            let quiet = self.kernel.busy_agents() == 0
                && match &self.intake {
                    Some(_) => self.intake_exhausted(),
                    None => !self.kernel.has_required_alarms() && opts.pauses_if_idle(),
                };
            if quiet && busy {
                busy = false;
                run.release(1);
            }
            let mut wait = match self.kernel.next_alarm_time() {
                Some(t) => Some(t - self.kernel.now()),
                None => None,
            };
            if let Some(e) = end {
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
            tokio::select! {
                got = outside => came = got,
                got = self.links.recv_any() => match got {
                    Ok((q, packet)) => {
                        if !busy {
                            run.activity.fetch_add(1, Ordering::AcqRel);
                            busy = true;
                        }
                        ended[q] |= self.take_packet(q, packet, &run, &mut incoming, &mut error);
                    }
                    Err(Gone(q)) => {
                        error.get_or_insert(self.peer_gone(q));
                        run.finish(StopReason::Cancelled);
                    }
                },
                _ = async { match sleep { Some(d) => tokio::time::sleep(d).await, None => std::future::pending().await } } => {}
                _ = poll_fn(|cx| kernel.poll_woken(cx)) => {}
                _ = run.done.cancelled() => {}
                _ = self.stop.cancelled() => {}
            }
            if let Some(env) = came {
                self.kernel.send(env);
            }
            if !busy && !run.done.is_cancelled() {
                run.activity.fetch_add(1, Ordering::AcqRel);
                busy = true;
            }
        }

        // Tell every peer we are done, then take what is on the wires up to
        // each peer's word.
        for &q in &peers {
            let _ = self.links.send(q, Packet::Control(final_control()));
        }
        for &q in &peers {
            while !ended[q] {
                match self.links.recv(q).await {
                    Ok(packet) => {
                        ended[q] = self.take_packet(q, packet, &run, &mut incoming, &mut error)
                    }
                    Err(_) => break,
                }
            }
        }
        self.router.deliver(&mut self.kernel, &mut incoming, &mut self.counters);
        // Mail sent since the last round (teardowns of agents removed in the
        // drain) is counted pending, and goes out at the next run.
        self.kernel.take_outbox_into(&mut self.router.outbox);
        // An id added on two partitions whose first holder never left.
        if let Some(&(id, _)) = self.conflicts.first() {
            let source = maslite_core::Error::DuplicateAgent(id);
            error.get_or_insert(Error::Partition { partition: self.me, source });
        }
        self.conflicts.clear();
        let reason =
            run.reason.lock().unwrap_or_else(|e| e.into_inner()).unwrap_or(StopReason::Idle);
        match error {
            Some(e) => (Err(e), rounds),
            None if self.stop.is_cancelled() => (Ok(StopReason::Cancelled), rounds),
            None => (Ok(reason), rounds),
        }
    }

    /// Sends this partition's changes to agents and subscriptions to every
    /// other partition at once.
    fn share_changes(&mut self, run: &FreeRun) {
        self.kernel.take_changes_into(&mut self.changes);
        if self.changes.is_empty() {
            return;
        }
        let changes: Arc<Vec<Change>> = Arc::new(std::mem::take(&mut self.changes));
        let _ = self.apply_changes(self.me, &changes);
        for q in self.links.peers().collect::<Vec<_>>() {
            let mut control = final_control();
            control.stop = None;
            control.changes = changes.clone();
            // In flight until applied there (a removal asked for may be in
            // it): the run is not idle meanwhile.
            run.activity.fetch_add(1, Ordering::AcqRel);
            if self.links.send(q, Packet::Control(control)).is_err() {
                run.release(1);
            }
        }
    }

    fn take_packet(
        &mut self,
        q: usize,
        packet: Packet,
        run: &FreeRun,
        incoming: &mut Vec<(maslite_core::AgentId, maslite_core::Envelope)>,
        error: &mut Option<Error>,
    ) -> bool {
        match packet {
            Packet::Mail(mut batch) => {
                incoming.append(&mut batch);
                run.release(1);
                false
            }
            Packet::Control(c) => {
                if let Err(e) = self.apply_changes(q, &c.changes) {
                    error.get_or_insert(e);
                }
                if let Err(e) = self.remove_requested() {
                    error.get_or_insert(e);
                }
                // The last word carries no unit; changes do.
                let last = c.stop.is_some();
                if !last {
                    run.release(1);
                }
                last
            }
        }
    }

    fn peer_gone(&self, q: usize) -> Error {
        Error::PartitionDied { partition: q, message: "seen gone by a peer".into() }
    }
}

/// The word a partition sends each other one when it stops.
fn final_control() -> Control {
    Control {
        changes: Arc::new(Vec::new()),
        active: false,
        busy: false,
        held: false,
        has_mail: false,
        next_alarm: f64::INFINITY,
        now: 0.0,
        stop: Some(StopReason::Cancelled),
        failed: false,
        alarms: Vec::new(),
        drained: true,
        run: 0,
        spare: Vec::new(),
    }
}
