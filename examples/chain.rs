//! # chain — four agents on two partitions sign one message
//!
//! The first demo of maslite's multiprocessing design: agents 1 and 2 live
//! on partition 0, agents 3 and 4 on partition 1. Agent 1 gets a message
//! from outside and asks for everyone's signature: each agent signs it and
//! passes it to the next agent that has not signed yet, whatever partition
//! that agent is on. The agent that sees all four signatures writes a
//! contract and sends it to the registrar, whose `cx.pause()` stops every
//! partition — the seed's "the contract makes main stop everything".
//!
//! Run it: `cargo run --example chain`. The last line reads
//! `chain: contract by 4 signed by [1, 2, 3, 4]`.

use maslite::prelude::*;
use maslite::runtime::{RuntimeReport, StopReason};
use serde::{Deserialize, Serialize};

/// The message that collects signatures.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChainMsg {
    pub signatures: Vec<AgentId>,
}

/// What the last signer writes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Contract {
    pub by: AgentId,
    pub signatures: Vec<AgentId>,
}

/// Signs every message it gets and passes it on.
#[derive(Serialize, Deserialize)]
pub struct Signer {
    pub everyone: Vec<AgentId>,
    pub registrar: AgentId,
}

impl Agent for Signer {
    async fn update(&mut self, cx: &Cx) {
        while let Some(env) = cx.try_recv() {
            let mut msg = env.into_payload::<ChainMsg>().expect("signers get ChainMsg");
            msg.signatures.push(cx.id());
            let unsigned = self.everyone.iter().find(|a| !msg.signatures.contains(a));
            match unsigned {
                Some(&next) => cx.send(Envelope::new(msg).to(next)),
                None => cx.send(
                    Envelope::new(Contract { by: cx.id(), signatures: msg.signatures })
                        .to(self.registrar),
                ),
            }
        }
    }
}

/// Keeps the contract and stops the run.
#[derive(Default, Serialize, Deserialize)]
pub struct Registrar {
    pub contract: Option<Contract>,
}

impl Agent for Registrar {
    async fn update(&mut self, cx: &Cx) {
        while let Some(env) = cx.try_recv() {
            self.contract = Some(env.into_payload::<Contract>().expect("a contract"));
            cx.pause(); // stops every partition at the end of this step
        }
    }
}

/// The registrar's id.
pub const REGISTRAR: AgentId = AgentId(100);

/// The chain's types, for snapshots.
pub fn types() -> Types {
    let mut types = Types::new();
    types.register::<ChainMsg>().unwrap().register::<Contract>().unwrap();
    types.register_agent::<Signer>().unwrap().register_agent::<Registrar>().unwrap();
    types
}

/// Builds the chain on `partitions` partitions: agent `i` (1..=4) on
/// partition `(i - 1) / 2 % partitions`, the registrar on partition 0.
pub fn build(partitions: usize) -> Result<Runtime, maslite::Error> {
    let mut rt = Runtime::new(partitions)?;
    let everyone: Vec<AgentId> = (1..=4).map(AgentId).collect();
    rt.add_with_id(0, REGISTRAR, Registrar::default())?;
    for &id in &everyone {
        let p = (id.0 as usize - 1) / 2 % partitions;
        rt.add_with_id(p, id, Signer { everyone: everyone.clone(), registrar: REGISTRAR })?;
    }
    rt.send(Envelope::new(ChainMsg { signatures: Vec::new() }).to(AgentId(1)));
    Ok(rt)
}

/// Runs the chain; returns the run's report and the registrar's contract.
pub fn run(partitions: usize) -> Result<(RuntimeReport, Option<Contract>), maslite::Error> {
    let mut rt = build(partitions)?;
    let report = rt.run()?;
    let contract = rt.with_agent(REGISTRAR, |r: &Registrar| r.contract.clone())?;
    Ok((report, contract))
}

pub fn main() -> Result<(), maslite::Error> {
    // Logs on stderr: warnings (a dead letter, say) by default; more with
    // RUST_LOG, e.g. `RUST_LOG=maslite_runtime=debug`.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_thread_names(true)
        .with_writer(std::io::stderr)
        .try_init();
    let (report, contract) = run(2)?;
    print!("{report}");
    assert_eq!(report.reason, StopReason::Paused);
    let contract = contract.expect("the registrar got the contract");
    let names: Vec<String> = contract.signatures.iter().map(|a| a.to_string()).collect();
    println!("chain: contract by {} signed by [{}]", contract.by, names.join(", "));
    Ok(())
}
