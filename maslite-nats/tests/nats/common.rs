//! A `nats-server` of a test's own, on 127.0.0.1 with a free port, killed
//! at the end (`.ci/run` installs it: `apt-get install -y nats-server`).

use maslite_nats::link::HostLink;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `nats-server`.
pub struct Server {
    child: Child,
    pub url: String,
}

impl Server {
    pub fn start() -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server is installed (apt-get install -y nats-server)");
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
