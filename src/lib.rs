//! # maslite: a very fast multi-agent messaging kernel
//!
//! The facade of the maslite crates. Today it re-exports the single-partition
//! kernel, [`maslite_core`] (also as `maslite::kernel`); the multi-partition runtime joins it later.
//! Start with the examples, in this order:
//!
//! 1. `hello` — the smallest program, in both agent styles;
//! 2. `pingpong` — two agents, one ball, as fast as it goes;
//! 3. `scheduling` — maslite's scheduling demo: two machines and a stock agent.
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

/// Everything an agent program usually needs.
pub mod prelude {
    pub use maslite_core::{
        Agent, AgentId, Alarm, Clock, Cx, Envelope, Error, RunOptions, Scheduler, StopReason,
        Subscription, TestBed, Topic,
    };
}

/// The README's examples, compiled and run as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
