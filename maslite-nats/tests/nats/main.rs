//! The NATS layer's integration tests, one binary: the codec, a step's
//! control and packets on the wire, host links and heartbeats through a
//! real `nats-server` (each test starts its own; see `common.rs`). Without
//! `nats-server` on PATH the tests that need it are skipped, saying so in
//! one line on stderr; `MASLITE_REQUIRE_NATS=1` makes that a failure.
//!
//! Run: `cargo test -p maslite-nats --test nats`.

/// The server of the test `name`, or a return from it (a skip) when
/// `nats-server` is missing: `let server = server_or_skip!(name);`.
macro_rules! server_or_skip {
    ($test:ident) => {
        match $crate::SERVER_TESTS.start_or_skip(stringify!($test)) {
            Some(server) => server,
            None => return,
        }
    };
}

mod codec;
mod common;
mod control;
mod fuzz;
mod heartbeats;
mod nats_links;
mod packets;
mod sealed;

/// The tests here that start a `nats-server` (the skip line counts them).
const SERVER_TESTS: common::ServerTests = common::ServerTests {
    binary: "maslite-nats tests",
    names: &[
        "a_crashed_host_is_named_within_the_limit",
        "a_host_that_never_comes_is_named_after_the_grace",
        "a_host_that_stops_cleanly_has_left_and_is_not_lost",
        "when_the_server_dies_every_host_stops_with_an_error",
        "packets_cross_hosts_whole_in_order_and_split_under_max_payload",
        "a_lost_frame_is_a_gap_naming_the_link",
        "a_host_that_never_comes_is_named_by_the_handshake",
    ],
};
