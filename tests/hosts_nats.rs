//! Partitions on two hosts over NATS: the phold and conveyor examples as
//! two OS processes give the run's hash of one process; a host killed
//! mid-run is named by the other; an unregistered payload type stops both
//! hosts naming it; a payload over the server's limit is split and
//! arrives whole. Each test starts its own `nats-server` on a free port of
//! 127.0.0.1 (`apt-get install -y nats-server`). Without one on PATH the
//! tests are ignored, with the reason, and one line on stderr says so;
//! `MASLITE_REQUIRE_NATS=1` (as in `.ci/run`) makes that a failure.
//!
//! The hosts are this test binary run again as the example: with
//! `MASLITE_EXAMPLE=phold` (or `conveyor`) in its environment, `main` runs
//! that example's command on the arguments instead of the tests. So the
//! processes run the examples' code as built with this test, never a stale
//! binary. (`harness = false`: libtest-mimic gives the usual test flags.)

#[allow(dead_code)] // the links' helper and ServerTests are for maslite-nats's own tests
#[path = "../maslite-nats/tests/nats/common.rs"]
mod nats;

#[allow(dead_code)]
#[path = "../examples/phold.rs"]
mod phold;

#[path = "hosts_nats/adversary.rs"]
mod adversary;

#[allow(dead_code)]
#[path = "../examples/conveyor.rs"]
mod conveyor;

use maslite::prelude::*;
use maslite::runtime::transport::Placement;
use maslite::Error;
use maslite_nats::{Codec, NatsOptions, NatsTransport, RunKey};
use nats::Server;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// The run key of this test binary's runs (new each time it starts).
fn key() -> RunKey {
    static KEY: std::sync::OnceLock<RunKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| RunKey::generate().unwrap()).clone()
}

/// Runs this binary again as the example `name` with `args` (and the
/// run's key in its environment).
fn spawn(name: &str, args: &[&str]) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(args)
        .env("MASLITE_EXAMPLE", name)
        .env(maslite_nats::key::RUN_KEY_ENV, key().to_hex())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for a child with a deadline (a hang fails the test).
fn finish(child: Child, within: Duration) -> Output {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    rx.recv_timeout(within).expect("the host ended in time").unwrap()
}

/// The hex after `word` on the line of stdout that starts with `prefix`.
fn hex_after(out: &Output, prefix: &str, word: &str) -> u64 {
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| {
        panic!("no {prefix:?} line in {text}\nstderr: {}", String::from_utf8_lossy(&out.stderr))
    });
    let mut words = line.split_whitespace();
    words.find(|w| *w == word).expect("the word");
    u64::from_str_radix(words.next().unwrap(), 16).unwrap()
}

fn number_after(out: &Output, word: &str) -> u64 {
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with("phold:")).unwrap();
    let mut words = line.split_whitespace();
    words.find(|w| *w == word).expect("the word");
    words.next().unwrap().parse().unwrap()
}

fn phold_on_two_processes_gives_the_hash_of_one(server: Server) {
    let model = ["--agents", "128", "--events", "3", "--remote", "0.5", "--end", "10"];
    let one = spawn("phold", &[&model[..], &["--partitions", "2"]].concat());
    let one = finish(one, Duration::from_secs(60));
    assert!(one.status.success());
    let hosts = |h: &'static str| {
        let args = [&model[..], &["--partitions", "2", "--hosts", "2", "--host", h]].concat();
        let mut args = args.to_vec();
        args.extend(["--nats", &server.url, "--run", "phold-test"]);
        spawn("phold", &args)
    };
    let (h0, h1) = (hosts("0"), hosts("1"));
    let (h0, h1) = (finish(h0, Duration::from_secs(60)), finish(h1, Duration::from_secs(60)));
    assert!(h0.status.success(), "{}", String::from_utf8_lossy(&h0.stderr));
    assert!(h1.status.success(), "{}", String::from_utf8_lossy(&h1.stderr));
    let (e0, e1) = (number_after(&h0, "events"), number_after(&h1, "events"));
    assert!(e0 > 0 && e1 > 0, "each host processed its share: {e0} {e1}");
    assert_eq!(e0 + e1, number_after(&one, "events"));
    let sum = hex_after(&h0, "phold: host 0", "hash").wrapping_add(hex_after(
        &h1,
        "phold: host 1",
        "hash",
    ));
    assert_eq!(sum, hex_after(&one, "phold:", "hash"));
}

fn conveyor_on_two_processes_tells_the_story_of_one(server: Server) {
    let one = finish(spawn("conveyor", &[]), Duration::from_secs(60));
    assert!(one.status.success());
    let host = |h: &str| {
        spawn("conveyor", &["--hosts", "2", "--host", h, "--nats", &server.url, "--run", "belt"])
    };
    let (h0, h1) = (host("0"), host("1"));
    let (h0, h1) = (finish(h0, Duration::from_secs(60)), finish(h1, Duration::from_secs(60)));
    assert!(h0.status.success(), "{}", String::from_utf8_lossy(&h0.stderr));
    assert!(h1.status.success(), "{}", String::from_utf8_lossy(&h1.stderr));
    let sum = hex_after(&h0, "conveyor: host 0", "trace").wrapping_add(hex_after(
        &h1,
        "conveyor: host 1",
        "trace",
    ));
    assert_eq!(sum, hex_after(&one, "conveyor: trace", "trace"));
    // The box reached conveyor 4, on host 1, at 4.75.
    let story = String::from_utf8_lossy(&h1.stdout);
    assert!(story.contains("conveyor 4: Arrived { at: 4.75, item: 1 }"), "{story}");
}

fn a_host_killed_mid_run_is_named_by_the_other(server: Server) {
    let host = |h: &str| {
        let args = ["--partitions", "2", "--hosts", "2", "--host", h, "--end", "1000000"];
        let mut args = args.to_vec();
        args.extend(["--nats", &server.url, "--run", "killed"]);
        spawn("phold", &args)
    };
    let mut h0 = host("0");
    let mut h1 = host("1");
    // Host 0's progress lines say the run is under way.
    let stderr = h0.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut said = Vec::new();
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent && line.starts_with("phold: sim") {
                let _ = tx.send(None);
                sent = true;
            }
            said.push(line);
        }
        let _ = tx.send(Some(said.join("\n")));
    });
    assert_eq!(rx.recv_timeout(Duration::from_secs(60)).unwrap(), None, "the run started");
    h1.kill().unwrap();
    let _ = h1.wait();
    let killed = Instant::now();
    let out = finish(h0, Duration::from_secs(30));
    let waited = killed.elapsed();
    let said = rx.recv_timeout(Duration::from_secs(5)).unwrap().unwrap();
    assert!(!out.status.success());
    assert!(said.contains("host 1"), "{said}");
    // The heartbeat's limit is 2 s (250 ms x 8): named within a few.
    assert!(waited < Duration::from_secs(15), "named after {waited:?}");
}

/// Payloads for the tests of one process with two runtimes over NATS.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Blob(Vec<u8>);

#[derive(Clone, Debug)]
struct Secret;

/// Keeps what it receives: (sender, payload length or 0).
struct Sink {
    got: Vec<(AgentId, usize)>,
}

impl Agent for Sink {
    async fn update(&mut self, cx: &Cx) {
        while let Some(env) = cx.try_recv() {
            let len = env.payload::<Blob>().map_or(0, |b| b.0.len());
            self.got.push((env.sender(), len));
        }
    }
}

/// Sends what it is told to send, to agent 2.
struct Source;

impl Agent for Source {
    async fn update(&mut self, cx: &Cx) {
        while let Some(env) = cx.try_recv() {
            let mut out = env.clone();
            out = out.to(AgentId(2)).from(cx.id());
            cx.send(out);
        }
    }
}

/// Runs host `me` of two (partition `me`): agent 1 (a source) on host 0,
/// agent 2 (a sink) on host 1; `first` goes to the source.
fn host(
    url: String,
    run: &'static str,
    me: u16,
    first: Envelope,
) -> std::thread::JoinHandle<Result<Vec<(AgentId, usize)>, Error>> {
    host_beating(url, run, me, first, Duration::from_millis(100))
}

/// [`host`], with heartbeats every `every` (lost after 10 missed).
fn host_beating(
    url: String,
    run: &'static str,
    me: u16,
    first: Envelope,
    every: Duration,
) -> std::thread::JoinHandle<Result<Vec<(AgentId, usize)>, Error>> {
    host_with(url, run, me, first, every, |nats| nats.key(key()))
}

/// [`host_beating`], its transport set up by `secure` (a key, options).
fn host_with(
    url: String,
    run: &'static str,
    me: u16,
    first: Envelope,
    every: Duration,
    secure: impl FnOnce(NatsTransport) -> NatsTransport + Send + 'static,
) -> std::thread::JoinHandle<Result<Vec<(AgentId, usize)>, Error>> {
    std::thread::spawn(move || {
        let mut codec = Codec::new();
        codec.register::<Blob>().unwrap();
        let placement = Placement::new(vec![0, 1], me)?;
        let nats = NatsTransport::new(&url, run, placement, codec)?
            .heartbeat(every, 10)
            .ready_within(Duration::from_secs(20));
        let nats = secure(nats);
        let mut rt = Runtime::builder().partitions(2).transport(nats).build()?;
        rt.add_with_id(0, AgentId(1), Source)?;
        rt.add_with_id(1, AgentId(2), Sink { got: Vec::new() })?;
        rt.send(first.to(AgentId(1)));
        rt.run()?;
        match me {
            1 => rt.with_agent(AgentId(2), |s: &Sink| s.got.clone()),
            _ => Ok(Vec::new()),
        }
    })
}

fn a_payload_over_the_servers_limit_is_split_and_arrives_whole(server: Server) {
    // 3 MiB, three times the server's default max_payload (1 MiB).
    let blob = || Envelope::new(Blob(vec![7u8; 3 << 20]));
    let h0 = host(server.url.clone(), "big", 0, blob());
    let h1 = host(server.url.clone(), "big", 1, blob());
    assert_eq!(h0.join().unwrap().unwrap(), []);
    assert_eq!(h1.join().unwrap().unwrap(), [(AgentId(1), 3 << 20)]);
}

fn a_step_longer_than_the_heartbeat_limit_is_not_a_cut_off(server: Server) {
    // 16 MiB in one step (seconds to encode in a debug build) with a
    // 250 ms heartbeat limit: the frames keep
    // moving, and beats go on a connection of their own.
    let blob = || Envelope::new(Blob(vec![3u8; 16 << 20]));
    let every = Duration::from_millis(25);
    let h0 = host_beating(server.url.clone(), "long", 0, blob(), every);
    let h1 = host_beating(server.url.clone(), "long", 1, blob(), every);
    assert_eq!(h0.join().unwrap().unwrap(), []);
    assert_eq!(h1.join().unwrap().unwrap(), [(AgentId(1), 16 << 20)]);
}

fn an_unregistered_type_stops_both_hosts_naming_it(server: Server) {
    let h0 = host(server.url.clone(), "secret", 0, Envelope::new(Secret));
    let h1 = host(server.url.clone(), "secret", 1, Envelope::new(Secret));
    let e0 = h0.join().unwrap().unwrap_err();
    let e1 = h1.join().unwrap().unwrap_err().to_string();
    match &e0 {
        Error::Unregistered { type_name, from: 0, to: 1 } => {
            assert!(type_name.ends_with("Secret"), "{type_name}")
        }
        e => panic!("{e:?}"),
    }
    assert!(e0.to_string().contains("partition 0 -> partition 1"), "{e0}");
    assert!(e1.contains("host 0 failed") && e1.contains("Secret"), "{e1}");
}

/// Bounces a blob to the other agent (1 <-> 2) a millisecond later,
/// forever.
struct Rally;

impl Agent for Rally {
    async fn update(&mut self, cx: &Cx) {
        while let Some(env) = cx.try_recv() {
            let back = Envelope::new(env.payload::<Blob>().unwrap().clone());
            let other = AgentId(3 - cx.id().0);
            cx.set_alarm(Alarm::after(0.001, back.to(other))).unwrap();
        }
    }
}

fn the_server_killed_mid_run_stops_both_hosts_saying_so(mut server: Server) {
    let (tx, rx) = mpsc::channel();
    for me in 0..2u16 {
        let (url, tx) = (server.url.clone(), tx.clone());
        std::thread::spawn(move || {
            let run = || -> Result<maslite::runtime::RuntimeReport, Error> {
                let mut codec = Codec::new();
                codec.register::<Blob>().unwrap();
                let placement = Placement::new(vec![0, 1], me)?;
                let nats = NatsTransport::new(&url, "rally", placement, codec)?
                    .key(key())
                    .heartbeat(Duration::from_millis(100), 10);
                let mut rt = Runtime::builder().partitions(2).transport(nats).build()?;
                rt.add_with_id(0, AgentId(1), Rally)?;
                rt.add_with_id(1, AgentId(2), Rally)?;
                rt.send(Envelope::new(Blob(vec![1])).to(AgentId(1)));
                let _ = tx.send(None);
                rt.run_with(RunOptions::new().seconds(1e9))
            };
            let _ = tx.send(Some(run()));
        });
    }
    // Both hosts are built (their run starts at once).
    for _ in 0..2 {
        assert!(rx.recv_timeout(Duration::from_secs(30)).unwrap().is_none());
    }
    server.kill();
    let killed = Instant::now();
    for _ in 0..2 {
        let end = rx.recv_timeout(Duration::from_secs(20)).expect("the host stopped in time");
        let err = end.unwrap().unwrap_err().to_string();
        assert!(err.contains("cut off") || err.contains("lost"), "{err}");
    }
    // The heartbeat's limit is 1 s (100 ms x 10).
    assert!(killed.elapsed() < Duration::from_secs(10), "{:?}", killed.elapsed());
}

fn a_host_that_never_comes_is_named_when_building(server: Server) {
    let placement = Placement::new(vec![0, 1], 0).unwrap();
    let nats = NatsTransport::new(&server.url, "alone", placement, Codec::new())
        .unwrap()
        .key(key())
        .ready_within(Duration::from_millis(800));
    let start = Instant::now();
    let err = Runtime::builder().partitions(2).transport(nats).build().err().unwrap();
    assert!(start.elapsed() < Duration::from_secs(10));
    let text = err.to_string();
    assert!(matches!(err, Error::Transport { .. }), "{text}");
    assert!(text.contains("[1]") && text.contains("readiness"), "{text}");
    // And a bad run name is refused before anything connects.
    let placement = Placement::new(vec![0, 1], 0).unwrap();
    let bad = NatsTransport::new(&server.url, "a.b", placement, Codec::new()).unwrap_err();
    assert!(matches!(bad, Error::Config(_)), "{bad}");
}

const SECRET: &[u8] = b"a-payload-no-outsider-may-read";

/// Everything published on run `run`'s subjects while `until` is unset,
/// as an outsider subscribed to them sees it (subscribed when this
/// returns).
fn spy(url: &str, run: &str, until: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<Vec<u8>>> {
    let (url, subject) = (url.to_string(), format!("maslite.{run}.>"));
    let (ready, is_ready) = mpsc::channel();
    let spy = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            use futures::StreamExt;
            let client = async_nats::connect(url.as_str()).await.unwrap();
            let mut sub = client.subscribe(subject).await.unwrap();
            client.flush().await.unwrap();
            ready.send(()).unwrap();
            let mut seen = Vec::new();
            while !until.load(Ordering::Relaxed) {
                if let Ok(Some(m)) =
                    tokio::time::timeout(Duration::from_millis(20), sub.next()).await
                {
                    seen.push(m.payload.to_vec());
                }
            }
            seen
        })
    });
    is_ready.recv_timeout(Duration::from_secs(10)).expect("the spy subscribed");
    spy
}

fn an_eavesdropper_reads_nothing_of_an_encrypted_run(server: Server) {
    for (run, encrypted) in [("plain", false), ("hidden", true)] {
        let stop = Arc::new(AtomicBool::new(false));
        let spy = spy(&server.url, run, stop.clone());
        let secret = || Envelope::new(Blob(SECRET.repeat(10)));
        let secure = move |nats: NatsTransport| match encrypted {
            true => nats.key(key()).encrypted(),
            false => nats.key(key()),
        };
        let every = Duration::from_millis(100);
        let h0 = host_with(server.url.clone(), run, 0, secret(), every, secure);
        let h1 = host_with(server.url.clone(), run, 1, secret(), every, secure);
        assert_eq!(h0.join().unwrap().unwrap(), []);
        assert_eq!(h1.join().unwrap().unwrap(), [(AgentId(1), SECRET.len() * 10)]);
        stop.store(true, Ordering::Relaxed);
        let seen = spy.join().unwrap();
        assert!(seen.len() > 4, "the spy saw the run: {} messages", seen.len());
        let read = seen.iter().any(|m| m.windows(SECRET.len()).any(|w| w == SECRET));
        // Authenticated frames are readable (so the spy works); encrypted
        // ones are not.
        assert_eq!(read, !encrypted, "{run}");
    }
}

fn a_run_without_a_key_is_refused_unless_insecure(server: Server) {
    let placement = Placement::new(vec![0, 1], 0).unwrap();
    let nats = NatsTransport::new(&server.url, "nokey", placement, Codec::new()).unwrap();
    let start = Instant::now();
    let err = Runtime::builder().partitions(2).transport(nats).build().err().unwrap();
    assert!(start.elapsed() < Duration::from_secs(1), "refused before connecting");
    let text = err.to_string();
    assert!(matches!(err, Error::Config(_)), "{text}");
    assert!(text.contains("no run key") && text.contains("insecure"), "{text}");
    // Said in so many words, it runs.
    let blob = || Envelope::new(Blob(vec![1; 10]));
    let every = Duration::from_millis(100);
    let h0 = host_with(server.url.clone(), "open", 0, blob(), every, |n| n.insecure());
    let h1 = host_with(server.url.clone(), "open", 1, blob(), every, |n| n.insecure());
    assert_eq!(h0.join().unwrap().unwrap(), []);
    assert_eq!(h1.join().unwrap().unwrap(), [(AgentId(1), 10)]);
}

/// A server config with a user per host, each allowed to publish only
/// where its host speaks in run `run`, and to read only its own.
fn locked_down(run: &str) -> String {
    let user = |me: u16, other: u16| {
        format!(
            r#"{{ user: host{me}, password: "pw-{me}-s3cret",
                 permissions: {{
                   publish: {{ allow: ["maslite.{run}.h.{other}", "maslite.{run}.ready.{other}",
                                       "maslite.{run}.beat.{me}", "_INBOX.>"] }},
                   subscribe: {{ allow: ["maslite.{run}.h.{me}", "maslite.{run}.ready.{me}",
                                         "maslite.{run}.beat.*", "_INBOX.>"] }} }} }}"#
        )
    };
    format!("authorization {{ users = [ {}, {} ] }}\n", user(0, 1), user(1, 0))
}

fn a_locked_down_server_takes_its_hosts_and_refuses_wrong_credentials(_open: Server) {
    let dir = std::env::temp_dir().join(format!("maslite-locked-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("server.conf");
    std::fs::write(&conf, locked_down("locked")).unwrap();
    let server = Server::start_with(&["-c", conf.to_str().unwrap()]);
    let blob = || Envelope::new(Blob(vec![5; 100]));
    let every = Duration::from_millis(100);
    let as_host = |me: u16| {
        move |n: NatsTransport| {
            let password = format!("pw-{me}-s3cret");
            n.key(key())
                .options(NatsOptions::new().user_and_password(&format!("host{me}"), &password))
        }
    };
    let h0 = host_with(server.url.clone(), "locked", 0, blob(), every, as_host(0));
    let h1 = host_with(server.url.clone(), "locked", 1, blob(), every, as_host(1));
    assert_eq!(h0.join().unwrap().unwrap(), []);
    assert_eq!(h1.join().unwrap().unwrap(), [(AgentId(1), 100)]);
    // Wrong credentials, as options or in the URL: refused at once (not
    // after the 20 s readiness wait), the secret in no message.
    let port = server.url.rsplit(':').next().unwrap().to_string();
    let wrong = "wr0ng-passw0rd";
    let tries: [(String, NatsOptions); 3] = [
        (server.url.clone(), NatsOptions::new().user_and_password("host0", wrong)),
        (format!("nats://host0:{wrong}@127.0.0.1:{port}"), NatsOptions::new()),
        (server.url.clone(), NatsOptions::new()),
    ];
    for (url, options) in tries {
        let start = Instant::now();
        let h = host_with(url, "locked", 0, blob(), every, move |n| n.key(key()).options(options));
        let err = h.join().unwrap().unwrap_err().to_string();
        assert!(start.elapsed() < Duration::from_secs(10), "{:?}: {err}", start.elapsed());
        assert!(err.contains("refused"), "{err}");
        assert!(!err.contains(wrong) && !err.contains("s3cret"), "{err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate it
/// signed, as PEM files in `dir`: (ca, server cert, server key, client
/// cert, client key).
fn certificates(dir: &std::path::Path) -> [std::path::PathBuf; 5] {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "maslite test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let signed = |names: Vec<String>| {
        let key = KeyPair::generate().unwrap();
        let cert =
            CertificateParams::new(names).unwrap().signed_by(&key, &ca_cert, &ca_key).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (server, server_key) = signed(vec!["127.0.0.1".into(), "localhost".into()]);
    let (client, client_key) = signed(vec!["host".into()]);
    let files = [
        ("ca.pem", ca_cert.pem()),
        ("server.pem", server),
        ("server-key.pem", server_key),
        ("client.pem", client),
        ("client-key.pem", client_key),
    ];
    files.map(|(name, pem)| {
        let path = dir.join(name);
        std::fs::write(&path, pem).unwrap();
        path
    })
}

fn mutual_tls_runs_the_hosts_and_refuses_a_host_without_a_certificate(_open: Server) {
    let dir = std::env::temp_dir().join(format!("maslite-mtls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let [ca, cert, key_file, client, client_key] = certificates(&dir);
    let conf = dir.join("server.conf");
    let tls = format!(
        "tls {{ cert_file: {cert:?}, key_file: {key_file:?}, ca_file: {ca:?}, verify: true, timeout: 5 }}\n"
    );
    std::fs::write(&conf, tls).unwrap();
    let server = Server::start_with(&["-c", conf.to_str().unwrap()]);
    let blob = || Envelope::new(Blob(vec![9; 100]));
    let every = Duration::from_millis(100);
    let options = NatsOptions::new().ca(&ca).client_certificate(&client, &client_key);
    let (o0, o1) = (options.clone(), options);
    let h0 = host_with(server.url.clone(), "mtls", 0, blob(), every, |n| n.key(key()).options(o0));
    let h1 = host_with(server.url.clone(), "mtls", 1, blob(), every, |n| n.key(key()).options(o1));
    assert_eq!(h0.join().unwrap().unwrap(), []);
    assert_eq!(h1.join().unwrap().unwrap(), [(AgentId(1), 100)]);
    // Without trusting the server's CA, or without a client certificate
    // (the server hangs up after the handshake): as the server may be
    // starting, tried until the readiness deadline (2 s here), then the
    // error says TLS.
    for options in [NatsOptions::new().require_tls(), NatsOptions::new().ca(&ca)] {
        let start = Instant::now();
        let secure = move |n: NatsTransport| {
            n.key(key()).options(options).ready_within(Duration::from_secs(2))
        };
        let h = host_with(server.url.clone(), "mtls", 0, blob(), every, secure);
        let err = h.join().unwrap().unwrap_err().to_string();
        assert!(start.elapsed() < Duration::from_secs(10), "{:?}: {err}", start.elapsed());
        assert!(err.contains("over TLS"), "{err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A run key's holder that misbehaves: it asks host 1 for its session (as
/// a host would), then says bye on host 1's heartbeats, validly sealed,
/// while host 1 runs on. Host 0 takes the bye only with host 1's bye frame,
/// which never comes: both hosts fail within the heartbeat limit, named,
/// rather than host 0 waiting on a host it stopped watching.
fn a_bye_without_the_hosts_last_frames_fails_the_run_in_bounded_time(server: Server) {
    let (tx, rx) = mpsc::channel();
    for me in 0..2u16 {
        let (url, tx) = (server.url.clone(), tx.clone());
        std::thread::spawn(move || {
            let run = || -> Result<maslite::runtime::RuntimeReport, Error> {
                let mut codec = Codec::new();
                codec.register::<Blob>().unwrap();
                let placement = Placement::new(vec![0, 1], me)?;
                let nats = NatsTransport::new(&url, "insider", placement, codec)?
                    .key(key())
                    .heartbeat(Duration::from_millis(100), 10);
                let mut rt = Runtime::builder().partitions(2).transport(nats).build()?;
                rt.add_with_id(0, AgentId(1), Rally)?;
                rt.add_with_id(1, AgentId(2), Rally)?;
                rt.send(Envelope::new(Blob(vec![1])).to(AgentId(1)));
                let _ = tx.send(None);
                rt.run_with(RunOptions::new().seconds(1e9))
            };
            let _ = tx.send(Some(run()));
        });
    }
    for _ in 0..2 {
        assert!(rx.recv_timeout(Duration::from_secs(30)).unwrap().is_none());
    }
    // The insider: host 1's session from its readiness answer, then a bye.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        use maslite_nats::seal::{Beat, Protection, RunSeal};
        let seal = RunSeal::new(&key(), Protection::Authenticated, "insider", 0, 2).unwrap();
        let client = async_nats::connect(server.url.as_str()).await.unwrap();
        let answer = client.request("maslite.insider.ready.1", seal.ask()).await.unwrap();
        assert!(seal.take_answer(1, &answer.payload), "host 1 answered");
        let bye = seal.beats_of(1).unwrap().seal(Beat::Bye, u64::MAX / 2);
        client.publish("maslite.insider.beat.1", bye).await.unwrap();
        client.flush().await.unwrap();
    });
    let said = Instant::now();
    let mut errors = Vec::new();
    for _ in 0..2 {
        let end = rx.recv_timeout(Duration::from_secs(20)).expect("the host stopped in time");
        errors.push(end.unwrap().unwrap_err().to_string());
    }
    // The heartbeat's limit is 1 s (100 ms x 10).
    assert!(said.elapsed() < Duration::from_secs(10), "{:?}", said.elapsed());
    let all = errors.join("\n");
    assert!(
        all.contains("host 1 said bye on its heartbeats, but its last frames did not follow"),
        "{all}"
    );
}

/// A phold model long enough (thousands of lockstep steps across hosts)
/// for an outsider's attacks to land in the middle of it.
const LONG_MODEL: [&str; 8] =
    ["--agents", "128", "--events", "3", "--remote", "0.5", "--end", "300"];

/// Host `h` of 2 of phold's `model`, on run `run`.
fn phold_host(server: &Server, model: &[&str], run: &str, h: &str) -> Child {
    let mut args = [model, &["--partitions", "2", "--hosts", "2", "--host", h]].concat();
    args.extend(["--nats", &server.url, "--run", run]);
    spawn("phold", &args)
}

/// Both hosts' stderr, for the assertions and the failures' messages.
fn said(outs: &[&Output]) -> String {
    outs.iter().map(|o| String::from_utf8_lossy(&o.stderr)).collect::<Vec<_>>().join("\n")
}

fn an_outsider_cannot_change_the_result_nor_crash_a_host(server: Server) {
    let one = finish(
        spawn("phold", &[&LONG_MODEL[..], &["--partitions", "2"]].concat()),
        Duration::from_secs(60),
    );
    assert!(one.status.success());
    let stop = Arc::new(AtomicBool::new(false));
    let attacker =
        adversary::start(&server.url, "outsider", adversary::Attack::Forge, stop.clone());
    let (h0, h1) = (
        phold_host(&server, &LONG_MODEL, "outsider", "0"),
        phold_host(&server, &LONG_MODEL, "outsider", "1"),
    );
    let (h0, h1) = (finish(h0, Duration::from_secs(120)), finish(h1, Duration::from_secs(120)));
    stop.store(true, Ordering::Relaxed);
    let done = attacker.join().unwrap();
    let said = said(&[&h0, &h1]);
    // Both finish, with the one-process result: nothing forged was acted
    // on, nothing panicked.
    assert!(h0.status.success() && h1.status.success(), "{said}");
    let sum = hex_after(&h0, "phold: host 0", "hash").wrapping_add(hex_after(
        &h1,
        "phold: host 1",
        "hash",
    ));
    assert_eq!(sum, hex_after(&one, "phold:", "hash"), "{said}");
    assert_eq!(
        number_after(&h0, "events") + number_after(&h1, "events"),
        number_after(&one, "events")
    );
    // The attacks landed during the run, and were dropped and counted.
    assert!(done.published.load(Ordering::Relaxed) > 100, "{done:?}");
    assert!(said.contains("dropped a frame not from another host"), "{said}");
    assert!(said.contains("dropped a forged frame"), "{said}");
    assert!(said.contains("dropped a forged or replayed heartbeat"), "{said}");
    // No forged abort text (with its escapes) reached a terminal.
    assert!(!said.contains("forged abort") && !said.contains("\x1b[2J"), "{said}");
}

fn a_forged_bye_then_a_dead_host_is_still_named(server: Server) {
    let model = ["--end", "1000000"];
    let mut h0 = phold_host(&server, &model, "bye", "0");
    let mut h1 = phold_host(&server, &model, "bye", "1");
    let stderr = h0.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut said = Vec::new();
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent && line.starts_with("phold: sim") {
                let _ = tx.send(None);
                sent = true;
            }
            said.push(line);
        }
        let _ = tx.send(Some(said.join("\n")));
    });
    assert_eq!(rx.recv_timeout(Duration::from_secs(60)).unwrap(), None, "the run started");
    // Byes and aborts for host 1 from an outsider, then host 1 dies.
    let stop = Arc::new(AtomicBool::new(false));
    adversary::start(&server.url, "bye", adversary::Attack::ForgedBye, stop).join().unwrap();
    h1.kill().unwrap();
    let _ = h1.wait();
    let killed = Instant::now();
    let out = finish(h0, Duration::from_secs(30));
    let waited = killed.elapsed();
    let said = rx.recv_timeout(Duration::from_secs(5)).unwrap().unwrap();
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("host 1 lost"), "{said}");
    assert!(!said.contains("host 1 failed"), "a forged abort was taken: {said}");
    // The heartbeat's limit is 2 s (250 ms x 8): named within a few.
    assert!(waited < Duration::from_secs(15), "named after {waited:?}");
}

fn a_flood_of_partial_frames_keeps_a_hosts_memory_bounded(server: Server) {
    let one = finish(
        spawn("phold", &[&LONG_MODEL[..], &["--partitions", "2"]].concat()),
        Duration::from_secs(60),
    );
    let stop = Arc::new(AtomicBool::new(false));
    // 3 000 frames of (almost) 1 MiB: 3 GiB, claiming to come from host 1.
    let flood = adversary::Attack::Flood { count: 3000, size: (1 << 20) - 100 };
    let attacker = adversary::start(&server.url, "flood", flood, stop.clone());
    let (h0, h1) = (
        phold_host(&server, &LONG_MODEL, "flood", "0"),
        phold_host(&server, &LONG_MODEL, "flood", "1"),
    );
    // Host 0's peak memory, read from /proc while it lives.
    let pid = h0.id();
    let watching = Arc::new(AtomicBool::new(true));
    let watch = {
        let watching = watching.clone();
        std::thread::spawn(move || {
            let mut peak = 0;
            while watching.load(Ordering::Relaxed) {
                peak = adversary::peak_rss(pid).unwrap_or(0).max(peak);
                std::thread::sleep(Duration::from_millis(20));
            }
            peak
        })
    };
    let (h0, h1) = (finish(h0, Duration::from_secs(120)), finish(h1, Duration::from_secs(120)));
    watching.store(false, Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    let peak = watch.join().unwrap();
    let flooded = attacker.join().unwrap().published.load(Ordering::Relaxed);
    let said = said(&[&h0, &h1]);
    assert!(peak > 0, "host 0's memory was read");
    eprintln!(
        "host 0 peaked at {} MiB under a flood of {flooded} MiB; hosts: {}, {}",
        peak >> 20,
        h0.status,
        h1.status
    );
    // (Most of the flood landed while host 0 ran.)
    assert!(flooded >= 1000, "{flooded} frames");
    assert!(peak < 1 << 30, "host 0 peaked at {} MiB: {said}", peak >> 20);
    // Either the run was not disturbed, or it failed saying why.
    if h0.status.success() && h1.status.success() {
        let sum = hex_after(&h0, "phold: host 0", "hash").wrapping_add(hex_after(
            &h1,
            "phold: host 1",
            "hash",
        ));
        assert_eq!(sum, hex_after(&one, "phold:", "hash"), "{said}");
    } else {
        assert!(
            said.contains("slow consumer") || said.contains("lost") || said.contains("failed"),
            "{said}"
        );
    }
}

fn main() -> std::process::ExitCode {
    match std::env::var("MASLITE_EXAMPLE").as_deref() {
        // The examples' own `main`s: they read this process's arguments.
        Ok("phold") => return phold::main(),
        Ok("conveyor") => {
            return match conveyor::main() {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("conveyor: {e}");
                    std::process::ExitCode::FAILURE
                }
            };
        }
        _ => {}
    }
    use libtest_mimic::{Arguments, Completion, Trial};
    /// A test, given its own server.
    type Test = fn(Server);
    let tests: [(&str, Test); 16] = [
        (
            "a_bye_without_the_hosts_last_frames_fails_the_run_in_bounded_time",
            a_bye_without_the_hosts_last_frames_fails_the_run_in_bounded_time,
        ),
        (
            "mutual_tls_runs_the_hosts_and_refuses_a_host_without_a_certificate",
            mutual_tls_runs_the_hosts_and_refuses_a_host_without_a_certificate,
        ),
        (
            "an_eavesdropper_reads_nothing_of_an_encrypted_run",
            an_eavesdropper_reads_nothing_of_an_encrypted_run,
        ),
        (
            "a_run_without_a_key_is_refused_unless_insecure",
            a_run_without_a_key_is_refused_unless_insecure,
        ),
        (
            "a_locked_down_server_takes_its_hosts_and_refuses_wrong_credentials",
            a_locked_down_server_takes_its_hosts_and_refuses_wrong_credentials,
        ),
        (
            "an_outsider_cannot_change_the_result_nor_crash_a_host",
            an_outsider_cannot_change_the_result_nor_crash_a_host,
        ),
        (
            "a_forged_bye_then_a_dead_host_is_still_named",
            a_forged_bye_then_a_dead_host_is_still_named,
        ),
        (
            "a_flood_of_partial_frames_keeps_a_hosts_memory_bounded",
            a_flood_of_partial_frames_keeps_a_hosts_memory_bounded,
        ),
        (
            "phold_on_two_processes_gives_the_hash_of_one",
            phold_on_two_processes_gives_the_hash_of_one,
        ),
        (
            "conveyor_on_two_processes_tells_the_story_of_one",
            conveyor_on_two_processes_tells_the_story_of_one,
        ),
        (
            "a_host_killed_mid_run_is_named_by_the_other",
            a_host_killed_mid_run_is_named_by_the_other,
        ),
        (
            "a_payload_over_the_servers_limit_is_split_and_arrives_whole",
            a_payload_over_the_servers_limit_is_split_and_arrives_whole,
        ),
        (
            "an_unregistered_type_stops_both_hosts_naming_it",
            an_unregistered_type_stops_both_hosts_naming_it,
        ),
        (
            "a_host_that_never_comes_is_named_when_building",
            a_host_that_never_comes_is_named_when_building,
        ),
        (
            "a_step_longer_than_the_heartbeat_limit_is_not_a_cut_off",
            a_step_longer_than_the_heartbeat_limit_is_not_a_cut_off,
        ),
        (
            "the_server_killed_mid_run_stops_both_hosts_saying_so",
            the_server_killed_mid_run_stops_both_hosts_saying_so,
        ),
    ];
    // Without nats-server (and not required): every trial is ignored with
    // the reason, and one line on stderr says so.
    let skip = nats::missing().filter(|_| !nats::required());
    let trials: Vec<Trial> = tests
        .into_iter()
        .map(|(name, f)| {
            Trial::ignorable_test(name, move || {
                if let Some(why) = skip {
                    return Ok(Completion::ignored_with(why));
                }
                std::panic::catch_unwind(|| f(Server::start())).map_err(|p| {
                    p.downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default()
                })?;
                Ok(Completion::Completed)
            })
        })
        .collect();
    let args = Arguments::from_args();
    let count = trials.iter().filter(|t| !args.is_filtered_out(t) && !args.is_ignored(t)).count();
    if skip.is_some() && !args.list && count > 0 {
        nats::say_skipped("hosts_nats tests", count);
    }
    libtest_mimic::run(&args, trials).exit_code()
}
