//! maslite's runtime: many kernels, one system.
//!
//! A [`Runtime`] owns `N` partitions. Each partition is an OS thread
//! (pinned to its own core when there are enough), running a
//! `current_thread` tokio runtime with a `LocalSet` and one maslite-core
//! kernel. You decide which partition each agent lives on; agents send mail
//! to any agent on any partition, subscribe across partitions, and set
//! alarms for each other, as on one kernel (the few differences, such as
//! removals of other agents taking effect at the end of the step, are
//! listed in [`lockstep`]).
//!
//! On the simulated clock the partitions keep **one clock** and give **the
//! results of one bare kernel, whatever the number of partitions**: mail
//! crossing partitions is merged in the order the kernel defines
//! ([`Origin`](maslite_core::Origin): when it was sent, then on whose
//! account and as its how-manieth send — never arrival order or partition
//! number), and time moves only when every partition is idle and nothing is
//! in flight.
//! See [`lockstep`] for how, and for *lookahead windows*, which let
//! partitions run ahead on their own when the model promises a minimum
//! delay between partitions.
//!
//! ```
//! use maslite_runtime::{Runtime, StopReason};
//! use maslite_core::{Agent, AgentId, Cx, Envelope};
//!
//! #[derive(Clone)]
//! struct Token { hops: u32 }
//!
//! /// Passes the token on to `next`, until it has made 10 hops.
//! struct Relay { next: AgentId }
//!
//! impl Agent for Relay {
//!     async fn update(&mut self, cx: &Cx) {
//!         while let Some(env) = cx.try_recv() {
//!             let hops = env.payload::<Token>().unwrap().hops + 1;
//!             if hops == 10 {
//!                 cx.pause(); // stops every partition
//!             } else {
//!                 cx.send(Envelope::new(Token { hops }).to(self.next));
//!             }
//!         }
//!     }
//! }
//!
//! let mut rt = Runtime::new(2).unwrap();
//! let a = rt.add_with_id(0, AgentId(1), Relay { next: AgentId(2) }).unwrap();
//! rt.add_with_id(1, AgentId(2), Relay { next: a }).unwrap();
//! rt.send(Envelope::new(Token { hops: 0 }).to(a));
//! let report = rt.run().unwrap();
//! assert_eq!(report.reason, StopReason::Paused);
//! assert_eq!(report.cross_partition(), 9);
//! assert_eq!(report.traffic[0][1] + report.traffic[1][0], 9);
//! // Leaving scope stops both partitions: it returns once they have
//! // dropped their agents.
//! ```
//!
//! ## The parts, and their names
//!
//! ```text
//!  handle (Runtime) ── commands ──▶ partition 0          partition 1 ◀── commands ──┐
//!                                   ┌──────────────┐      ┌──────────────┐           │
//!                                   │ kernel       │ wire │ kernel       │           │
//!                                   │ (Driver)     │─────▶│ (Driver)     │           │
//!                                   │ router       │◀─────│ router       │           │
//!                                   │ replica      │ wire │ replica      │           │
//!                                   └──────┬───────┘      └──────────────┘           │
//!                                          │ wires to partitions of other hosts      │
//!                                          ▼                                         │
//!                                   transport (HostWires) ══ NATS ══▶ other hosts ───┘
//! ```
//!
//! - **partition**: one OS thread with a tokio `current_thread` runtime, a
//!   `LocalSet` and one kernel, driven through a
//!   [`Driver`](maslite_core::Driver). Once a runtime has stopped, its
//!   partitions' threads wait a while for the next runtime's partitions, so
//!   many short runs in one program do not pay for starting threads each
//!   time.
//! - **step**: what all partitions do between two exchanges — a round
//!   (agents with mail are updated), a time advance (the due alarms fire),
//!   or the delivery of mail from outside. In lookahead windows, a window.
//! - **control**: what a partition tells every other one at the end of a
//!   step ([`transport::Control`]): its changes, whether it has work, its
//!   next alarm, a stop or a failure.
//! - **mail batch**: a step's messages from one partition to another, one
//!   batch per pair ([`transport::Packet::Mail`]).
//! - **wire**: a one-way channel from one partition to another, carrying
//!   packets (controls and mail batches) in order; a partition's wires to
//!   and from all others are its `Wires`.
//! - **router**: the part of a partition that resolves its outgoing mail
//!   (receiver and subscribers, wherever they are) and delivers incoming
//!   batches in the canonical order ([`Origin`](maslite_core::Origin)).
//! - **replica**: what every partition knows of all agents — the directory
//!   (which partition each agent is on) and the mailing list — kept equal
//!   everywhere by the changes in the controls.
//! - **host** and **transport**: a process running some of the partitions;
//!   the [`transport::Transport`] carries packets on the wires that leave
//!   the host ([`transport::HostWires`]).
//! - **inlet** and **endpoint**: where a service's messages come in
//!   ([`Inlet`]) and go out ([`Outbound`], the stream of an endpoint id).
//!
//! ## One model, any host
//!
//! A model's set-up written against the [`System`] trait runs on a bare
//! [`Scheduler`](maslite_core::Scheduler) and on a [`Runtime`] alike, and
//! gives the same trace on both (see the [`system`] module).
//!
//! ## Placement
//!
//! Where agents live changes how fast a run goes, never what it does. A
//! run can measure its traffic ([`Runtime::measure_traffic`], see
//! [`traffic`]); its report then proposes a placement that keeps the
//! crossing messages few and the loads even
//! ([`RuntimeReport::suggest_placement`], see [`advice`]); and agents move
//! between runs ([`Runtime::apply_placement`]) with the trace they would
//! have had without moving.
//!
//! ## Modes
//!
//! - **Lockstep** (the default): [`Runtime::new`]`(n)`.
//! - **Lookahead windows**: [`Builder::lookahead`]`(L)`, for models whose
//!   partitions talk only through alarms at least `L` ahead (the `phold`
//!   example).
//! - **Free mode** on the real-time clock: [`Builder::real_time`] — no
//!   rounds in step, mail between partitions as soon as it can go; the run
//!   ends idle by a termination count over partitions and batches in
//!   flight.
//!
//! Agents that are not `Send` are built on their partition's thread
//! ([`Runtime::add_made`]); inside a tokio application await
//! [`Runtime::run_async`].
//!
//! ## In a tokio service
//!
//! [`Runtime::serve`] runs the system in the background of a tokio
//! application, until it is stopped: messages go in through bounded
//! [`Inlet`]s (a flood waits; [`Inlet::send_timeout`] gives up after a
//! deadline), what agents send to an endpoint
//! ([`Runtime::endpoint`]) comes out as an [`Outbound`] stream (a slow
//! reader holds the intake back; nothing is lost), [`Service::stats`] reads
//! live figures, and [`Service::shutdown`] stops gracefully and returns the
//! report. [`Service::host`] runs a task of the application on a
//! partition's own thread, beside its agents (thread per core: a server
//! accepting connections there reaches its agents with no thread hand-off).
//! See the [`service`] module and `examples/service/` (an HTTP
//! order-matching service whose stop answers every request under load).
//!
//! ```
//! use futures::StreamExt;
//! use maslite_core::{AgentId, Envelope};
//! use maslite_runtime::{ServeOptions, Service};
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! let mut rt = Service::builder().partitions(2).build()?; // real-time clock
//! let mut out = rt.endpoint(0, AgentId(100))?;
//! let echo = rt.spawn(1, |cx| async move {
//!     loop {
//!         let mut env = cx.recv().await;
//!         env.reply().unwrap(); // back to the endpoint it came from
//!         cx.send(env);
//!     }
//! })?;
//! let service = rt.serve(ServeOptions::new())?;
//! service.send(Envelope::new(7u32).from(AgentId(100)).to(echo)).await?;
//! assert_eq!(*out.next().await.unwrap().payload::<u32>()?, 7);
//! let report = service.shutdown(std::time::Duration::from_secs(1)).await?;
//! assert_eq!(report.dead_letters(), 0);
//! # Ok::<(), maslite_core::Error>(())
//! # }).unwrap();
//! ```
//!
//! [`Runtime::progress`] streams samples of a long run's progress (clock,
//! wall time, ratio, messages/s) without slowing it.
//!
//! ## On several hosts
//!
//! [`Builder::transport`] spreads the partitions over hosts (processes,
//! machines): a [`transport::Placement`] says which host runs which
//! partition, every host runs the same program, and a
//! [`transport::Transport`] carries the partitions' packets between hosts —
//! `maslite_nats::NatsTransport` through a NATS server, or
//! [`transport::InProcess`] between runtimes of one process. The results
//! are those of one process. See the [`transport`] module.
//!
//! ## Snapshots and checkpoints
//!
//! [`Runtime::snapshot`] saves the simulation between runs, each
//! partition's share merged in the one order; [`Runtime::restore`] resumes
//! it on any number of partitions under any placement (or a bare
//! `Scheduler` does), with the uninterrupted run's trace.
//! [`Runtime::run_with_checkpoints`] writes one every so many simulated
//! seconds, atomically ([`maslite_core::checkpoint`]).
//!
//! ## Stopping
//!
//! - the run is idle (nothing to do anywhere, no alarm), or hits the limits
//!   of its [`RunOptions`](maslite_core::RunOptions);
//! - an agent calls `cx.pause()`: the whole run stops at the end of that
//!   step ([`StopReason::Paused`]);
//! - the [`CancellationToken`] of the
//!   runtime is cancelled ([`StopReason::Cancelled`]);
//! - an agent panics or a partition's thread dies: the run returns an error
//!   naming the partition (and the agent) — it never hangs. The runtime is
//!   then spent, but its agents can still be read for a post-mortem
//!   ([`Runtime::with_agent`]) unless a thread died.
//!
//! Nothing is lost: every message is delivered, counted as a dead letter
//! (with a `tracing` warning), or counted as pending in the
//! [`RuntimeReport`], and the counts add up.

#![deny(missing_docs)]

pub mod advice;
mod builder;
mod config;
#[cfg(feature = "console")]
pub mod console;
mod endpoint;
mod error;
mod exchange;
mod named;
mod partition;
mod progress;
mod report;
mod route;
mod runtime;
pub mod service;
mod snapshot;
pub mod system;
pub mod traffic;
pub mod transport;
mod wait;

pub use advice::{AgentPlacement, PlacementAdvice};
pub use builder::Builder;
pub use endpoint::{Outbound, Overflow};
pub use error::{Error, Result};
pub use maslite_core::Checkpoints;
pub use partition::lockstep;
pub use progress::{Progress, ProgressSample};
pub use report::{PairTraffic, PartitionReport, RuntimeReport, StopReason};
pub use runtime::Runtime;
pub use service::{Inlet, ServeOptions, Service, ServiceStats};
pub use system::{RunSummary, System};
/// The token that stops a runtime (re-exported from `tokio-util`).
pub use tokio_util::sync::CancellationToken;
pub use traffic::{PairCount, Traffic};
