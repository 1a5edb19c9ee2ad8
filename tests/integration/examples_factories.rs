//! The factories example: the advice cuts the crossing messages of a random
//! placement, keeps the loads within 10%, and the trace is the same with
//! the agents placed at random, placed by the advice, and moved halfway.

use crate::factories::{build, random_partition, run, run_for, trace_hash, Params, WAREHOUSE};

fn small() -> Params {
    Params {
        lines: 4,
        conveyors: 3,
        machines: 2,
        batch: 8,
        parts_every: 5,
        end: 6.0,
        ..Params::default()
    }
}

#[test]
fn the_advice_cuts_crossings_and_the_trace_stays_the_same() {
    let p = small();
    let o = run(&p).unwrap();
    let [random, advised, halfway] = o.hashes;
    assert_eq!(random, advised);
    assert_eq!(random, halfway);
    assert!(o.advice.current_crossing > 0);
    assert!(o.advice.crossing_cut() >= 0.8, "{}", o.advice);
    assert!(o.advice.balanced(), "{}", o.advice);
    assert!(!o.advice.moves.is_empty());
    let text = o.report.to_string();
    assert!(text.contains("placement advice: moving these"), "{text}");
}

#[test]
fn another_seed_places_otherwise_and_tells_the_same_story() {
    let hash = |seed| {
        let p = Params { seed, ..small() };
        let mut rt = build(&p, |id| random_partition(&p, id)).unwrap();
        run_for(&mut rt, p.end).unwrap();
        (trace_hash(&mut rt, &p).unwrap(), random_partition(&p, WAREHOUSE))
    };
    let (a, _) = hash(1);
    let others: Vec<u64> = (2..6).map(|s| hash(s).0).collect();
    assert!(others.iter().all(|&h| h == a));
    // And the seeds do place the agents differently.
    let p1 = Params { seed: 1, ..small() };
    let p2 = Params { seed: 2, ..small() };
    let differ = crate::factories::ids(&p1)
        .into_iter()
        .filter(|&id| random_partition(&p1, id) != random_partition(&p2, id))
        .count();
    assert!(differ > 0);
}
