//! How a runtime is set up, once checked: the partitions, the way they keep
//! time, the threads. [`Builder`](crate::Builder) gathers the choices and
//! [`Config::checked`] validates them, in one place.

use crate::error::{Error, Result};
use crate::transport::Placement;
use std::time::Duration;

/// How the partitions keep time together: one type per way of running.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Mode {
    /// Simulated clock; every partition takes every step (see
    /// [`lockstep`](crate::lockstep)).
    Lockstep,
    /// Simulated clock; partitions run windows of this many seconds on
    /// their own (lookahead windows, see [`lockstep`](crate::lockstep)).
    Lookahead(f64),
    /// The real-time clock, free mode: mail crosses as soon as it can.
    RealTime,
}

impl Mode {
    /// The lookahead: the windows' length, 0 outside lookahead windows.
    pub(crate) fn lookahead(self) -> f64 {
        match self {
            Mode::Lookahead(l) => l,
            _ => 0.0,
        }
    }
}

/// A runtime's set-up, checked.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) partitions: usize,
    pub(crate) mode: Mode,
    /// How long a partition spins before parking its thread.
    pub(crate) spin: Duration,
    /// Partitions are pinned to cores.
    pub(crate) pin: bool,
}

/// The choices a builder gathers, unchecked.
#[derive(Clone, Debug)]
pub(crate) struct Choices {
    pub(crate) partitions: usize,
    pub(crate) lookahead: f64,
    pub(crate) real_time: bool,
    pub(crate) spin: Option<Duration>,
    pub(crate) pin: bool,
}

impl Default for Choices {
    fn default() -> Self {
        Choices { partitions: 1, lookahead: 0.0, real_time: false, spin: None, pin: true }
    }
}

impl Config {
    /// Checks `choices` (and a placement over hosts, if any); `own_cores`:
    /// every partition of this host has a core of its own (then the
    /// default spin is 50 µs, 200 µs with lookahead windows; else 0).
    pub(crate) fn checked(
        choices: &Choices,
        placement: Option<&Placement>,
        own_cores: bool,
    ) -> Result<Config> {
        let Choices { partitions, lookahead, real_time, spin, pin } = *choices;
        if partitions == 0 || partitions > u16::MAX as usize {
            return Err(Error::Config(format!(
                "partitions must be 1..={}, not {partitions}",
                u16::MAX
            )));
        }
        if !lookahead.is_finite() || lookahead < 0.0 {
            return Err(Error::Config(format!(
                "lookahead must be finite and >= 0, not {lookahead}"
            )));
        }
        let mode = match (real_time, lookahead > 0.0) {
            (true, true) => {
                return Err(Error::Config("lookahead applies to the simulated clock only".into()))
            }
            (true, false) => Mode::RealTime,
            (false, true) => Mode::Lookahead(lookahead),
            (false, false) => Mode::Lockstep,
        };
        if let Some(placement) = placement {
            if placement.partitions() != partitions {
                return Err(Error::Config(format!(
                    "the placement has {} partitions, the runtime {partitions}",
                    placement.partitions(),
                )));
            }
            if mode == Mode::RealTime {
                return Err(Error::Config(
                    "partitions on several hosts run on the simulated clock only".into(),
                ));
            }
        }
        let default_spin = match mode {
            _ if !own_cores => Duration::ZERO,
            // A window's end waits for the slowest partition: a wait
            // longer than 50 µs is common there (a window is some 100 µs
            // of work, and the host takes a core now and then), and
            // parking adds a wake-up to it. PHOLD on 2 partitions, five
            // rounds: 10.27 M events/s with 200 µs, 10.04 M with 50
            // (BENCHMARKS.md, ninth session).
            Mode::Lookahead(_) => Duration::from_micros(200),
            _ => Duration::from_micros(50),
        };
        Ok(Config { partitions, mode, spin: spin.unwrap_or(default_spin), pin })
    }
}
