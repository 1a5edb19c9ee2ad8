//! The scheduling example tells the thesis's story: M2 ends up making the
//! products in the order A E B D G F C. Checked by running the example's own
//! model, not by reading what it prints.

use crate::scheduling;

use maslite::prelude::*;
use scheduling::{build, m2_sequence, types, Machine, Order};

#[test]
fn m2_ends_with_the_sequence_of_the_thesis() {
    let (mut s, m2) = build().unwrap();
    let report = s.run().unwrap();
    assert_eq!(report.reason, StopReason::Idle);
    assert_eq!(m2_sequence(&s, m2).unwrap(), ["A", "E", "B", "D", "G", "F", "C"]);
    // The customer's order, M2 -> M1, M1 -> stock, stock -> M1 (supply),
    // M1 -> M2 (supply), M2 -> M1 (idle time), M1 -> M2 (new supply).
    assert_eq!(report.stats.messages, 7);
    assert_eq!(report.stats.dead_letters, 0);

    let m2 = s.agent::<Machine>(m2).unwrap();
    assert_eq!(m2.finish_time, 53);
    // Only the first job waits (for its part, from t=0 to t=2).
    let idle: Vec<_> = m2.jobs.iter().map(|j| j.idle_time.unwrap()).collect();
    assert_eq!(idle, [2, 0, 0, 0, 0, 0, 0]);
}

/// A machine on its own, with a supplier that takes any mail and never answers.
fn lone_machine(order: Order) -> (Scheduler, AgentId) {
    let mut s = Scheduler::simulated();
    let m = s.add(Machine::new("M", &[("A", 1), ("B", 1)], &[("A", "pA"), ("B", "pB")])).unwrap();
    let supplier = s
        .spawn(|cx| async move {
            loop {
                let _ = cx.recv().await;
            }
        })
        .unwrap();
    s.agent_mut::<Machine>(m).unwrap().supplier = Some(supplier);
    s.send(Envelope::new(order).to(m));
    (s, m)
}

#[test]
fn an_order_keeps_first_places_and_last_quantities_like_a_dict() {
    let (mut s, m) = lone_machine(Order::new([("B", 1), ("A", 1), ("B", 3)]));
    s.run().unwrap();
    let m = s.agent::<Machine>(m).unwrap();
    let jobs: Vec<_> = m.jobs.iter().map(|j| (j.order_sku.as_str(), j.quantity)).collect();
    // Shortest run time first; equal run times in SKU order.
    assert_eq!(jobs, [("A", 1), ("B", 3)]);
    // No supply schedule came: nothing planned.
    assert!(m.jobs.iter().all(|j| j.start_time.is_none()));
    assert_eq!(m.finish_time, -1);
}

#[test]
fn a_product_the_machine_cannot_make_stops_the_run_naming_it() {
    let (mut s, m) = lone_machine(Order::new([("Z", 1)]));
    match s.run() {
        Err(Error::AgentPanicked { agent, message, .. }) => {
            assert_eq!(agent, m);
            assert_eq!(message, "M cannot make Z");
        }
        other => panic!("expected AgentPanicked, got {other:?}"),
    }
}

#[test]
fn the_example_runs() {
    scheduling::main().unwrap();
}

#[test]
fn saved_after_any_round_and_resumed_the_plant_agrees_on_the_same_plan() {
    let (mut whole, m2) = build().unwrap();
    let all = whole.run().unwrap();
    let plan = |s: &Scheduler| {
        let m = s.agent::<Machine>(m2).unwrap();
        let jobs: Vec<_> = m.jobs.iter().map(|j| (j.order_sku.clone(), j.start_time)).collect();
        (jobs, m.finish_time)
    };
    let types = types();
    for rounds in 1..all.stats.rounds {
        let (mut s, _) = build().unwrap();
        s.run_with(RunOptions::new().iterations(rounds)).unwrap();
        let mut bytes = Vec::new();
        s.snapshot(&types, &mut bytes).unwrap();
        let mut resumed = Scheduler::restore(&types, &bytes[..]).unwrap();
        let rest = resumed.run().unwrap();
        assert_eq!(plan(&resumed), plan(&whole), "saved after {rounds} rounds");
        assert_eq!(m2_sequence(&resumed, m2).unwrap(), ["A", "E", "B", "D", "G", "F", "C"]);
        assert_eq!(rounds + rest.stats.rounds, all.stats.rounds, "saved after {rounds} rounds");
    }
}
