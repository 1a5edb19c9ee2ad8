//! The runtime's transport over NATS: partitions on several hosts.
//!
//! Each host (process) runs the same program with a
//! [`NatsTransport`] naming the server, the run, the placement and the
//! payload types that may cross. The transport's thread owns the host's
//! one NATS connection ([`HostLink`]), its [`Heartbeat`], and the
//! [`Codec`]: it encodes the packets this host's partitions send to
//! partitions elsewhere, cuts them into frames, publishes them to the
//! destination host's subject (`maslite.<run>.h.<host>`) and flushes once
//! per burst; it reads the frames that come in, checks their sequence,
//! puts packets back together and hands them to their partitions.
//!
//! What stops a run, on every host, in bounded time, with an error that
//! says what happened ([`maslite_runtime::Error::Transport`]):
//!
//! - a payload type that is not registered, when it first crosses (the
//!   sending host names the type and the partitions, and tells the
//!   others);
//! - a host whose heartbeats stop (killed, cut off): named by the others
//!   after `missed × every`;
//! - a frame lost (a gap in the link's sequence) or a slow consumer;
//! - a host whose runtime stopped while others still run (it says bye
//!   after its last packet).

use crate::codec::Codec;
use crate::error::Error;
use crate::heartbeat::{Heartbeat, HostEvent};
use crate::link::HostLink;
use crate::packet::{Arrival, PacketReader, PacketWriter};
use bytes::Bytes;
use maslite_runtime::transport::{HostWires, Placement, Sent, Transport};
use std::time::Duration;

/// Partitions on several hosts through a NATS server (see the [module
/// docs](self)).
///
/// ```no_run
/// use maslite_core::{Agent, AgentId, Cx};
/// use maslite_nats::{Codec, NatsTransport};
/// use maslite_runtime::{transport::Placement, Runtime};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Clone, Serialize, Deserialize)]
/// struct Ping(u32);
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // This process is host 0 of 2; 4 partitions, 2 per host.
/// let mut codec = Codec::new();
/// codec.register::<Ping>()?;
/// let placement = Placement::blocks(4, 2, 0)?;
/// let nats = NatsTransport::new("nats://127.0.0.1:4222", "demo", placement, codec)?;
/// let mut rt = Runtime::builder().partitions(4).transport(nats).build()?;
/// // ... add the same agents as every other host, then run.
/// rt.run()?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct NatsTransport {
    placement: Placement,
    url: String,
    run: String,
    codec: Codec,
    ready: Duration,
    every: Duration,
    missed: u32,
    capacity: usize,
}

/// A run's name goes into subjects: letters, digits, `-` and `_` only.
fn valid_run(run: &str) -> bool {
    !run.is_empty()
        && run.len() <= 64
        && run.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl NatsTransport {
    /// This host's side of run `run` (the same name on every host; letters,
    /// digits, `-`, `_`) through the server at `url`, with `placement`
    /// and the payload types `codec` knows. Nothing connects before the
    /// runtime is built.
    ///
    /// A run name belongs to one runtime per host at a time: a program
    /// that builds runtimes one after another on the same server gives
    /// each a name of its own (`demo-1`, `demo-2`…), since a runtime of the
    /// last name still alive on another host would answer for that host.
    pub fn new(
        url: &str,
        run: &str,
        placement: Placement,
        codec: Codec,
    ) -> Result<NatsTransport, maslite_runtime::Error> {
        if !valid_run(run) {
            return Err(maslite_runtime::Error::Config(format!(
                "run name {run:?}: use 1 to 64 letters, digits, '-' or '_' (it goes into NATS subjects)"
            )));
        }
        Ok(NatsTransport {
            placement,
            url: url.into(),
            run: run.into(),
            codec,
            ready: Duration::from_secs(30),
            every: Duration::from_millis(250),
            missed: 8,
            capacity: 65_536,
        })
    }

    /// How long to wait for the other hosts to come (default 30 s): then
    /// building the runtime fails, naming those missing.
    pub fn ready_within(mut self, timeout: Duration) -> NatsTransport {
        self.ready = timeout;
        self
    }

    /// Heartbeats every `every`; a host silent for `missed × every` is
    /// lost (default 250 ms × 8 = 2 s).
    pub fn heartbeat(mut self, every: Duration, missed: u32) -> NatsTransport {
        self.every = every;
        self.missed = missed;
        self
    }

    /// Room for this many frames waiting on this host's subscription
    /// (default 65 536); beyond, NATS drops them and the run fails as a
    /// slow consumer.
    pub fn capacity(mut self, frames: usize) -> NatsTransport {
        self.capacity = frames;
        self
    }
}

fn transport_error(e: impl std::fmt::Display) -> maslite_runtime::Error {
    maslite_runtime::Error::Transport { message: e.to_string() }
}

impl Transport for NatsTransport {
    fn placement(&self) -> &Placement {
        &self.placement
    }

    fn start(
        self: Box<Self>,
        host_wires: HostWires,
    ) -> maslite_runtime::Result<std::thread::JoinHandle<()>> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let me = self.placement.me();
        let thread = std::thread::Builder::new()
            .name(format!("maslite-nats-host{me}"))
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(Error::Nats(format!("a tokio runtime: {e}"))));
                        return;
                    }
                };
                let beat_rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name(format!("maslite-beats-host{me}"))
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(Error::Nats(format!("a tokio runtime: {e}"))));
                        return;
                    }
                };
                rt.block_on(async {
                    let t = *self;
                    let hosts = t.placement.hosts();
                    let setup = async {
                        // The server may be starting too: tried again until
                        // the readiness deadline.
                        let deadline = tokio::time::Instant::now() + t.ready;
                        let link = loop {
                            match HostLink::connect(&t.url, &t.run, me, hosts, t.capacity).await {
                                Ok(link) => break link,
                                Err(e) if tokio::time::Instant::now() >= deadline => {
                                    return Err(Error::Nats(format!(
                                        "cannot reach the server at {}: {e}",
                                        t.url
                                    )))
                                }
                                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                            }
                        };
                        link.ready(deadline.saturating_duration_since(tokio::time::Instant::now()))
                            .await?;
                        // Beats on a connection and a thread of their own:
                        // they never queue behind a large step's frames,
                        // nor wait while this thread encodes them.
                        let (url, run) = (t.url.clone(), t.run.clone());
                        let (every, missed) = (t.every, t.missed);
                        let started = beat_rt.spawn(async move {
                            let client = async_nats::connect(url.as_str())
                                .await
                                .map_err(|e| Error::Nats(e.to_string()))?;
                            Heartbeat::start(client, &run, me, hosts, every, missed).await
                        });
                        let beats = started
                            .await
                            .map_err(|e| Error::Nats(format!("the heartbeat's thread: {e}")))??;
                        Ok::<_, Error>((link, beats))
                    };
                    match setup.await {
                        Ok((link, beats)) => {
                            let _ = ready_tx.send(Ok(()));
                            let limit = t.every.saturating_mul(t.missed);
                            Carrier::new(link, beats, t.codec, host_wires, limit).carry().await;
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                });
                // (Outside the async context: a runtime may not be dropped
                // there.)
                drop(beat_rt);
            })
            .map_err(|e| transport_error(format!("cannot start the transport's thread: {e}")))?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(thread),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(transport_error(format!("host {me}: {e}")))
            }
            Err(_) => {
                let _ = thread.join();
                Err(transport_error(format!("host {me}: the transport's thread died starting")))
            }
        }
    }
}

/// The transport's thread, once the hosts are connected.
struct Carrier {
    link: HostLink,
    beats: Option<Heartbeat>,
    codec: Codec,
    host_wires: HostWires,
    writers: Vec<PacketWriter>,
    reader: PacketReader,
    /// Hosts whose runtime stopped.
    left: Vec<bool>,
    frames: Vec<Bytes>,
    /// The heartbeat's limit: how long ending may wait for the server.
    limit: Duration,
    /// The heartbeats are still watched (not after the verdict on a host
    /// that had said bye).
    watching: bool,
    /// The failure as a typed error, when there is one for it.
    typed: Option<maslite_runtime::Error>,
}

impl Carrier {
    fn new(
        link: HostLink,
        beats: Heartbeat,
        codec: Codec,
        host_wires: HostWires,
        limit: Duration,
    ) -> Carrier {
        let me = host_wires.placement().me();
        let hosts = host_wires.placement().hosts();
        let max = link.max_payload();
        Carrier {
            writers: (0..hosts).map(|h| PacketWriter::new(me, h, max)).collect(),
            reader: PacketReader::new(me, hosts),
            left: vec![false; hosts as usize],
            link,
            beats: Some(beats),
            codec,
            host_wires,
            frames: Vec::new(),
            limit,
            watching: true,
            typed: None,
        }
    }

    fn others(&self) -> Vec<u16> {
        let me = self.host_wires.placement().me();
        (0..self.host_wires.placement().hosts())
            .filter(|&h| h != me && !self.left[h as usize])
            .collect()
    }

    /// Encodes and publishes one packet.
    async fn send(&mut self, sent: Sent) -> Result<(), String> {
        let host = self.host_wires.placement().host_of(sent.to);
        if self.left[host as usize] {
            return Ok(());
        }
        let (from, to) = (sent.from, sent.to);
        self.frames.clear();
        if let Err(e) = self.writers[host as usize].packet(&self.codec, sent, &mut self.frames) {
            if let Error::Unregistered { type_name } = &e {
                // Typed for this host's run (the others get the words).
                let type_name = type_name.to_string();
                self.typed = Some(maslite_runtime::Error::Unregistered { type_name, from, to });
            }
            return Err(format!("partition {from} -> partition {to} (host {host}): {e}"));
        }
        for frame in self.frames.drain(..) {
            self.link.publish(host, frame).await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Sends everything the partitions sent so far, then flushes, for as
    /// long as it takes while the heartbeats say the server and the hosts
    /// are there: a server that is gone never answers a flush, and the
    /// client holds frames while it tries to reconnect, so the beats (on a
    /// connection of their own) are watched meanwhile.
    async fn send_all(&mut self, first: Option<Sent>) -> Result<(), String> {
        if !self.watching || self.beats.is_none() {
            return self.push(first).await;
        }
        let mut beats = self.beats.take().expect("checked above");
        let left = self.left.clone();
        let mut watching = true;
        let result = {
            let push = self.push(first);
            tokio::pin!(push);
            loop {
                tokio::select! {
                    done = &mut push => break done,
                    e = beats.dead(), if watching => match e {
                        Error::HostLost { host, .. } if left.get(host as usize) == Some(&true) => {
                            watching = false;
                        }
                        e => break Err(e.to_string()),
                    },
                }
            }
        };
        self.watching = watching;
        self.beats = Some(beats);
        result
    }

    /// Publishes everything the partitions sent so far, then flushes.
    async fn push(&mut self, first: Option<Sent>) -> Result<(), String> {
        let mut next = first;
        while let Some(sent) = next.take().or_else(|| self.host_wires.outgoing.try_recv().ok()) {
            self.send(sent).await?;
        }
        self.link.flush().await.map_err(|e| e.to_string())
    }

    /// Ends: what was sent goes out, then a bye to every host (each wait
    /// bounded: a runtime stopping never hangs on a server that is gone).
    async fn finish(&mut self) {
        if let Err(why) = self.send_all(None).await {
            self.fail(&why, true).await;
            return;
        }
        let limit = self.limit;
        let byes = async {
            for h in self.others() {
                let bye = self.writers[h as usize].bye();
                let _ = self.link.publish(h, bye).await;
            }
            let _ = self.link.flush().await;
            if let Some(beats) = self.beats.take() {
                let _ = beats.stop().await;
            }
        };
        let _ = tokio::time::timeout(limit, byes).await;
    }

    /// Fails the run here (and, if `tell`, on every other host, if the
    /// server takes the word within the heartbeat's limit).
    async fn fail(&mut self, why: &str, tell: bool) {
        let me = self.host_wires.placement().me();
        tracing::error!(host = me, "{why}");
        // The partitions stop first: telling the others may wait.
        match self.typed.take() {
            Some(error) => self.host_wires.fail_with(error),
            None => self.host_wires.fail(why),
        }
        if tell {
            let limit = self.limit;
            let aborts = async {
                for h in self.others() {
                    let abort = self.writers[h as usize].abort(why);
                    let _ = self.link.publish(h, abort).await;
                }
                let _ = self.link.flush().await;
            };
            let _ = tokio::time::timeout(limit, aborts).await;
        }
    }

    async fn carry(mut self) {
        let stopping = self.host_wires.stopping();
        loop {
            tokio::select! {
                _ = stopping.cancelled() => return self.finish().await,
                sent = self.host_wires.outgoing.recv() => match sent {
                    // Every partition here is gone.
                    None => return self.finish().await,
                    Some(sent) => {
                        if let Err(why) = self.send_all(Some(sent)).await {
                            return self.fail(&why, true).await;
                        }
                    }
                },
                frame = self.link.next_frame() => {
                    let frame = match frame {
                        Ok(frame) => frame,
                        Err(e) => return self.fail(&e.to_string(), true).await,
                    };
                    match self.reader.read(&self.codec, &frame) {
                        Ok(Arrival::Partial) => {}
                        Ok(Arrival::Packet { from, to, packet }) => {
                            if let Err(e) = self.host_wires.deliver(from, to, packet) {
                                return self.fail(&e.to_string(), true).await;
                            }
                        }
                        Ok(Arrival::Bye(h)) => {
                            self.left[h as usize] = true;
                            self.host_wires.cut_host(h, &format!("host {h} left: its runtime stopped"));
                        }
                        Ok(Arrival::Abort(h, why)) => {
                            return self.fail(&format!("host {h} failed: {why}"), false).await;
                        }
                        Err(e) => return self.fail(&e.to_string(), true).await,
                    }
                }
                event = async { self.beats.as_mut().expect("beating").event().await }, if self.watching => {
                    match event {
                        // Its bye frame, after its last packet, cuts it.
                        HostEvent::Left(_) => {}
                        // A host that said bye after its last packet may
                        // fall silent before its beats say so: not lost.
                        // (Its verdict stands: the beats are watched no more.)
                        HostEvent::Lost(Error::HostLost { host, .. })
                            if self.left.get(host as usize) == Some(&true) =>
                        {
                            self.watching = false;
                        }
                        HostEvent::Lost(e) => return self.fail(&e.to_string(), true).await,
                    }
                }
            }
        }
    }
}
