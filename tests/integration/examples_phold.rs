//! The PHOLD example: one hash for the processed events on any number of
//! partitions, lockstep or with lookahead windows.

use crate::phold;

use phold::{command, run, AgentPlacement, Params};

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

/// The command's flags, parsed as `main` parses them.
fn parse(args: &[&str]) -> Result<Params, clap::Error> {
    Params::from_args(std::iter::once("phold").chain(args.iter().copied()))
}

#[test]
fn the_hash_is_the_same_under_every_placement_on_two_and_three_partitions() {
    let model = |partitions, placement, placement_seed| Params {
        agents: 64,
        end: 6.0,
        placement,
        placement_seed,
        ..small(partitions, None)
    };
    let base = run(&model(1, AgentPlacement::Block, None)).unwrap();
    assert!(base.events > 64 * 3 * 4, "{} events", base.events);
    for partitions in [2, 3] {
        for (placement, seed) in [
            (AgentPlacement::Block, None),
            (AgentPlacement::RoundRobin, None),
            (AgentPlacement::Random, None),
            (AgentPlacement::Random, Some(99)),
        ] {
            let o = run(&model(partitions, placement, seed)).unwrap();
            assert_eq!(
                (o.events, o.hash),
                (base.events, base.hash),
                "{partitions} partitions, {placement:?} placement, seed {seed:?}"
            );
            assert!(o.report.cross_partition() > 0);
        }
    }
}

#[test]
fn the_placements_spread_the_agents_as_they_say() {
    let at = |args: &[&str]| parse(&[&["--agents", "6", "--partitions", "2"], args].concat());
    assert_eq!(at(&[]).unwrap().layout(), [0, 0, 0, 1, 1, 1], "blocks by default");
    assert_eq!(at(&["--placement", "block"]).unwrap().layout(), [0, 0, 0, 1, 1, 1]);
    assert_eq!(at(&["--placement", "round-robin"]).unwrap().layout(), [0, 1, 0, 1, 0, 1]);
    // Random: equal shares, from --placement-seed, else --seed.
    let random = |args: &[&str]| {
        let p = parse(
            &[&["--agents", "1000", "--partitions", "3", "--placement", "random"], args].concat(),
        );
        p.unwrap().layout()
    };
    let a = random(&[]);
    let counts: Vec<usize> = (0..3).map(|q| a.iter().filter(|&&p| p == q).count()).collect();
    assert_eq!(counts, [334, 333, 333]);
    assert_eq!(a, random(&["--seed", "1"]));
    assert_eq!(a, random(&["--seed", "5", "--placement-seed", "1"]));
    assert_ne!(a, random(&["--seed", "5"]));
    assert_ne!(a, random(&["--placement-seed", "2"]));
    let e = parse(&["--placement", "scatter"]).unwrap_err().to_string();
    assert!(e.contains("block") && e.contains("round-robin") && e.contains("random"), "{e}");
}

#[test]
fn the_defaults_are_the_documented_ones() {
    let p = parse(&[]).unwrap();
    assert_eq!(p, Params::default());
    assert_eq!(
        (p.agents, p.events, p.remote, p.lookahead, p.mean, p.end, p.partitions, p.seed),
        (4096, 4, 0.25, 0.1, 1.0, 100.0, 1, 1)
    );
    assert_eq!((p.window, p.placement, p.placement_seed), (None, AgentPlacement::Block, None));
    assert_eq!((p.hosts, p.host, &*p.nats, &*p.run_name), (1, 0, "nats://127.0.0.1:4222", "phold"));
    let help = parse(&["--help"]).unwrap_err();
    assert_eq!(help.kind(), clap::error::ErrorKind::DisplayHelp);
    for flag in [
        "--agents",
        "--events",
        "--remote",
        "--lookahead",
        "--mean",
        "--end",
        "--partitions",
        "--placement",
        "--placement-seed",
        "--seed",
        "--window",
        "--hosts",
        "--host",
        "--nats",
        "--run",
    ] {
        assert!(help.to_string().contains(flag), "{flag}: {help}");
    }
}

#[test]
fn the_command_runs_on_its_flags() {
    let p = parse(&["--agents", "32", "--end", "2", "--partitions", "2", "--placement", "random"]);
    assert_eq!(command(&p.unwrap()), std::process::ExitCode::SUCCESS);
}

#[test]
fn bad_flags_are_refused_with_a_reason() {
    use clap::error::ErrorKind;
    assert!(parse(&["--agents", "10", "--partitions", "2"]).is_ok());
    assert!(parse(&["--agents"]).unwrap_err().to_string().contains("--agents"));
    assert_eq!(parse(&["--agents", "x"]).unwrap_err().kind(), ErrorKind::ValueValidation);
    assert!(parse(&["--agents", "x"]).unwrap_err().to_string().contains("'x'"));
    assert_eq!(parse(&["--speed", "1"]).unwrap_err().kind(), ErrorKind::UnknownArgument);
    // The harness's own flags are not the example's.
    assert!(parse(&["-q"]).is_err());
    assert!(parse(&["--test-threads", "1"]).is_err());
    let refused = |args: &[&str], says: &str| {
        let e = parse(args).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ValueValidation, "{args:?}");
        assert!(e.to_string().contains(says), "{args:?}: {e}");
    };
    refused(&["--remote", "1.5"], "probability");
    refused(&["--lookahead", "2", "--mean", "1"], "--lookahead < --mean");
    refused(&["--partitions", "0"], "at least 1");
    refused(&["--agents", "0"], "at least 1");
    refused(&["--hosts", "2", "--host", "2", "--partitions", "2"], "--host < --hosts");
    refused(&["--hosts", "3", "--partitions", "2"], "--hosts <= --partitions");
}
