//! # maslite-core: the single-partition kernel of maslite
//!
//! Agents exchange messages, set alarms and subscribe to each other's
//! traffic; a [`Scheduler`] runs them in rounds on one thread, in simulated
//! time (the clock jumps to the next alarm when everything is idle) or in
//! real time. No tokio here: the kernel polls the agents' futures itself,
//! with its own wakers, so it alone decides who runs and in which order —
//! which is what makes runs repeatable.
//!
//! ## The model
//!
//! - An **agent** has an [`AgentId`], an inbox, and is updated only in a
//!   round in which its inbox is non-empty (or it is kept awake). Write it as
//!   a type implementing [`Agent`] (`setup`, `update`, `teardown`) or as an
//!   async fn taking a [`Cx`] that loops on `cx.recv().await` and
//!   `cx.sleep(dt).await`.
//! - An **[`Envelope`]** carries a typed payload with a sender, a receiver
//!   (none: a broadcast), a topic (default: the payload type's short name)
//!   and a direct flag.
//! - The **[`MailingList`]**: an agent subscribes to a pattern naming one or
//!   two of sender, receiver and topic. A message goes to its receiver plus
//!   every matching subscriber (each gets a clone, once); a direct message
//!   to its receiver only.
//! - **Alarms** ([`Alarm`]) deliver an envelope at a later time.
//! - A **round**: update the agents that need it (insertion order), move the
//!   clock, release due alarms, deliver the mail. See [`scheduler`] for the
//!   exact loop and the delivery order.
//!
//! ```text
//!   agents ──send──▶ outbox ──deliver──▶ inboxes ──▶ agents (next round)
//!                      ▲                    ▲
//!   alarms ──due───────┘   mailing list ────┘ (copies to subscribers)
//! ```
//!
//! ## Example: ping-pong
//!
//! ```
//! use maslite_core::{Agent, Cx, Envelope, Scheduler};
//!
//! #[derive(Clone)]
//! struct Ball { hits: u32 }
//!
//! struct Player { updates: u32 }
//!
//! impl Agent for Player {
//!     async fn update(&mut self, cx: &Cx) {
//!         self.updates += 1;
//!         while let Some(mut env) = cx.try_recv() {
//!             let ball = env.payload_mut::<Ball>().unwrap();
//!             ball.hits += 1;
//!             if ball.hits < 10 {
//!                 env.reply().unwrap();
//!                 cx.send(env);
//!             }
//!         }
//!     }
//! }
//!
//! let mut s = Scheduler::simulated();
//! let a = s.add(Player { updates: 0 }).unwrap();
//! let b = s.add(Player { updates: 0 }).unwrap();
//! s.send(Envelope::new(Ball { hits: 0 }).from(a).to(b));
//! let report = s.run().unwrap();
//! assert_eq!(report.stats.messages, 10);
//! assert_eq!(s.agent::<Player>(a).unwrap().updates, 5);
//! assert_eq!(s.agent::<Player>(b).unwrap().updates, 5);
//! ```
//!
//! ## Time, and agents that wait on the outside world
//!
//! On the simulated clock time moves only when nothing is left to do: no
//! mail, no agent to update, and no agent *busy* — pending on a future that
//! is not the kernel's (a channel fed by another thread, I/O in the tokio
//! runtime). A busy agent holds simulated time until its future is woken and
//! finishes; `run` parks the thread meanwhile. `cx.recv()` and
//! `cx.sleep(dt)` are the kernel's own waits: an agent pending on them is
//! idle, not busy.
//!
//! tokio's timers follow the wall clock, never the simulated one: in a
//! simulated run, wait with `cx.sleep` and [`Cx::recv_timeout`]. An agent
//! still waiting on something outside the kernel when a run stops is listed
//! in [`RunReport::waiting_outside`].
//!
//! ## Processes, as SimPy users write them
//!
//! - [`waits`]: mail or a timeout ([`Cx::recv_timeout`]), the first message
//!   that matches ([`Cx::recv_where`]), interrupts ([`Cx::interrupt`],
//!   [`Cx::interruptible`]); `futures` combinators over the kernel's futures.
//! - [`resource`]: a [`Resource`] with a capacity and a queue;
//!   `cx.request(res).await` gives a [`Grant`], released when dropped.
//! - [`process`]: children whose value the creator joins ([`Cx::process`],
//!   [`Process::join`]); a process started from outside keeps its value for
//!   [`Scheduler::take_result`].
//! - [`Cx::spawn_on`] places a child on a partition of a runtime.
//!
//! ## Snapshots
//!
//! [`Scheduler::snapshot`] writes the whole simulation between runs and
//! [`Scheduler::restore`] goes on from it (a runtime's snapshot too, on any
//! number of partitions): agent types and payload types are registered in
//! one [`Types`] registry, the one the NATS codec uses. What can be saved,
//! the format, and what a reader refuses: [`snapshot`].
//!
//! ## Errors
//!
//! Bad input gives an [`Error`], never a panic. A message to an unknown
//! receiver is a *dead letter*: counted in [`Stats::dead_letters`] and logged
//! as a `tracing` warning, never dropped silently. An agent that panics stops
//! the run with [`Error::AgentPanicked`], naming it; the scheduler remains
//! usable.

#![deny(missing_docs)]

pub mod agent;
pub mod alarms;
mod calendar;
pub mod change;
pub mod checkpoint;
pub mod clock;
pub mod context;
pub mod depth;
pub mod envelope;
pub mod error;
pub mod id;
mod id_map;
mod inbox;
mod letters;
pub mod mailing_list;
mod prefetch;
pub mod process;
mod quad_heap;
pub mod registry;
pub mod resource;
pub mod scheduler;
pub mod snapshot;
pub mod start;
pub mod testbed;
pub mod topic;
pub mod types;
pub mod waits;
mod wake;

pub use agent::Agent;
pub use alarms::{Alarm, AlarmInfo};
pub use change::Change;
pub use checkpoint::Checkpoints;
pub use clock::Clock;
pub use context::{Cx, Recv, Sleep};
pub use envelope::{Envelope, Origin};
pub use error::{Error, Immovable, Phase, Result, Unsaveable, Unsaved};
pub use id::AgentId;
pub use id_map::IdMap;
pub use mailing_list::{MailingList, Subscription};
pub use process::{Ended, Join, Process};
pub use resource::{Grant, Granted, Request, Resource, ResourceCall};
pub use scheduler::{
    Driver, MovingAgent, RemoteAlarms, RunOptions, RunReport, Scheduler, Stats, StopReason,
};
pub use snapshot::Image;
pub use start::Start;
pub use testbed::TestBed;
pub use topic::Topic;
pub use types::Types;
pub use waits::{Interrupted, Interruptible, RecvTimeout, RecvWhere, INTERRUPT};
