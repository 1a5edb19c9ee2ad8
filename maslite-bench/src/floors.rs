//! The floors: the same models with no framework, the least this machine
//! can do for them. Each real case is quoted against its floor, measured in
//! the same run (`maslite-bench all` prints the ratios): a ratio, unlike a
//! rate, does not move with the machine's load.
//!
//! - `floor-pingpong`: the ping-pong of `pingpong` as two async agents,
//!   each a `dyn Future` polled with its inbox in a `RefCell`, a round a
//!   swap of one outbox — the least any kernel of async agents does (the
//!   criterion `baseline/async_loop` measures the same loop).
//! - `floor-phold`: the PHOLD model of `phold` (same draws, same event
//!   hash: it must print the kernel's hash) as a plain sequential program:
//!   one binary heap of (time, sender, seq, receiver) events. On 2 or more
//!   partitions (`phold_split`), the same model split into blocks of ids,
//!   one thread and one heap each, in the runtime's lookahead windows with
//!   a spinning barrier: what this machine gives a partitioned PHOLD, the
//!   measure of the runtime's own 2/1.

use crate::cases::phold::{event_hash, Params, Rng};
use maslite::prelude::*;
use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

#[derive(Clone)]
struct Ball;

/// The two agents' mail: an inbox each, one outbox, and whether the agent
/// being polled has an update due.
struct Mailboxes {
    inboxes: RefCell<[VecDeque<Envelope>; 2]>,
    outbox: RefCell<Vec<Envelope>>,
    due: Cell<bool>,
}

/// Resolves when the loop says an update is due.
struct Due<'a>(&'a Mailboxes);

impl Future for Due<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if self.0.due.replace(false) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// `pingpong`'s player: reads its inbox, answers each ball to its sender.
async fn player(boxes: Rc<Mailboxes>, me: usize) {
    loop {
        Due(&boxes).await;
        loop {
            let Some(mut ball) = boxes.inboxes.borrow_mut()[me].pop_front() else { break };
            ball.reply().expect("the ball has a receiver");
            boxes.outbox.borrow_mut().push(ball);
        }
    }
}

/// The ping-pong floor: messages/s over `messages` rounds.
pub fn pingpong(messages: u64) -> f64 {
    let boxes = Rc::new(Mailboxes {
        inboxes: RefCell::new([VecDeque::new(), VecDeque::new()]),
        outbox: RefCell::new(vec![Envelope::new(Ball).from(AgentId(1)).to(AgentId(2))]),
        due: Cell::new(false),
    });
    let mut players: Vec<Pin<Box<dyn Future<Output = ()>>>> =
        vec![Box::pin(player(boxes.clone(), 0)), Box::pin(player(boxes.clone(), 1))];
    let mut cx = Context::from_waker(Waker::noop());
    let (mut mail, mut due) = (Vec::new(), Vec::new());
    let start = Instant::now();
    for _ in 0..messages {
        std::mem::swap(&mut mail, &mut *boxes.outbox.borrow_mut());
        for env in mail.drain(..) {
            let r = env.receiver().expect("addressed").0 as usize - 1;
            boxes.inboxes.borrow_mut()[r].push_back(env);
            due.push(r);
        }
        for &i in &due {
            boxes.due.set(true);
            let _ = players[i].as_mut().poll(&mut cx);
        }
        due.clear();
    }
    let wall = start.elapsed().as_secs_f64();
    assert_eq!(boxes.outbox.borrow().len(), 1, "one ball in play");
    messages as f64 / wall
}

/// A pending PHOLD event, ordered by time, then by who set it and its
/// number (the kernel's canonical order for alarms set at one time).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Pending {
    /// The time's bits (times are finite and not negative: their bits sort
    /// as they do).
    time: u64,
    sender: u32,
    seq: u64,
    receiver: u32,
}

/// One logical process: its random stream and its count of events set.
struct Lp {
    rng: Rng,
    sent: u64,
}

impl Lp {
    fn schedule(&mut self, p: &Params, me: u32, now: f64, heap: &mut BinaryHeap<Reverse<Pending>>) {
        heap.push(Reverse(self.event(p, me, now)));
    }

    /// The next event `me` sets at `now`.
    #[inline]
    fn event(&mut self, p: &Params, me: u32, now: f64) -> Pending {
        let delay = p.lookahead - (p.mean - p.lookahead) * self.rng.unit().ln();
        let to =
            if self.rng.unit() <= p.remote { (self.rng.next_u64() % p.agents) as u32 } else { me };
        self.sent += 1;
        let time = (now + delay).to_bits();
        Pending { time, sender: me, seq: self.sent, receiver: to }
    }
}

/// The PHOLD floor: (events/s, events, hash, bytes per pending event in
/// the heap) for `p` (one partition: its placement is moot).
pub fn phold(p: &Params) -> (f64, u64, u64, usize) {
    assert!(p.agents <= u64::from(u32::MAX), "ids fit in 32 bits");
    let start = Instant::now();
    let mut lps: Vec<Lp> =
        (0..p.agents).map(|id| Lp { rng: Rng::new(p.seed, id), sent: 0 }).collect();
    let mut heap = BinaryHeap::with_capacity((p.agents * u64::from(p.events)) as usize);
    for (id, lp) in lps.iter_mut().enumerate() {
        for _ in 0..p.events {
            lp.schedule(p, id as u32, 0.0, &mut heap);
        }
    }
    let (mut events, mut hash) = (0u64, 0u64);
    while let Some(&Reverse(e)) = heap.peek() {
        let now = f64::from_bits(e.time);
        if now >= p.end {
            break;
        }
        heap.pop();
        let (to, from) = (AgentId(u64::from(e.receiver)), AgentId(u64::from(e.sender)));
        hash = hash.wrapping_add(event_hash(now, to, from, e.seq));
        events += 1;
        lps[e.receiver as usize].schedule(p, e.receiver, now, &mut heap);
    }
    let wall = start.elapsed().as_secs_f64();
    let per_event = std::mem::size_of::<Reverse<Pending>>();
    (events as f64 / wall, events, hash, per_event)
}

/// A value alone on its cache lines (128 bytes: a line and its pair,
/// which Intel's prefetcher fetches together), so that what one partition
/// writes does not move another's line.
#[repr(align(128))]
struct Alone<T>(T);

/// A barrier that spins (the floor's partitions each have a core, as the
/// runtime's do: the least a window's end can cost), yielding the thread
/// after a while so that more partitions than cores still make progress.
struct SpinBarrier {
    arrived: Alone<AtomicUsize>,
    generation: Alone<AtomicUsize>,
    parties: usize,
    /// A party panicked: the others stop waiting for it.
    broken: AtomicBool,
}

/// Breaks the barrier if its thread unwinds (a party that will not come).
struct Breaks<'a>(&'a SpinBarrier);

impl Drop for Breaks<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.broken.store(true, Ordering::Release);
        }
    }
}

impl SpinBarrier {
    fn new(parties: usize) -> SpinBarrier {
        SpinBarrier {
            arrived: Alone(AtomicUsize::new(0)),
            generation: Alone(AtomicUsize::new(0)),
            parties,
            broken: AtomicBool::new(false),
        }
    }

    /// Returns once every party has called it; what each wrote before is
    /// seen by all after (the last one's `Release` on `generation`, after
    /// the others' `AcqRel` on `arrived`, and everyone's `Acquire` load).
    fn wait(&self) {
        let generation = self.generation.0.load(Ordering::Acquire);
        if self.arrived.0.fetch_add(1, Ordering::AcqRel) + 1 == self.parties {
            // Nobody touches `arrived` again before `generation` moves.
            self.arrived.0.store(0, Ordering::Relaxed);
            self.generation.0.fetch_add(1, Ordering::Release);
        } else {
            let mut spins = 0u32;
            while self.generation.0.load(Ordering::Acquire) == generation {
                spins = spins.wrapping_add(1);
                if spins.is_multiple_of(1 << 14) {
                    assert!(
                        !self.broken.load(Ordering::Acquire),
                        "another floor partition panicked"
                    );
                    std::thread::yield_now();
                } else {
                    std::hint::spin_loop();
                }
            }
        }
    }
}

/// What the floor's partitions share: the events each sends each other
/// (`mail[from * parts + to]`, appended by the sender, drained by the
/// receiver) and each one's earliest event, per window parity (a
/// partition is at most one window ahead of another: the barrier).
struct Split {
    parts: usize,
    barrier: SpinBarrier,
    mail: Vec<Alone<Mutex<Vec<Reverse<Pending>>>>>,
    earliest: [Vec<Alone<AtomicU64>>; 2],
}

/// The PHOLD floor on `p.partitions` threads, each with the agents of one block
/// of ids and a heap of its own, in lookahead windows as the runtime runs
/// them (Nicol's YAWNS: every partition processes its events before the
/// window's end, then they swap the events that cross and start the next
/// window at the earliest event of all), with a spinning barrier and no
/// message but the 24-byte event: the least a partitioned PHOLD costs
/// here. Returns (events/s, events, hash); the hash is the sequential
/// floor's.
pub fn phold_split(p: &Params) -> (f64, u64, u64) {
    let parts = p.partitions;
    assert!(p.agents <= u64::from(u32::MAX), "ids fit in 32 bits");
    assert!(parts >= 1 && p.lookahead > 0.0, "at least one partition, a lookahead");
    let split = Split {
        parts,
        barrier: SpinBarrier::new(parts),
        mail: (0..parts * parts).map(|_| Alone(Mutex::new(Vec::new()))).collect(),
        earliest: [0, 1].map(|_| (0..parts).map(|_| Alone(AtomicU64::new(0))).collect()),
    };
    // Partition p on core p, as the runtime places its partitions when
    // there are cores enough.
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let pin = cores.len() >= parts;
    // (Timed from the threads' start, the agents' setup included, as the
    // sequential floor is: under 0.1% of a run.)
    let start = Instant::now();
    let (events, hash) = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..parts)
            .map(|me| {
                let (split, core) = (&split, pin.then(|| cores[me]));
                scope.spawn(move || {
                    if let Some(core) = core {
                        core_affinity::set_for_current(core);
                    }
                    split_part(p, split, me)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a floor partition panicked"))
            .fold((0u64, 0u64), |(e, h), (e1, h1)| (e + e1, h.wrapping_add(h1)))
    });
    let wall = start.elapsed().as_secs_f64();
    (events as f64 / wall, events, hash)
}

/// One partition of [`phold_split`]: (its events, the sum of their hashes).
fn split_part(p: &Params, split: &Split, me: usize) -> (u64, u64) {
    let _breaks = Breaks(&split.barrier);
    let parts = split.parts as u64;
    let owner = |id: u32| ((u64::from(id) * parts) / p.agents) as usize;
    let first = (0..p.agents).find(|&id| owner(id as u32) == me).unwrap_or(p.agents);
    let last = (first..p.agents).find(|&id| owner(id as u32) != me).unwrap_or(p.agents);
    let mut lps: Vec<Lp> =
        (first..last).map(|id| Lp { rng: Rng::new(p.seed, id), sent: 0 }).collect();
    let mut heap = BinaryHeap::with_capacity(((last - first) * u64::from(p.events)) as usize);
    let mut out: Vec<Vec<Reverse<Pending>>> = (0..split.parts).map(|_| Vec::new()).collect();
    // The earliest event sent elsewhere in this window.
    let mut sent = u64::MAX;
    type Out = Vec<Vec<Reverse<Pending>>>;
    let place =
        |e: Pending, heap: &mut BinaryHeap<Reverse<Pending>>, out: &mut Out, sent: &mut u64| {
            match owner(e.receiver) {
                q if q == me => heap.push(Reverse(e)),
                q => {
                    *sent = (*sent).min(e.time);
                    out[q].push(Reverse(e));
                }
            }
        };
    for (k, lp) in lps.iter_mut().enumerate() {
        for _ in 0..p.events {
            place(lp.event(p, (first + k as u64) as u32, 0.0), &mut heap, &mut out, &mut sent);
        }
    }
    let (mut events, mut hash) = (0u64, 0u64);
    let mut window = 0usize;
    loop {
        // The window's end: swap the crossing events, agree on the next
        // window's start.
        for (q, events) in out.iter_mut().enumerate() {
            if q != me && !events.is_empty() {
                split.mail[me * split.parts + q]
                    .0
                    .lock()
                    .expect("no panic holds it")
                    .append(events);
            }
        }
        let mine = heap.peek().map_or(u64::MAX, |Reverse(e)| e.time).min(sent);
        sent = u64::MAX;
        split.earliest[window % 2][me].0.store(mine, Ordering::Relaxed);
        split.barrier.wait();
        for q in (0..split.parts).filter(|&q| q != me) {
            heap.extend(
                split.mail[q * split.parts + me].0.lock().expect("no panic holds it").drain(..),
            );
        }
        let next = split.earliest[window % 2].iter().map(|t| t.0.load(Ordering::Relaxed));
        let next = next.min().expect("at least one partition");
        window += 1;
        // (No event left anywhere: u64::MAX, whose bits are a NaN.)
        let begin = f64::from_bits(next);
        if next == u64::MAX || begin >= p.end {
            return (events, hash);
        }
        // Events made in the window are due at its end or later.
        let end = (begin + p.lookahead).min(p.end);
        while let Some(&Reverse(e)) = heap.peek() {
            let now = f64::from_bits(e.time);
            if now >= end {
                break;
            }
            // An event before the window's start came too late, or the
            // window started too late (tests run with debug assertions).
            debug_assert!(now >= begin, "an event at {now} in a window from {begin}");
            heap.pop();
            let (to, from) = (AgentId(u64::from(e.receiver)), AgentId(u64::from(e.sender)));
            hash = hash.wrapping_add(event_hash(now, to, from, e.seq));
            events += 1;
            let next = lps[(u64::from(e.receiver) - first) as usize].event(p, e.receiver, now);
            place(next, &mut heap, &mut out, &mut sent);
        }
    }
}
