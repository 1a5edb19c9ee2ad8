//! What a host dropped from the network, counted.
//!
//! With a run key, a frame or beat that is not provably from another host
//! of the run and for this host is dropped, never acted on: failing the
//! run instead would let anyone who can publish on the server stop it. So
//! such messages are counted here, by kind, and logged as warnings,
//! rate-limited (the 1st, 2nd, 4th, 8th… of each kind), so that a flood
//! of forgeries cannot flood the log either. Read the counts with
//! [`NatsTransport::rejections`](crate::NatsTransport::rejections).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// Why a message from the network was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// Not a frame of this protocol (too short, another magic).
    Malformed,
    /// Not for this host, from a host the run does not have, or claiming
    /// to come from this host itself.
    Foreign,
    /// Its tag does not verify under the link's key: forged, or made with
    /// another key, for another run or another session.
    Forged,
    /// Authentic, but its sequence number was taken already: a replay.
    Replayed,
    /// A heartbeat (or bye) that is not authentic, or replayed.
    Beat,
}

impl Rejection {
    const ALL: [Rejection; 5] = [
        Rejection::Malformed,
        Rejection::Foreign,
        Rejection::Forged,
        Rejection::Replayed,
        Rejection::Beat,
    ];

    fn index(self) -> usize {
        self as usize
    }

    fn what(self) -> &'static str {
        match self {
            Rejection::Malformed => "malformed frame",
            Rejection::Foreign => "frame not from another host of this run to this host",
            Rejection::Forged => "forged frame (its tag does not verify)",
            Rejection::Replayed => "replayed frame (sequence taken already)",
            Rejection::Beat => "forged or replayed heartbeat",
        }
    }
}

/// Counts of dropped messages, by [`Rejection`]; a cheap clone shares
/// them.
#[derive(Clone, Debug, Default)]
pub struct Rejections(Arc<[AtomicU64; 5]>);

impl Rejections {
    /// All zero.
    pub fn new() -> Rejections {
        Rejections::default()
    }

    /// Counts one of `kind`, on host `me` (claimed to come from host
    /// `from`, when it says), and logs it if its count is a power of two.
    pub fn count(&self, kind: Rejection, me: u16, from: Option<u16>) {
        let n = self.0[kind.index()].fetch_add(1, Relaxed) + 1;
        if n.is_power_of_two() {
            match from {
                Some(from) => tracing::warn!(
                    host = me,
                    claimed_from = from,
                    count = n,
                    "dropped a {} (not acted on)",
                    kind.what()
                ),
                None => {
                    tracing::warn!(host = me, count = n, "dropped a {} (not acted on)", kind.what())
                }
            }
        }
    }

    /// How many of `kind` were dropped.
    pub fn get(&self, kind: Rejection) -> u64 {
        self.0[kind.index()].load(Relaxed)
    }

    /// How many were dropped, all kinds.
    pub fn total(&self) -> u64 {
        Rejection::ALL.iter().map(|&k| self.get(k)).sum()
    }
}
