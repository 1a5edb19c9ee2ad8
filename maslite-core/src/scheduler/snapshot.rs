//! A kernel's share of a snapshot: made between runs, loaded into an empty
//! kernel (see [`snapshot`](crate::snapshot) for what is saved and why).

use super::moving::MovingAgent;
use super::{Scheduler, Slot};
use crate::clock::Clock;
use crate::context::Command;
use crate::envelope::Envelope;
use crate::error::{Error, Phase, Result, Unsaved};
use crate::id::AgentId;
use crate::snapshot::{AgentImage, AlarmImage, Blockers, Image, Mail, Pattern, Span};
use crate::types::Types;
use std::io::{Read, Write};

impl Scheduler {
    /// Writes the whole simulation to `out`, between runs (see
    /// [`snapshot`](crate::snapshot) for what can be saved and the format).
    /// What cannot be saved is named, every agent and message of it, in
    /// [`Error::CannotSave`]; the simulation is left as it was.
    ///
    /// ```
    /// use maslite_core::{Agent, Alarm, Cx, Envelope, RunOptions, Scheduler, Types};
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Clone, Serialize, Deserialize)]
    /// struct Tick;
    ///
    /// /// Counts ticks and sets the next one, a second later.
    /// #[derive(Default, Serialize, Deserialize)]
    /// struct Clock { ticks: u64 }
    /// impl Agent for Clock {
    ///     async fn update(&mut self, cx: &Cx) {
    ///         while cx.try_recv().is_some() {
    ///             self.ticks += 1;
    ///             cx.set_alarm(Alarm::after(1.0, Envelope::new(Tick).to(cx.id()))).unwrap();
    ///         }
    ///     }
    /// }
    ///
    /// let mut types = Types::new();
    /// types.register::<Tick>().unwrap().register_agent::<Clock>().unwrap();
    ///
    /// let mut s = Scheduler::simulated();
    /// let id = s.add(Clock::default()).unwrap();
    /// s.send(Envelope::new(Tick).to(id));
    /// // Stop at 10 s, keeping the pending alarm (maslite clears them).
    /// s.run_with(RunOptions::new().seconds(10.0).clear_alarms_at_end(false)).unwrap();
    ///
    /// let mut saved = Vec::new();
    /// s.snapshot(&types, &mut saved).unwrap();
    /// let mut resumed = Scheduler::restore(&types, &saved[..]).unwrap();
    ///
    /// // Both go on alike.
    /// for s in [&mut s, &mut resumed] {
    ///     s.run_with(RunOptions::new().seconds(5.0).clear_alarms_at_end(false)).unwrap();
    /// }
    /// assert_eq!(s.now(), resumed.now());
    /// let ticks = |s: &Scheduler| s.agent::<Clock>(id).unwrap().ticks;
    /// assert_eq!(ticks(&s), ticks(&resumed));
    /// // Read at 0, 1, ..., 14; the tick of 15 waits in the inbox.
    /// assert_eq!(ticks(&s), 15);
    /// ```
    pub fn snapshot(&mut self, types: &Types, out: impl Write) -> Result<()> {
        self.image(types)?.write(types, out)
    }

    /// A scheduler (on the simulated clock) that goes on from a snapshot
    /// written by [`snapshot`](Self::snapshot) (or by a runtime, on any
    /// number of partitions). Agents resume between updates: their
    /// `setup` does not run again.
    pub fn restore(types: &Types, input: impl Read) -> Result<Scheduler> {
        Scheduler::from_image(types, &Image::read(types, input)?)
    }

    /// The whole simulation as an [`Image`] in memory (what
    /// [`snapshot`](Self::snapshot) writes), to restore once or several
    /// times with [`from_image`](Self::from_image).
    pub fn image(&mut self, types: &Types) -> Result<Image> {
        let mut image = self.image_part(types)?;
        image.undelivered.sort_by_key(|m| m.origin);
        Ok(image)
    }

    /// A scheduler that goes on from `image`.
    pub fn from_image(types: &Types, image: &Image) -> Result<Scheduler> {
        let mut s = Scheduler::new(Clock::Simulated);
        s.load_image(types, image, &|_| true, &|_| true)?;
        s.load_subscriptions(image)?;
        Ok(s)
    }

    /// This kernel's share of a snapshot: its agents, the alarms it holds,
    /// its undelivered mail and its counters (a partition's share lacks the
    /// runtime's counters, which the runtime fills in).
    pub(crate) fn image_part(&mut self, types: &Types) -> Result<Image> {
        let mut blockers = Blockers::default();
        if !self.clock.is_simulated() {
            blockers.add(AgentId::OUTSIDE, "the real-time clock", Unsaved::RealTime);
        }
        for cmd in self.shared.commands.borrow().iter() {
            if let Command::Add(id, _) | Command::Start(id, _) = cmd {
                blockers.add(*id, "an agent being added", Unsaved::NotStarted);
            }
        }
        for id in self.shared.results.borrow().keys() {
            blockers.add(*id, "a process", Unsaved::ResultNotTaken);
        }
        let reg = self.shared.reg.borrow();
        // The registered agents: those whose id maps to their slot.
        let mut live: Vec<(u64, u32)> = (0..self.slots.len() as u32)
            .filter(|&i| self.slots[i as usize].is_some())
            .filter(|&i| reg.ids.get(&reg.agents[i as usize].id) == Some(&i))
            .map(|i| (reg.agents[i as usize].order, i))
            .collect();
        live.sort_unstable();
        let mailing = self.shared.mailing.borrow();
        let subscribed = !mailing.is_empty();
        let mut agents = Vec::with_capacity(live.len());
        // Agents of one type come in runs: its number is looked up once a run.
        let mut last_type = None;
        let mut last_payload = None;
        // Every payload and state in one buffer (see `Span`).
        let mut blob = Vec::new();
        let mut saved = |env: &Envelope, holder: AgentId, blockers: &mut Blockers, blob: &mut _| {
            Mail::save(types, env, &mut last_payload, blob)
                .map_err(|why| blockers.add(holder, env.payload_type(), why))
                .ok()
        };
        for &(order, index) in &live {
            let rec = &reg.agents[index as usize];
            let Some(slot) = self.slots[index as usize].as_ref() else { continue };
            let state = agent_state(types, slot, rec.id, &mut blockers, &mut last_type, &mut blob);
            let Some(state) = state else { continue };
            let inbox: Vec<Mail> = rec
                .inbox
                .iter()
                .filter_map(|env| saved(env, rec.id, &mut blockers, &mut blob))
                .collect();
            let screens = if rec.screened {
                let mine = reg.screens.iter().filter(|s| s.0 == index);
                mine.map(|&(_, resource, request)| (resource.0, request)).collect()
            } else {
                Vec::new()
            };
            agents.push(AgentImage {
                id: rec.id.0,
                order,
                tag: state.0,
                state: state.1,
                inbox,
                visible: rec.visible,
                marked: rec.marked,
                keep_awake: rec.keep_awake,
                sent: rec.sent,
                added: rec.added,
                subscriptions: if subscribed {
                    mailing.subscriptions(rec.id).iter().map(Pattern::save).collect()
                } else {
                    Vec::new()
                },
                screens,
            });
        }
        let queue = self.shared.alarms.borrow();
        let pending = queue.mail_in_order();
        let mut alarms = Vec::with_capacity(pending.len());
        for (at, ignore_if_idle, env) in pending {
            if let Some(mail) = saved(env, env.sender(), &mut blockers, &mut blob) {
                alarms.push(AlarmImage { at, ignore_if_idle, mail });
            }
        }
        for (at, env) in self.shared.exported.borrow().iter() {
            if let Some(mail) = saved(env, env.sender(), &mut blockers, &mut blob) {
                alarms.push(AlarmImage { at: *at, ignore_if_idle: true, mail });
            }
        }
        let undelivered = self
            .shared
            .outbox
            .borrow()
            .iter()
            .filter_map(|env| saved(env, env.sender(), &mut blockers, &mut blob))
            .collect();
        blockers.into_result()?;
        Ok(Image {
            now: self.shared.now.get(),
            runs: reg.run,
            rounds: self.shared.round_no.get(),
            outside_sent: reg.outside_sent,
            outside_added: reg.outside_added,
            next_key: reg.next_order,
            next_id: self.shared.next_auto_id.get(),
            next_request: self.shared.next_request.get(),
            agents,
            alarms,
            undelivered,
            blob,
        })
    }

    /// Loads `image` into this kernel, which must have no agents: the
    /// agents for which `here` holds, the alarms and undelivered mail for
    /// which `mail_here` holds of their receiver, and the counters.
    /// Subscriptions are loaded apart ([`load_subscriptions`](Self::load_subscriptions)):
    /// a partition keeps every partition's.
    pub(crate) fn load_image(
        &mut self,
        types: &Types,
        image: &Image,
        here: &dyn Fn(AgentId) -> bool,
        mail_here: &dyn Fn(Option<AgentId>) -> bool,
    ) -> Result<()> {
        if self.live > 0 || !self.slots.is_empty() {
            return Err(Error::BadSnapshot("it can only be loaded into an empty kernel".into()));
        }
        self.jump_to(image.now);
        {
            let mut reg = self.shared.reg.borrow_mut();
            reg.run = image.runs;
            reg.outside_sent = image.outside_sent;
            reg.outside_added = image.outside_added;
            let past = image.agents.last().map_or(0, |a| a.order + 1);
            reg.next_order = image.next_key.max(past).max(1);
        }
        self.shared.round_no.set(image.rounds);
        self.shared.next_auto_id.set(image.next_id.max(1));
        self.shared.next_request.set(image.next_request);
        for a in image.agents.iter().filter(|a| here(AgentId(a.id))) {
            self.load_agent(types, a, &image.blob)?;
        }
        for alarm in &image.alarms {
            if mail_here(alarm.mail.receiver.map(AgentId)) {
                let env = alarm.mail.load(types, &image.blob)?;
                self.shared.alarms_mut(|q| q.set_mail(alarm.at, env, alarm.ignore_if_idle));
            }
        }
        for mail in &image.undelivered {
            if mail_here(mail.receiver.map(AgentId)) {
                self.shared.post(mail.load(types, &image.blob)?);
            }
        }
        self.between_runs();
        Ok(())
    }

    /// Installs a saved agent as a moving agent arrives: resting between
    /// updates, with its keys, inbox and flags (its alarms are the image's).
    fn load_agent(&mut self, types: &Types, a: &AgentImage, blob: &[u8]) -> Result<()> {
        let id = AgentId(a.id);
        let resume = types.load_agent(a.tag, a.state.of(blob)).map_err(|why| {
            let tag = types.agent_tag(a.tag).unwrap_or("?");
            Error::BadSnapshot(format!("agent {id}'s state ({tag}) does not decode: {why}"))
        })?;
        let inbox = a.inbox.iter().map(|m| m.load(types, blob)).collect::<Result<_>>()?;
        self.insert_one(MovingAgent {
            id,
            order: a.order,
            sent: a.sent,
            added: a.added,
            inbox,
            visible: a.visible,
            marked: a.marked,
            keep_awake: a.keep_awake,
            screens: a
                .screens
                .iter()
                .map(|&(resource, request)| (AgentId(resource), request))
                .collect(),
            alarms: Vec::new(),
            resume,
        })
    }

    /// Loads every saved agent's subscriptions into this kernel's mailing
    /// list (a partition's copy holds everyone's).
    pub(crate) fn load_subscriptions(&mut self, image: &Image) -> Result<()> {
        let mut any = false;
        {
            let mut mailing = self.shared.mailing.borrow_mut();
            for a in &image.agents {
                for p in &a.subscriptions {
                    mailing
                        .subscribe(AgentId(a.id), p.load())
                        .map_err(|e| Error::BadSnapshot(format!("a subscription: {e}")))?;
                    any = true;
                }
            }
        }
        if any {
            self.shared.reg.borrow_mut().subscribed = true;
        }
        Ok(())
    }
}

/// The type number and state of the agent in `slot`, or what keeps it from
/// being saved (added to `blockers`).
fn agent_state(
    types: &Types,
    slot: &Slot,
    id: AgentId,
    blockers: &mut Blockers,
    last_type: &mut Option<(&'static str, u32)>,
    blob: &mut Vec<u8>,
) -> Option<(u32, Span)> {
    let Some(agent) = slot.agent.as_ref() else {
        blockers.add(id, "async fn", Unsaved::AsyncFn);
        return None;
    };
    let type_name = agent.type_name();
    let why = if slot.future.is_none() {
        Some(Unsaved::Failed)
    } else if slot.phase == Phase::Setup {
        Some(Unsaved::NotStarted)
    } else if !slot.at_rest || slot.busy {
        Some(Unsaved::Suspended)
    } else {
        None
    };
    if let Some(why) = why {
        blockers.add(id, type_name, why);
        return None;
    }
    let known = last_type.filter(|(name, _)| std::ptr::eq(*name, type_name));
    let Some(tag) = known.map(|(_, tag)| tag).or_else(|| types.agent_index_of_type(type_name))
    else {
        blockers.add(id, type_name, Unsaved::AgentNotRegistered);
        return None;
    };
    *last_type = Some((type_name, tag));
    match Span::append(blob, |b| types.save_agent(tag, agent.as_any(), b)) {
        Ok(state) => Some((tag, state)),
        Err(_) => {
            blockers.add(id, type_name, Unsaved::StateWouldNotSerialize);
            None
        }
    }
}
