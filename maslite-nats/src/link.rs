//! One host's NATS connection: frames out to other hosts, frames in from
//! them, a readiness handshake, and slow consumers made fatal.
//!
//! Each host subscribes to its own subject, `maslite.<run>.h.<host>`, and
//! publishes what it has for host `q` as frames to `q`'s subject (see
//! [`packet`](crate::packet)). Three traps of NATS are guarded against:
//!
//! - `flush()` only waits until the server has the bytes, not until anyone
//!   subscribed: a frame published before the other host's subscription
//!   exists is lost. So [`HostLink::ready`] asks every other host, on
//!   `maslite.<run>.ready.<host>`, until each answers, before the first
//!   frame.
//! - A subscriber that falls behind has messages dropped by the client (at
//!   most once delivery): a slow-consumer event is turned into
//!   [`Error::SlowConsumer`], and the frames' sequence numbers catch any
//!   loss ([`Error::Gap`]).
//! - The server refuses messages over its `max_payload`: packets are cut
//!   into frames under it ([`PacketWriter`](crate::packet::PacketWriter)).
//!
//! With a run key the handshake is authenticated too, and is how hosts
//! learn each other's sessions ([`seal`](crate::seal)): an answer that was
//! not made for this host's question with the run's key does not count.

use crate::error::{Error, Result};
use crate::options::NatsOptions;
use crate::seal::RunSeal;
use futures::StreamExt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The subject host `host` of run `run` receives its frames on.
pub fn subject(run: &str, host: u16) -> String {
    format!("maslite.{run}.h.{host}")
}

/// The subject host `host` of run `run` answers readiness requests on.
pub fn ready_subject(run: &str, host: u16) -> String {
    format!("maslite.{run}.ready.{host}")
}

/// A host's end of a run's links to every other host.
#[derive(Debug)]
pub struct HostLink {
    client: async_nats::Client,
    run: String,
    me: u16,
    hosts: u16,
    inbox: async_nats::Subscriber,
    seal: Arc<RunSeal>,
    events: mpsc::UnboundedReceiver<async_nats::Event>,
    responder: tokio::task::JoinHandle<()>,
}

impl Drop for HostLink {
    fn drop(&mut self) {
        self.responder.abort();
    }
}

fn nats(e: impl std::fmt::Display) -> Error {
    Error::Nats(e.to_string())
}

impl HostLink {
    /// Connects host `me` (of `hosts`) of run `run` to the server at `url`,
    /// subscribes to its subject with room for `capacity` frames, and
    /// starts answering readiness requests. Nothing is authenticated: see
    /// [`open`](Self::open).
    pub async fn connect(
        url: &str,
        run: &str,
        me: u16,
        hosts: u16,
        capacity: usize,
    ) -> Result<HostLink> {
        if me >= hosts {
            return Err(Error::Nats(format!("host {me} of {hosts}: no such host")));
        }
        let seal = Arc::new(RunSeal::insecure(me, hosts));
        HostLink::open(&NatsOptions::new(), url, run, seal, capacity).await
    }

    /// As [`connect`](Self::connect), with the server's authentication and
    /// TLS `options`, and this host's keys for the run (its number and the
    /// number of hosts are the seal's).
    pub async fn open(
        options: &NatsOptions,
        url: &str,
        run: &str,
        seal: Arc<RunSeal>,
        capacity: usize,
    ) -> Result<HostLink> {
        let (me, hosts) = (seal.host(), seal.hosts());
        if me >= hosts {
            return Err(Error::Nats(format!("host {me} of {hosts}: no such host")));
        }
        let (tx, events) = mpsc::unbounded_channel();
        let base = async_nats::ConnectOptions::new()
            .subscription_capacity(capacity.max(16))
            .event_callback(move |event| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(event);
                }
            });
        let client = options.connect(url, base).await?;
        let inbox = client.subscribe(subject(run, me)).await.map_err(nats)?;
        let mut asks = client.subscribe(ready_subject(run, me)).await.map_err(nats)?;
        // Both subscriptions are on the server once a flush returns (it
        // round-trips a PING).
        client.flush().await.map_err(nats)?;
        let answering = client.clone();
        let answers = seal.clone();
        let responder = tokio::spawn(async move {
            while let Some(ask) = asks.next().await {
                let (Some(reply), Some(answer)) = (ask.reply, answers.answer(&ask.payload)) else {
                    continue;
                };
                let _ = answering.publish(reply, answer).await;
            }
        });
        Ok(HostLink { client, run: run.into(), me, hosts, inbox, seal, events, responder })
    }

    /// This host's keys for the run.
    pub fn seal(&self) -> &Arc<RunSeal> {
        &self.seal
    }

    /// This host's number.
    pub fn host(&self) -> u16 {
        self.me
    }

    /// A handle on this host's connection (a cheap clone), for the layers
    /// that share it, such as [`Heartbeat`](crate::heartbeat::Heartbeat).
    pub fn client(&self) -> async_nats::Client {
        self.client.clone()
    }

    /// The largest frame the server takes.
    pub fn max_payload(&self) -> usize {
        self.client.server_info().max_payload
    }

    /// Waits until every other host has subscribed (answers on its
    /// readiness subject), or fails after `timeout` naming those that did
    /// not.
    pub async fn ready(&self, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        let mut missing: Vec<u16> = (0..self.hosts).filter(|&q| q != self.me).collect();
        while !missing.is_empty() {
            let mut still = Vec::new();
            for &q in &missing {
                let ask = self.client.request(ready_subject(&self.run, q), self.seal.ask());
                match tokio::time::timeout(Duration::from_millis(200), ask).await {
                    Ok(Ok(answer)) if self.seal.take_answer(q, &answer.payload) => {}
                    // No responders yet, no answer in time, or an answer
                    // not made with the run's key: ask again.
                    _ => still.push(q),
                }
            }
            missing = still;
            if !missing.is_empty() {
                if start.elapsed() >= timeout {
                    return Err(Error::NotReady { missing, seconds: timeout.as_secs_f64() });
                }
                // The other host is starting: give it a moment.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Ok(())
    }

    /// Publishes one frame to host `to` (without a flush: see
    /// [`flush`](Self::flush)).
    pub async fn publish(&self, to: u16, frame: bytes::Bytes) -> Result<()> {
        self.client.publish(subject(&self.run, to), frame).await.map_err(nats)
    }

    /// Waits until the server has everything published so far (its PONG);
    /// also makes the client write small frames at once.
    pub async fn flush(&self) -> Result<()> {
        self.client.flush().await.map_err(nats)
    }

    /// The next frame on this host's subject, whoever sent it. A slow
    /// consumer or a closed connection is an error. Cancel safe.
    pub async fn next_frame(&mut self) -> Result<bytes::Bytes> {
        loop {
            tokio::select! {
                m = self.inbox.next() => {
                    return m
                        .map(|m| m.payload)
                        .ok_or_else(|| Error::Nats("connection closed".into()))
                }
                Some(event) = self.events.recv() => match event {
                    async_nats::Event::SlowConsumer(_) => {
                        return Err(Error::SlowConsumer { subject: subject(&self.run, self.me) })
                    }
                    async_nats::Event::Closed => {
                        return Err(Error::Nats("connection closed".into()))
                    }
                    _ => continue,
                },
            }
        }
    }
}
