//! Checkpoints: a long run writes its whole simulation to a file every so
//! many simulated seconds, so that a run killed at hour five resumes from
//! the last checkpoint instead of from zero.
//!
//! The run is cut at the checkpoint times (multiples of the period, on the
//! simulated clock: a resumed run cuts at the same times) into runs of its
//! own, and the snapshot is written between them. A run cut at a time
//! limit and resumed tells the uninterrupted run's story — with one
//! exception, which is maslite's: a run begins with a round, and an agent
//! kept awake is updated in every round, so such an agent gets one more
//! update at each cut (a warning says so when it happens).
//!
//! Each checkpoint is written beside its path, flushed to the disk, and
//! renamed over it: a kill during the write leaves the last good one. No
//! checkpoint, no cost: a run without them does nothing of this.

use crate::error::{Error, Result};
use crate::scheduler::{RunOptions, RunReport, Scheduler, StopReason};
use crate::snapshot::Image;
use crate::types::Types;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

/// When and where a run writes checkpoints (see the [module docs](self)).
///
/// ```
/// use maslite_core::{Checkpoints, RunOptions, Scheduler, Types};
///
/// let path = std::env::temp_dir().join(format!("doc-{}.snap", std::process::id()));
/// let mut checkpoints = Checkpoints::every(10.0, &path, Types::new()).unwrap();
/// let mut s = Scheduler::simulated();
/// let opts = RunOptions::new().seconds(25.0).pause_if_idle(false);
/// s.run_with_checkpoints(opts, &mut checkpoints).unwrap();
/// assert_eq!(s.now(), 25.0);
/// assert_eq!(checkpoints.written(), 2); // at 10 and 20
/// // The last one, resumed, reads 20.
/// let resumed = Scheduler::restore(checkpoints.types(), std::fs::File::open(&path).unwrap());
/// assert_eq!(resumed.unwrap().now(), 20.0);
/// # std::fs::remove_file(&path).unwrap();
/// ```
#[derive(Debug)]
pub struct Checkpoints {
    every: f64,
    path: PathBuf,
    types: Types,
    written: u64,
}

impl Checkpoints {
    /// A checkpoint every `seconds` of simulated time (at each multiple of
    /// it), written to `path`, with the agent and payload types of `types`.
    /// Errors: a period that is not a positive, finite number
    /// ([`Error::InvalidTime`]).
    pub fn every(seconds: f64, path: impl AsRef<Path>, types: Types) -> Result<Checkpoints> {
        if !seconds.is_finite() || seconds <= 0.0 {
            return Err(Error::InvalidTime(seconds));
        }
        Ok(Checkpoints { every: seconds, path: path.as_ref().to_path_buf(), types, written: 0 })
    }

    /// Checkpoints written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Where they are written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The registry they are written with.
    pub fn types(&self) -> &Types {
        &self.types
    }

    /// The first checkpoint time after `now` (a multiple of the period).
    pub fn next_after(&self, now: f64) -> f64 {
        let mut t = ((now / self.every).floor() + 1.0) * self.every;
        while t <= now {
            // Rounding at large times: the next representable multiple.
            t += self.every;
        }
        t
    }
}

/// Writes `path` atomically: to a file beside it, flushed to the disk,
/// then renamed over it (and the directory synced, where the platform
/// allows), so that a reader — or a restart after a kill — finds the old
/// file or the new one, never half of one.
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<()>,
) -> Result<()> {
    let io = |what: &str, e: std::io::Error| {
        Error::SnapshotIo(format!("{what} {}: {e}", path.display()))
    };
    let mut beside = path.as_os_str().to_owned();
    beside.push(".part");
    let beside = PathBuf::from(beside);
    let file = File::create(&beside).map_err(|e| io("creating beside", e))?;
    let mut out = BufWriter::new(file);
    write(&mut out)?;
    let file = out.into_inner().map_err(|e| io("writing", e.into_error()))?;
    file.sync_all().map_err(|e| io("syncing", e))?;
    drop(file);
    std::fs::rename(&beside, path).map_err(|e| io("renaming onto", e))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // Makes the rename itself durable (not possible everywhere).
        if let Ok(dir) = File::open(dir) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}

/// What a checkpointed run needs of the system it runs: a
/// [`Scheduler`], or a runtime of partitions (which implements it too).
pub trait Checkpointed {
    /// What one run reports.
    type Report;

    /// The clock.
    fn clock(&self) -> f64;

    /// Runs one piece.
    fn run_piece(&mut self, opts: RunOptions) -> Result<Self::Report>;

    /// Why a piece stopped.
    fn stopped_for(report: &Self::Report) -> StopReason;

    /// Adds the report of the next piece to the run's.
    fn absorb(whole: &mut Self::Report, next: Self::Report);

    /// Whether some agent is kept awake (and so sees the cut).
    fn any_kept_awake(&mut self) -> Result<bool>;

    /// The whole simulation, to write.
    fn save(&mut self, types: &Types) -> Result<Image>;
}

/// Runs `system` under `opts`, writing a checkpoint at every multiple of
/// the period the clock reaches (see the [module docs](self)); the report
/// covers the whole run. A run limited by
/// [`iterations`](RunOptions::iterations) cannot be cut by time
/// ([`Error::InvalidCheckpoints`]).
///
/// A checkpoint that cannot be written fails the run with the reason
/// (what cannot be saved, [`Error::CannotSave`]; the disk's,
/// [`Error::SnapshotIo`]), the simulation stopped at the checkpoint time
/// and intact.
pub fn run_with_checkpoints<S: Checkpointed>(
    system: &mut S,
    opts: RunOptions,
    checkpoints: &mut Checkpoints,
) -> Result<S::Report> {
    if opts.rounds_limit().is_some() {
        return Err(Error::InvalidCheckpoints(
            "checkpoints cut a run by time; a run limited by iterations cannot be cut".into(),
        ));
    }
    let end = opts.end_from(system.clock())?;
    let mut whole: Option<S::Report> = None;
    loop {
        let cut = checkpoints.next_after(system.clock());
        let last = end.is_some_and(|e| e <= cut);
        // Each piece runs to an absolute time; those before the last keep
        // their alarms: the run goes on after them.
        let piece = RunOptions::new().pause_if_idle(opts.pauses_if_idle());
        let piece = match end {
            Some(e) if last => piece.until(e).clear_alarms_at_end(opts.clears_alarms_at_end()),
            _ => piece.until(cut).clear_alarms_at_end(false),
        };
        let report = system.run_piece(piece)?;
        let reason = S::stopped_for(&report);
        match whole.as_mut() {
            Some(w) => S::absorb(w, report),
            None => whole = Some(report),
        }
        if last || reason != StopReason::TimeLimit || system.clock() < cut {
            break;
        }
        if system.any_kept_awake()? {
            tracing::warn!(
                at = cut,
                "a checkpoint cuts the run while agents are kept awake: they get one more \
                 update at the cut, as at the start of every run"
            );
        }
        let image = system.save(&checkpoints.types)?;
        let types = &checkpoints.types;
        write_atomically(&checkpoints.path, |out| image.write(types, out))?;
        checkpoints.written += 1;
        tracing::debug!(at = cut, path = %checkpoints.path.display(), "checkpoint written");
    }
    Ok(whole.expect("at least one piece ran"))
}

impl Checkpointed for Scheduler {
    type Report = RunReport;

    fn clock(&self) -> f64 {
        self.now()
    }

    fn run_piece(&mut self, opts: RunOptions) -> Result<RunReport> {
        self.run_with(opts)
    }

    fn stopped_for(report: &RunReport) -> StopReason {
        report.reason
    }

    fn absorb(whole: &mut RunReport, next: RunReport) {
        whole.absorb(next);
    }

    fn any_kept_awake(&mut self) -> Result<bool> {
        Ok(self.kept_awake_count() > 0)
    }

    fn save(&mut self, types: &Types) -> Result<Image> {
        self.image(types)
    }
}

impl Scheduler {
    /// [`run_with`](Self::run_with), writing a checkpoint at every multiple
    /// of the period the clock reaches (see [`checkpoint`](crate::checkpoint)).
    pub fn run_with_checkpoints(
        &mut self,
        opts: RunOptions,
        checkpoints: &mut Checkpoints,
    ) -> Result<RunReport> {
        run_with_checkpoints(self, opts, checkpoints)
    }
}
