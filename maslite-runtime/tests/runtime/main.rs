//! The runtime's integration tests, one binary: partitions on cores, the
//! lockstep clock and lookahead windows, free mode, services, faults, and
//! the runtime against a bare `Scheduler` (`one_order`, and the review's
//! `probes`). `programs` holds
//! what the two trace properties (`same_trace`, `one_order`) share: the
//! scripted agents, their steps, the placements.
//!
//! Run: `cargo test -p maslite-runtime --test runtime` (a module or a test
//! by name after it: `-- one_order::`). The two tests that install a global
//! `tracing` subscriber are binaries of their own (`dead_letter_log.rs`,
//! `tracing_spans.rs`, next to this directory): a process has one.

mod faults;
mod hosted;
mod in_tokio;
mod one_order;
mod placement;
mod probes;
mod programs;
mod regressions;
mod same_trace;
mod service;
mod snapshots;
mod thread_death;
