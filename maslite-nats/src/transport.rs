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
//!   after its last packet);
//! - a host that said bye on its heartbeats but whose bye frame (after its
//!   last packet) does not follow within the heartbeat's limit;
//! - a frame from another host of the run that breaks the protocol (a
//!   packet too large, one that does not decode, one between partitions
//!   not on its hosts), naming the link.
//!
//! # Who may talk to a run
//!
//! A run needs a key ([`NatsTransport::key`], see [`seal`](crate::seal)):
//! building a runtime without one fails, naming the two ways out, unless
//! [`NatsTransport::insecure`] says in so many words that anyone who can
//! publish on the server may change the run's results. That is the
//! default a careful user expects: a run that looks right but may have
//! been tampered with is worse than one that does not start, and on a
//! private machine opting out is one call. With a key, frames and beats
//! not made with it are dropped and counted ([`Rejections`]), never
//! acted on. The server's own authentication and TLS are
//! [`NatsOptions`].

use crate::codec::Codec;
use crate::error::Error;
use crate::heartbeat::{Heartbeat, HostEvent};
use crate::key::RunKey;
use crate::link::HostLink;
use crate::options::NatsOptions;
use crate::packet::{Arrival, PacketReader, PacketWriter, MAX_PACKET};
use crate::rejections::Rejections;
use crate::seal::{Protection, RunSeal};
use bytes::Bytes;
use maslite_runtime::transport::{HostWires, Placement, Sent, Transport};
use std::sync::Arc;
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
/// let key = maslite_nats::RunKey::from_file("run.key")?; // the same on every host
/// let nats = NatsTransport::new("nats://127.0.0.1:4222", "demo", placement, codec)?.key(key);
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
    options: NatsOptions,
    key: Option<RunKey>,
    protection: Protection,
    insecure: bool,
    max_packet: usize,
    rejections: Rejections,
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
            options: NatsOptions::new(),
            key: None,
            protection: Protection::Authenticated,
            insecure: false,
            max_packet: MAX_PACKET,
            rejections: Rejections::new(),
        })
    }

    /// The run's shared secret, the same on every host: every frame and
    /// beat is authenticated with it (see [`seal`](crate::seal)).
    pub fn key(mut self, key: RunKey) -> NatsTransport {
        self.key = Some(key);
        self
    }

    /// Encrypts the frames' bodies too (ChaCha20-Poly1305), so that who
    /// reads the server's traffic cannot read the run's (needs a
    /// [`key`](Self::key)).
    pub fn encrypted(mut self) -> NatsTransport {
        self.protection = Protection::Encrypted;
        self
    }

    /// Runs without a key: anyone who can publish on the server can
    /// change this run's results, stop it or read it. Only for a server
    /// nobody else can reach.
    pub fn insecure(mut self) -> NatsTransport {
        self.insecure = true;
        self
    }

    /// The server's authentication and TLS (see [`NatsOptions`]).
    pub fn options(mut self, options: NatsOptions) -> NatsTransport {
        self.options = options;
        self
    }

    /// The largest packet (bytes) a partition may send to one on another
    /// host in one step (default 256 MiB): a larger one fails the run
    /// ([`Error::TooLarge`]) on the sending host, and on the receiving one,
    /// which keeps at most this much per host put back together.
    pub fn max_packet(mut self, bytes: usize) -> NatsTransport {
        self.max_packet = bytes;
        self
    }

    /// The counts of frames and beats this host drops (forged, replayed,
    /// foreign), shared: read them while the run goes and after.
    pub fn rejections(&self) -> Rejections {
        self.rejections.clone()
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
    /// slow consumer. Frames wait there before they are checked: up to
    /// `frames ×` the server's `max_payload` bytes, if something floods
    /// this host's subject faster than it checks them (a server whose
    /// permissions let only the run's hosts publish there prevents that;
    /// see the README's "Several hosts").
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
        let me = self.placement.me();
        if self.key.is_none() && !self.insecure {
            return Err(maslite_runtime::Error::Config(format!(
                "host {me}: no run key: give every host the same key (NatsTransport::key, \
                 RunKey::from_file or RunKey::from_env; `cargo run -p maslite-nats --example \
                 runkey` makes one), or call NatsTransport::insecure to let anyone who can \
                 publish on the server change the run"
            )));
        }
        let seal = match &self.key {
            Some(key) => RunSeal::new(key, self.protection, &self.run, me, self.placement.hosts())
                .map_err(transport_error)?,
            None => RunSeal::insecure(me, self.placement.hosts()),
        };
        let seal = Arc::new(seal);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
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
                    let setup = async {
                        // The server may be starting too: tried again until
                        // the readiness deadline.
                        let deadline = tokio::time::Instant::now() + t.ready;
                        let (url, _) = t.options.from_url(&t.url);
                        let link = loop {
                            let open = HostLink::open(
                                &t.options,
                                &t.url,
                                &t.run,
                                seal.clone(),
                                t.capacity,
                            );
                            match open.await {
                                Ok(link) => break link,
                                // Credentials refused: no use trying again.
                                Err(e @ Error::Refused(_)) => return Err(e),
                                Err(e) if tokio::time::Instant::now() >= deadline => {
                                    return Err(Error::Nats(format!(
                                        "cannot reach the server at {url}: {e}"
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
                        let (url, run, options) = (t.url.clone(), t.run.clone(), t.options.clone());
                        let (every, missed) = (t.every, t.missed);
                        let (beat_seal, rejections) = (seal.clone(), t.rejections.clone());
                        let started = beat_rt.spawn(async move {
                            let client =
                                options.connect(&url, async_nats::ConnectOptions::new()).await?;
                            Heartbeat::open(client, &run, &beat_seal, every, missed, rejections)
                                .await
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
                            let bounds = (t.max_packet, t.rejections.clone());
                            match Carrier::new(link, beats, t.codec, host_wires, limit, bounds) {
                                Ok(carrier) => carrier.carry().await,
                                // (Unreachable after a handshake: every
                                // session is known.)
                                Err((mut wires, e)) => wires.fail(&e.to_string()),
                            }
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
    /// Hosts whose runtime stopped (their bye frame came).
    left: Vec<bool>,
    /// Per host that said bye on its heartbeats: when its bye frame is due
    /// at the latest.
    bye_due: Vec<Option<tokio::time::Instant>>,
    frames: Vec<Bytes>,
    /// The heartbeat's limit: how long ending may wait for the server.
    limit: Duration,
    /// The failure as a typed error, when there is one for it.
    typed: Option<maslite_runtime::Error>,
}

impl Carrier {
    #[allow(clippy::result_large_err)]
    fn new(
        link: HostLink,
        beats: Heartbeat,
        codec: Codec,
        host_wires: HostWires,
        limit: Duration,
        (max_packet, rejections): (usize, Rejections),
    ) -> Result<Carrier, (HostWires, Error)> {
        let placement = host_wires.placement();
        let (me, hosts) = (placement.me(), placement.hosts());
        let owners: Vec<u16> = (0..placement.partitions()).map(|p| placement.host_of(p)).collect();
        let max = link.max_payload();
        let seal = link.seal().clone();
        let mut writers = Vec::new();
        let mut seals = Vec::new();
        for h in 0..hosts {
            let (out, inn) = match h == me {
                true => (Ok(None), Ok(None)),
                false => (seal.link(me, h), seal.link(h, me)),
            };
            let (out, inn) = match (out, inn) {
                (Ok(out), Ok(inn)) => (out, inn),
                (Err(e), _) | (_, Err(e)) => return Err((host_wires, e)),
            };
            writers.push(PacketWriter::new(me, h, max).with_seal(out).with_limit(max_packet));
            seals.push(inn);
        }
        let mut reader = PacketReader::new(me, hosts)
            .with_owners(owners)
            .with_limit(max_packet)
            .with_rejections(rejections);
        if seal.protection().is_some() {
            reader = reader.with_seals(seals);
        }
        Ok(Carrier {
            writers,
            reader,
            left: vec![false; hosts as usize],
            bye_due: vec![None; hosts as usize],
            link,
            beats: Some(beats),
            codec,
            host_wires,
            frames: Vec::new(),
            limit,
            typed: None,
        })
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
        let Some(mut beats) = self.beats.take() else { return self.push(first).await };
        let result = {
            let push = self.push(first);
            tokio::pin!(push);
            tokio::select! {
                done = &mut push => done,
                // (A host whose bye frame came is forgotten: never lost.)
                e = beats.dead() => Err(e.to_string()),
            }
        };
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

    /// What a frame from the network brought: `Err` fails the run (`bool`:
    /// tell the others).
    fn take_frame(&mut self, frame: &[u8]) -> Result<(), (String, bool)> {
        match self.reader.read(&self.codec, frame) {
            Ok(Arrival::Partial | Arrival::Dropped(_)) => Ok(()),
            Ok(Arrival::Packet { from, to, packet }) => {
                self.host_wires.deliver(from, to, packet).map_err(|e| (e.to_string(), true))
            }
            Ok(Arrival::Bye(h)) => {
                self.left[h as usize] = true;
                self.bye_due[h as usize] = None;
                // It ended: its silence from now on is no verdict.
                if let Some(beats) = &self.beats {
                    beats.forget(h);
                }
                self.host_wires.cut_host(h, &format!("host {h} left: its runtime stopped"));
                Ok(())
            }
            // (The reader escaped the text: safe to print.)
            Ok(Arrival::Abort(h, why)) => Err((format!("host {h} failed: {why}"), false)),
            Err(e) => Err((e.to_string(), true)),
        }
    }

    async fn carry(mut self) {
        let stopping = self.host_wires.stopping();
        loop {
            // The first bye frame due.
            let bye_due = (0u16..)
                .zip(&self.bye_due)
                .filter_map(|(h, due)| Some((h, (*due)?)))
                .min_by_key(|&(_, due)| due);
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
                    if let Err((why, tell)) = self.take_frame(&frame) {
                        return self.fail(&why, tell).await;
                    }
                }
                event = async { self.beats.as_mut().expect("beating").event().await }, if self.beats.is_some() => {
                    match event {
                        // A bye on the beats: its bye frame, after its
                        // last packet, is what cuts it, and it must follow
                        // (a host that said bye is still watched until
                        // then: a bye is no licence to fall silent).
                        HostEvent::Left(h) => {
                            if !self.left[h as usize] {
                                let due = tokio::time::Instant::now() + self.limit;
                                self.bye_due[h as usize].get_or_insert(due);
                            }
                        }
                        HostEvent::Lost(e) => return self.fail(&e.to_string(), true).await,
                    }
                }
                _ = async { tokio::time::sleep_until(bye_due.expect("due").1).await }, if bye_due.is_some() => {
                    let (h, _) = bye_due.expect("due");
                    let why = format!(
                        "host {h} said bye on its heartbeats, but its last frames did not follow \
                         within {:.3} s: it stopped without ending its run",
                        self.limit.as_secs_f64()
                    );
                    return self.fail(&why, true).await;
                }
            }
        }
    }
}
