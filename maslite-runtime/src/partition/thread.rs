//! A partition's OS thread, and how the handle learns that it has ended.
//!
//! The handle waits for the thread's last word, sent once everything the
//! partition held (its kernel, its agents, its tokio runtime) has been
//! dropped, and not for the OS thread's exit. That exit frees the stack and
//! the allocator's thread cache, with a TLB shoot-down on every core. It
//! took 60–100 µs per thread on the 2-core machines here, more than the
//! whole run of a small model. Tokio's blocking pool waits for its threads
//! the same way. The thread is then detached, and ends on its own.
//!
//! A panic that ended the thread is in its last word, so a thread that died
//! is still reported by name.

use crate::partition::panic_message;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;
use tokio::sync::oneshot;

/// A running partition's thread.
pub(crate) struct PartitionThread {
    /// `Err(message)` if the thread's body panicked.
    last_word: oneshot::Receiver<Result<(), String>>,
}

impl PartitionThread {
    /// Starts `body` on a new thread named `name`.
    pub fn spawn(name: String, body: impl FnOnce() + Send + 'static) -> std::io::Result<Self> {
        let (tx, last_word) = oneshot::channel();
        // Dropping the join handle detaches the thread: its end is awaited
        // through `last_word`.
        drop(std::thread::Builder::new().name(name).spawn(move || {
            let ended = catch_unwind(AssertUnwindSafe(body)).map_err(|panic| {
                let message = panic_message(panic.as_ref());
                // A payload whose drop panics too must not take the word
                // with it.
                let _ = catch_unwind(AssertUnwindSafe(move || drop(panic)));
                message
            });
            let _ = tx.send(ended);
        })?);
        Ok(PartitionThread { last_word })
    }

    /// Waits until the thread's body has ended and dropped all it held
    /// (spinning up to `spin`, then parked): `Err(message)` if it panicked.
    pub fn wait(self, spin: Duration) -> Result<(), String> {
        match crate::wait::block_on(self.last_word, spin) {
            Ok(ended) => ended,
            // Only if the thread was killed: the body's panic is caught,
            // told, and its payload dropped under a guard.
            Err(_) => Err("it ended without a word".to_string()),
        }
    }
}
