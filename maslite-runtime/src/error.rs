//! The runtime returns the kernel's one [`Error`]: a program fails with the
//! same value on a bare `Scheduler` and on any number of partitions (the
//! variants only a runtime can return are documented there). Here: which
//! of several partitions' errors explains a failed run best.

pub use maslite_core::{Error, Result};

/// How much this error explains a failed run: the cause ranks above its
/// consequences (a peer seen dying, a stop).
pub(crate) fn rank(e: &Error) -> u8 {
    match e {
        Error::Stopped | Error::Full => 0,
        Error::Config(_) | Error::NoPartition { .. } | Error::NotLocal { .. } => 1,
        Error::PartitionDied { .. } | Error::Transport { .. } => 2,
        // An agent's failure, bad input inside a run, a broken lookahead,
        // an unregistered payload: the cause.
        _ => 3,
    }
}
