//! Saving a runtime's simulation and resuming it on any number of
//! partitions, under any placement.
//!
//! A snapshot is the simulation as one kernel sees it (see
//! [`maslite_core::snapshot`]): each partition gives its share (its agents,
//! the alarms it holds, mail not yet delivered), the handle adds the
//! counters it keeps (sends from outside, ordering keys, ids), and the
//! shares are merged in the one order. Nothing of the placement is kept,
//! because nothing in the trace depends on it: a run saved on two
//! partitions resumes on one kernel, or on four partitions with the agents
//! placed anew, and goes on as the uninterrupted run would have.

use crate::builder::Builder;
use crate::config::Mode;
use crate::error::{Error, Result};
use crate::report::{RuntimeReport, StopReason};
use crate::runtime::Runtime;
use maslite_core::checkpoint::{self, Checkpointed};
use maslite_core::{AgentId, Checkpoints, Image, RunOptions, Types, Unsaved};
use rustc_hash::FxHashMap;
use std::io::{Read, Write};
use std::sync::Arc;

impl Runtime {
    /// Writes the whole simulation to `out`, between runs: every
    /// partition's share, merged (see [`maslite_core::snapshot`] for what
    /// can be saved and the format). What cannot be saved is named, every
    /// agent and message of it on every partition, in
    /// [`Error::CannotSave`], and the simulation is left as it was.
    ///
    /// ```
    /// use maslite_core::{Agent, AgentId, Alarm, Cx, Envelope, RunOptions, Types};
    /// use maslite_runtime::Runtime;
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Clone, Serialize, Deserialize)]
    /// struct Ball(u32);
    ///
    /// /// Passes the ball to its peer a second later.
    /// #[derive(Serialize, Deserialize)]
    /// struct Player { peer: AgentId, hits: u32 }
    /// impl Agent for Player {
    ///     async fn update(&mut self, cx: &Cx) {
    ///         while let Some(env) = cx.try_recv() {
    ///             self.hits += 1;
    ///             let n = env.payload::<Ball>().unwrap().0;
    ///             let ball = Envelope::new(Ball(n + 1)).to(self.peer);
    ///             cx.set_alarm(Alarm::after(1.0, ball)).unwrap();
    ///         }
    ///     }
    /// }
    ///
    /// let mut types = Types::new();
    /// types.register::<Ball>().unwrap().register_agent::<Player>().unwrap();
    ///
    /// // Two players on two partitions, stopped at t = 10.
    /// let mut rt = Runtime::new(2).unwrap();
    /// let (a, b) = (AgentId(1), AgentId(2));
    /// rt.add_with_id(0, a, Player { peer: b, hits: 0 }).unwrap();
    /// rt.add_with_id(1, b, Player { peer: a, hits: 0 }).unwrap();
    /// rt.send(Envelope::new(Ball(0)).to(a));
    /// let keep = || RunOptions::new().clear_alarms_at_end(false);
    /// rt.run_with(keep().seconds(10.0)).unwrap();
    /// let mut saved = Vec::new();
    /// rt.snapshot(&types, &mut saved).unwrap();
    ///
    /// // Resumed on one partition: both on partition 0.
    /// let mut one = Runtime::restore(Runtime::builder().partitions(1), &types, &saved[..], |_| 0)
    ///     .unwrap();
    /// for rt in [&mut rt, &mut one] {
    ///     rt.run_with(keep().seconds(10.0)).unwrap();
    /// }
    /// let hits = |rt: &mut Runtime, id| rt.with_agent(id, |p: &Player| p.hits).unwrap();
    /// assert_eq!(hits(&mut one, a), hits(&mut rt, a));
    /// assert_eq!(hits(&mut one, b), hits(&mut rt, b));
    /// assert_eq!(one.now(), 20.0);
    /// ```
    pub fn snapshot(&mut self, types: &Types, out: impl Write) -> Result<()> {
        self.image(types)?.write(types, out)
    }

    /// The whole simulation as an [`Image`] in memory: what
    /// [`snapshot`](Self::snapshot) writes, to restore with
    /// [`from_image`](Self::from_image) (or
    /// `Scheduler::from_image`) once or several times.
    ///
    /// On a runtime spread over hosts, each host saves its share: its
    /// partitions' agents, alarms and mail, and the run's counters (the
    /// same on every host). [`Image::combine`] makes one image of the
    /// hosts' shares, to restore in one process or on any number of hosts.
    pub fn image(&mut self, types: &Types) -> Result<Image> {
        if self.failed || self.stopped {
            return Err(Error::Stopped);
        }
        let types = Arc::new(types.clone());
        let mut parts = Vec::with_capacity(self.parts.len());
        let mut blockers = Vec::new();
        let here: Vec<usize> = (0..self.parts.len()).filter(|&q| self.is_local(q)).collect();
        for q in here {
            let types = types.clone();
            match self.with_driver(q, move |d| d.image_part(&types))? {
                Ok(part) => parts.push(part),
                Err(Error::CannotSave(mut theirs)) => blockers.append(&mut theirs),
                Err(e) => return Err(e),
            }
        }
        if !blockers.is_empty() {
            // Every partition's clock is real time: say so once.
            let mut real_time = false;
            blockers
                .retain(|b| b.why != Unsaved::RealTime || !std::mem::replace(&mut real_time, true));
            return Err(Error::CannotSave(blockers));
        }
        Ok(Image::merge(parts, self.outside, self.next_key, self.next_id))
    }

    /// A runtime built by `builder` that goes on from a snapshot (written
    /// by a runtime on any number of partitions, or by a `Scheduler`), with
    /// each saved agent on the partition `place` gives it. Agents resume
    /// between updates: their `setup` does not run again.
    ///
    /// Errors: what [`Image::read`] refuses; [`Error::NoPartition`] for a
    /// placement past the partitions; [`Error::Config`] for a real-time
    /// runtime.
    ///
    /// On a runtime spread over hosts (the builder has a transport), every
    /// host restores the same whole image with the same placement, and
    /// each loads the agents of its own partitions.
    pub fn restore(
        builder: Builder,
        types: &Types,
        input: impl Read,
        place: impl FnMut(AgentId) -> usize,
    ) -> Result<Runtime> {
        Runtime::from_image(builder, types, Image::read(types, input)?, place)
    }

    /// [`restore`](Self::restore) from an image in memory. The partitions
    /// share it: pass an `Arc<Image>` to restore one image several times
    /// (to branch "what if" runs) without copying it.
    pub fn from_image(
        builder: Builder,
        types: &Types,
        image: impl Into<Arc<Image>>,
        mut place: impl FnMut(AgentId) -> usize,
    ) -> Result<Runtime> {
        let image: Arc<Image> = image.into();
        let mut rt = builder.build()?;
        if rt.config.mode == Mode::RealTime {
            return Err(Error::Config(
                "a snapshot is of simulated time: build a simulated runtime".into(),
            ));
        }
        let partitions = rt.parts.len();
        let mut dir = FxHashMap::default();
        dir.reserve(image.agents().count());
        for id in image.agents() {
            let partition = place(id);
            if partition >= partitions {
                return Err(Error::NoPartition { partition, partitions });
            }
            dir.insert(id, partition);
        }
        rt.placed = image.agents().map(|id| (id, dir[&id])).collect();
        rt.next_key = image.next_key();
        rt.next_id = image.next_id();
        rt.outside = image.outside_sent();
        rt.now = image.now();
        let shared = Arc::new((types.clone(), dir));
        rt.dir = shared.1.clone();
        let here: Vec<usize> = (0..partitions).filter(|&q| rt.is_local(q)).collect();
        for q in here {
            let shared = shared.clone();
            let image = image.clone();
            let rounds = image.rounds();
            rt.call(q, move |p| {
                let (types, dir) = &*shared;
                p.resume_rounds(rounds);
                let here = |id: AgentId| dir.get(&id) == Some(&q);
                let mail_here =
                    |r: Option<AgentId>| r.and_then(|r| dir.get(&r)).copied().unwrap_or(0) == q;
                p.kernel_mut().load_image(types, &image, &here, &mail_here)
            })??;
        }
        Ok(rt)
    }
}

impl Checkpointed for Runtime {
    type Report = RuntimeReport;

    fn clock(&self) -> f64 {
        self.now()
    }

    fn run_piece(&mut self, opts: RunOptions) -> Result<RuntimeReport> {
        self.run_with(opts)
    }

    fn stopped_for(report: &RuntimeReport) -> StopReason {
        report.reason
    }

    fn absorb(whole: &mut RuntimeReport, next: RuntimeReport) {
        whole.absorb(next);
    }

    fn any_kept_awake(&mut self) -> Result<bool> {
        let mut any = false;
        for q in 0..self.partitions() {
            if self.is_local(q) {
                any |= self.with_driver(q, |d| d.kept_awake() > 0)?;
            }
        }
        Ok(any)
    }

    fn save(&mut self, types: &Types) -> Result<Image> {
        self.image(types)
    }
}

impl Runtime {
    /// [`run_with`](Self::run_with), writing a checkpoint at every multiple
    /// of the period the clock reaches (see [`maslite_core::checkpoint`]);
    /// the report covers the whole run.
    ///
    /// ```
    /// use maslite_core::{Checkpoints, RunOptions, Types};
    /// use maslite_runtime::Runtime;
    ///
    /// let path = std::env::temp_dir().join(format!("rt-doc-{}.snap", std::process::id()));
    /// let mut checkpoints = Checkpoints::every(10.0, &path, Types::new()).unwrap();
    /// let mut rt = Runtime::new(2).unwrap();
    /// let opts = RunOptions::new().seconds(25.0).pause_if_idle(false);
    /// rt.run_with_checkpoints(opts, &mut checkpoints).unwrap();
    /// assert_eq!((rt.now(), checkpoints.written()), (25.0, 2));
    /// # std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn run_with_checkpoints(
        &mut self,
        opts: RunOptions,
        checkpoints: &mut Checkpoints,
    ) -> Result<RuntimeReport> {
        checkpoint::run_with_checkpoints(self, opts, checkpoints)
    }
}
