//! Snapshots of a bare kernel: saved between runs, restored, and run on,
//! the restored kernel tells the uninterrupted one's story; what cannot be
//! saved is named; a damaged snapshot is refused with a typed error.

use maslite_core::snapshot::{MAGIC, VERSION};
use maslite_core::{
    Agent, AgentId, Alarm, Cx, Envelope, Error, RunOptions, Scheduler, Subscription, Types, Unsaved,
};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Trade {
    price: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Wake;

/// Trades with its peers: each message it reads is logged, then it may
/// answer, broadcast a trade, or set an alarm, as its seeded draws say.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Trader {
    peers: Vec<AgentId>,
    rng: u64,
    log: Vec<(u64, u64, u64)>,
    /// Keeps itself awake now and then (and so sees every round).
    wakeful: bool,
}

impl Trader {
    fn peer(&mut self) -> AgentId {
        let i = self.draw() % self.peers.len() as u64;
        self.peers[i as usize]
    }

    fn draw(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }
}

impl Agent for Trader {
    async fn update(&mut self, cx: &Cx) {
        // Leaves one message in the inbox now and then (read next update).
        let take = if self.draw().is_multiple_of(5) { 1 } else { usize::MAX };
        let mut taken = 0;
        while taken < take {
            let Some(env) = cx.try_recv() else { break };
            taken += 1;
            let price = env.payload::<Trade>().map_or(0, |t| t.price);
            self.log.push((cx.now().to_bits(), env.sender().0, price));
            if self.log.len() > 300 {
                continue;
            }
            // About 1.2 messages out for each in, until the log is long.
            let n = 1 + (self.draw().is_multiple_of(5)) as u32;
            for _ in 0..n {
                match self.draw() % 6 {
                    0 | 1 => {
                        let to = self.peer();
                        cx.send(Envelope::new(Trade { price: price + 1 }).to(to));
                    }
                    2 => {
                        cx.send(Envelope::new(Trade { price: price + 2 }).topic_is("trade"));
                        let to = self.peer();
                        cx.send(Envelope::new(Trade { price: price + 3 }).to(to));
                    }
                    3 => {
                        let delay = (self.draw() % 4) as f64 * 0.5;
                        let env = Envelope::new(Trade { price }).to(cx.id());
                        cx.set_alarm(Alarm::after(delay, env)).unwrap();
                    }
                    _ => {
                        let to = self.peer();
                        let env = Envelope::new(Trade { price: 7 }).to(to);
                        cx.set_alarm(Alarm::after(1.0, env)).unwrap();
                    }
                }
            }
        }
        let awake = self.draw().is_multiple_of(11) && self.log.len() < 400;
        cx.set_keep_awake(self.wakeful && awake);
    }
}

/// Reads the trades broadcast on "trade" (and copies of mail to trader 1).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Watcher {
    seen: Vec<(u64, u64, u64)>,
}

impl Agent for Watcher {
    async fn update(&mut self, cx: &Cx) {
        while let Some(env) = cx.try_recv() {
            let price = env.payload::<Trade>().map_or(0, |t| t.price);
            self.seen.push((cx.now().to_bits(), env.sender().0, price));
        }
    }
}

fn types() -> Types {
    let mut types = Types::new();
    types
        .register::<Trade>()
        .unwrap()
        .register::<Wake>()
        .unwrap()
        .register_agent::<Trader>()
        .unwrap()
        .register_agent::<Watcher>()
        .unwrap();
    types
}

/// A market of `n` traders and a watcher, with mail waiting.
fn market(n: u64, seed: u64) -> (Scheduler, Vec<AgentId>, AgentId) {
    market_of(n, seed, true)
}

/// A market whose traders keep themselves awake now and then if `wakeful`.
fn market_of(n: u64, seed: u64, wakeful: bool) -> (Scheduler, Vec<AgentId>, AgentId) {
    let mut s = Scheduler::simulated();
    let ids: Vec<AgentId> = (1..=n).map(AgentId).collect();
    for (i, &id) in ids.iter().enumerate() {
        let rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(i as u64) | 1;
        s.add_with_id(id, Trader { peers: ids.clone(), rng, log: Vec::new(), wakeful }).unwrap();
    }
    let watcher = s.add_with_id(AgentId(1000), Watcher::default()).unwrap();
    s.subscribe(watcher, Subscription::new().topic("trade")).unwrap();
    s.subscribe(watcher, Subscription::new().receiver(ids[0])).unwrap();
    for &id in &ids {
        s.send(Envelope::new(Trade { price: id.0 }).to(id));
    }
    s.set_alarm(Alarm::at(2.5, Envelope::new(Trade { price: 99 }).topic_is("trade"))).unwrap();
    (s, ids, watcher)
}

/// Everything the agents read, in order.
fn story(s: &Scheduler, ids: &[AgentId], watcher: AgentId) -> Vec<Vec<(u64, u64, u64)>> {
    let mut all: Vec<_> =
        ids.iter().map(|&id| s.agent::<Trader>(id).unwrap().log.clone()).collect();
    all.push(s.agent::<Watcher>(watcher).unwrap().seen.clone());
    all
}

/// Runs that stop mid-way keep their alarms (maslite clears them by
/// default).
fn go() -> RunOptions {
    RunOptions::new().clear_alarms_at_end(false)
}

fn stop(kind: u8, amount: u64) -> RunOptions {
    match kind % 3 {
        0 => go().seconds(amount as f64 * 0.25),
        1 => go().iterations(amount),
        _ => go().seconds(0.0).iterations(amount + 1),
    }
}

#[test]
fn a_restored_market_tells_the_uninterrupted_story() {
    let types = types();
    let (mut whole, ids, watcher) = market(6, 3);
    whole.run_with(go().seconds(20.0)).unwrap();

    let (mut first, ..) = market(6, 3);
    first.run_with(go().seconds(4.0)).unwrap();
    let mut bytes = Vec::new();
    first.snapshot(&types, &mut bytes).unwrap();
    let mut resumed = Scheduler::restore(&types, &bytes[..]).unwrap();
    assert_eq!(resumed.now(), first.now());
    resumed.run_with(go().seconds(16.0)).unwrap();

    assert_eq!(resumed.now(), whole.now());
    assert_eq!(story(&resumed, &ids, watcher), story(&whole, &ids, watcher));
    assert!(story(&whole, &ids, watcher).iter().map(Vec::len).sum::<usize>() > 100);
    // The saved kernel was left as it was: it goes on alike too.
    first.run_with(go().seconds(16.0)).unwrap();
    assert_eq!(story(&first, &ids, watcher), story(&whole, &ids, watcher));
}

#[test]
fn one_image_branches_two_runs_alike() {
    let types = types();
    let (mut s, ids, watcher) = market(4, 9);
    s.run_with(go().seconds(3.0)).unwrap();
    let image = s.image(&types).unwrap();
    assert_eq!(image.agents().count(), 5);
    let mut a = Scheduler::from_image(&types, &image).unwrap();
    let mut b = Scheduler::from_image(&types, &image).unwrap();
    a.run_with(go().seconds(5.0)).unwrap();
    b.run_with(go().seconds(5.0)).unwrap();
    assert_eq!(story(&a, &ids, watcher), story(&b, &ids, watcher));
    // A branch may differ: a "what if" message to one of them.
    let mut c = Scheduler::from_image(&types, &image).unwrap();
    c.send(Envelope::new(Trade { price: 1_000 }).to(ids[1]));
    c.run_with(go().seconds(5.0)).unwrap();
    assert_ne!(story(&c, &ids, watcher), story(&a, &ids, watcher));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("SNAPSHOT_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(48)
    ))]

    /// Random markets stopped at random (time limits, iterations, mid-time
    /// stops), saved, restored, and run on: the story is the uninterrupted
    /// one's, and so is the clock.
    #[test]
    fn saved_anywhere_the_story_goes_on(
        n in 2u64..8,
        seed in any::<u64>(),
        stops in proptest::collection::vec((any::<u8>(), 1u64..12), 1..4),
    ) {
        let types = types();
        let (mut whole, ids, watcher) = market(n, seed);
        let (mut cut, ..) = market(n, seed);
        for &(kind, amount) in &stops {
            whole.run_with(stop(kind, amount)).unwrap();
            cut.run_with(stop(kind, amount)).unwrap();
            let mut bytes = Vec::new();
            cut.snapshot(&types, &mut bytes).unwrap();
            cut = Scheduler::restore(&types, &bytes[..]).unwrap();
            prop_assert_eq!(cut.now(), whole.now());
        }
        whole.run_with(go().seconds(10.0)).unwrap();
        cut.run_with(go().seconds(10.0)).unwrap();
        prop_assert_eq!(cut.now(), whole.now());
        prop_assert_eq!(story(&cut, &ids, watcher), story(&whole, &ids, watcher));
    }
}

#[derive(Default)]
struct Unregistered;
impl Agent for Unregistered {
    async fn update(&mut self, cx: &Cx) {
        while cx.try_recv().is_some() {}
    }
}

/// An update that sleeps inside.
#[derive(Default, Serialize, Deserialize)]
struct Napper;
impl Agent for Napper {
    async fn update(&mut self, cx: &Cx) {
        while cx.try_recv().is_some() {}
        cx.sleep(5.0).await;
    }
}

#[derive(Clone)]
struct Secret;

#[test]
fn what_cannot_be_saved_is_named_and_the_kernel_goes_on() {
    let mut types = types();
    types.register_agent::<Napper>().unwrap();
    let mut s = Scheduler::simulated();
    let trader = s.add_with_id(
        AgentId(1),
        Trader { peers: vec![AgentId(1)], rng: 5, log: vec![], wakeful: false },
    );
    let trader = trader.unwrap();
    let process = s.spawn(|cx| async move {
        cx.sleep(1.0).await;
    });
    let process = process.unwrap();
    let stranger = s.add(Unregistered).unwrap();
    let napper = s.add(Napper).unwrap();
    s.send(Envelope::new(Wake).to(napper));
    s.run_with(go().seconds(0.5)).unwrap();
    s.send(Envelope::new(Secret).to(trader));

    let err = s.snapshot(&types, &mut Vec::new()).unwrap_err();
    let Error::CannotSave(all) = &err else { panic!("{err}") };
    let named: Vec<(AgentId, Unsaved)> = all.iter().map(|u| (u.agent, u.why)).collect();
    assert!(named.contains(&(process, Unsaved::AsyncFn)), "{named:?}");
    assert!(named.contains(&(stranger, Unsaved::AgentNotRegistered)), "{named:?}");
    assert!(named.contains(&(napper, Unsaved::Suspended)), "{named:?}");
    assert!(named.contains(&(AgentId::OUTSIDE, Unsaved::PayloadNotRegistered)), "{named:?}");
    let text = err.to_string();
    assert!(text.contains("Unregistered"), "{text}");
    assert!(text.contains("register_agent"), "{text}");
    assert!(text.contains("Secret"), "{text}");
    assert!(text.contains("async fn"), "{text}");
    // Untouched: it runs on.
    s.run_with(go().seconds(10.0)).unwrap();
    assert!(s.now() >= 5.0, "{}", s.now());
}

#[test]
fn a_real_time_kernel_cannot_be_saved() {
    let mut s = Scheduler::real_time();
    let err = s.snapshot(&types(), &mut Vec::new()).unwrap_err();
    assert!(matches!(&err, Error::CannotSave(all) if all[0].why == Unsaved::RealTime), "{err:?}");
    assert!(err.to_string().contains("only simulated time"), "{err}");
}

fn saved_market() -> Vec<u8> {
    let (mut s, ..) = market(3, 1);
    s.run_with(go().seconds(2.0)).unwrap();
    let mut bytes = Vec::new();
    s.snapshot(&types(), &mut bytes).unwrap();
    bytes
}

/// Rewrites the checksum of a snapshot whose body was changed, so that the
/// decoder (not the checksum) meets the change.
fn reseal(bytes: &mut [u8]) {
    let crc = crc32(&bytes[24..]);
    bytes[20..24].copy_from_slice(&crc.to_le_bytes());
}

fn crc32(bytes: &[u8]) -> u32 {
    // CRC-32 (IEEE), bit by bit: the test's own, not the crate's.
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[test]
fn damaged_snapshots_are_refused_by_name() {
    let types = types();
    let good = saved_market();
    assert!(Scheduler::restore(&types, &good[..]).is_ok());
    let refused = |bytes: &[u8]| Scheduler::restore(&types, bytes).err().expect("refused");

    let mut magic = good.clone();
    magic[0] = b'X';
    let e = refused(&magic);
    assert!(e.to_string().contains("does not begin with the snapshot magic"), "{e}");

    let mut version = good.clone();
    version[8..12].copy_from_slice(&(VERSION + 1).to_le_bytes());
    assert_eq!(
        refused(&version),
        Error::SnapshotVersion { found: VERSION + 1, supported: VERSION }
    );

    for cut in [0, 5, 23, 24, good.len() / 2, good.len() - 1] {
        let e = refused(&good[..cut]);
        assert!(e.to_string().contains("truncated"), "cut at {cut}: {e}");
    }

    let mut flipped = good.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x40;
    let e = refused(&flipped);
    assert!(e.to_string().contains("checksum"), "{e}");

    // A length that claims more than there is allocates nothing of it.
    let mut huge = good.clone();
    huge[12..20].copy_from_slice(&u64::MAX.to_le_bytes());
    let e = refused(&huge);
    assert!(e.to_string().contains("truncated"), "{e}");

    // Contents that contradict themselves: the clock made negative.
    let mut bytes = good.clone();
    assert_eq!(&bytes[..8], &MAGIC);
    // The body begins with the tag tables; the image follows. Decoding
    // garbage in place of the body is refused, not a panic.
    for b in &mut bytes[24..] {
        *b = 0xFF;
    }
    reseal(&mut bytes);
    let e = refused(&bytes);
    assert!(matches!(e, Error::BadSnapshot(_)), "{e:?}");
}

#[test]
fn a_snapshot_naming_an_unknown_type_is_refused_by_its_tag() {
    let good = saved_market();
    let mut without_trade = Types::new();
    without_trade.register::<Wake>().unwrap();
    without_trade.register_agent::<Trader>().unwrap().register_agent::<Watcher>().unwrap();
    assert_eq!(
        Scheduler::restore(&without_trade, &good[..]).err(),
        Some(Error::UnknownTag { tag: "Trade".into(), agent: false })
    );
    let mut without_watcher = Types::new();
    without_watcher.register::<Trade>().unwrap().register::<Wake>().unwrap();
    without_watcher.register_agent::<Trader>().unwrap();
    let e = Scheduler::restore(&without_watcher, &good[..]).err().unwrap();
    assert_eq!(e, Error::UnknownTag { tag: "Watcher".into(), agent: true });
    assert!(e.to_string().contains("register_agent"), "{e}");
    // Tags, not Rust's names, are what bind: another type under the tag
    // that reads the same bytes is taken.
    let mut renamed = Types::new();
    renamed.register_as::<Trade>("Trade").unwrap().register::<Wake>().unwrap();
    renamed.register_agent_as::<Trader>("Trader").unwrap();
    renamed.register_agent_as::<Watcher>("Watcher").unwrap();
    assert!(Scheduler::restore(&renamed, &good[..]).is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("SNAPSHOT_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
    ))]

    /// Mutated snapshots (bytes changed, the checksum made to match) are
    /// restored or refused, never a panic.
    #[test]
    fn mutated_snapshots_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let types = types();
        let mut bytes = saved_market();
        for (at, value) in edits {
            let i = 24 + at.index(bytes.len() - 24);
            bytes[i] = value;
        }
        if truncate {
            let keep = 24 + cut.index(bytes.len() - 24);
            bytes.truncate(keep);
            let len = (bytes.len() - 24) as u64;
            bytes[12..20].copy_from_slice(&len.to_le_bytes());
        }
        reseal(&mut bytes);
        if let Ok(mut s) = Scheduler::restore(&types, &bytes[..]) {
            // Whatever it restored runs (or fails) without a panic.
            let _ = s.run_with(go().seconds(3.0).iterations(500));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("SNAPSHOT_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(48)
    ))]

    /// A run cut into pieces at time limits (as checkpoints cut it) tells
    /// the story of the run in one piece — when no agent is kept awake: a
    /// kept-awake agent is updated in every round, and every run begins
    /// with one.
    #[test]
    fn a_run_in_pieces_is_the_run_in_one(
        n in 2u64..8,
        seed in any::<u64>(),
        cuts in proptest::collection::vec(1u8..16, 1..6),
    ) {
        let (mut whole, ids, watcher) = market_of(n, seed, false);
        let (mut pieces, ..) = market_of(n, seed, false);
        whole.run_with(go().seconds(12.0)).unwrap();
        let mut at = 0.0;
        for &cut in &cuts {
            let step = cut as f64 * 0.25;
            if at + step >= 12.0 {
                break;
            }
            pieces.run_with(go().seconds(step)).unwrap();
            at += step;
            prop_assert_eq!(pieces.now(), at.min(pieces.now()));
        }
        let left = 12.0 - pieces.now();
        pieces.run_with(go().seconds(left)).unwrap();
        prop_assert_eq!(pieces.now(), whole.now());
        prop_assert_eq!(story(&pieces, &ids, watcher), story(&whole, &ids, watcher));
    }
}

#[test]
fn checkpoints_cut_a_run_without_changing_its_story_and_resume_from_the_last() {
    use maslite_core::Checkpoints;
    let dir = std::env::temp_dir().join(format!("maslite-kernel-cp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("market.snap");
    let types = types();
    let (mut whole, ids, watcher) = market_of(5, 11, false);
    // To t = 12 whatever happens (not stopping when idle).
    let twelve = || go().seconds(12.0).pause_if_idle(false);
    let all = whole.run_with(twelve()).unwrap();

    let (mut cut, ..) = market_of(5, 11, false);
    let mut checkpoints = Checkpoints::every(1.5, &path, types.clone()).unwrap();
    let report = cut.run_with_checkpoints(twelve(), &mut checkpoints).unwrap();
    assert_eq!(checkpoints.written(), 7, "at 1.5, 3, ..., 10.5");
    assert_eq!(story(&cut, &ids, watcher), story(&whole, &ids, watcher));
    // One report for the whole run: the pieces' counts add up.
    assert_eq!((report.end_time, report.stats.messages), (all.end_time, all.stats.messages));
    assert_eq!(report.stats.alarms_fired, all.stats.alarms_fired);

    // The last checkpoint (t = 10.5), resumed, ends the same way.
    let file = std::fs::File::open(&path).unwrap();
    let mut resumed = Scheduler::restore(&types, std::io::BufReader::new(file)).unwrap();
    assert_eq!(resumed.now(), 10.5);
    resumed.run_with(go().until(12.0).pause_if_idle(false)).unwrap();
    assert_eq!(story(&resumed, &ids, watcher), story(&whole, &ids, watcher));
    assert!(!dir.join("market.snap.part").exists(), "written beside, then renamed");

    // Bad requests, named.
    let e = Checkpoints::every(0.0, &path, Types::new()).unwrap_err();
    assert_eq!(e, Error::InvalidTime(0.0));
    let e = cut.run_with_checkpoints(go().iterations(3), &mut checkpoints).unwrap_err();
    assert!(e.to_string().contains("iterations"), "{e}");
    // A directory that does not exist: the disk's error, with the path.
    let mut nowhere = Checkpoints::every(1.0, dir.join("no/such/dir/x.snap"), types).unwrap();
    let e = cut.run_with_checkpoints(go().seconds(5.0).pause_if_idle(false), &mut nowhere);
    let e = e.unwrap_err();
    assert!(matches!(&e, Error::SnapshotIo(m) if m.contains("no/such/dir")), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}
