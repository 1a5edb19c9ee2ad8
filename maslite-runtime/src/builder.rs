//! Building a runtime: the choices, checked once ([`Config`]), then the
//! partitions' threads (pinned to cores when there are enough) and the
//! transport's, if the partitions span several hosts.

use crate::config::{Choices, Config};
use crate::error::{Error, Result};
use crate::exchange::Wires;
use crate::partition::{thread_main, PartitionThread, Seed};
use crate::progress::Gauges;
use crate::runtime::{Handle, Runtime, Started};
use crate::transport::{HostWires, Transport};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

impl Runtime {
    /// A runtime with the defaults: see [`Builder`].
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// `n` partitions on the simulated clock, lockstep.
    pub fn new(n: usize) -> Result<Runtime> {
        Runtime::builder().partitions(n).build()
    }
}

/// Builds a [`Runtime`].
///
/// ```
/// use maslite_runtime::Runtime;
/// let rt = Runtime::builder().partitions(2).lookahead(0.5).build().unwrap();
/// assert_eq!(rt.partitions(), 2);
/// ```
#[derive(Default)]
pub struct Builder {
    choices: Choices,
    cancel: Option<CancellationToken>,
    transport: Option<Box<dyn Transport>>,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("choices", &self.choices)
            .field("placement", &self.transport.as_ref().map(|t| t.placement()))
            .finish()
    }
}

impl Builder {
    /// The number of partitions (default 1).
    pub fn partitions(mut self, n: usize) -> Builder {
        self.choices.partitions = n;
        self
    }

    /// Declares a lookahead `L` ≥ 0 (default 0) for the simulated clock: a
    /// promise that nothing crosses partitions sooner than `L` seconds
    /// after it is sent (agents on different partitions talk only through
    /// alarms at least `L` ahead). Partitions then run windows of `L`
    /// seconds on their own; a send that breaks the promise is an
    /// [`Error::LookaheadBroken`].
    pub fn lookahead(mut self, seconds: f64) -> Builder {
        self.choices.lookahead = seconds;
        self
    }

    /// Runs on the real-time clock in free mode: no rounds in step, mail
    /// crosses partitions as soon as it can, alarms fire on wall time.
    pub fn real_time(mut self) -> Builder {
        self.choices.real_time = true;
        self
    }

    /// Runs on the simulated clock (the default of [`Runtime::builder`];
    /// [`Service::builder`](crate::Service::builder) starts from the real
    /// one).
    pub fn simulated(mut self) -> Builder {
        self.choices.real_time = false;
        self
    }

    /// How long a partition spins waiting for another before parking its
    /// thread (default, when every partition has a core of its own: 50
    /// µs, and 200 µs with lookahead windows, whose ends wait longer;
    /// else 0).
    pub fn spin(mut self, spin: Duration) -> Builder {
        self.choices.spin = Some(spin);
        self
    }

    /// Pins partition `p` to core `p` when there are at least as many cores
    /// as partitions (default `true`); quietly unpinned otherwise.
    pub fn pin_cores(mut self, on: bool) -> Builder {
        self.choices.pin = on;
        self
    }

    /// Uses `token` (or a child of an application's token) to stop every
    /// partition: cancelling it stops a run at the end of its step, with
    /// [`StopReason::Cancelled`](crate::StopReason::Cancelled).
    pub fn cancel_token(mut self, token: CancellationToken) -> Builder {
        self.cancel = Some(token);
        self
    }

    /// Runs this host's share of partitions spread over several hosts
    /// (processes, machines): `transport` says which host runs which
    /// partition and carries the packets between hosts. Every host runs
    /// the same program (see [`transport`](crate::transport)). The
    /// simulated clock only (lockstep or lookahead windows).
    pub fn transport(mut self, transport: impl Transport) -> Builder {
        self.transport = Some(Box::new(transport));
        self
    }

    /// Starts the partitions' threads (and the transport's, if any).
    pub fn build(self) -> Result<Runtime> {
        let placement = self.transport.as_ref().map(|t| t.placement().clone());
        let partitions = self.choices.partitions;
        let local: Vec<bool> = (0..partitions.min(u16::MAX as usize + 1))
            .map(|p| placement.as_ref().is_none_or(|pl| pl.is_local(p)))
            .collect();
        let cores = core_affinity::get_core_ids().unwrap_or_default();
        let here = local.iter().filter(|&&l| l).count();
        let own_cores = cores.len() >= here;
        let config = Config::checked(&self.choices, placement.as_ref(), own_cores)?;
        let spin = config.spin;
        let config = Arc::new(config);
        // A child: stopping the runtime must not cancel the application's token.
        let cancel = self.cancel.map(|t| t.child_token()).unwrap_or_default();
        let mut parts: Vec<Handle> = Vec::with_capacity(config.partitions);
        let gauges = Gauges::new(config.partitions);
        // Partition p on core p mod cores, unless two of this host's
        // partitions would share one: then in order.
        let mut core_of: Vec<usize> = (0..config.partitions)
            .map(|p| if cores.is_empty() { 0 } else { p % cores.len() })
            .collect();
        let mut taken: Vec<usize> =
            (0..config.partitions).filter(|&p| local[p]).map(|p| core_of[p]).collect();
        taken.sort_unstable();
        taken.dedup();
        if taken.len() < here {
            for (rank, p) in (0..config.partitions).filter(|&p| local[p]).enumerate() {
                core_of[p] = rank;
            }
        }
        let (wires, outgoing, feeds) = Wires::hosted(&local, spin);
        let lost: Arc<[std::sync::OnceLock<Error>]> =
            (0..config.partitions).map(|_| std::sync::OnceLock::new()).collect();
        for (me, wires) in wires.into_iter().enumerate() {
            let Some(mut wires) = wires else {
                parts.push(Handle { cmds: None, queued: Vec::new(), thread: None });
                continue;
            };
            wires.lost = Some(lost.clone());
            // By the partition's number, not its rank here: hosts sharing a
            // machine (two processes trying a placement) then pin their
            // partitions to different cores.
            let core = (config.pin && own_cores).then(|| cores[core_of[me]]);
            let (tx, rx) = mpsc::unbounded_channel();
            let seed = Seed {
                me,
                count: config.partitions,
                wires,
                cancel: cancel.clone(),
                config: config.clone(),
                cmds: rx,
                gauges: gauges.clone(),
            };
            let name = format!("maslite-p{me}");
            let thread = match PartitionThread::spawn(name, core, move || thread_main(seed)) {
                Ok(thread) => thread,
                Err(e) => {
                    // Stop the partitions already started.
                    stop_started(&cancel, &mut parts);
                    return Err(Error::Config(format!("cannot start a partition thread: {e}")));
                }
            };
            parts.push(Handle { cmds: Some(tx), queued: Vec::new(), thread: Some(thread) });
        }
        // The transport last: it ends when the partitions are gone.
        let stopping = CancellationToken::new();
        let mut transport_thread = None;
        if let (Some(transport), Some(placement)) = (self.transport, placement.clone()) {
            let host_wires = HostWires::new(outgoing, feeds, lost, placement, stopping.clone());
            match transport.start(host_wires) {
                Ok(thread) => transport_thread = Some(thread),
                Err(e) => {
                    stop_started(&cancel, &mut parts);
                    return Err(e);
                }
            }
        }
        Ok(Runtime::started(Started {
            config,
            placement,
            transport_thread,
            stopping,
            parts,
            cancel,
            gauges,
        }))
    }
}

/// Stops the partitions a failed `build` had started.
fn stop_started(cancel: &CancellationToken, parts: &mut [Handle]) {
    cancel.cancel();
    for part in parts {
        part.cmds = None;
        if let Some(t) = part.thread.take() {
            let _ = t.wait(Duration::ZERO);
        }
    }
}
