//! The registry: every agent's id, inbox and flags, in one flat table.
//!
//! Agents and the kernel reach an agent's inbox by its slot index, so the
//! table is a `Vec` (no allocation per agent beyond its inbox's buffer) behind
//! one `RefCell`: a receive or a send borrows it once.
//!
//! # Direct delivery
//!
//! Maslite delivers the mail of a round after the round. The registry keeps
//! that rule without a central outbox for the common case: when nobody
//! subscribes to anything and the receiver exists, a send puts the envelope
//! straight into the receiver's inbox, *behind its visible part*. An inbox's
//! first `visible` envelopes are the ones delivered before the current round;
//! the kernel moves the mark at the start of each round, for every agent that
//! got mail. So the receiver sees the message in the next round, exactly as
//! if it had gone through the outbox — one move instead of three.
//!
//! Mail that cannot take this path (a broadcast, an unknown receiver, any
//! message while subscriptions exist, mail sent from outside) goes through
//! the outbox, and from then on in that round all mail does, so that no
//! message overtakes one sent before it. If the subscriptions or the set of
//! agents change during a round in which mail was delivered directly, that
//! mail is taken back, in the order it was sent, and put at the head of the
//! outbox (`Registry::take_back_direct`), so it meets the changed mailing
//! list at delivery as maslite's rule wants.

use crate::envelope::{Envelope, Origin};
use crate::id::AgentId;
use crate::id_map::IdMap;
use crate::inbox::Inbox;

/// What a kernel does with its mail, alarms and changes: the one switch
/// between a kernel on its own and one partition of a runtime. A lone kernel
/// and a partition order everything alike (see [`Origin`]); they differ in
/// where mail goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// A kernel on its own: it delivers its mail itself.
    #[default]
    Alone,
    /// The test bed's: mail stays in the outbox, to be inspected.
    Held,
    /// A partition of a runtime: every send is stamped with its origin and
    /// stays in the outbox for the runtime to route; changes to agents and
    /// subscriptions are journaled for the other partitions; removals of
    /// other agents and alarm clears are left to the runtime; with
    /// `export_alarms`, alarms for agents elsewhere are handed out too.
    Partition {
        /// Alarms whose receiver is not here are handed to the runtime
        /// (lookahead windows: the receiver's partition runs ahead).
        export_alarms: bool,
    },
}

impl Mode {
    /// A runtime's partition.
    #[inline]
    pub fn is_partition(self) -> bool {
        matches!(self, Mode::Partition { .. })
    }
}

/// The round count between runs: after every round of the run before, and
/// before every round of the run after (see [`Registry::round_stamp`]).
pub(crate) const BETWEEN_RUNS: u64 = u32::MAX as u64;

/// Index of an id that is reserved by an add still in the queue.
pub(crate) const RESERVED: u32 = u32::MAX - 1;

/// Live agents' slot indices stay below this; the bit above marks a round
/// entry whose agent is due an update.
pub(crate) const MAX_AGENTS: u32 = 1 << 31;
pub(crate) const UPDATE_DUE: u32 = 1 << 31;

/// One agent's kernel-side state.
pub(crate) struct AgentRecord {
    pub id: AgentId,
    /// When it was added: rounds update agents in this order.
    pub order: u64,
    pub inbox: Inbox,
    /// The first `visible` envelopes were delivered before this round.
    pub visible: u32,
    /// Marked for the next round.
    pub marked: bool,
    /// Live and able to take mail (not failed, not leaving).
    pub accepts: bool,
    pub keep_awake: bool,
    /// Grants it gave up on may still reach it (see `Registry::screens`).
    pub screened: bool,
    /// Last message that reached it as a subscriber (to deliver a copy once).
    pub copied: u64,
    /// Sends and alarms so far (the `seq` of its [`Origin`] stamps).
    pub sent: u64,
    /// Agents added on its account so far (numbers their creation stamps).
    pub added: u64,
    /// Rounds it was polled in while the load is measured (see
    /// [`Registry::measure_load`]).
    pub load: u64,
}

#[derive(Default)]
pub(crate) struct Registry {
    pub ids: IdMap,
    /// The `order` of the next agent added.
    pub next_order: u64,
    pub agents: Vec<AgentRecord>,
    /// Agents to update in the next round (mail, alarm, kept awake).
    pub marked: Vec<u32>,
    /// Receivers of this round's direct deliveries, in send order.
    pub direct_log: Vec<u32>,
    /// Some mail was posted in the outbox since the round started (so, until
    /// the round's delivery, the outbox is not empty).
    pub outbox_used: bool,
    /// Someone subscribes to something.
    pub subscribed: bool,
    /// Where mail, alarms and changes go (see [`Mode`]).
    pub mode: Mode,
    /// Messages delivered directly (they skip the outbox's counters).
    pub direct_sent: u64,
    /// Grants given up on and maybe still on their way: (agent, resource,
    /// request).
    pub screens: Vec<(u32, AgentId, u64)>,
    /// Sends and alarms from outside so far.
    pub outside_sent: u64,
    /// Agents added from outside so far.
    pub outside_added: u64,
    /// Runs so far (this one included, during a run).
    pub run: u64,
    /// Rounds of this run since the clock last moved; [`BETWEEN_RUNS`]
    /// between runs.
    pub round: u64,
    /// Count each agent's polls in rounds (its `load`): off by default, then
    /// a round pays one test of this flag (see `Driver::measure_load`).
    pub measure_load: bool,
}

impl AgentRecord {
    pub fn new(id: AgentId, order: u64) -> AgentRecord {
        AgentRecord {
            id,
            order,
            inbox: Inbox::default(),
            visible: 0,
            marked: false,
            accepts: true,
            keep_awake: false,
            screened: false,
            copied: 0,
            sent: 0,
            added: 0,
            load: 0,
        }
    }
}

impl Registry {
    /// The `round` of an [`Origin`] made now: the run's number, then the
    /// rounds of the run at this time. Counting rounds per run (from zero
    /// at each run's start and each time the clock moves) keeps partitions
    /// that ran different numbers of rounds at one time inside lookahead
    /// windows in step from the next run on.
    #[inline]
    pub fn round_stamp(&self) -> u64 {
        (self.run << 32) | self.round.min(BETWEEN_RUNS)
    }

    /// A run starts: rounds count from zero.
    pub fn begin_run(&mut self) {
        self.run += 1;
        self.round = 0;
    }

    /// A run ended: what is stamped until the next comes after it.
    pub fn end_run(&mut self) {
        self.round = BETWEEN_RUNS;
    }

    /// Stamps `env` with the canonical origin of a send or alarm on the
    /// account of the agent in slot `account` (from outside if `None`) at
    /// clock `now`.
    #[inline]
    pub fn stamp(&mut self, account: Option<u32>, now: f64, env: &mut Envelope) {
        let round = self.round_stamp();
        let (key, seq) = match account.and_then(|i| self.agents.get_mut(i as usize)) {
            Some(rec) => {
                rec.sent += 1;
                (rec.order, rec.sent)
            }
            None => {
                self.outside_sent += 1;
                (0, self.outside_sent)
            }
        };
        env.set_origin(Origin { when: Origin::when_of(now), round, key, seq });
    }

    /// The creation stamp of an agent added now on the account of slot
    /// `account` (see [`Origin`]; its `seq` counts additions): its place in
    /// the order of insertion, and the seed of an allocated id.
    /// Also returns the id of the agent on whose account (OUTSIDE if none).
    pub fn creation(&mut self, account: Option<u32>, now: f64) -> (Origin, AgentId) {
        let round = self.round_stamp();
        let (key, seq, by) = match account.and_then(|i| self.agents.get_mut(i as usize)) {
            Some(rec) => {
                rec.added += 1;
                (rec.order, rec.added, rec.id)
            }
            None => {
                self.outside_added += 1;
                (0, self.outside_added, AgentId::OUTSIDE)
            }
        };
        (Origin { when: Origin::when_of(now), round, key, seq }, by)
    }

    /// Puts `env` straight into its receiver's inbox if the rules allow
    /// (see the module docs); otherwise gives it back for the outbox.
    #[inline]
    pub fn try_direct(&mut self, env: Envelope) -> Result<(), Envelope> {
        if self.outbox_used || self.subscribed || self.mode != Mode::Alone {
            return Err(env);
        }
        let Some(&index) = env.receiver().and_then(|r| self.ids.get(&r)) else {
            return Err(env);
        };
        self.push(index, env)?;
        self.direct_log.push(index);
        self.direct_sent += 1;
        Ok(())
    }

    /// Puts `env` into the inbox at `index` (delivery from the outbox), or
    /// gives it back if nobody there takes mail.
    #[inline]
    pub fn push(&mut self, index: u32, env: Envelope) -> Result<(), Envelope> {
        match self.agents.get_mut(index as usize) {
            Some(rec) if rec.accepts => {
                if rec.screened && screened_out(&mut self.screens, rec, index, &env) {
                    return Ok(());
                }
                rec.inbox.push_back(env);
                if !rec.marked {
                    rec.marked = true;
                    self.marked.push(index);
                }
                Ok(())
            }
            _ => Err(env),
        }
    }

    /// Agent `index` gave up its request `seq` to `resource`: a grant of it
    /// still on its way is dropped where it arrives (see
    /// [`resource`](crate::resource)).
    pub fn screen(&mut self, index: u32, resource: AgentId, seq: u64) {
        if let Some(rec) = self.agents.get_mut(index as usize) {
            rec.screened = true;
            self.screens.push((index, resource, seq));
        }
    }

    /// Marks an agent for the next round (also one that is leaving: it may
    /// have a wake-up to finish its last update).
    pub fn mark(&mut self, index: u32) {
        if let Some(rec) = self.agents.get_mut(index as usize) {
            if !rec.marked {
                rec.marked = true;
                self.marked.push(index);
            }
        }
    }

    /// The record in `index` if it still belongs to `id` (a `Cx` kept by a
    /// departed agent must not reach the slot's next owner).
    #[inline]
    pub fn own(&mut self, index: u32, id: AgentId) -> Option<&mut AgentRecord> {
        self.agents.get_mut(index as usize).filter(|rec| rec.id == id && rec.accepts)
    }

    /// Pops the oldest visible envelope of agent `id` in slot `index`.
    #[inline]
    pub fn receive(&mut self, index: u32, id: AgentId) -> Option<Envelope> {
        let rec = self.own(index, id)?;
        if rec.visible == 0 {
            return None;
        }
        rec.visible -= 1;
        rec.inbox.pop_front()
    }

    /// Takes the oldest visible message of agent `index` that `matches`,
    /// leaving the others in order.
    pub fn receive_where(
        &mut self,
        index: u32,
        id: AgentId,
        matches: &mut dyn FnMut(&Envelope) -> bool,
    ) -> Option<Envelope> {
        let rec = self.own(index, id)?;
        let at = rec.inbox.iter().take(rec.visible as usize).position(matches)?;
        rec.visible -= 1;
        rec.inbox.remove(at)
    }

    /// Starts a round: the marked agents become the round's list (returned
    /// through `round`, in insertion order), and what they received becomes
    /// visible. Each entry carries [`UPDATE_DUE`] if the agent has mail or is
    /// kept awake.
    pub fn start_round(&mut self, round: &mut Vec<u32>) {
        std::mem::swap(&mut self.marked, round);
        if round.len() > 1 {
            let agents = &self.agents;
            round.sort_unstable_by_key(|&index| agents[index as usize].order);
        }
        let measure = self.measure_load;
        for entry in round.iter_mut() {
            let rec = &mut self.agents[*entry as usize];
            if measure {
                rec.load += 1;
            }
            rec.marked = false;
            rec.visible = rec.inbox.len() as u32;
            if rec.visible > 0 || rec.keep_awake {
                *entry |= UPDATE_DUE;
            }
        }
        self.direct_log.clear();
        self.outbox_used = false;
    }

    /// Takes back this round's direct deliveries, in send order, and puts
    /// them at the head of `outbox`; from now on this round's mail goes
    /// through the outbox. See the module docs.
    pub fn take_back_direct(&mut self, outbox: &mut Vec<Envelope>) {
        self.outbox_used = true;
        if self.direct_log.is_empty() {
            return;
        }
        let mut taken = Vec::with_capacity(self.direct_log.len());
        for &index in &self.direct_log {
            let rec = &mut self.agents[index as usize];
            // Direct mail sits behind the visible part, in send order.
            if let Some(env) = rec.inbox.remove(rec.visible as usize) {
                taken.push(env);
            }
        }
        self.direct_sent -= taken.len() as u64;
        self.direct_log.clear();
        outbox.splice(0..0, taken);
    }
}

/// Whether `env` is a grant agent `index` gave up on (then it is taken off
/// the screens, and dropped).
#[cold]
fn screened_out(
    screens: &mut Vec<(u32, AgentId, u64)>,
    rec: &mut AgentRecord,
    index: u32,
    env: &Envelope,
) -> bool {
    let Ok(granted) = env.payload::<crate::resource::Granted>() else { return false };
    let hit = (index, env.sender(), granted.seq);
    let Some(at) = screens.iter().position(|&s| s == hit) else { return false };
    screens.swap_remove(at);
    rec.screened = screens.iter().any(|&(i, ..)| i == index);
    true
}
