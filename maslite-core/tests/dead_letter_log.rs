//! The dead-letter warning, seen through a real `tracing` subscriber.
//!
//! Alone in its own test binary: `tracing` caches per call site whether
//! anyone listens, and tests running on other threads without a subscriber
//! would race with this one's thread-local subscriber.

mod common;
use common::LogBuffer;

use maslite_core::{Agent, AgentId, Cx, Envelope, Scheduler};

#[derive(Clone)]
struct Note(u32);

#[derive(Default)]
struct Keeper {
    kept: Vec<u32>,
}

impl Agent for Keeper {
    async fn update(&mut self, cx: &Cx) {
        while let Some(env) = cx.try_recv() {
            self.kept.push(env.payload::<Note>().unwrap().0);
        }
    }
}

#[test]
fn dead_letter_emits_a_tracing_warning() {
    use tracing_subscriber::util::SubscriberInitExt;

    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber =
        tracing_subscriber::fmt().with_ansi(false).with_writer(move || writer.clone()).finish();
    let _guard = subscriber.set_default();

    let mut s = Scheduler::simulated();
    let keeper = s.add(Keeper::default()).unwrap();
    s.send(Envelope::new(Note(2)).to(keeper));
    s.run().unwrap();
    assert!(!logs.text().contains("WARN"), "no warning for good mail, got: {}", logs.text());

    s.send(Envelope::new(Note(1)).to(AgentId(4242)));
    s.run().unwrap();
    let text = logs.text();
    let line = text
        .lines()
        .find(|l| l.contains("WARN") && l.contains("4242"))
        .unwrap_or_else(|| panic!("no warning naming the receiver in: {text:?}"));
    assert!(line.contains("dead letter"), "{line}");
}
