//! What `tracing` shows of a run: a span per partition, per round and per
//! agent update (with the agent's id and topic), and events for run starts
//! and stops, time jumps, dead letters and failures — seen through a real
//! subscriber at trace level.
//!
//! A global subscriber can be installed once per process: one test here.

// The kernel's tests' log buffer, one copy for both crates.
#[path = "../../maslite-core/tests/common/mod.rs"]
mod common;
use common::LogBuffer;

use maslite_core::{Agent, AgentId, Cx, Envelope};
use maslite_runtime::{Runtime, StopReason};

#[derive(Clone)]
struct Hop(u32);

/// Passes the hop on to `next` after a simulated second, logging it.
struct Relay {
    next: AgentId,
}

impl Agent for Relay {
    async fn update(&mut self, cx: &Cx) {
        while let Some(env) = cx.try_recv() {
            let hop = env.payload::<Hop>().unwrap().0;
            tracing::info!(hop, "relayed");
            if hop == 3 {
                cx.pause();
            } else {
                let next = Envelope::new(Hop(hop + 1)).to(self.next);
                cx.set_alarm(maslite_core::Alarm::after(1.0, next)).unwrap();
            }
        }
    }
}

#[test]
fn partitions_rounds_and_updates_are_spans_and_the_run_is_told_in_events() {
    use tracing_subscriber::util::SubscriberInitExt;
    let logs = LogBuffer::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish()
        .init();

    let mut rt = Runtime::new(2).unwrap();
    rt.add_with_id(0, AgentId(1), Relay { next: AgentId(2) }).unwrap();
    rt.add_with_id(1, AgentId(2), Relay { next: AgentId(1) }).unwrap();
    rt.send(Envelope::new(Hop(0)).to(AgentId(1)));
    let report = rt.run().unwrap();
    assert_eq!(report.reason, StopReason::Paused);
    let text = logs.text();
    let line = |needle: &str| -> String {
        text.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{text}"))
            .to_string()
    };
    // The agent's own event, inside partition, round and update spans.
    let hop = line("relayed hop=1");
    assert!(hop.contains("partition{p=1}"), "{hop}");
    assert!(hop.contains(":round{n="), "{hop}");
    assert!(hop.contains("update{agent=2 topic=\"Relay\""), "{hop}");
    let hop = line("relayed hop=2");
    assert!(hop.contains("partition{p=0}") && hop.contains("update{agent=1"), "{hop}");
    // The run's events.
    for p in 0..2 {
        let starts =
            format!("partition{{p={p}}}: maslite_runtime::partition::lockstep: run starts");
        assert!(line(&starts).contains("DEBUG"), "{starts}");
    }
    let jump = line("time jumps");
    assert!(jump.contains("TRACE") && jump.contains("to=1"), "{jump}");
    let stop = line("run stops");
    assert!(stop.contains("reason=Paused"), "{stop}");
}
