//! The conveyor example: the box's hand-overs at 0.75, 2.75 and 4.75 s on
//! one clock across two partitions. Checked on the example's own model.

#[path = "../examples/conveyor.rs"]
mod conveyor;

use conveyor::{build, handovers, logs, timed_run, Event};
use maslite::prelude::*;
use maslite::runtime::StopReason;

#[test]
fn the_box_is_handed_over_at_the_seeds_times_and_the_run_ends_at_4_75() {
    let mut rt = build(2).unwrap();
    let report = rt.run().unwrap();
    assert_eq!(report.reason, StopReason::Idle);
    assert_eq!(report.end_time, 4.75);
    let logs = logs(&mut rt).unwrap();
    assert_eq!(handovers(&logs), [0.75, 2.75, 4.75]);
    assert_eq!(logs[3].last(), Some(&Event::Arrived { at: 4.75, item: 1 }));
    // Notify, accept and transfer cross at the 2 -> 3 hand-over.
    assert_eq!(report.cross_partition(), 3);
    assert_eq!(report.sent(), report.delivered());
    assert_eq!(report.dead_letters(), 0);
}

#[test]
fn one_partition_tells_the_same_story() {
    let mut one = build(1).unwrap();
    let mut two = build(2).unwrap();
    let r1 = one.run().unwrap();
    let r2 = two.run().unwrap();
    assert_eq!(logs(&mut one).unwrap(), logs(&mut two).unwrap());
    assert_eq!(r1.end_time, r2.end_time);
    assert_eq!(r1.sent(), r2.sent());
    assert_eq!(r1.cross_partition(), 0);
}

#[test]
fn the_timed_run_reports_the_simulated_span() {
    let (report, wall) = timed_run(2).unwrap();
    assert_eq!(report.sim_seconds(), 4.75);
    assert!(wall > 0.0);
    let _ = AgentId(1);
}

#[test]
fn the_example_runs_to_its_end() {
    conveyor::main().unwrap();
}
