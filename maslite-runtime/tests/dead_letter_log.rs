//! The runtime's dead-letter warning, seen through a real `tracing`
//! subscriber.
//!
//! Partitions log on their own threads, so a thread-local subscriber would
//! not see them: this test installs a global one, which a process can do
//! only once — hence a test binary of its own, with this one test.

// The kernel's tests' log buffer, one copy for both crates.
#[path = "../../maslite-core/tests/common/mod.rs"]
mod common;
use common::LogBuffer;

use maslite_core::{Agent, AgentId, Cx, Envelope};
use maslite_runtime::{Runtime, StopReason};

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

/// The WARN line that names `receiver` as a dead letter.
fn dead_letter_warning(logs: &LogBuffer, receiver: u64) -> String {
    let text = logs.text();
    let needle = format!("receiver={receiver}");
    text.lines()
        .find(|l| l.contains("WARN") && l.contains(&needle))
        .unwrap_or_else(|| panic!("no warning naming receiver {receiver} in: {text:?}"))
        .to_string()
}

#[test]
fn runtime_dead_letters_are_counted_and_logged_from_the_partitions_threads() {
    use tracing_subscriber::util::SubscriberInitExt;

    let logs = LogBuffer::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_thread_names(true)
        .with_writer(move || writer.clone())
        .finish()
        .init();

    let mut rt = Runtime::new(2).unwrap();
    let keeper = rt.add(1, Keeper::default()).unwrap();
    // Good mail, across partitions: no warning.
    rt.spawn(0, move |cx| async move {
        cx.send(Envelope::new(Note(1)).to(keeper));
    })
    .unwrap();
    let report = rt.run().unwrap();
    assert_eq!((report.delivered(), report.dead_letters()), (1, 0));
    assert!(!logs.text().contains("WARN"), "no warning for good mail, got: {}", logs.text());
    assert_eq!(rt.with_agent(keeper, |k: &Keeper| k.kept.clone()), Ok(vec![1]));

    // Mail from outside (posted on partition 0) and from an agent on
    // partition 1 to receivers nobody has.
    rt.send(Envelope::new(Note(2)).to(AgentId(4242)));
    rt.spawn(1, |cx| async move {
        cx.send(Envelope::new(Note(3)).to(AgentId(4243)).topic_is("lost"));
    })
    .unwrap();
    let report = rt.run().unwrap();
    assert_eq!(report.reason, StopReason::Idle);
    assert_eq!((report.sent(), report.delivered(), report.dead_letters()), (2, 0, 2));
    assert_eq!(report.partitions[0].dead_letters, 1);
    assert_eq!(report.partitions[1].dead_letters, 1);

    let outside = dead_letter_warning(&logs, 4242);
    assert!(outside.contains("dead letter"), "{outside}");
    assert!(outside.contains("maslite-p0"), "logged on partition 0's thread: {outside}");
    let from_agent = dead_letter_warning(&logs, 4243);
    assert!(from_agent.contains("dead letter"), "{from_agent}");
    assert!(from_agent.contains("maslite-p1"), "logged on partition 1's thread: {from_agent}");
    assert!(from_agent.contains("lost"), "the topic is named: {from_agent}");

    // Free mode logs its dead letters, too.
    let mut rt = Runtime::builder().partitions(2).real_time().build().unwrap();
    rt.spawn(1, |cx| async move {
        cx.send(Envelope::new(Note(4)).to(AgentId(4244)));
    })
    .unwrap();
    let report = rt.run().unwrap();
    assert_eq!(report.dead_letters(), 1);
    let free = dead_letter_warning(&logs, 4244);
    assert!(free.contains("maslite-p1"), "{free}");
}
