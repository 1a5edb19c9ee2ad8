//! Heartbeats through a real `nats-server` (started here on 127.0.0.1 with
//! a free port, as in nats_links.rs): a host that crashes, never
//! comes, leaves cleanly, or is cut off with the server.
//!
//! Every wait is bounded by a timeout; the only timed waits that are not
//! are the assertions that nothing is reported during a span.

use crate::common::link;

use maslite_nats::heartbeat::{Heartbeat, HostEvent};
use maslite_nats::link::HostLink;
use maslite_nats::Error;
use std::time::{Duration, Instant};
use tokio::time::timeout;

const EVERY: Duration = Duration::from_millis(50);
const MISSED: u32 = 4;
const LIMIT: Duration = Duration::from_millis(200);
/// Room for scheduling on a loaded machine.
const SLACK: Duration = Duration::from_millis(1000);

async fn beat(link: &HostLink, run: &str, hosts: u16) -> Heartbeat {
    Heartbeat::start(link.client(), run, link.host(), hosts, EVERY, MISSED).await.unwrap()
}

/// A host on a thread and tokio runtime of its own, so that it can die as
/// a process does: no destructor runs (no bye), its tasks stop and its
/// socket closes.
struct Doomed {
    kill: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Doomed {
    /// Starts host `me` beating; returns once it beats.
    async fn start(url: &str, run: &str, me: u16, hosts: u16) -> Doomed {
        let (url, run) = (url.to_string(), run.to_string());
        let (up, is_up) = tokio::sync::oneshot::channel();
        let (kill, killed) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let link = link(&url, &run, me, hosts).await;
                let heartbeat = beat(&link, &run, hosts).await;
                up.send(()).unwrap();
                let _ = killed.await;
                std::mem::forget((link, heartbeat));
            });
            // Its tasks (the beats, the connection's) are dropped here.
            drop(rt);
        });
        timeout(Duration::from_secs(10), is_up).await.unwrap().expect("the doomed host starts");
        Doomed { kill: Some(kill), thread: Some(thread) }
    }

    /// Dies at once, without a bye.
    async fn crash(mut self) {
        let _ = self.kill.take().unwrap().send(());
        let thread = self.thread.take().unwrap();
        tokio::task::spawn_blocking(move || thread.join().unwrap()).await.unwrap();
    }
}

/// Asserts that no verdict comes for `span` (a timed wait is the
/// assertion here), checking `check()` along the way.
async fn quiet(hb: &mut Heartbeat, span: Duration) {
    let end = tokio::time::Instant::now() + span;
    while tokio::time::Instant::now() < end {
        if let Ok(e) = timeout(EVERY / 2, hb.dead()).await {
            panic!("verdict while every host beats: {e}");
        }
        hb.check().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_host_is_named_within_the_limit() {
    let server = server_or_skip!(a_crashed_host_is_named_within_the_limit);
    let a = server.link("hb1", 0, 2).await;
    let mut hb = beat(&a, "hb1", 2).await;
    let b = Doomed::start(&server.url, "hb1", 1, 2).await;
    // Ten beat periods, over twice the limit and the start-up grace: b's
    // beats are coming.
    quiet(&mut hb, EVERY * 10).await;
    let crashed = Instant::now();
    b.crash().await;
    let err = timeout(LIMIT + SLACK, hb.dead()).await.expect("the crash is named in time");
    let waited = crashed.elapsed();
    match err {
        Error::HostLost { host: 1, silent_for } => {
            assert!(silent_for >= LIMIT, "lost after {silent_for:?} of silence");
            assert!(waited <= LIMIT + SLACK, "{waited:?}");
        }
        e => panic!("{e}"),
    }
    // The verdict stands, for check() too, and names the host.
    let msg = hb.check().unwrap_err().to_string();
    assert!(msg.contains("host 1 lost"), "{msg}");
    assert!(matches!(hb.event().await, HostEvent::Lost(Error::HostLost { host: 1, .. })));
    // This host is fine: its bye goes through.
    timeout(SLACK, hb.stop()).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_never_comes_is_named_after_the_grace() {
    let server = server_or_skip!(a_host_that_never_comes_is_named_after_the_grace);
    let (a, b) = (server.link("hb2", 0, 3).await, server.link("hb2", 1, 3).await);
    let started = Instant::now();
    let mut ha = beat(&a, "hb2", 3).await;
    let mut hb = beat(&b, "hb2", 3).await.with_grace(LIMIT * 2);
    let (ea, eb) = tokio::join!(
        timeout(LIMIT + SLACK, async {
            let e = ha.dead().await;
            (e, started.elapsed())
        }),
        timeout(LIMIT * 2 + SLACK, async {
            let e = hb.dead().await;
            (e, started.elapsed())
        }),
    );
    let ((ea, ta), (eb, tb)) = (ea.expect("a names host 2"), eb.expect("b names host 2"));
    assert!(matches!(ea, Error::HostLost { host: 2, .. }), "{ea}");
    assert!(matches!(eb, Error::HostLost { host: 2, .. }), "{eb}");
    // Not before the grace: the default (the limit), and b's longer one.
    assert!(ta >= LIMIT, "{ta:?}");
    assert!(tb >= LIMIT * 2, "{tb:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_stops_cleanly_has_left_and_is_not_lost() {
    let server = server_or_skip!(a_host_that_stops_cleanly_has_left_and_is_not_lost);
    let a = server.link("hb3", 0, 3).await;
    let b = server.link("hb3", 1, 3).await;
    let c = server.link("hb3", 2, 3).await;
    let mut ha = beat(&a, "hb3", 3).await;
    let hb = beat(&b, "hb3", 3).await;
    let hc = beat(&c, "hb3", 3).await;
    quiet(&mut ha, EVERY * 4).await;
    // b says bye and waits for the server to have it; c by being dropped.
    hb.stop().await.unwrap();
    let event = timeout(SLACK, ha.event()).await.expect("b's bye arrives");
    assert!(matches!(event, HostEvent::Left(1)), "{event:?}");
    drop(hc);
    let event = timeout(SLACK, ha.event()).await.expect("c's bye arrives");
    assert!(matches!(event, HostEvent::Left(2)), "{event:?}");
    assert_eq!(ha.left(), [1, 2]);
    // Both silent now for over twice the limit, and not lost.
    quiet(&mut ha, LIMIT * 2 + EVERY).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_server_dies_every_host_stops_with_an_error() {
    let mut server = server_or_skip!(when_the_server_dies_every_host_stops_with_an_error);
    let (a, b) = (server.link("hb4", 0, 2).await, server.link("hb4", 1, 2).await);
    let (mut ha, mut hb) = (beat(&a, "hb4", 2).await, beat(&b, "hb4", 2).await);
    quiet(&mut ha, EVERY * 6).await;
    hb.check().unwrap();
    let killed = Instant::now();
    server.kill();
    let (ea, eb) =
        tokio::join!(timeout(LIMIT + SLACK, ha.dead()), timeout(LIMIT + SLACK, hb.dead()));
    let waited = killed.elapsed();
    // Each host sees that it is the one cut off, rather than blaming the
    // other.
    let (ea, eb) = (ea.expect("a stops"), eb.expect("b stops"));
    assert!(matches!(ea, Error::CutOff { host: 0, .. }), "{ea}");
    assert!(matches!(eb, Error::CutOff { host: 1, .. }), "{eb}");
    assert!(waited <= LIMIT + SLACK, "{waited:?}");
    // A bye cannot go: stop() says so, in bounded time.
    let stop = timeout(LIMIT + EVERY + SLACK, ha.stop()).await.expect("stop does not hang");
    assert!(stop.is_err());
    // Dropping does not hang either.
    drop((hb, a, b));
}
