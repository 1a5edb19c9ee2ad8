//! # maslite: a very fast multi-agent messaging kernel
//!
//! The facade of the maslite crates: the single-partition kernel,
//! [`maslite_core`] (re-exported at the top level and as `maslite::kernel`),
//! and the multi-partition runtime, [`maslite_runtime`] (as
//! `maslite::runtime`). Start with the examples, in this order:
//!
//! 1. `hello` — the smallest program, in both agent styles;
//! 2. `pingpong` — two agents, one ball, as fast as it goes;
//! 3. `scheduling` — maslite's scheduling demo: two machines and a stock agent;
//! 4. `chain` — four agents on two partitions sign one message;
//! 5. `conveyor` — a box rides four conveyors on two partitions, in
//!    simulated time;
//! 6. `phold` — the PHOLD benchmark model, on any number of partitions;
//! 7. `realtime` — free mode on the wall clock, with a `!Send` agent.
//!
//! ```
//! use maslite::prelude::*;
//!
//! let mut s = Scheduler::simulated();
//! let greeter = s.spawn(|cx| async move {
//!     let hello = cx.recv().await;
//!     cx.sleep(2.0).await;
//!     assert_eq!(hello.payload::<&str>(), Ok(&"hello"));
//! }).unwrap();
//! s.send(Envelope::new("hello").to(greeter));
//! assert_eq!(s.run().unwrap().end_time, 2.0);
//! ```

#![deny(missing_docs)]

/// The single-partition kernel, also re-exported at the top level.
pub use maslite_core as kernel;
pub use maslite_core::*;
/// The multi-partition runtime: partitions on cores, one clock.
pub use maslite_runtime as runtime;

/// Everything an agent program usually needs.
pub mod prelude {
    pub use maslite_core::{
        Agent, AgentId, Alarm, Clock, Cx, Envelope, Error, Grant, Interrupted, Process, Resource,
        RunOptions, RunReport, Scheduler, StopReason, Subscription, TestBed, Topic, Types,
    };
    pub use maslite_runtime::{RunSummary, Runtime, RuntimeReport, System};
}

/// The README's examples, compiled and run as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
