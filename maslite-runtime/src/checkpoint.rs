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
use crate::report::{RuntimeReport, StopReason};
use crate::runtime::Runtime;
use maslite_core::{RunOptions, Types};
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

/// When and where a run writes checkpoints (see the [module docs](self)).
///
/// ```
/// use maslite_runtime::{Checkpoints, Runtime};
/// use maslite_core::{RunOptions, Types};
///
/// let path = std::env::temp_dir().join(format!("doc-{}.snap", std::process::id()));
/// let mut checkpoints = Checkpoints::every(10.0, &path, Types::new()).unwrap();
/// let mut rt = Runtime::new(1).unwrap();
/// rt.run_with_checkpoints(RunOptions::new().seconds(25.0).pause_if_idle(false), &mut checkpoints)
///     .unwrap();
/// assert_eq!(rt.now(), 25.0);
/// assert_eq!(checkpoints.written(), 2); // at 10 and 20
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

    /// The first checkpoint time after `now`.
    fn next_after(&self, now: f64) -> f64 {
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
        maslite_core::Error::SnapshotIo(format!("{what} {}: {e}", path.display()))
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

impl Runtime {
    /// [`run_with`](Self::run_with), writing a checkpoint at every multiple
    /// of the period the clock reaches (see the [`checkpoint`](crate::checkpoint)
    /// module). The report covers the whole run. A run limited by
    /// [`iterations`](RunOptions::iterations) cannot be cut by time:
    /// [`Error::Config`].
    ///
    /// A checkpoint that cannot be written fails the run with the reason
    /// (what cannot be saved, [`Error::CannotSave`]; the disk's,
    /// [`Error::SnapshotIo`]), the simulation stopped at the checkpoint
    /// time and intact.
    pub fn run_with_checkpoints(
        &mut self,
        opts: RunOptions,
        checkpoints: &mut Checkpoints,
    ) -> Result<RuntimeReport> {
        if opts.rounds_limit().is_some() {
            return Err(Error::Config(
                "checkpoints cut a run by time; a run limited by iterations cannot be cut".into(),
            ));
        }
        let end = opts.end_from(self.now())?;
        let mut whole: Option<RuntimeReport> = None;
        loop {
            let cut = checkpoints.next_after(self.now());
            let last = end.is_some_and(|e| e <= cut);
            // Each piece runs to an absolute time; those before the last
            // keep their alarms: the run goes on after them.
            let piece = RunOptions::new().pause_if_idle(opts.pauses_if_idle());
            let piece = match end {
                Some(e) if last => piece.until(e).clear_alarms_at_end(opts.clears_alarms_at_end()),
                _ => piece.until(cut).clear_alarms_at_end(false),
            };
            let report = self.run_with(piece)?;
            let reason = report.reason;
            match whole.as_mut() {
                Some(w) => w.absorb(report),
                None => whole = Some(report),
            }
            if last || reason != StopReason::TimeLimit || self.now() < cut {
                break;
            }
            if self.kept_awake_anywhere()? {
                tracing::warn!(
                    at = cut,
                    "a checkpoint cuts the run while agents are kept awake: they get one more \
                     update at the cut, as at the start of every run"
                );
            }
            let types = &checkpoints.types;
            let image = self.image(types)?;
            write_atomically(&checkpoints.path, |out| image.write(types, out))?;
            checkpoints.written += 1;
            tracing::debug!(at = cut, path = %checkpoints.path.display(), "checkpoint written");
        }
        Ok(whole.expect("at least one piece ran"))
    }

    /// Whether some partition keeps an agent awake.
    fn kept_awake_anywhere(&mut self) -> Result<bool> {
        let mut any = false;
        for q in 0..self.partitions() {
            if self.is_local(q) {
                any |= self.with_driver(q, |d| d.kept_awake() > 0)?;
            }
        }
        Ok(any)
    }
}
