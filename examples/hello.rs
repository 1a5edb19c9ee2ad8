//! # hello — the smallest maslite program, in both agent styles
//!
//! A greeter and a visitor exchange a hello. They show the two ways to write
//! an agent:
//!
//! - the **greeter** is a type implementing [`Agent`]: the kernel calls its
//!   `update` in every round in which its inbox holds mail;
//! - the **visitor** is an async closure: it runs top to bottom, waits where
//!   it says `.await`, and leaves the system when it returns.
//!
//! The visitor waits one simulated second, says hello and waits for the
//! answer. The clock is simulated: the wait costs no real time.
//!
//! Run it: `cargo run --example hello`. It prints the conversation, each
//! line stamped with the clock.

use maslite::prelude::*;
use std::cell::RefCell;
use std::rc::Rc;

/// The message. Any `Clone + Send + 'static` type can be mailed.
#[derive(Clone, Debug)]
pub struct Hello(pub &'static str);

/// A transcript both agents write to. Agents run on one thread, so they can
/// share plain `Rc`s (messages, which may cross threads one day, can't).
pub type Transcript = Rc<RefCell<Vec<String>>>;

/// Style 1: a type implementing `Agent`.
pub struct Greeter {
    transcript: Transcript,
}

impl Agent for Greeter {
    // Runs in each round in which the inbox holds mail.
    async fn update(&mut self, cx: &Cx) {
        while let Some(env) = cx.try_recv() {
            let said = env.payload::<Hello>().map_or("?", |h| h.0);
            self.transcript.borrow_mut().push(format!(
                "t={}: greeter {} hears {said:?} from {}",
                cx.now(),
                cx.id(),
                env.sender()
            ));
            // Answer the sender. The kernel stamps us as the sender and
            // delivers after this round.
            cx.send(Envelope::new(Hello("hello, visitor")).to(env.sender()));
        }
    }
}

/// Runs the meeting and returns the transcript.
pub fn run() -> Result<Vec<String>, Error> {
    let transcript = Transcript::default();
    let mut s = Scheduler::simulated();
    let greeter = s.add(Greeter { transcript: transcript.clone() })?;

    // Style 2: an async closure, given its `Cx` (its handle on the kernel).
    let notes = transcript.clone();
    s.spawn(move |cx| async move {
        cx.sleep(1.0).await;
        notes.borrow_mut().push(format!(
            "t={}: visitor {} says hello to {greeter}",
            cx.now(),
            cx.id()
        ));
        cx.send(Envelope::new(Hello("hello")).to(greeter));
        let answer = cx.recv().await;
        let said = answer.payload::<Hello>().map_or("?", |h| h.0);
        notes.borrow_mut().push(format!(
            "t={}: visitor {} hears {said:?} from {} and leaves",
            cx.now(),
            cx.id(),
            answer.sender()
        ));
    })?;

    // Run until nothing is left to do.
    let report = s.run()?;
    transcript.borrow_mut().push(format!(
        "t={}: all quiet after {} messages; still here: {:?}",
        report.end_time,
        report.stats.messages,
        s.agent_ids()
    ));
    Ok(transcript.take())
}

pub fn main() -> Result<(), Error> {
    // Show the kernel's warnings (a dead letter, say) on stderr.
    // Logs on stderr: warnings (a dead letter, say) by default; more with
    // RUST_LOG, e.g. `RUST_LOG=maslite_runtime=debug`.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_thread_names(true)
        .with_writer(std::io::stderr)
        .try_init();
    for line in run()? {
        println!("{line}");
    }
    Ok(())
}
