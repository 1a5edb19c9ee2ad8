//! The kernel's integration tests, one binary: `Scheduler`, `TestBed` and
//! the core types, through the public API only.
//!
//! Run: `cargo test -p maslite-core --test kernel` (a module or a test by
//! name after it: `-- messages::`). The dead-letter log test is a binary
//! of its own (`dead_letter_log.rs`, next to this directory).

mod agents;
mod alarms_and_clock;
mod async_agents;
mod bad_input;
mod delivery_paths_agree;
mod edge_cases;
mod letters;
mod mailing_list_model;
mod messages;
mod moving;
mod processes;
mod scheduler;
mod snapshots;
mod subscriptions;
mod testbed;
