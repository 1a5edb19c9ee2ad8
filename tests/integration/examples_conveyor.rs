//! The conveyor example: the box's hand-overs at 0.75, 2.75 and 4.75 s on
//! one clock across two partitions. Checked on the example's own model,
//! and its command on flags given here (never the harness's own).

use crate::conveyor;

use conveyor::{build, command, handovers, logs, story, timed_run, trace_hash, Event, Options};
use maslite::prelude::*;
use maslite::runtime::StopReason;

/// The command's flags, parsed as `main` parses them.
fn options(args: &[&str]) -> Result<Options, clap::Error> {
    Options::from_args(std::iter::once("conveyor").chain(args.iter().copied()))
}

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
    command(&options(&[]).unwrap()).unwrap();
}

#[test]
fn the_partitions_flag_tells_the_same_story_on_one_and_two() {
    let one = options(&["--partitions", "1"]).unwrap();
    let two = options(&["--partitions", "2"]).unwrap();
    assert_eq!(options(&[]).unwrap(), two, "two partitions by default");
    assert_eq!(Options::default(), two);
    let (r1, logs1) = story(&one).unwrap();
    let (r2, logs2) = story(&two).unwrap();
    assert_eq!(logs1, logs2);
    assert_eq!(trace_hash(&logs1), trace_hash(&logs2));
    assert_eq!(logs1.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert_eq!((r1.reason, r2.reason), (StopReason::Idle, StopReason::Idle));
    assert_eq!((r1.end_time, r2.end_time), (4.75, 4.75));
    assert_eq!((r1.cross_partition(), r2.cross_partition()), (0, 3));
    command(&one).unwrap();
}

#[test]
fn other_partition_counts_are_refused_with_a_reason() {
    for p in ["0", "3", "4"] {
        let e = options(&["--partitions", p]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation);
        let text = e.to_string();
        assert!(text.contains(&format!("--partitions {p}")) && text.contains("1 or 2"), "{text}");
        let e = build(p.parse().unwrap()).err().expect("refused");
        assert!(e.to_string().contains("1 or 2 partitions"), "{e}");
    }
    let e = options(&["--hosts", "2", "--host", "1", "--partitions", "1"]).unwrap_err();
    assert!(e.to_string().contains("needs --partitions 2"), "{e}");
    assert!(options(&["--hosts", "3"]).is_err());
    assert!(options(&["--hosts", "2", "--host", "2"]).is_err());
    // Flags it does not have, and missing values, are clap's errors.
    assert_eq!(
        options(&["--speed", "1"]).unwrap_err().kind(),
        clap::error::ErrorKind::UnknownArgument
    );
    assert!(options(&["--partitions"]).is_err());
    let help = options(&["--help"]).unwrap_err();
    assert_eq!(help.kind(), clap::error::ErrorKind::DisplayHelp);
    for flag in ["--partitions", "--hosts", "--host", "--nats", "--run"] {
        assert!(help.to_string().contains(flag), "{flag}: {help}");
    }
}

#[test]
fn saved_mid_run_and_resumed_on_the_other_partition_count_it_tells_the_same_story() {
    let types = conveyor::types();
    let mut whole = build(2).unwrap();
    whole.run().unwrap();
    let expected = logs(&mut whole).unwrap();
    let keep = || RunOptions::new().clear_alarms_at_end(false);
    // Stopped between hand-overs (the box on conveyor 2), and at one.
    for (saved_on, at, resumed_on) in [(2, 2.0, 1), (1, 2.75, 2), (2, 4.75, 2)] {
        let mut first = build(saved_on).unwrap();
        first.run_with(keep().until(at)).unwrap();
        let mut bytes = Vec::new();
        first.snapshot(&types, &mut bytes).unwrap();
        drop(first);
        let builder = Runtime::builder().partitions(resumed_on);
        let place = |id: AgentId| ((id.0 as usize - 1) / 2) % resumed_on;
        let mut rt = Runtime::restore(builder, &types, &bytes[..], place).unwrap();
        let report = rt.run().unwrap();
        assert_eq!(report.end_time, 4.75, "saved at {at}");
        assert_eq!(logs(&mut rt).unwrap(), expected, "saved at {at} on {saved_on}");
    }
}
