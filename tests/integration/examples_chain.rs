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
