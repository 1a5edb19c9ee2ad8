//! Agents that move between kernels, and the load each agent puts on its
//! kernel.
//!
//! A runtime's results do not depend on where its agents are (see
//! [`Origin`](crate::Origin)): every order is decided by keys that travel
//! with the agent — its ordering key (`order`), its counts of sends and
//! additions (`sent`, `added`) and its id. So an agent can leave one
//! partition's kernel between runs and join another's, and the runs that
//! follow tell the same story. What moves, as a [`MovingAgent`]:
//!
//! - its struct (a trait agent resting between updates, added with a `Send`
//!   bound: the kernel takes it back out of its cell);
//! - its inbox, read or not, and whether it is marked for the next round;
//! - its keys and counters, whether it is kept awake, the grants it gave up
//!   on (screens);
//! - the mail alarms queued here for it (lookahead windows queue an agent's
//!   alarms on its own partition; in lockstep they may stay anywhere, and
//!   moving them changes nothing).
//!
//! Its subscriptions stay where they are: every partition holds the whole
//! mailing list, by id. The runtime changes its directory (id → partition)
//! on every partition.
//!
//! An agent whose state is inside a future cannot move: an async-fn agent,
//! or a trait agent suspended inside its setup or update. Nor can one added
//! without a `Send` bound. [`Scheduler::immovable`] names them before
//! anything moves.

use super::{Scheduler, Slot};
use crate::agent::Resume;
use crate::error::{Error, Immovable, Phase, Result};
use crate::id::AgentId;
use crate::registry::{AgentRecord, MAX_AGENTS};
use crate::Envelope;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// An agent taken out of one kernel, on its way to another (see the
/// [module](self)): `Send`, opaque; [`Scheduler::insert_moving`] installs it.
/// (A snapshot's agent is installed as one too: see `snapshot`.)
pub struct MovingAgent {
    pub(crate) id: AgentId,
    pub(crate) order: u64,
    pub(crate) sent: u64,
    pub(crate) added: u64,
    pub(crate) inbox: crate::inbox::Inbox,
    pub(crate) visible: u32,
    pub(crate) marked: bool,
    pub(crate) keep_awake: bool,
    /// Grants given up on: (resource, request).
    pub(crate) screens: Vec<(AgentId, u64)>,
    /// (time, ignore_if_idle, message).
    pub(crate) alarms: Vec<(f64, bool, Envelope)>,
    pub(crate) resume: Resume,
}

impl MovingAgent {
    /// The agent's id.
    pub fn id(&self) -> AgentId {
        self.id
    }
}

impl std::fmt::Debug for MovingAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MovingAgent")
            .field("id", &self.id)
            .field("order", &self.order)
            .field("inbox", &self.inbox.len())
            .field("alarms", &self.alarms.len())
            .finish_non_exhaustive()
    }
}

impl Scheduler {
    /// Why an agent cannot move now, if it cannot (`None`: it can).
    fn why_immovable(&self, index: u32) -> Option<Immovable> {
        let Some(slot) = self.slots[index as usize].as_ref() else {
            return Some(Immovable::Gone);
        };
        let Slot { future, agent, removing, busy, kept_waker, at_rest, mover, .. } = slot;
        if future.is_none() || *removing {
            return Some(Immovable::Gone);
        }
        if agent.is_none() {
            return Some(Immovable::AsyncFn);
        }
        if mover.is_none() {
            return Some(Immovable::NotSend);
        }
        if !*at_rest || *busy || *kept_waker {
            return Some(Immovable::Suspended);
        }
        None
    }

    /// The agents of `ids` that cannot move now, each with the reason, in
    /// the order given; an id not here is [`Error::UnknownAgent`].
    pub fn immovable(&self, ids: &[AgentId]) -> Result<Vec<(AgentId, Immovable)>> {
        let mut out = Vec::new();
        for &id in ids {
            let index = self.index_of(id)?;
            if let Some(why) = self.why_immovable(index) {
                out.push((id, why));
            }
        }
        Ok(out)
    }

    /// Takes the agents `ids` out of this kernel, between runs, to install
    /// them in another ([`insert_moving`](Self::insert_moving)). All or
    /// nothing: if one cannot move, [`Error::CannotMove`] names every such
    /// agent and nothing is taken. Their departure is not a removal: no
    /// teardown, no journaled change, their subscriptions stay.
    pub fn take_moving(&mut self, ids: &[AgentId]) -> Result<Vec<MovingAgent>> {
        let stuck = self.immovable(ids)?;
        if !stuck.is_empty() {
            return Err(Error::CannotMove(stuck));
        }
        let mut out = Vec::with_capacity(ids.len());
        for &id in ids {
            let index = self.index_of(id)?;
            out.push(self.take_one(index));
        }
        Ok(out)
    }

    fn take_one(&mut self, index: u32) -> MovingAgent {
        let slot = self.slots[index as usize].take().expect("checked movable");
        let Slot { future, agent, mover, .. } = slot;
        // Resting in its loop: dropping the future releases its share of
        // the cell and nothing else.
        let _ = catch_unwind(AssertUnwindSafe(move || drop(future)));
        let mover = mover.expect("checked movable");
        let resume = match mover(agent.expect("checked movable")) {
            Ok(resume) => resume,
            Err(_) => unreachable!("a resting agent's cell has one owner"),
        };
        let keep_awake = self.shared.keep_awake.borrow().contains(&index);
        self.shared.set_keep_awake(index, false);
        self.shared.forget_foreign(index);
        let (id, order, sent, added, inbox, visible, marked, screens) = {
            let mut reg = self.shared.reg.borrow_mut();
            let mut screens = Vec::new();
            reg.screens.retain(|&(i, resource, seq)| {
                if i == index {
                    screens.push((resource, seq));
                }
                i != index
            });
            let rec = &mut reg.agents[index as usize];
            let id = rec.id;
            let inbox = std::mem::take(&mut rec.inbox);
            let moved = (rec.order, rec.sent, rec.added, rec.visible, rec.marked);
            rec.accepts = false;
            rec.visible = 0;
            rec.screened = false;
            // Its mark goes with it: a mark left on the slot would make
            // the next round poll nobody, and count as a round that did.
            if rec.marked {
                rec.marked = false;
                reg.marked.retain(|&i| i != index);
            }
            reg.ids.remove(&id);
            let (order, sent, added, visible, marked) = moved;
            (id, order, sent, added, inbox, visible, marked, screens)
        };
        let alarms = self.shared.alarms_mut(|a| a.take_mail_for(id));
        self.live -= 1;
        self.free.push(index);
        MovingAgent {
            id,
            order,
            sent,
            added,
            inbox,
            visible,
            marked,
            keep_awake,
            screens,
            alarms,
            resume,
        }
    }

    /// Installs agents taken out of another kernel by
    /// [`take_moving`](Self::take_moving), between runs: each rests until
    /// its next update, with its keys, inbox, alarms and flags. Its id
    /// must be free here.
    pub fn insert_moving(&mut self, agents: Vec<MovingAgent>) -> Result<()> {
        for a in &agents {
            if self.shared.reg.borrow().ids.contains_key(&a.id) {
                return Err(Error::DuplicateAgent(a.id));
            }
        }
        for a in agents {
            self.insert_one(a)?;
        }
        Ok(())
    }

    pub(crate) fn insert_one(&mut self, a: MovingAgent) -> Result<()> {
        self.free.append(&mut self.freed);
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                let index = u32::try_from(self.slots.len())
                    .ok()
                    .filter(|&i| i < MAX_AGENTS)
                    .ok_or(Error::TooManyAgents)?;
                self.slots.push(None);
                self.shared.reg.borrow_mut().agents.push(AgentRecord::new(a.id, 0));
                index
            }
        };
        let MovingAgent {
            id,
            order,
            sent,
            added,
            inbox,
            visible,
            marked,
            keep_awake,
            screens,
            alarms,
            resume,
        } = a;
        {
            let mut reg = self.shared.reg.borrow_mut();
            let stale_mark = reg.agents[index as usize].marked;
            let mut rec = AgentRecord::new(id, order);
            rec.sent = sent;
            rec.added = added;
            rec.inbox = inbox;
            rec.visible = visible;
            rec.marked = stale_mark;
            rec.screened = !screens.is_empty();
            reg.agents[index as usize] = rec;
            reg.ids.insert(id, index);
            for (resource, seq) in screens {
                reg.screens.push((index, resource, seq));
            }
            if marked {
                reg.mark(index);
            }
        }
        let installed = resume().install(&self.shared, id, index);
        debug_assert_eq!(installed.phase, Phase::Update);
        self.slots[index as usize] = Some(Slot::installed(installed, true));
        self.live += 1;
        if keep_awake {
            self.shared.set_keep_awake(index, true);
        }
        self.shared.alarms_mut(|q| {
            for (at, ignore_if_idle, env) in alarms {
                q.set_mail(at, env, ignore_if_idle);
            }
        });
        Ok(())
    }

    /// Counts, from now on, the rounds in which each agent is polled (its
    /// load), or stops counting. Off by default: then a round pays one
    /// test of a flag per agent it polls.
    pub fn measure_load(&mut self, on: bool) {
        self.shared.reg.borrow_mut().measure_load = on;
    }

    /// Appends each live agent's load (rounds it was polled in since the
    /// last call, while measured) to `out`, and starts the counts again.
    pub fn take_loads_into(&mut self, out: &mut Vec<(AgentId, u64)>) {
        let mut reg = self.shared.reg.borrow_mut();
        for (i, rec) in reg.agents.iter_mut().enumerate() {
            let live = self.slots[i].is_some() && rec.accepts;
            if live {
                out.push((rec.id, rec.load));
            }
            rec.load = 0;
        }
    }
}

impl super::Driver {
    /// [`add_placed`](Self::add_placed) for a `Send` agent, which can then
    /// move to another kernel between runs ([`Scheduler::take_moving`]).
    pub fn add_placed_movable<A: crate::Agent + Send>(
        &mut self,
        id: AgentId,
        key: u64,
        agent: A,
    ) -> Result<AgentId> {
        let kernel: &mut Scheduler = self;
        kernel.add_keyed(id, key, crate::agent::Installer::movable(agent))
    }
}
