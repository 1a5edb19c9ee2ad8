//! The seam between partitions and the hosts they run on.
//!
//! On one machine, partitions hand each other [`Packet`]s through channels.
//! When a model outgrows the machine, its partitions run on several hosts
//! (processes): a [`Placement`] says which host runs which partition, and a
//! [`Transport`] carries the packets between this host's partitions and
//! the others'. The partitions' protocol — controls, then mail, every step —
//! is the same either way, so the results are the same: one simulated
//! clock, and the same trace whatever the placement.
//!
//! Every host runs the same program: it builds a runtime with the same
//! partition count and placement, adds the same agents in the same order,
//! sends the same messages from outside, and calls `run` the same number
//! of times with the same options. The runtime keeps only what belongs to
//! its own partitions: an agent added for a partition of another host is
//! given its id (and ordering key) here and dropped (an endpoint's stream
//! is then empty and closed here), and a message from
//! outside is posted by the host that holds its receiver (a broadcast, by
//! the host of partition 0). Ids and keys are then the same on every host.
//! Hosts that do not (other runs, other options) fail at the first step of
//! the run where they part, with an error that says so: every control
//! carries its run's number and options, hashed.
//! What only one host can do — read an agent
//! ([`with_agent`](crate::Runtime::with_agent)) or a partition — is
//! [`Error::NotLocal`] elsewhere: ask [`Runtime::is_local`](crate::Runtime::is_local) first.
//!
//! A transport gets [`HostWires`]: a stream of [`Sent`] packets from local
//! partitions to remote ones, and [`HostWires::deliver`] for the packets that
//! arrive. It runs on a thread of its own ([`Transport::start`]) and ends
//! when the partitions are gone (the stream ends) or the runtime stops
//! ([`HostWires::stopping`]). When it learns that another host is gone (dead,
//! cut off, or left) it says so with [`HostWires::cut_host`] or
//! [`HostWires::fail`]: the local partitions waiting on that host stop with
//! [`Error::Transport`], which carries its words.
//!
//! # One clock across hosts, without a coordinator
//!
//! Each partition sends every other one — on this host or another — its
//! control at the end of every step, and all decide the next step from
//! the same controls (see [`lockstep`](crate::lockstep)). A control says
//! whether its sender has mail for the step, and the mail follows it on
//! the same wire, so a partition knows exactly which batches to wait for
//! before it decides: at every decision, everything sent has been
//! received. That is what a coordinator with Mattern's counters (sent and
//! received totals, equal and unchanged over two reports) would establish
//! for messages whose number in flight is unknown; here none is ever in
//! flight across a decision, and no step pays the extra hop to a
//! coordinator and back. Loss is caught instead by the transport (NATS's
//! frames are numbered per link), and a dead host by heartbeats.
//!
//! Two transports exist: [`InProcess`] (hosts as runtimes of one process,
//! for tests and for trying a placement), and NATS in the `maslite-nats`
//! crate.

use crate::error::{Error, Result};
pub use crate::exchange::{Control, Packet, Sent};
use std::sync::{Arc, OnceLock};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio_util::sync::CancellationToken;

/// Which host runs each partition, and which host this process is.
///
/// ```
/// use maslite_runtime::transport::Placement;
/// // 4 partitions on 2 hosts, in blocks: 0 and 1 on host 0, 2 and 3 on host 1.
/// let here = Placement::blocks(4, 2, 1).unwrap();
/// assert_eq!(here.local_partitions().collect::<Vec<_>>(), [2, 3]);
/// assert_eq!(here.host_of(0), 0);
/// assert!(Placement::new(vec![0, 0], 1).is_err()); // host 1 runs nothing
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    hosts: Vec<u16>,
    count: u16,
    me: u16,
}

impl Placement {
    /// Partition `p` runs on host `host_of[p]`; this process is host `me`.
    /// Hosts are numbered from 0, and every host runs at least one
    /// partition.
    pub fn new(host_of: Vec<u16>, me: u16) -> Result<Placement> {
        if host_of.is_empty() || host_of.len() > u16::MAX as usize {
            return Err(Error::Config(format!(
                "a placement needs 1..={} partitions, not {}",
                u16::MAX,
                host_of.len()
            )));
        }
        let count = host_of.iter().copied().max().unwrap_or(0) as usize + 1;
        for h in 0..count {
            if !host_of.contains(&(h as u16)) {
                return Err(Error::Config(format!(
                    "host {h} of {count} runs no partition (placement {host_of:?})"
                )));
            }
        }
        if me as usize >= count {
            return Err(Error::Config(format!(
                "this host is {me}, but the placement has hosts 0..{count}"
            )));
        }
        Ok(Placement { hosts: host_of, count: count as u16, me })
    }

    /// `partitions` partitions on `hosts` hosts in contiguous blocks (host
    /// `h` runs partitions `h·P/H .. (h+1)·P/H`); this process is host
    /// `me`.
    pub fn blocks(partitions: usize, hosts: u16, me: u16) -> Result<Placement> {
        if hosts == 0 || partitions < hosts as usize {
            return Err(Error::Config(format!(
                "{partitions} partitions cannot be spread over {hosts} hosts \
                 (each host runs at least one)"
            )));
        }
        let host_of = (0..partitions).map(|p| (p * hosts as usize / partitions) as u16).collect();
        Placement::new(host_of, me)
    }

    /// The number of partitions, on all hosts.
    pub fn partitions(&self) -> usize {
        self.hosts.len()
    }

    /// The number of hosts.
    pub fn hosts(&self) -> u16 {
        self.count
    }

    /// This host.
    pub fn me(&self) -> u16 {
        self.me
    }

    /// The host partition `p` runs on.
    pub fn host_of(&self, p: usize) -> u16 {
        self.hosts[p]
    }

    /// Whether partition `p` runs here.
    pub fn is_local(&self, p: usize) -> bool {
        self.hosts.get(p) == Some(&self.me)
    }

    /// The partitions that run here, in order.
    pub fn local_partitions(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.hosts.len()).filter(move |&p| self.hosts[p] == self.me)
    }

    /// The partitions host `h` runs, in order.
    pub fn partitions_of(&self, h: u16) -> impl Iterator<Item = usize> + '_ {
        (0..self.hosts.len()).filter(move |&p| self.hosts[p] == h)
    }
}

/// A transport's ends of the host_wires between this host's partitions and
/// the partitions of other hosts (see the [module docs](self)).
pub struct HostWires {
    /// Packets from partitions here to partitions elsewhere, in the order
    /// each partition sent them; ends when every local partition is gone.
    pub outgoing: UnboundedReceiver<Sent>,
    feeds: Vec<Vec<Option<UnboundedSender<Packet>>>>,
    lost: Arc<[OnceLock<Error>]>,
    placement: Placement,
    stopping: CancellationToken,
}

impl std::fmt::Debug for HostWires {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostWires").field("placement", &self.placement).finish_non_exhaustive()
    }
}

impl HostWires {
    pub(crate) fn new(
        outgoing: UnboundedReceiver<Sent>,
        feeds: Vec<Vec<Option<UnboundedSender<Packet>>>>,
        lost: Arc<[OnceLock<Error>]>,
        placement: Placement,
        stopping: CancellationToken,
    ) -> HostWires {
        HostWires { outgoing, feeds, lost, placement, stopping }
    }

    /// The placement the runtime was built with.
    pub fn placement(&self) -> &Placement {
        &self.placement
    }

    /// Cancelled when the runtime stops (dropped or
    /// [`stop`](crate::Runtime::stop)ped): the transport ends; its
    /// partitions are going.
    pub fn stopping(&self) -> CancellationToken {
        self.stopping.clone()
    }

    /// Hands a packet from partition `from` (elsewhere) to partition `to`
    /// (here). A pair that is not (remote, local) is an error naming it;
    /// a partition here that is gone drops the packet (it is stopping).
    pub fn deliver(&self, from: usize, to: usize, packet: Packet) -> Result<()> {
        let n = self.placement.partitions();
        let wrong =
            from >= n || to >= n || self.placement.is_local(from) || !self.placement.is_local(to);
        if wrong {
            return Err(Error::Transport {
                message: format!(
                    "a packet from partition {from} to partition {to} does not belong on host {} \
                     (placement {:?})",
                    self.placement.me, self.placement.hosts
                ),
            });
        }
        if let Some(tx) = &self.feeds[from][to] {
            let _ = tx.send(packet);
        }
        Ok(())
    }

    /// Host `host` is gone (`why` says how): the local partitions stop
    /// waiting for its partitions, and a run fails with
    /// [`Error::Transport`] carrying `why`.
    pub fn cut_host(&mut self, host: u16, why: &str) {
        self.cut_host_with(host, Error::Transport { message: why.to_string() });
    }

    /// As [`cut_host`](Self::cut_host), the run failing with `error`.
    pub fn cut_host_with(&mut self, host: u16, error: Error) {
        for p in 0..self.placement.partitions() {
            if self.placement.host_of(p) == host && !self.placement.is_local(p) {
                let _ = self.lost[p].set(error.clone());
                for feed in &mut self.feeds[p] {
                    *feed = None;
                }
            }
        }
    }

    /// Every other host is out of reach (`why` says how): as
    /// [`cut_host`](Self::cut_host) for all of them.
    pub fn fail(&mut self, why: &str) {
        self.fail_with(Error::Transport { message: why.to_string() });
    }

    /// As [`fail`](Self::fail), the run failing with `error` (such as
    /// [`Error::Unregistered`]).
    pub fn fail_with(&mut self, error: Error) {
        for h in 0..self.placement.hosts() {
            if h != self.placement.me {
                self.cut_host_with(h, error.clone());
            }
        }
    }
}

/// Carries packets between this host's partitions and other hosts'.
///
/// Given to [`Builder::transport`](crate::Builder::transport); the
/// runtime calls [`start`](Self::start) once, when it is built.
pub trait Transport: Send + 'static {
    /// Which host runs which partition, and which host this is.
    fn placement(&self) -> &Placement;

    /// Starts carrying packets on a thread of its own and returns it once
    /// the other hosts are reachable (an error if they are not). The
    /// thread ends when `host_wires.outgoing` ends or `host_wires.stopping()` is
    /// cancelled; the runtime joins it when it stops.
    fn start(self: Box<Self>, host_wires: HostWires) -> Result<std::thread::JoinHandle<()>>;
}

/// A boxed transport is one (to choose one at run time).
impl Transport for Box<dyn Transport> {
    fn placement(&self) -> &Placement {
        (**self).placement()
    }

    fn start(self: Box<Self>, host_wires: HostWires) -> Result<std::thread::JoinHandle<()>> {
        (*self).start(host_wires)
    }
}

/// Hosts as runtimes of one process, for tests and for trying a
/// placement before spreading it over machines: packets go by channel
/// from one host's transport thread to the other's, unserialized.
///
/// ```
/// use maslite_core::{Agent, AgentId, Cx, Envelope};
/// use maslite_runtime::transport::{InProcess, Placement};
/// use maslite_runtime::Runtime;
///
/// struct Echo;
/// impl Agent for Echo {
///     async fn update(&mut self, cx: &Cx) {
///         while let Some(env) = cx.try_recv() {
///             let n = *env.payload::<u32>().unwrap();
///             if n < 10 {
///                 let other = AgentId(3 - cx.id().0); // 1 <-> 2
///                 cx.send(Envelope::new(n + 1).to(other));
///             }
///         }
///     }
/// }
///
/// // Two hosts, one partition each, built from the same program.
/// let hosts = InProcess::hosts(vec![0, 1]).unwrap();
/// let threads: Vec<_> = hosts
///     .into_iter()
///     .map(|host| {
///         std::thread::spawn(move || {
///             let mut rt = Runtime::builder().partitions(2).transport(host).build().unwrap();
///             rt.add_with_id(0, AgentId(1), Echo).unwrap();
///             rt.add_with_id(1, AgentId(2), Echo).unwrap();
///             rt.send(Envelope::new(0u32).to(AgentId(1)));
///             let report = rt.run().unwrap();
///             report.partitions.iter().map(|p| p.delivered).sum::<u64>()
///         })
///     })
///     .collect();
/// let delivered: Vec<u64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
/// assert_eq!(delivered, [6, 5]); // 11 messages: 0..=10
/// ```
pub struct InProcess {
    placement: Placement,
    to: Vec<UnboundedSender<Sent>>,
    from: UnboundedReceiver<Sent>,
    /// Cancelled when that host's transport ends (after it sent all).
    gone: Vec<CancellationToken>,
    /// Cancels this host's token when dropped: at the end of its thread,
    /// or here if it never started (a build that failed, a program that
    /// panicked first), so the other hosts never wait for it in vain.
    leaving: tokio_util::sync::DropGuard,
}

impl std::fmt::Debug for InProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcess").field("placement", &self.placement).finish_non_exhaustive()
    }
}

impl InProcess {
    /// One transport per host of the placement `host_of` (partition `p`
    /// on host `host_of[p]`), in host order: give each to its own
    /// runtime.
    pub fn hosts(host_of: Vec<u16>) -> Result<Vec<InProcess>> {
        let count = Placement::new(host_of.clone(), 0)?.hosts();
        let (to, from): (Vec<_>, Vec<_>) =
            (0..count).map(|_| tokio::sync::mpsc::unbounded_channel()).unzip();
        let gone: Vec<CancellationToken> = (0..count).map(|_| CancellationToken::new()).collect();
        from.into_iter()
            .enumerate()
            .map(|(me, from)| {
                Ok(InProcess {
                    placement: Placement::new(host_of.clone(), me as u16)?,
                    to: to.clone(),
                    from,
                    gone: gone.clone(),
                    leaving: gone[me].clone().drop_guard(),
                })
            })
            .collect()
    }
}

impl Transport for InProcess {
    fn placement(&self) -> &Placement {
        &self.placement
    }

    fn start(self: Box<Self>, mut host_wires: HostWires) -> Result<std::thread::JoinHandle<()>> {
        let InProcess { placement, to, mut from, gone, leaving } = *self;
        let stopping = host_wires.stopping();
        let me = placement.me();
        std::thread::Builder::new()
            .name(format!("maslite-host{me}"))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .expect("a current-thread tokio runtime");
                let others: Vec<u16> = (0..placement.hosts()).filter(|&h| h != me).collect();
                rt.block_on(async {
                    // Which other host's transport ended, in turn.
                    let mut left = futures::stream::FuturesUnordered::new();
                    for &h in &others {
                        let token = gone[h as usize].clone();
                        left.push(async move {
                            token.cancelled().await;
                            h
                        });
                    }
                    loop {
                        tokio::select! {
                            _ = stopping.cancelled() => {
                                // What the partitions sent goes first (the
                                // last step's packets, for hosts still in
                                // their run).
                                while let Ok(sent) = host_wires.outgoing.try_recv() {
                                    let host = placement.host_of(sent.to);
                                    let _ = to[host as usize].send(sent);
                                }
                                break;
                            }
                            sent = host_wires.outgoing.recv() => match sent {
                                Some(sent) => {
                                    let host = placement.host_of(sent.to);
                                    // A host that ended is cut below.
                                    let _ = to[host as usize].send(sent);
                                }
                                // Every partition here is gone.
                                None => break,
                            },
                            Some(sent) = from.recv() => {
                                if let Err(e) = host_wires.deliver(sent.from, sent.to, sent.packet) {
                                    host_wires.fail(&e.to_string());
                                }
                            }
                            Some(h) = futures::StreamExt::next(&mut left) => {
                                // It sent everything before it ended: take
                                // that first.
                                while let Ok(sent) = from.try_recv() {
                                    let _ = host_wires.deliver(sent.from, sent.to, sent.packet);
                                }
                                host_wires.cut_host(h, &format!("host {h} left: its runtime stopped"));
                            }
                        }
                    }
                });
                drop(leaving);
            })
            .map_err(|e| Error::Config(format!("cannot start the transport's thread: {e}")))
    }
}
