//! Clocks: simulated time that jumps, or wall time that flows.
//!
//! Time is an `f64` of seconds, as in maslite. The simulated clock starts at
//! 0 and moves only when the scheduler finds the system idle: then it jumps
//! to the earliest alarm. The real-time clock reads seconds since the Unix
//! epoch, taken from a monotonic clock so that it never runs backwards.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Which clock a scheduler runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Clock {
    /// Simulated time: starts at 0, jumps to the next alarm when idle.
    #[default]
    Simulated,
    /// Wall time in seconds since the Unix epoch; the scheduler sleeps until
    /// the next alarm when idle.
    RealTime,
}

/// The running clock of a scheduler.
pub(crate) enum TimeSource {
    Simulated { now: f64 },
    RealTime { origin: Instant, origin_unix: f64 },
}

impl TimeSource {
    pub fn new(clock: Clock) -> TimeSource {
        match clock {
            Clock::Simulated => TimeSource::Simulated { now: 0.0 },
            Clock::RealTime => TimeSource::RealTime {
                origin: Instant::now(),
                origin_unix: SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs_f64())
                    .unwrap_or(0.0),
            },
        }
    }

    pub fn is_simulated(&self) -> bool {
        matches!(self, TimeSource::Simulated { .. })
    }

    /// Reads the clock (for real time: now).
    pub fn read(&self) -> f64 {
        match self {
            TimeSource::Simulated { now } => *now,
            TimeSource::RealTime { origin, origin_unix } => {
                origin_unix + origin.elapsed().as_secs_f64()
            }
        }
    }

    /// Moves simulated time forward to `t` (never backwards).
    pub fn jump_to(&mut self, t: f64) {
        if let TimeSource::Simulated { now } = self {
            if t > *now {
                *now = t;
            }
        }
    }

    /// The wall instant at which the real clock reads `t`.
    pub fn instant_of(&self, t: f64) -> Option<Instant> {
        match self {
            TimeSource::Simulated { .. } => None,
            TimeSource::RealTime { origin, origin_unix } => {
                let secs = (t - origin_unix).max(0.0);
                Some(*origin + std::time::Duration::from_secs_f64(secs.min(1e9)))
            }
        }
    }
}
