//! A `nats-server` of a test's own, on 127.0.0.1 with a free port, killed
//! at the end (`apt-get install -y nats-server`; `.ci/run` installs it).
//!
//! Without `nats-server` on PATH the tests that need one are skipped, and
//! the test binary says so once on stderr (see [`ServerTests`]); with
//! `MASLITE_REQUIRE_NATS=1` (as in `.ci/run`) they fail instead.

use maslite_nats::link::HostLink;
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::{Once, OnceLock};
use std::time::{Duration, Instant};

/// Why `nats-server` cannot run here, or `None` when it can: asked once
/// per test binary, with `nats-server --version`.
pub fn missing() -> Option<&'static str> {
    static MISSING: OnceLock<Option<String>> = OnceLock::new();
    MISSING
        .get_or_init(|| match Command::new("nats-server").arg("--version").output() {
            Ok(out) if out.status.success() => None,
            Ok(out) => Some(format!("`nats-server --version` failed ({})", out.status)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Some("nats-server not found on PATH".to_string())
            }
            Err(e) => Some(format!("nats-server does not start ({e})")),
        })
        .as_deref()
}

/// Whether a missing `nats-server` is a failure rather than a skip:
/// `MASLITE_REQUIRE_NATS=1`.
pub fn required() -> bool {
    matches!(std::env::var("MASLITE_REQUIRE_NATS").as_deref(), Ok(v) if !v.is_empty() && v != "0")
}

/// A test binary's tests that need a `nats-server`, by name: without one,
/// the first of them to run prints the skip line, which counts them all,
/// and each returns at once (so libtest counts it as passed: the line is
/// what says it was skipped).
pub struct ServerTests {
    /// The binary, as the skip line names it.
    pub binary: &'static str,
    pub names: &'static [&'static str],
}

impl ServerTests {
    /// A server for test `name`; `None` (skip it) when `nats-server` is
    /// missing, after saying so. Panics when the server is required, and
    /// when `name` is not in [`Self::names`] (the count would be wrong).
    pub fn start_or_skip(&self, name: &str) -> Option<Server> {
        assert!(
            self.names.contains(&name),
            "{name} starts a nats-server but is not in the names of {}' ServerTests",
            self.binary
        );
        if missing().is_none() || required() {
            return Some(Server::start());
        }
        say_skipped(self.binary, self.names.len());
        None
    }
}

/// Prints the skip line of test binary `binary`, for `count` tests, when
/// `nats-server` is missing; once per binary. Straight to stderr: libtest's
/// capture would hide it.
pub fn say_skipped(binary: &str, count: usize) {
    static SAID: Once = Once::new();
    let Some(why) = missing() else { return };
    SAID.call_once(|| {
        let tests = if count == 1 { "test that needs" } else { "tests that need" };
        let line = format!(
            "{binary}: {why}: {count} {tests} it skipped (apt-get install -y nats-server)\n"
        );
        let _ = std::io::stderr().write_all(line.as_bytes());
    });
}

/// A running `nats-server`.
pub struct Server {
    child: Child,
    pub url: String,
}

impl Server {
    /// Starts one; panics when `nats-server` is missing, saying why.
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// Starts one with these extra arguments (`--user`, `-c FILE`…).
    pub fn start_with(extra: &[&str]) -> Server {
        if let Some(why) = missing() {
            let need = if required() { ", and MASLITE_REQUIRE_NATS=1 requires it" } else { "" };
            panic!("{why}{need} (apt-get install -y nats-server)");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        // Listening once a connection is taken (it starts in milliseconds).
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(start.elapsed() < Duration::from_secs(10), "nats-server did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
        Server { child, url: format!("nats://127.0.0.1:{port}") }
    }

    /// Connects host `me` of `hosts` of run `run`.
    pub async fn link(&self, run: &str, me: u16, hosts: u16) -> HostLink {
        link(&self.url, run, me, hosts).await
    }

    /// Kills the server process (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Connects host `me` of `hosts`, retrying while the server starts.
pub async fn link(url: &str, run: &str, me: u16, hosts: u16) -> HostLink {
    let start = Instant::now();
    loop {
        match HostLink::connect(url, run, me, hosts, 1024).await {
            Ok(link) => return link,
            Err(_) if start.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("cannot reach nats-server at {url}: {e}"),
        }
    }
}
