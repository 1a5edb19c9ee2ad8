//! An outsider on the run's NATS server: a small async-nats client that
//! knows the wire format (`maslite_nats::packet`, `heartbeat`) but not the
//! run's key, and replays the attacks of issue 16 against a running
//! 2-host run: forged controls (with `stop`) and mail on a host's own
//! link, frames claiming to be from the other host, forged aborts with
//! terminal escapes, forged and replayed beats and byes, replays of the
//! run's own frames, and floods of partial frames.

use maslite::runtime::transport::Control;
use maslite::runtime::StopReason;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

const LAST: u8 = 1;
const ABORT: u8 = 4;
const CONTROL: u8 = 0;
const MAIL: u8 = 1;

/// A frame as `maslite_nats::packet` lays it out, without a tag (the
/// outsider has no key).
#[allow(clippy::too_many_arguments)]
pub fn frame(
    from_host: u16,
    to_host: u16,
    seq: u64,
    flags: u8,
    from: u16,
    to: u16,
    kind: u8,
    body: &[u8],
) -> Vec<u8> {
    let mut f = b"MSP2".to_vec();
    f.extend_from_slice(&from_host.to_le_bytes());
    f.extend_from_slice(&to_host.to_le_bytes());
    f.extend_from_slice(&seq.to_le_bytes());
    f.push(flags);
    f.extend_from_slice(&from.to_le_bytes());
    f.extend_from_slice(&to.to_le_bytes());
    f.push(kind);
    f.extend_from_slice(body);
    f
}

/// A well-formed control asking the run to stop, with `run` as its
/// fingerprint.
pub fn control_body(run: u64) -> Vec<u8> {
    let control = Control {
        changes: Arc::new(Vec::new()),
        active: false,
        busy: false,
        held: false,
        has_mail: false,
        next_alarm: f64::INFINITY,
        now: 0.0,
        stop: Some(StopReason::Paused),
        failed: false,
        alarms: Vec::new(),
        drained: true,
        awake: false,
        polled: false,
        run,
        starts: Vec::new(),
        spare: Vec::new(),
        spare_alarms: Vec::new(),
    };
    let mut body = Vec::new();
    maslite_nats::control::encode(&maslite_nats::Codec::new(), &control, &mut body).unwrap();
    body
}

/// What the outsider did.
#[derive(Debug, Default)]
pub struct Done {
    /// Messages published.
    pub published: AtomicU64,
    /// The run's own messages it saw (and could read).
    pub seen: AtomicU64,
}

/// The outsider's attack, on a thread of its own until `stop`.
pub enum Attack {
    /// Forged frames of every kind, forged and replayed beats and byes,
    /// replays of the run's frames, on both hosts, for as long as the run
    /// goes.
    Forge,
    /// Forged byes (and aborts) for host 1, once, then nothing.
    ForgedBye,
    /// `count` partial frames of `size` bytes claiming to come from host 1,
    /// to host 0.
    Flood { count: u64, size: usize },
}

/// Starts `attack` on run `run` through the server at `url`, once the run's
/// traffic shows (the hosts are up). Returns what it did when `stop` is
/// set (or it is done).
pub fn start(
    url: &str,
    run: &str,
    attack: Attack,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Arc<Done>> {
    let (url, run) = (url.to_string(), run.to_string());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let done = Arc::new(Done::default());
        rt.block_on(outsider(url, run, attack, stop, done.clone()));
        done
    })
}

async fn outsider(
    url: String,
    run: String,
    attack: Attack,
    stop: Arc<AtomicBool>,
    done: Arc<Done>,
) {
    use futures::StreamExt;
    let client = async_nats::connect(url.as_str()).await.expect("the outsider connects");
    let mut spy = client.subscribe(format!("maslite.{run}.>")).await.unwrap();
    client.flush().await.unwrap();
    // The run's traffic, recorded for replays (the first of it).
    let mut recorded: Vec<(async_nats::Subject, Vec<u8>)> = Vec::new();
    let first = tokio::time::timeout(Duration::from_secs(60), spy.next()).await;
    let Ok(Some(first)) = first else { return };
    recorded.push((first.subject, first.payload.to_vec()));
    let publish = |subject: String, payload: Vec<u8>| {
        let client = client.clone();
        let done = done.clone();
        async move {
            done.published.fetch_add(1, Relaxed);
            let _ = client.publish(subject, payload.into()).await;
        }
    };
    let h = |host: u16| format!("maslite.{run}.h.{host}");
    let beat = |host: u16| format!("maslite.{run}.beat.{host}");
    match attack {
        Attack::ForgedBye => {
            for seq in 0..20 {
                publish(beat(1), b"bye".to_vec()).await;
                publish(beat(1), vec![1; 41]).await;
                // An abort from host 1 to host 0, and on host 0's own link.
                publish(h(0), frame(1, 0, seq, ABORT | LAST, 0, 0, 0, b"forged")).await;
                publish(h(0), frame(0, 0, seq, ABORT | LAST, 0, 0, 0, b"forged")).await;
            }
            let _ = client.flush().await;
            return;
        }
        Attack::Flood { count, size } => {
            let body = vec![0x5a; size];
            for seq in 0..count {
                if stop.load(Relaxed) {
                    break;
                }
                publish(h(0), frame(1, 0, seq, 0, 1, 0, MAIL, &body)).await;
                if seq % 16 == 0 {
                    let _ = client.flush().await;
                }
            }
            let _ = client.flush().await;
            return;
        }
        Attack::Forge => {}
    }
    let stop_control = control_body(0);
    let mut seq = 0u64;
    while !stop.load(Relaxed) {
        // What the run said since: recorded (up to 200) and counted.
        while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(1), spy.next()).await {
            done.seen.fetch_add(1, Relaxed);
            if recorded.len() < 200 {
                recorded.push((m.subject, m.payload.to_vec()));
            }
        }
        for me in 0..2u16 {
            let other = 1 - me;
            // On the host's own link (its sequence never moves), a control
            // with stop, and mail where a control belongs.
            publish(h(me), frame(me, me, seq, LAST, me, me, CONTROL, &stop_control)).await;
            publish(h(me), frame(me, me, seq, LAST, me, me, MAIL, &0u32.to_le_bytes())).await;
            // Claiming to be the other host, with a guess of its sequence.
            publish(h(me), frame(other, me, seq, LAST, other, me, CONTROL, &stop_control)).await;
            let escapes = b"\x1b[2J\x1b[31mforged abort\nsecond line";
            publish(h(me), frame(other, me, seq, ABORT | LAST, 0, 0, 0, escapes)).await;
            publish(beat(other), b"bye".to_vec()).await;
            publish(beat(other), vec![seq as u8; 41]).await;
            publish(h(me), b"garbage".to_vec()).await;
        }
        // The run's own frames and beats, again.
        for (subject, payload) in recorded.iter().skip((seq as usize * 7) % recorded.len()).take(5)
        {
            publish(subject.to_string(), payload.clone()).await;
        }
        seq += 1;
        let _ = client.flush().await;
        // Paced: the outsider must not starve the hosts of the machine's
        // two cores (a flood is its own attack, below).
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The peak resident memory of process `pid` so far (VmHWM), in bytes.
pub fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
