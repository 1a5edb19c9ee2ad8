//! The realtime example: free mode on the wall clock, a `!Send` agent, a
//! pause that stops both partitions.

use crate::realtime;

use maslite::runtime::StopReason;

#[test]
fn the_trader_buys_on_the_fifth_quote_and_stops_both_partitions() {
    let (report, bought, seen) = realtime::run().unwrap();
    assert_eq!(report.reason, StopReason::Paused);
    assert_eq!(seen, 5);
    assert!(bought.is_some());
    // Five quotes 10 ms apart: at least 50 ms of wall time went by (the
    // clock is real), and every quote crossed partitions.
    assert!(report.wall.as_secs_f64() >= 0.05, "{:?}", report.wall);
    assert!(report.cross_partition() >= 5);
    assert_eq!(report.sent(), report.delivered() + report.dead_letters() + report.pending());
}

#[test]
fn the_example_runs_to_its_end() {
    realtime::main().unwrap();
}
