//! Live figures of a running system: per-partition gauges, and a periodic
//! progress stream built from them.
//!
//! Each partition stores its clock and its counts of updates and messages
//! in its own gauge once per step (relaxed atomic stores, on a cache line
//! of its own: nothing per message, no lock). Readers — [`Runtime::progress`]'s
//! sampler thread, [`Service::stats`](crate::Service::stats) — add them up
//! whenever they like; a reading is a moment's picture, not a transaction.
//!
//! [`Runtime::progress`]: crate::Runtime::progress

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// One partition's live figures.
#[derive(Debug)]
#[repr(align(128))]
pub(crate) struct Gauge {
    /// The clock's bits; [`UNSEEN`] until the partition publishes (a
    /// partition of another host never does here).
    now: AtomicU64,
    messages: AtomicU64,
    updates: AtomicU64,
}

/// A gauge's clock before its partition published: a NaN, which
/// [`f64::min`] passes over.
const UNSEEN: u64 = u64::MAX;

impl Default for Gauge {
    fn default() -> Gauge {
        Gauge {
            now: AtomicU64::new(UNSEEN),
            messages: AtomicU64::new(0),
            updates: AtomicU64::new(0),
        }
    }
}

impl Gauge {
    /// Publishes the partition's clock and totals (called once per step).
    #[inline]
    pub fn publish(&self, now: f64, stats: &maslite_core::Stats) {
        self.now.store(now.to_bits(), Ordering::Relaxed);
        self.messages.store(stats.messages, Ordering::Relaxed);
        self.updates.store(stats.polls, Ordering::Relaxed);
    }
}

/// Every partition's gauge, shared by the partitions and the readers.
#[derive(Debug, Clone)]
pub(crate) struct Gauges(Arc<[Gauge]>);

impl Gauges {
    pub fn new(partitions: usize) -> Gauges {
        Gauges((0..partitions).map(|_| Gauge::default()).collect())
    }

    pub fn of(&self, partition: usize) -> &Gauge {
        &self.0[partition]
    }

    /// The sums: (clock, messages, updates). The clock is the earliest of
    /// the partitions' that published (in a lookahead window some run
    /// ahead; on several hosts the others' partitions never publish here),
    /// 0 before any did.
    pub fn read(&self) -> (f64, u64, u64) {
        let mut now = f64::INFINITY;
        let (mut messages, mut updates) = (0, 0);
        for g in self.0.iter() {
            now = now.min(f64::from_bits(g.now.load(Ordering::Relaxed)));
            messages += g.messages.load(Ordering::Relaxed);
            updates += g.updates.load(Ordering::Relaxed);
        }
        (if now.is_finite() { now } else { 0.0 }, messages, updates)
    }
}

/// A sample of a run's progress (see [`Runtime::progress`](crate::Runtime::progress)).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProgressSample {
    /// The system's clock (simulated or real), in seconds.
    pub now: f64,
    /// Wall time since the progress stream started.
    pub wall: Duration,
    /// Clock seconds per wall second since the stream started.
    pub ratio: f64,
    /// Messages delivered since the stream started, all partitions.
    pub messages: u64,
    /// Messages per wall second over the last interval.
    pub messages_per_second: f64,
    /// Agent updates since the stream started, all partitions.
    pub updates: u64,
}

/// A periodic stream of [`ProgressSample`]s, from
/// [`Runtime::progress`](crate::Runtime::progress).
///
/// Use it as a [`Stream`](futures::Stream) in async code, or call
/// [`next_blocking`](Progress::next_blocking) from a thread of
/// its own. It ends when the runtime stops. A sample the reader has not
/// taken when the next one is due is skipped, never queued: progress never
/// slows the run or grows memory.
#[derive(Debug)]
pub struct Progress {
    rx: mpsc::Receiver<ProgressSample>,
}

impl Progress {
    /// Starts the sampler thread: every `every`, it reads the gauges and
    /// offers a sample.
    pub(crate) fn start(
        gauges: Gauges,
        every: Duration,
        alive: tokio_util::sync::CancellationToken,
    ) -> Progress {
        let (tx, rx) = mpsc::channel(1);
        let every = every.max(Duration::from_millis(1));
        let spawned =
            std::thread::Builder::new().name("maslite-progress".into()).spawn(move || {
                let start = Instant::now();
                let (now0, messages0, updates0) = gauges.read();
                let mut last = (start, messages0);
                loop {
                    std::thread::sleep(every);
                    if alive.is_cancelled() || tx.is_closed() {
                        return;
                    }
                    let (now, messages, updates) = gauges.read();
                    let at = Instant::now();
                    let wall = at - start;
                    let dt = (at - last.0).as_secs_f64();
                    let sample = ProgressSample {
                        now,
                        wall,
                        ratio: (now - now0) / wall.as_secs_f64().max(1e-9),
                        messages: messages - messages0,
                        messages_per_second: (messages - last.1) as f64 / dt.max(1e-9),
                        updates: updates - updates0,
                    };
                    last = (at, messages);
                    // A reader that has not taken the last sample skips this one.
                    let _ = tx.try_send(sample);
                }
            });
        if spawned.is_err() {
            // No thread: the stream ends at once (the receiver sees it closed).
            tracing::warn!("maslite: could not start the progress thread");
        }
        Progress { rx }
    }

    /// The next sample, blocking this thread (for non-async code); `None`
    /// once the runtime has stopped. Do not call it from async code: use
    /// the stream.
    pub fn next_blocking(&mut self) -> Option<ProgressSample> {
        self.rx.blocking_recv()
    }
}

impl futures::Stream for Progress {
    type Item = ProgressSample;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ProgressSample>> {
        self.rx.poll_recv(cx)
    }
}
