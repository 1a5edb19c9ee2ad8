//! Watching a runtime in [tokio-console](https://github.com/tokio-rs/console)
//! (feature `console`).
//!
//! Build with tokio's unstable instrumentation and the feature, call
//! [`init`] before building any [`Runtime`](crate::Runtime), and point the
//! console at the address:
//!
//! ```sh
//! RUSTFLAGS="--cfg tokio_unstable" cargo run --features console --example console
//! tokio-console http://127.0.0.1:6669
//! ```
//!
//! The console shows one task per partition, named `maslite-partition-N`:
//! it runs that partition's kernel, its agents and the routing of its
//! outbox — there is no separate router task, so a busy partition task is
//! a busy partition, whatever it is doing. A [`Service`](crate::Service)
//! adds the task `maslite-service`, on the application's runtime, which
//! runs the service's run and waits for its end. The partition tasks are
//! each alone on their partition's thread; their busy and idle times are
//! those of the partitions.
//!
//! Without `--cfg tokio_unstable` everything builds and runs, but tokio
//! reports no tasks and the console stays empty.

use std::net::SocketAddr;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The address tokio-console connects to by default, `127.0.0.1:6669`.
pub const DEFAULT_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 6669);

/// Why [`init`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InitError {
    /// The console's server cannot listen on the address (in use, say).
    #[error("the console server cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A global `tracing` subscriber was installed already (the console
    /// layer must be in the global one).
    #[error("a global tracing subscriber is installed already")]
    SubscriberSet,
}

/// Installs the global `tracing` subscriber with tokio-console's layer,
/// its server listening on `addr` (on a thread of its own), and a log of
/// events on stderr filtered by `RUST_LOG` (warnings by default, e.g. dead
/// letters; `RUST_LOG=maslite_runtime=debug` for each partition's runs),
/// with thread names (`maslite-pN`).
///
/// Call it once, before building the runtimes to watch: tasks spawned
/// before are not seen. The console's own settings (`TOKIO_CONSOLE_RETENTION`,
/// `TOKIO_CONSOLE_PUBLISH_INTERVAL`...) are read from the environment as
/// `console-subscriber` reads them (which panics on a malformed
/// `TOKIO_CONSOLE_BIND`, though the address is `addr` whatever it says).
pub fn init(addr: SocketAddr) -> Result<(), InitError> {
    if tracing::dispatcher::has_been_set() {
        return Err(InitError::SubscriberSet);
    }
    // The server binds on its own thread and only panics there if it
    // cannot: try first, so that a port in use is an error here.
    drop(std::net::TcpListener::bind(addr).map_err(|source| InitError::Listen { addr, source })?);
    let console =
        console_subscriber::ConsoleLayer::builder().with_default_env().server_addr(addr).spawn();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    // The filter is the log's own: the console layer needs tokio's trace
    // level spans whatever `RUST_LOG` says.
    let log = tracing_subscriber::fmt::layer()
        .with_thread_names(true)
        .with_writer(std::io::stderr)
        .with_filter(filter);
    tracing_subscriber::registry()
        .with(console)
        .with(log)
        .try_init()
        .map_err(|_| InitError::SubscriberSet)
}
