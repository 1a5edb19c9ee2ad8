//! Waiting for another thread: spin briefly, then park.
//!
//! Waking a parked thread costs tens of microseconds on these machines —
//! more than a whole step of a small model. So the runtime's blocking calls
//! and the partitions' command loops first poll for a short while (yielding
//! the core between polls, in case the thread they wait for needs it), and
//! only then park.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs `future` to completion on this thread: polls it for up to `spin`,
/// then parks between wake-ups.
///
/// Called from inside a tokio task (a runtime dropped or stopped there), the
/// future is polled outside tokio's cooperative budget: a task that has
/// spent its budget gets `Pending` from tokio's channels with its waker
/// deferred until the worker parks — and this call blocks the worker, so
/// it would wait for ever.
pub(crate) fn block_on<F: Future>(future: F, spin: Duration) -> F::Output {
    let mut future = pin!(tokio::task::unconstrained(future));
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let start = Instant::now();
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        if start.elapsed() < spin {
            std::thread::yield_now();
        } else {
            std::thread::park();
        }
    }
}
