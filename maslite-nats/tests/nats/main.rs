//! The NATS layer's integration tests, one binary: the codec, a step's
//! control and packets on the wire, host links and heartbeats through a
//! real `nats-server` (each test starts its own; see `common.rs`).
//!
//! Run: `cargo test -p maslite-nats --test nats`.

mod codec;
mod common;
mod control;
mod heartbeats;
mod nats_links;
mod packets;
