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
//!   one binary heap of (time, sender, seq, receiver) events.

use crate::cases::phold::{event_hash, Params, Rng};
use maslite::prelude::*;
use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
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
        let delay = p.lookahead - (p.mean - p.lookahead) * self.rng.unit().ln();
        let to =
            if self.rng.unit() <= p.remote { (self.rng.next_u64() % p.agents) as u32 } else { me };
        self.sent += 1;
        let time = (now + delay).to_bits();
        heap.push(Reverse(Pending { time, sender: me, seq: self.sent, receiver: to }));
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
