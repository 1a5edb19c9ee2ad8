//! The facade's integration tests, one binary: the examples run as tests
//! (each on its own model, never by reading what it prints) and hosts of
//! one process (`hosts_in_process`). Tests of one crate live beside it
//! (maslite-core/tests, maslite-runtime/tests, maslite-nats/tests); two
//! that need a process of their own stay beside this directory
//! (`hosts_nats.rs`, `console.rs`).
//!
//! Run: `cargo test --test integration` (a module or a test by name after
//! it: `-- examples_phold::`).

// The examples, each compiled once for all the modules that use it.
#[allow(dead_code)] // `main` reads the command line: not run here
#[path = "../../examples/bank.rs"]
mod bank;
#[allow(dead_code)] // `main` reads the command line: not run here
#[path = "../../examples/carwash.rs"]
mod carwash;
#[path = "../../examples/chain.rs"]
mod chain;
#[allow(dead_code)] // `main` reads the command line: not run here
#[path = "../../examples/conveyor.rs"]
mod conveyor;
#[allow(dead_code)] // `main` reads the command line: not run here
#[path = "../../examples/factories.rs"]
mod factories;
#[path = "../../examples/hello.rs"]
mod hello;
#[allow(dead_code)] // `main` reads the command line: not run here
#[path = "../../examples/phold.rs"]
mod phold;
#[path = "../../examples/realtime.rs"]
mod realtime;
#[path = "../../examples/scheduling.rs"]
mod scheduling;
#[path = "../../examples/service/main.rs"]
mod service;
#[allow(dead_code)] // `main` prints the story: not run here
#[path = "../../examples/snapshot.rs"]
mod snapshot;

mod examples_bank;
mod examples_carwash;
mod examples_chain;
mod examples_conveyor;
mod examples_factories;
mod examples_hello;
mod examples_phold;
mod examples_realtime;
mod examples_scheduling;
mod examples_service;
mod examples_snapshot;
mod hosts_in_process;
