//! Endpoints: ids outside the system that agents can address.
//!
//! An endpoint is a small agent that forwards everything it receives into
//! a bounded channel whose other end, an [`Outbound`] stream, belongs to
//! the application. Being an agent, it has an id, a partition and
//! subscriptions like any other: agents reply to it with `cx.send`, and it
//! can subscribe to topics to forward broadcasts.
//!
//! A slow reader gets **backpressure, never silent loss**. When the channel
//! is full the endpoint waits for room (mail for it queues in its inbox,
//! still counted) and, while it waits, the partitions stop taking messages
//! from outside: a [`Service`](crate::Service)'s senders then wait in turn.
//! An application that prefers dropping says so
//! ([`Overflow::Drop`]); every dropped message is counted
//! ([`Outbound::dropped`]).

use maslite_core::{Agent, Cx, Envelope};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::{mpsc, Notify};

/// What an endpoint does when its reader is behind and the channel is full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Overflow {
    /// Wait for room; meanwhile the system takes no messages from outside
    /// (the default: nothing is ever lost).
    #[default]
    Block,
    /// Drop the message and count it ([`Outbound::dropped`]).
    Drop,
}

/// How stalled endpoints hold back the intake from outside: shared by the
/// endpoints and the partitions of one runtime.
#[derive(Debug, Default)]
pub(crate) struct Backpressure {
    /// Endpoints waiting for room right now.
    pub stalled: AtomicUsize,
    /// Woken when the last stalled endpoint has room again.
    pub relieved: Notify,
    /// Woken when an endpoint stalls (partitions waiting on their inlet
    /// stop waiting on it).
    pub stalling: Notify,
}

impl Backpressure {
    pub fn holding(&self) -> bool {
        self.stalled.load(Ordering::Acquire) > 0
    }
}

/// Counts an endpoint shares with its [`Outbound`].
#[derive(Debug, Default)]
pub(crate) struct EndpointCounts {
    pub forwarded: AtomicU64,
    pub dropped: AtomicU64,
}

/// The agent behind an endpoint id.
pub(crate) struct Endpoint {
    pub tx: mpsc::Sender<Envelope>,
    pub overflow: Overflow,
    pub counts: Arc<EndpointCounts>,
    pub pressure: Arc<Backpressure>,
}

impl Agent for Endpoint {
    async fn update(&mut self, cx: &Cx) {
        while let Some(env) = cx.try_recv() {
            let env = match self.tx.try_send(env) {
                Ok(()) => {
                    self.counts.forwarded.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                Err(mpsc::error::TrySendError::Full(env)) if self.overflow == Overflow::Block => {
                    env
                }
                Err(e) => {
                    let closed = matches!(e, mpsc::error::TrySendError::Closed(_));
                    self.counts.dropped.fetch_add(1, Ordering::Relaxed);
                    if closed {
                        tracing::warn!(endpoint = %cx.id(), "message to an endpoint whose stream was dropped: counted as dropped");
                    }
                    continue;
                }
            };
            if self.pressure.stalled.fetch_add(1, Ordering::AcqRel) == 0 {
                self.pressure.stalling.notify_waiters();
            }
            let sent = self.tx.send(env).await;
            if self.pressure.stalled.fetch_sub(1, Ordering::AcqRel) == 1 {
                self.pressure.relieved.notify_waiters();
            }
            match sent {
                Ok(()) => self.counts.forwarded.fetch_add(1, Ordering::Relaxed),
                Err(_) => {
                    tracing::warn!(endpoint = %cx.id(), "message to an endpoint whose stream was dropped: counted as dropped");
                    self.counts.dropped.fetch_add(1, Ordering::Relaxed)
                }
            };
        }
    }
}

/// What agents send to an endpoint, as a [`Stream`](futures::Stream) of
/// envelopes (from [`Runtime::endpoint`](crate::Runtime::endpoint)).
///
/// It ends when the runtime stops. Dropping it makes the endpoint drop (and
/// count) what comes next.
#[derive(Debug)]
pub struct Outbound {
    pub(crate) rx: mpsc::Receiver<Envelope>,
    pub(crate) counts: Arc<EndpointCounts>,
}

impl Outbound {
    /// The next envelope, awaited.
    pub async fn recv(&mut self) -> Option<Envelope> {
        self.rx.recv().await
    }

    /// The next envelope, blocking this thread (not for async code).
    pub fn recv_blocking(&mut self) -> Option<Envelope> {
        self.rx.blocking_recv()
    }

    /// An envelope already there, if any.
    pub fn try_recv(&mut self) -> Option<Envelope> {
        self.rx.try_recv().ok()
    }

    /// Envelopes handed to this stream so far.
    pub fn forwarded(&self) -> u64 {
        self.counts.forwarded.load(Ordering::Relaxed)
    }

    /// Envelopes dropped because the stream was full
    /// ([`Overflow::Drop`]) or already dropped.
    pub fn dropped(&self) -> u64 {
        self.counts.dropped.load(Ordering::Relaxed)
    }
}

impl futures::Stream for Outbound {
    type Item = Envelope;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Envelope>> {
        self.rx.poll_recv(cx)
    }
}
