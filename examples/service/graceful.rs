//! An HTTP/1.1 server whose stop answers every request it reads.
//!
//! Why not `axum::serve(..).with_graceful_shutdown(..)`: at the signal it
//! closes every idle keep-alive connection at once, and a client that was
//! sending its next request on one at that moment gets no answer at all
//! ("connection closed before message completed"). Under load that is
//! dozens of requests, and a client cannot tell whether such an order was
//! matched. HTTP/1.1 has one close that no request can race: a response
//! that says `Connection: close`, read by the client with its answer.
//!
//! So [`serve`] stops in two moves:
//!
//! 1. **Draining**, from the `stopping` token: every response carries
//!    `Connection: close`, and the server closes each connection right
//!    after its next answer. What the answer is belongs to the handlers (the
//!    order handler: 200 for an order taken in, 503 once the agents refuse
//!    new ones). The listener still accepts: a client that connects now gets
//!    its answer too.
//! 2. **Closing**, from the `close` token: the listener closes, connections
//!    that are still idle are closed, requests in progress are finished, and
//!    [`serve`] returns once every connection is gone. Only a client that
//!    stayed idle through the whole drain, or connects at this moment, can
//!    race this move (as with any server that goes away).
//!
//! Pipelined requests (sent before the previous answer came) are not
//! covered: a request behind a `Connection: close` answer is not read.

use axum::http::{header, HeaderValue};
use axum::response::Response;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use maslite::runtime::CancellationToken;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// Connections open right now, read live (see [`serve`]).
#[derive(Clone, Debug, Default)]
pub struct OpenConnections(Arc<AtomicUsize>);

impl OpenConnections {
    /// How many connections are open now.
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    /// Counts one connection until the guard is dropped.
    fn open(&self) -> OpenGuard {
        self.0.fetch_add(1, Ordering::Relaxed);
        OpenGuard(self.0.clone())
    }
}

/// One open connection, counted while it lives.
struct OpenGuard(Arc<AtomicUsize>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves `router` on `listener` until `close` is cancelled, draining from
/// `stopping` on (see the [module docs](self)); `open` counts the
/// connections. Returns when the last connection is gone.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    stopping: CancellationToken,
    close: CancellationToken,
    open: OpenConnections,
) {
    let draining = stopping.clone();
    let router = router.layer(axum::middleware::map_response(move |response: Response| {
        let draining = draining.clone();
        async move { close_when_draining(response, &draining) }
    }));
    let service = TowerToHyperService::new(router);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Out of file descriptors, mostly: let some close.
                        tracing::warn!("accepting a connection: {e}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let guard = open.open();
                let conn = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service.clone());
                let close = close.clone();
                connections.spawn(async move {
                    let _guard = guard;
                    let mut conn = std::pin::pin!(conn);
                    tokio::select! {
                        _ = conn.as_mut() => {}
                        _ = close.cancelled() => {
                            // Idle: closed now; in a request: after its answer.
                            conn.as_mut().graceful_shutdown();
                            let _ = conn.await;
                        }
                    }
                });
            }
            Some(_) = connections.join_next() => {}
            _ = close.cancelled() => break,
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// Adds `Connection: close` to a response once the server drains.
fn close_when_draining(mut response: Response, draining: &CancellationToken) -> Response {
    if draining.is_cancelled() {
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}
