//! The PHOLD example: one hash for the processed events on any number of
//! partitions, lockstep or with lookahead windows.

#[allow(dead_code)] // `main` reads the command line: not run here
#[path = "../examples/phold.rs"]
mod phold;

use phold::{run, Params};

fn small(partitions: usize, window: Option<f64>) -> Params {
    Params {
        agents: 96,
        events: 3,
        remote: 0.5,
        lookahead: 0.1,
        mean: 1.0,
        end: 15.0,
        partitions,
        seed: 7,
        window,
        ..Params::default()
    }
}

#[test]
fn the_hash_is_the_same_on_one_to_four_partitions_and_in_lockstep() {
    let base = run(&small(1, None)).unwrap();
    assert!(base.events > 96 * 3 * 10, "{} events", base.events);
    for (partitions, window) in [(2, None), (3, None), (4, None), (2, Some(0.0)), (3, Some(0.05))] {
        let o = run(&small(partitions, window)).unwrap();
        assert_eq!(
            (o.events, o.hash),
            (base.events, base.hash),
            "{partitions} partitions, window {window:?}"
        );
        assert!(o.report.cross_partition() > 0);
    }
}

#[test]
fn another_seed_gives_another_hash() {
    let a = run(&small(2, None)).unwrap();
    let b = run(&Params { seed: 8, ..small(2, None) }).unwrap();
    assert_ne!(a.hash, b.hash);
}

#[test]
fn bad_flags_are_refused_with_a_reason() {
    let parse = |args: &[&str]| Params::parse(args.iter().map(|s| s.to_string()));
    assert!(parse(&["--agents", "10", "--partitions", "2"]).is_ok());
    assert!(parse(&["--agents"]).unwrap_err().contains("needs a value"));
    assert!(parse(&["--agents", "x"]).unwrap_err().contains("--agents x"));
    assert!(parse(&["--speed", "1"]).unwrap_err().contains("unknown flag"));
    assert!(parse(&["--remote", "1.5"]).is_err());
    assert!(parse(&["--lookahead", "2", "--mean", "1"]).is_err());
    assert!(parse(&["--partitions", "0"]).is_err());
}
