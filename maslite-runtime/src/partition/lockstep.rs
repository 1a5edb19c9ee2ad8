//! One simulated clock across partitions: lockstep steps, and lookahead
//! windows.
//!
//! **Lockstep** (lookahead 0, the default). All partitions take the same
//! steps. A step is a round (agents with mail are updated), a time advance
//! (alarms due fire) or, first of all, the delivery of mail from outside.
//! At the end of each step every partition sends every other one its
//! *control*: changes to agents and subscriptions, whether it has more to
//! do now, its next alarm, a stop or a failure. Then the step's mail is
//! resolved against the updated directory and mailing list, exchanged in
//! one batch per partition pair, and delivered in origin order. Every
//! partition decides the next step from the same controls, so they agree
//! without a coordinator: another round if anyone is active (mail is in
//! flight only within a step, so "sent − received = 0" holds at every step
//! boundary, as ROSS's GVT requires), else a jump to the earliest alarm of
//! all, else the end.
//!
//! **Lookahead windows** (lookahead `L` > 0). The program promises that
//! nothing crosses partitions sooner than `L` after it was sent: agents on
//! different partitions talk only through alarms at least `L` ahead. Then
//! each partition processes every event in `[T, T + L)` on its own — its
//! rounds and time advances are local — and the partitions exchange
//! controls (with the alarms for each other) only at the window's end; the
//! next window starts at the earliest alarm of all (Nicol's YAWNS). A
//! message or an alarm that breaks the promise stops the run with
//! [`Error::LookaheadBroken`], naming both agents.
//!
//! Both give the trace of one bare kernel, whatever the number of
//! partitions and the placement: inboxes are filled in origin order (see
//! [`Origin`](maslite_core::Origin), the one order the kernel defines),
//! alarms at one time fire in origin order, alarms fire after a step's
//! round or time advance (never in the step that delivers mail from
//! outside), a run with a time limit stops once the clock reaches it, and
//! agents created in a step get their places in the order of insertion at
//! the step's end (`place_new_agents`).
//!
//! # What the runtime does differently from one bare kernel
//!
//! A few things an agent does to agents elsewhere (removing another agent,
//! clearing alarms) take effect at the end of the step, on any number of
//! partitions (one included), and with lookahead windows cross-partition
//! effects take hold at the window's end: the README's "Where it differs"
//! lists each, with its reason — the one list of every difference.

use super::{FreeRun, Outcome, Partition};
use crate::error::Error;
use crate::exchange::{Control, Packet, PeerGone};
use crate::report::StopReason;
use crate::route::{Counters, Routed};
use maslite_core::Change;
use maslite_core::{AgentId, Envelope, RunOptions, Start};
use std::future::poll_fn;
use std::sync::Arc;
use tracing::Instrument;

/// The most alarms an emptied buffer may have room for to be given back
/// for reuse (1 MiB): a larger one, left by a burst, is freed.
const KEPT_ALARMS: usize = 1 << 16;

/// What all partitions do next.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Step {
    /// Deliver the mail from outside (the first step of a run).
    Deliver,
    /// Update the agents with mail.
    Round,
    /// Move the clock to the earliest alarm of all and fire what is due.
    Advance(f64),
}

/// The controls of all partitions, combined.
struct Agreed {
    active: bool,
    busy: bool,
    held: bool,
    next_alarm: f64,
    now: f64,
    stop: Option<StopReason>,
    failed: bool,
    /// The first partition of another host that failed.
    failed_remote: Option<usize>,
    drained: bool,
    /// Some partition keeps agents awake.
    awake: bool,
    /// Some partition's round in this step updated an agent.
    polled: bool,
    /// This partition has mail to route in this step.
    has_mail: bool,
}

/// What applying a step's changes found.
struct Applied {
    /// Agents were removed at another partition's request (their
    /// teardowns' consequences go with the next controls).
    removals: bool,
    /// Alarms were cleared somewhere.
    cleared: bool,
    /// This partition sends mail in this step.
    sends_mail: bool,
}

/// The lookahead windows' state (see the [module docs](self)).
struct Window {
    /// The lookahead: how long a window is.
    length: f64,
    /// Where the current window ends.
    end: f64,
    /// Alarms set here for agents elsewhere, to hand out with the controls.
    exported: Vec<(f64, Envelope)>,
}

/// What a run of one partition carries from step to step (kept between
/// steps: a step allocates nothing of its own).
struct Steps {
    opts: RunOptions,
    /// The run's end time, if it has one.
    end: Option<f64>,
    step: Step,
    steps: u64,
    rounds: u64,
    error: Option<Error>,
    /// A stop agreed while a step still had consequences to exchange.
    stopping: Option<StopReason>,
    /// Nobody has work but agents waiting on the outside world.
    wait_busy: bool,
    peers: Vec<usize>,
    no_changes: Arc<Vec<Change>>,
    /// Alarms for each partition, sent with the next controls.
    outgoing: Vec<Vec<(f64, Envelope)>>,
    all_changes: Vec<(usize, Arc<Vec<Change>>)>,
    /// Which partitions send mail in this step.
    mail_from: Vec<bool>,
    /// Lookahead windows, if the runtime runs them.
    window: Option<Window>,
    /// Agents made here for each partition (`Cx::spawn_on`), sent with
    /// the next controls.
    starts_out: Vec<Vec<Start>>,
    /// Agents made elsewhere for this partition, installed at the step's
    /// end.
    starts_in: Vec<Start>,
    /// This step made agents for other partitions: they start in the next
    /// round.
    started: bool,
}

impl Steps {
    fn new(p: &mut Partition, opts: RunOptions) -> Steps {
        // Every partition ends a run on the same clock (see `finish`), so
        // they all start from the same time.
        let start = p.kernel.now();
        let lookahead = p.config.mode.lookahead();
        Steps {
            opts,
            // Checked by the handle (`end_from`) against the same clock.
            end: opts.end_from(start).ok().flatten(),
            step: Step::Deliver,
            steps: 0,
            rounds: 0,
            error: p.deferred.take(),
            stopping: None,
            wait_busy: false,
            peers: p.wires.peers().collect(),
            no_changes: Arc::new(Vec::new()),
            outgoing: (0..p.count).map(|_| Vec::new()).collect(),
            all_changes: Vec::with_capacity(p.count),
            mail_from: vec![false; p.count],
            window: (lookahead > 0.0).then(|| Window {
                length: lookahead,
                end: start + lookahead,
                exported: Vec::new(),
            }),
            starts_out: (0..p.count).map(|_| Vec::new()).collect(),
            starts_in: Vec::new(),
            started: false,
        }
    }
}

/// A run's fingerprint: the partition's count of runs and the run's
/// options (FNV-1a over their bits).
fn fingerprint(runs: u64, opts: &RunOptions) -> u64 {
    let words = [
        runs,
        opts.seconds_limit().map_or(u64::MAX, f64::to_bits),
        opts.until_limit().map_or(u64::MAX, f64::to_bits),
        opts.rounds_limit().unwrap_or(u64::MAX),
        opts.pauses_if_idle() as u64 | (opts.clears_alarms_at_end() as u64) << 1,
    ];
    words
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3))
}

fn stop_rank(r: StopReason) -> u8 {
    match r {
        StopReason::Cancelled => 3,
        StopReason::Paused => 2,
        StopReason::Iterations => 1,
        _ => 0,
    }
}

fn merge_stop(a: Option<StopReason>, b: Option<StopReason>) -> Option<StopReason> {
    match (a, b) {
        (Some(x), Some(y)) => Some(if stop_rank(y) > stop_rank(x) { y } else { x }),
        (x, y) => x.or(y),
    }
}

impl Partition {
    /// Runs this partition's part of a run and reports it.
    pub(crate) async fn run(&mut self, opts: RunOptions, free: Option<Arc<FreeRun>>) -> Outcome {
        let stats0 = self.kernel.stats();
        self.runs += 1;
        self.fingerprint = fingerprint(self.runs, &opts);
        self.counters = Counters::new(self.count, self.measuring);
        self.replica.joined.clear();
        // A pause asked for between runs (in a setup) does not stop this one.
        let _ = self.kernel.take_pause();
        self.paused = false;
        self.kernel.begin_run();
        let before = self.counters.clone();
        let waited0 = self.wires.waited;
        // Everything the run logs (the kernel's round and update spans
        // included) is inside this partition's span.
        let span = tracing::debug_span!("partition", p = self.me);
        let _entered = span.enter();
        tracing::debug!(start = self.kernel.now(), agents = self.kernel.len(), "run starts");
        drop(_entered);
        let (result, steps) = match free {
            Some(run) => self.run_free(&opts, run).instrument(span.clone()).await,
            None => self.run_simulated(&opts).instrument(span.clone()).await,
        };
        let _entered = span.enter();
        match &result {
            Ok(reason) => {
                tracing::debug!(?reason, end = self.kernel.now(), steps, "run stops")
            }
            // A peer's failure stops this partition too: logged where it
            // happened.
            Err(Error::Stopped) => tracing::debug!(steps, "run stopped by a peer's failure"),
            Err(e) => tracing::error!(error = %e, steps, "run fails"),
        }
        if opts.clears_alarms_at_end() {
            self.kernel.clear_alarms(None, None);
        }
        self.kernel.end_run();
        // A service's run is its only one: its inlet closes with it.
        self.intake = None;
        self.publish();
        // Changes made after the last exchange (agents removed on request
        // in the last step) count here now and reach the other partitions
        // at the next run's first step.
        self.kernel.take_changes_into(&mut self.changes);
        let carry = std::mem::take(&mut self.changes);
        let mine: Vec<Change> =
            carry.iter().filter(|c| !matches!(c, Change::RemoveRequested(_))).cloned().collect();
        let _ = self.apply_changes(self.me, &mine);
        self.changes = carry;
        self.counters.settle();
        Outcome {
            end_time: self.kernel.now(),
            steps,
            report: self.report(&before, stats0, waited0),
            counters: std::mem::take(&mut self.counters),
            loads: self.take_loads(),
            joined: std::mem::take(&mut self.replica.joined),
            next_key: self.replica.next_key,
            result,
        }
    }

    /// Whether an agent asked to stop the run (remembered until the run
    /// ends).
    fn pause_requested(&mut self) -> bool {
        if self.kernel.take_pause() {
            self.paused = true;
        }
        self.paused
    }

    /// Waits while the only thing left here is an agent pending on the
    /// outside world (tokio I/O, a channel): simulated time waits for it.
    async fn wait_for_busy(&mut self) {
        while self.kernel.busy_agents() > 0
            && !self.kernel.has_round_work()
            && self.router.outbox.is_empty()
            && !self.stop.is_cancelled()
        {
            let kernel = &self.kernel;
            let hosting = async {
                match self.intake.as_mut() {
                    Some(intake) => intake.host_next().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = poll_fn(|cx| kernel.poll_woken(cx)) => {}
                _ = self.stop.cancelled() => {}
                // A task to host (which may be what the agent waits for).
                _ = hosting => {}
            }
        }
    }

    /// Serving and idle: waits for a message from outside (kept), another
    /// partition's next step, the service stopping, or the token.
    async fn wait_outside(&mut self) -> Result<(), Error> {
        let (me, count) = (self.me, self.count);
        let Some(intake) = self.intake.as_mut() else { return Ok(()) };
        tokio::select! {
            got = intake.wait(me, count) => {
                if let Some(env) = got {
                    self.kernel.send(env);
                }
                Ok(())
            }
            peer = self.wires.wait_any() => peer.map_err(|PeerGone(q)| self.peer_died(q)),
            _ = self.stop.cancelled() => Ok(()),
        }
    }

    /// The simulated clock's run: steps, each in five phases — take the
    /// step, send the controls, receive them, apply what they changed,
    /// exchange the mail — and then the decision every partition takes
    /// alike.
    async fn run_simulated(&mut self, opts: &RunOptions) -> (Result<StopReason, Error>, u64) {
        let mut s = Steps::new(self, *opts);
        loop {
            self.yield_to_hosted().await;
            s.steps += 1;
            self.take_step(&mut s).await;
            let (mut agreed, held) = self.send_controls(&mut s);
            if let Err(e) = self.receive_controls(&mut s, &mut agreed).await {
                return (Err(e), s.steps);
            }
            let after = self.apply_step(&mut s, &mut agreed, held);
            if let Err(e) = self.exchange_mail(&mut s, after.sends_mail).await {
                return (Err(e), s.steps);
            }
            if let Some(result) = self.decide(&mut s, &agreed, &after).await {
                return (result, s.steps);
            }
        }
    }

    /// Phase 1: the step itself (a round, a time advance, or only the
    /// delivery of mail from outside), then what it leaves to send.
    async fn take_step(&mut self, s: &mut Steps) {
        if s.error.is_none() {
            match s.step {
                Step::Deliver => {}
                Step::Round => {
                    if s.wait_busy {
                        // Only agents pending on the outside world are
                        // left anywhere: simulated time waits for them.
                        self.wait_for_busy().await;
                    }
                    s.rounds += 1;
                    if s.window.is_none() {
                        // Lockstep: rounds are numbered over all partitions
                        // (windows run theirs on their own).
                        self.kernel.set_round(self.rounds_polled + 1);
                    }
                    if let Err(e) = self.kernel.step_round() {
                        s.error = Some(e);
                    }
                }
                Step::Advance(t) => {
                    if s.steps == 2 {
                        // Straight after the run's first delivery: where one
                        // kernel's first turn had an empty round (it counts
                        // for the run's iterations).
                        s.rounds += 1;
                    }
                    tracing::trace!(from = self.kernel.now(), to = t, "time jumps");
                    if let Err(e) = self.kernel.set_time(t.max(self.kernel.now())) {
                        s.error = Some(e);
                    }
                    if let Some(w) = s.window.as_mut() {
                        w.end = t + w.length;
                    }
                }
            }
        }
        if s.error.is_none() {
            // Alarms fire after a round or a time advance, as on one
            // kernel, where alarms due when a run starts are released
            // after its first round.
            if s.step != Step::Deliver {
                self.kernel.fire_due_alarms();
                if let Some(w) = s.window.as_mut() {
                    if let Err(e) = self.settle_window(w, s.end).await {
                        s.error = Some(e);
                    }
                }
            }
            // Messages from outside go with this step's mail (after the
            // window: they owe no lookahead), delivered for the next round.
            self.take_intake();
        }
        self.kernel.take_outbox_into(&mut self.router.outbox);
        if s.error.is_none() {
            if let Some(w) = s.window.as_mut() {
                if let Err(e) = self.take_exported(w) {
                    s.error = Some(e);
                }
            }
        }
        if s.error.is_none() {
            if let Err(e) = self.take_starts(s) {
                s.error = Some(e);
            }
        }
        if s.error.is_some() {
            // Peers waiting on the outside world stop waiting.
            self.stop.cancel();
        }
    }

    /// The agents made here for other partitions (`Cx::spawn_on`), sorted
    /// by destination for the controls. Inside lookahead windows a child
    /// elsewhere would start sooner than the lookahead: the promise is
    /// broken, as by a message. A body cannot cross hosts.
    fn take_starts(&mut self, s: &mut Steps) -> Result<(), Error> {
        let mut starts = std::mem::take(&mut self.starting);
        self.kernel.take_starts_into(&mut starts);
        s.started = !starts.is_empty();
        let mut result = Ok(());
        for start in starts.drain(..) {
            let q = start.partition;
            if q >= self.count {
                result =
                    result.and(Err(Error::NoPartition { partition: q, partitions: self.count }));
            } else if s.window.is_some() {
                result = result.and(Err(self.broken(start.creator, start.id, q, 0.0)));
            } else if self.wires.is_remote(q) {
                result = result.and(Err(Error::Transport {
                    message: format!(
                        "agent {} placed a child on partition {q} (cx.spawn_on), which runs on \
                         another host: an agent's body cannot cross hosts (add it there from \
                         outside, as every host does)",
                        start.creator
                    ),
                }));
            } else {
                s.starts_out[q].push(start);
            }
        }
        self.starting = starts;
        result
    }

    /// Phase 2: this partition's control to every other one (with the
    /// alarms for their agents); returns it as the start of the agreement,
    /// and the alarms held for agents nobody knows yet.
    fn send_controls(&mut self, s: &mut Steps) -> (Agreed, Vec<(f64, Envelope)>) {
        self.kernel.take_changes_into(&mut self.changes);
        let changes = if self.changes.is_empty() {
            s.no_changes.clone()
        } else {
            Arc::new(std::mem::take(&mut self.changes))
        };
        let mut stop = s.stopping;
        if self.stop.is_cancelled() {
            stop = merge_stop(stop, Some(StopReason::Cancelled));
        } else if self.pause_requested() {
            stop = merge_stop(stop, Some(StopReason::Paused));
        } else if s.opts.rounds_limit().is_some_and(|n| s.rounds >= n) {
            stop = merge_stop(stop, Some(StopReason::Iterations));
        }
        let has_mail = !self.router.outbox.is_empty();
        let mut next_alarm = self.kernel.next_alarm_time().unwrap_or(f64::INFINITY);
        let held = match s.window.as_mut() {
            Some(w) => self.hand_out_alarms(w, &mut s.outgoing, &mut next_alarm),
            None => Vec::new(),
        };
        let agreed = Agreed {
            active: has_mail || self.kernel.has_round_work() || s.started,
            busy: self.kernel.busy_agents() > 0,
            held: !held.is_empty(),
            next_alarm,
            now: self.kernel.now(),
            stop,
            failed: s.error.is_some(),
            failed_remote: None,
            drained: self.intake_exhausted(),
            awake: self.kernel.kept_awake() > 0,
            polled: s.step == Step::Round && self.kernel.round_polled(),
            has_mail,
        };
        for &q in &s.peers {
            let control = Control {
                changes: changes.clone(),
                active: agreed.active,
                busy: agreed.busy,
                held: agreed.held,
                has_mail,
                next_alarm,
                now: agreed.now,
                stop,
                failed: agreed.failed,
                alarms: std::mem::take(&mut s.outgoing[q]),
                starts: std::mem::take(&mut s.starts_out[q]),
                drained: agreed.drained,
                awake: agreed.awake,
                polled: agreed.polled,
                run: self.fingerprint,
                spare: std::mem::take(&mut self.spares[q]),
                spare_alarms: std::mem::take(&mut self.alarm_spares[q]),
            };
            // A peer that is gone shows up when we wait for it.
            let _ = self.wires.send(q, Packet::Control(control));
        }
        s.all_changes.clear();
        s.all_changes.push((self.me, changes));
        (agreed, held)
    }

    /// Phase 3: every other partition's control, merged into `agreed`.
    async fn receive_controls(&mut self, s: &mut Steps, agreed: &mut Agreed) -> Result<(), Error> {
        s.mail_from.iter_mut().for_each(|m| *m = false);
        for &q in &s.peers {
            let mut control = match self.wires.recv(q).await {
                Ok(Packet::Control(c)) => c,
                Ok(other) => return Err(self.broke_protocol(q, &other, "a control")),
                Err(PeerGone(q)) => return Err(self.peer_died(q)),
            };
            if control.run != self.fingerprint {
                // Another program: its steps would not be these.
                return Err(self.other_program(q, &s.opts));
            }
            s.all_changes.push((q, control.changes));
            self.router.reuse(q, control.spare);
            for (t, env) in control.alarms.drain(..) {
                self.kernel.import_alarm(t, env);
            }
            // Both buffers cross threads both ways: steady windows
            // allocate none. (One window's burst is not kept for good.)
            let room = control.alarms.capacity();
            if room > self.alarm_spares[q].capacity() && room <= KEPT_ALARMS {
                self.alarm_spares[q] = control.alarms;
            }
            let spare = control.spare_alarms;
            if s.outgoing[q].is_empty() && s.outgoing[q].capacity() < spare.capacity() {
                s.outgoing[q] = spare;
            }
            s.starts_in.extend(control.starts);
            agreed.active |= control.active;
            agreed.busy |= control.busy;
            agreed.held |= control.held;
            agreed.next_alarm = agreed.next_alarm.min(control.next_alarm);
            agreed.now = agreed.now.max(control.now);
            agreed.stop = merge_stop(agreed.stop, control.stop);
            if control.failed && self.wires.is_remote(q) && agreed.failed_remote.is_none() {
                agreed.failed_remote = Some(q);
            }
            agreed.failed |= control.failed;
            s.mail_from[q] = control.has_mail;
            agreed.drained &= control.drained;
            agreed.awake |= control.awake;
            agreed.polled |= control.polled;
        }
        if agreed.polled {
            self.rounds_polled += 1;
        }
        Ok(())
    }

    /// Phase 4: the step's changes of every partition, applied alike
    /// everywhere; agents made in the step placed; the alarms held for
    /// unknown agents sent on; removals asked for carried out.
    fn apply_step(
        &mut self,
        s: &mut Steps,
        agreed: &mut Agreed,
        held: Vec<(f64, Envelope)>,
    ) -> Applied {
        s.all_changes.sort_by_key(|(q, _)| *q);
        self.replica.removal_at.iter_mut().for_each(|r| *r = false);
        let all = std::mem::take(&mut s.all_changes);
        if let Err(e) = self.apply_step_changes(&all) {
            // Every partition finds it: the run fails on all of them.
            agreed.failed = true;
            s.error.get_or_insert(e);
        }
        // Agents made elsewhere for this partition join it now (the
        // directory knows them already), to be placed with the others.
        for start in s.starts_in.drain(..) {
            if let Err(e) = self.kernel.start(start) {
                agreed.failed = true;
                s.error.get_or_insert(e);
            }
        }
        self.place_new_agents(&all);
        // Alarms cleared on other partitions may have held the earliest
        // time: the next alarm is agreed again before the clock moves.
        let cleared =
            all.iter().any(|(_, c)| c.iter().any(|c| matches!(c, Change::AlarmsCleared { .. })));
        s.all_changes = all;
        if let Some(w) = s.window.as_mut() {
            if let Err(e) = self.resolve_held(w, held) {
                s.error.get_or_insert(e);
            }
        }
        // Agents removed at another partition's request leave now; what
        // their teardowns send goes with this step's mail, and what else
        // they did (changes, a panic) with the next step's controls: every
        // partition knows there were such removals.
        let removals = self.replica.removal_at.iter().any(|&r| r);
        match self.remove_requested() {
            Ok(true) => self.kernel.take_outbox_into(&mut self.router.outbox),
            Ok(false) => {}
            Err(e) => {
                s.error.get_or_insert(e);
            }
        }
        let sends_mail = agreed.has_mail || self.replica.removal_at[self.me];
        Applied { removals, cleared, sends_mail }
    }

    /// Phase 5: the step's mail, resolved against the updated directory and
    /// mailing list, one batch per partition pair, delivered in origin
    /// order. (Inside lookahead windows mail never crosses:
    /// `settle_window` refused it before the controls.) `sends`: this
    /// partition has mail to route.
    async fn exchange_mail(&mut self, s: &mut Steps, sends: bool) -> Result<(), Error> {
        if sends {
            let _ = self.route_outbox(true);
            for &q in &s.peers {
                let batch = std::mem::take(&mut self.router.batches[q]);
                let _ = self.wires.send(q, Packet::Mail(batch));
            }
        }
        for &q in &s.peers {
            if !s.mail_from[q] && !self.replica.removal_at[q] {
                continue;
            }
            match self.wires.recv(q).await {
                Ok(Packet::Mail(batch)) => self.take_batch(q, batch),
                Ok(other) => return Err(self.broke_protocol(q, &other, "mail")),
                Err(PeerGone(q)) => return Err(self.peer_died(q)),
            }
        }
        self.router.deliver(&mut self.kernel, &mut self.incoming, &mut self.counters);
        self.publish();
        Ok(())
    }

    /// The decision, as every other partition takes it from the same
    /// controls: the next step, or the run's end.
    async fn decide(
        &mut self,
        s: &mut Steps,
        agreed: &Agreed,
        after: &Applied,
    ) -> Option<Result<StopReason, Error>> {
        if agreed.failed {
            // A failure on another host is told by that host: here it is
            // named, not explained.
            let remote = agreed.failed_remote.map(|q| Error::Transport {
                message: format!("partition {q}, on another host, failed (its host says why)"),
            });
            return Some(Err(s.error.take().or(remote).unwrap_or(Error::Stopped)));
        }
        s.wait_busy = false;
        let at_end = s.step != Step::Deliver && s.end.is_some_and(|e| agreed.now >= e);
        if after.removals || after.cleared || agreed.held {
            // One more exchange for what the removals and clears did (with
            // no round if the run is stopping, or at its end).
            s.stopping = agreed.stop.or(at_end.then_some(StopReason::TimeLimit));
            let round = s.stopping.is_none() && (agreed.active || after.removals);
            s.step = if round { Step::Round } else { Step::Deliver };
            return None;
        }
        if let Some(reason) = agreed.stop {
            // One kernel moves its clock (and fires what is due) in the
            // turn in which it pauses or runs its last iteration, when
            // nothing is left at this time: so does the runtime, before it
            // stops.
            let last_turn = matches!(reason, StopReason::Paused | StopReason::Iterations)
                && s.step == Step::Round
                && s.stopping.is_none()
                && !agreed.active
                && !agreed.busy;
            if let Some(t) = self.next_turn_time(s, agreed).filter(|_| last_turn) {
                s.stopping = Some(reason);
                s.step = Step::Advance(t);
                return None;
            }
            return Some(self.finish(agreed.now, Ok(reason)));
        }
        if at_end {
            // The clock reached the end: what fired then is in the inboxes,
            // unread, as on one kernel (and in maslite).
            return Some(self.finish(agreed.now, Ok(StopReason::TimeLimit)));
        }
        // Kept-awake agents are updated in a round after every time
        // advance and at the run's start (one kernel's every turn has a
        // round), but do not by themselves call for more rounds.
        let awake = agreed.awake && s.step != Step::Round;
        if agreed.active || agreed.busy || awake {
            s.wait_busy = !agreed.active && !awake;
            s.step = Step::Round;
            return None;
        }
        let t = agreed.next_alarm;
        if let Some(intake) = &self.intake {
            // Serving: a stop is graceful once nothing more can come in
            // anywhere and no mail is left (alarms set for later do not
            // hold it up).
            if agreed.drained {
                return Some(self.finish(agreed.now, Ok(StopReason::Idle)));
            }
            if intake.draining() {
                s.step = Step::Deliver;
                return None;
            }
            if !t.is_finite() {
                // Idle: wait for the outside world, then take what came.
                if let Err(e) = self.wait_outside().await {
                    return Some(Err(e));
                }
                s.step = Step::Deliver;
                return None;
            }
        }
        // No alarm at all is idle, not a time limit (as on one kernel): the
        // clock stays; without `pause_if_idle` it runs to the end.
        let past_end = t.is_finite() && s.end.is_some_and(|e| t > e);
        if past_end || (!t.is_finite() && s.end.is_some() && !s.opts.pauses_if_idle()) {
            let e = s.end.expect("checked");
            return Some(self.finish(e.max(agreed.now), Ok(StopReason::TimeLimit)));
        }
        if !t.is_finite() {
            return Some(self.finish(agreed.now, Ok(StopReason::Idle)));
        }
        s.step = Step::Advance(t);
        None
    }

    /// Where one kernel's clock would jump when nothing is left to do now:
    /// the next alarm (capped at the run's end), or the end if there is no
    /// alarm and the run does not pause when idle.
    fn next_turn_time(&self, s: &Steps, agreed: &Agreed) -> Option<f64> {
        let t = agreed.next_alarm;
        let target = match (t.is_finite(), s.end) {
            (true, Some(e)) => Some(t.min(e)),
            (true, None) => Some(t),
            (false, Some(e)) if !s.opts.pauses_if_idle() => Some(e),
            _ => None,
        };
        target.filter(|&t| t > agreed.now)
    }

    /// Ends a run with every partition's clock at `now` (the latest of
    /// them: inside lookahead windows each partition stops at its own last
    /// event), so that the next run starts from one time.
    fn finish(&mut self, now: f64, result: Result<StopReason, Error>) -> Result<StopReason, Error> {
        if now <= self.kernel.now() {
            // (Not a time advance: rounds at this time go on counting.)
            return result;
        }
        self.kernel.set_time(now).and(result)
    }

    fn other_program(&self, q: usize, opts: &RunOptions) -> Error {
        Error::Config(format!(
            "partition {q} is in another run than partition {} (its run {} with {opts:?}): \
             every host must run the same program, with the same runs and options",
            self.me, self.runs
        ))
    }

    /// Partition `q` sent `got` where `due` belongs. Between partitions of
    /// one process that cannot happen; from another host it is a faulty
    /// or hostile peer: the run fails, naming the link (never a panic).
    fn broke_protocol(&self, q: usize, got: &Packet, due: &str) -> Error {
        let got = match got {
            Packet::Control(_) => "a control",
            Packet::Mail(_) => "mail",
            Packet::Changes(_) => "free mode's changes",
            Packet::Start(_) => "a start",
            Packet::LastWord => "a last word",
        };
        let r#where = if self.wires.is_remote(q) { " (on another host)" } else { "" };
        Error::Transport {
            message: format!(
                "partition {q}{where} -> partition {}: {got} where {due} belongs breaks the \
                 lockstep protocol",
                self.me
            ),
        }
    }

    fn peer_died(&self, q: usize) -> Error {
        if let Some(error) = self.wires.why_gone(q) {
            return error;
        }
        if self.wires.is_remote(q) {
            return Error::Transport {
                message: format!("partition {q}'s host is out of reach (its transport ended)"),
            };
        }
        Error::PartitionDied { partition: q, message: "seen gone by a peer".into() }
    }

    fn broken(&self, sender: AgentId, receiver: AgentId, to: usize, delay: f64) -> Error {
        Error::LookaheadBroken {
            sender,
            receiver,
            from: self.me,
            to,
            delay,
            lookahead: self.config.mode.lookahead(),
        }
    }

    /// Moves the alarms set here for agents elsewhere into the window's
    /// `exported`; one due before the window's end breaks the lookahead
    /// promise.
    fn take_exported(&mut self, w: &mut Window) -> Result<(), Error> {
        let from = w.exported.len();
        self.kernel.take_exported_alarms_into(&mut w.exported);
        let now = self.kernel.now();
        // (The time first: an alarm that keeps the promise, as most do,
        // needs no look-up of where its receiver is.)
        for (t, env) in w.exported[from..].iter().filter(|(t, _)| *t < w.end) {
            let receiver = env.receiver().unwrap_or(AgentId::OUTSIDE);
            match self.replica.dir.get(receiver) {
                Some(to) if to != self.me => {
                    return Err(self.broken(env.sender(), receiver, to, t - now));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Hands the window's exported alarms to their receivers' partitions
    /// (`outgoing`, sent with the controls; this partition's own queued
    /// here), counting them in `next_alarm`; returns those for agents
    /// nobody knows yet (maybe added elsewhere in this window), resolved
    /// once this step's changes are in ([`resolve_held`](Self::resolve_held)).
    fn hand_out_alarms(
        &mut self,
        w: &mut Window,
        outgoing: &mut [Vec<(f64, Envelope)>],
        next_alarm: &mut f64,
    ) -> Vec<(f64, Envelope)> {
        let mut held = Vec::new();
        for (t, env) in w.exported.drain(..) {
            *next_alarm = next_alarm.min(t);
            let Some(q) = env.receiver().and_then(|r| self.replica.dir.get(r)) else {
                held.push((t, env));
                continue;
            };
            if q != self.me {
                // Handed to another partition: counted as crossing here (its
                // delivery counts there, when it fires).
                let receiver = env.receiver().unwrap_or(AgentId::OUTSIDE);
                self.counters.crossing(env.sender(), receiver, q);
            }
            outgoing[q].push((t, env));
        }
        for (t, env) in outgoing[self.me].drain(..) {
            self.kernel.import_alarm(t, env);
        }
        held
    }

    /// Alarms held for unknown agents: sent with the next step's controls
    /// if the changes told where the agent is, else queued here (a dead
    /// letter when they fire, if still nobody has it).
    fn resolve_held(&mut self, w: &mut Window, held: Vec<(f64, Envelope)>) -> Result<(), Error> {
        let mut broken = None;
        for (t, env) in held {
            let receiver = env.receiver().unwrap_or(AgentId::OUTSIDE);
            match self.replica.dir.get(receiver) {
                Some(q) if q != self.me => {
                    if t < w.end {
                        let now = self.kernel.now();
                        broken.get_or_insert(self.broken(env.sender(), receiver, q, t - now));
                    }
                    w.exported.push((t, env));
                }
                _ => self.kernel.import_alarm(t, env),
            }
        }
        broken.map_or(Ok(()), Err)
    }

    /// Lookahead windows: processes every local event before `window_end`
    /// (rounds, local mail, local time advances).
    ///
    /// Inside a window every alarm of this partition's agents fires here,
    /// so while traffic is not measured the mail of a fired alarm goes
    /// straight into its receiver's inbox ([`Driver::fire_due_alarms_here`]),
    /// after the round's sends are routed: the order a sort by origin gives
    /// (fired mail after sends, fired among itself in firing order).
    async fn settle_window(&mut self, w: &mut Window, end: Option<f64>) -> Result<(), Error> {
        let here = self.counters.measure.is_none();
        let mut turns = 0u32;
        loop {
            self.route_window(w)?;
            // A pause takes hold at the end of the window (on any number of
            // partitions); a cancellation within 64 turns (asking the token
            // takes its lock).
            self.pause_requested();
            if turns.is_multiple_of(64) && self.stop.is_cancelled() {
                return Ok(());
            }
            turns = turns.wrapping_add(1);
            if self.kernel.busy_agents() > 0 {
                self.wait_for_busy().await;
            }
            if end.is_some_and(|e| self.kernel.now() >= e) {
                // At the end of the run nothing more runs (see
                // `run_simulated`): what fired is left in the inboxes.
                return Ok(());
            }
            if self.kernel.has_round_work() {
                self.kernel.step_round()?;
                if here {
                    self.route_window(w)?;
                    self.fire_here();
                } else {
                    self.kernel.fire_due_alarms();
                }
                continue;
            }
            match self.kernel.next_alarm_time() {
                Some(t) if t < w.end && end.is_none_or(|e| t <= e) => {
                    self.kernel.set_time(t)?;
                    if here {
                        self.fire_here();
                    } else {
                        self.kernel.fire_due_alarms();
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    /// Routes and delivers what the kernel sent (none of it may cross
    /// inside a window), and takes the alarms it set for agents elsewhere.
    #[inline(always)]
    fn route_window(&mut self, w: &mut Window) -> Result<(), Error> {
        if !self.kernel.has_mail_out() && self.router.outbox.is_empty() {
            return Ok(());
        }
        self.route_window_mail(w)
    }

    #[inline(never)]
    fn route_window_mail(&mut self, w: &mut Window) -> Result<(), Error> {
        self.kernel.take_outbox_into(&mut self.router.outbox);
        self.take_exported(w)?;
        if !self.router.outbox.is_empty() {
            if let Routed::Crossing(sender, receiver, to) = self.route_outbox(false) {
                return Err(self.broken(sender, receiver, to, 0.0));
            }
            let mut none = Vec::new();
            self.router.deliver(&mut self.kernel, &mut none, &mut self.counters);
        }
        Ok(())
    }

    /// Fires the alarms due now, their mail for agents here straight into
    /// the inboxes (counted as the router counts a local delivery); the
    /// rest goes to the outbox, routed next.
    fn fire_here(&mut self) {
        let n = self.kernel.fire_due_alarms_here();
        self.counters.sent += n;
        self.counters.row[self.me] += n;
        self.counters.delivered += n;
    }
}
