//! The chain example: four signers on two partitions, the contract stops
//! everything. Checked by running the example's own model.

use crate::chain;

use maslite::prelude::*;
use maslite::runtime::StopReason;

#[test]
fn the_contract_is_signed_by_all_four_and_stops_the_run() {
    let (report, contract) = chain::run(2).unwrap();
    assert_eq!(report.reason, StopReason::Paused);
    let contract = contract.expect("the registrar got the contract");
    assert_eq!(contract.by, AgentId(4));
    assert_eq!(contract.signatures, [AgentId(1), AgentId(2), AgentId(3), AgentId(4)]);
    // Outside -> 1, 1 -> 2, 2 -> 3 (crosses), 3 -> 4, 4 -> registrar (crosses).
    assert_eq!(report.sent(), 5);
    assert_eq!(report.delivered(), 5);
    assert_eq!(report.cross_partition(), 2);
    assert_eq!(report.traffic, vec![vec![2, 1], vec![1, 1]]);
    assert_eq!(report.top_pairs.len(), 2);
}

#[test]
fn the_same_contract_on_one_two_and_three_partitions() {
    let mut contracts = Vec::new();
    for partitions in 1..=3 {
        let (report, contract) = chain::run(partitions).unwrap();
        assert_eq!(report.reason, StopReason::Paused);
        assert_eq!(report.sent(), report.delivered() + report.dead_letters() + report.pending());
        if partitions == 1 {
            assert_eq!(report.cross_partition(), 0);
        }
        contracts.push(contract);
    }
    assert!(contracts.windows(2).all(|w| w[0] == w[1]), "{contracts:?}");
}

#[test]
fn the_example_runs_to_its_end() {
    chain::main().unwrap();
}

#[test]
fn saved_mid_chain_and_resumed_on_another_partition_count_the_contract_is_the_same() {
    let (_, whole) = chain::run(2).unwrap();
    let types = chain::types();
    // Stopped after each step of the chain (2 signatures, 3...), saved on
    // 2 partitions, resumed on 1 and 3.
    for steps in 1..5 {
        for resumed_on in [1, 3] {
            let mut rt = chain::build(2).unwrap();
            let report = rt.run_with(RunOptions::new().iterations(steps)).unwrap();
            assert_eq!(report.reason, StopReason::Iterations);
            let mut bytes = Vec::new();
            rt.snapshot(&types, &mut bytes).unwrap();
            drop(rt);
            let builder = Runtime::builder().partitions(resumed_on);
            let place = |id: AgentId| id.0 as usize % resumed_on;
            let mut resumed = Runtime::restore(builder, &types, &bytes[..], place).unwrap();
            let report = resumed.run().unwrap();
            assert_eq!(report.reason, StopReason::Paused, "after {steps} steps");
            let contract = resumed
                .with_agent(chain::REGISTRAR, |r: &chain::Registrar| r.contract.clone())
                .unwrap();
            assert_eq!(contract, whole, "after {steps} steps, on {resumed_on}");
        }
    }
}
