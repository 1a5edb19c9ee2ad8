//! Criterion benches of the kernel's hot paths: a round of ping-pong, the
//! delivery of one broadcast to many subscribers, the alarm queue, adding
//! agents. Run with `cargo bench -p maslite-bench --bench kernel`.
//!
//! Two baselines run beside the kernel's ping-pong, so that the ratios come
//! from one run on one machine: the same rounds and envelopes in a plain
//! loop (`baseline/loop`), and the same with each agent an async future
//! polled through `dyn Future` with its inbox behind a `RefCell`
//! (`baseline/async_loop`) — the least any kernel of async agents does.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use maslite_core::{Agent, AgentId, Alarm, Cx, Envelope, RunOptions, Scheduler, Subscription};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

#[derive(Clone)]
struct Ball;

struct Player;

impl Agent for Player {
    async fn update(&mut self, cx: &Cx) {
        while let Some(ball) = cx.try_recv() {
            cx.send(hit(ball, cx.id()));
        }
    }
}

/// Counts what it hears.
struct Listener {
    heard: u64,
}

impl Agent for Listener {
    async fn update(&mut self, cx: &Cx) {
        while cx.try_recv().is_some() {
            self.heard += 1;
        }
    }
}

fn rounds(c: &mut Criterion) {
    let mut g = c.benchmark_group("round");
    g.throughput(Throughput::Elements(1000));
    let mut s = Scheduler::simulated();
    let a = s.add(Player).unwrap();
    let b = s.add(Player).unwrap();
    s.send(Envelope::new(Ball).from(a).to(b).topic_is("ping"));
    g.bench_function("pingpong_1000_messages", |bench| {
        bench.iter(|| black_box(s.run_with(RunOptions::new().iterations(1000)).unwrap()))
    });
    g.finish();
}

/// Turns the ball around, as the kernel's players do.
fn hit(mut ball: Envelope, me: AgentId) -> Envelope {
    let next = if ball.topic() == "ping" { "pong" } else { "ping" };
    ball.set_topic(next);
    ball.reply().expect("the ball has a receiver");
    ball.set_sender(me);
    ball
}

fn baseline_loop(rounds: u64) {
    let mut inboxes: [VecDeque<Envelope>; 2] = [VecDeque::new(), VecDeque::new()];
    let mut outbox = vec![Envelope::new(Ball).from(AgentId(1)).to(AgentId(2)).topic_is("ping")];
    let mut due: Vec<usize> = Vec::new();
    for _ in 0..rounds {
        for env in outbox.drain(..) {
            let r = env.receiver().expect("addressed").0 as usize - 1;
            inboxes[r].push_back(env);
            due.push(r);
        }
        for &i in &due {
            while let Some(ball) = inboxes[i].pop_front() {
                outbox.push(hit(ball, AgentId(i as u64 + 1)));
            }
        }
        due.clear();
    }
    black_box(outbox);
}

struct Mailboxes {
    inboxes: RefCell<[VecDeque<Envelope>; 2]>,
    outbox: RefCell<Vec<Envelope>>,
    due: Cell<bool>,
}

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

async fn async_player(boxes: Rc<Mailboxes>, me: usize) {
    loop {
        Due(&boxes).await;
        loop {
            let Some(ball) = boxes.inboxes.borrow_mut()[me].pop_front() else { break };
            boxes.outbox.borrow_mut().push(hit(ball, AgentId(me as u64 + 1)));
        }
    }
}

fn baseline_async_loop(rounds: u64) {
    let boxes = Rc::new(Mailboxes {
        inboxes: RefCell::new([VecDeque::new(), VecDeque::new()]),
        outbox: RefCell::new(vec![Envelope::new(Ball)
            .from(AgentId(1))
            .to(AgentId(2))
            .topic_is("ping")]),
        due: Cell::new(false),
    });
    let mut players: Vec<Pin<Box<dyn Future<Output = ()>>>> =
        vec![Box::pin(async_player(boxes.clone(), 0)), Box::pin(async_player(boxes.clone(), 1))];
    let mut cx = Context::from_waker(Waker::noop());
    let (mut mail, mut due) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
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
}

fn baselines(c: &mut Criterion) {
    let mut g = c.benchmark_group("baseline");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("loop_1000_messages", |bench| bench.iter(|| baseline_loop(1000)));
    g.bench_function("async_loop_1000_messages", |bench| bench.iter(|| baseline_async_loop(1000)));
    g.finish();
}

fn delivery(c: &mut Criterion) {
    let mut g = c.benchmark_group("delivery");
    g.throughput(Throughput::Elements(1000));
    let mut s = Scheduler::simulated();
    for _ in 0..1000 {
        let id = s.add(Listener { heard: 0 }).unwrap();
        s.subscribe(id, Subscription::new().topic("news")).unwrap();
    }
    g.bench_function("broadcast_to_1000_subscribers", |bench| {
        bench.iter(|| {
            s.send(Envelope::new(Ball).topic_is("news"));
            black_box(s.run().unwrap())
        })
    });
    g.finish();
}

fn alarms(c: &mut Criterion) {
    let mut g = c.benchmark_group("alarms");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("set_and_fire_1000", |bench| {
        bench.iter_batched(
            || {
                let mut s = Scheduler::simulated();
                let id = s.add(Listener { heard: 0 }).unwrap();
                (s, id)
            },
            |(mut s, id)| {
                for i in 0..1000u32 {
                    let at = f64::from((i * 7919) % 1000);
                    s.set_alarm(Alarm::after(at, Envelope::new(Ball).to(id))).unwrap();
                }
                black_box(s.run().unwrap())
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn spawn(c: &mut Criterion) {
    let mut g = c.benchmark_group("spawn");
    g.throughput(Throughput::Elements(10_000));
    g.bench_function("add_10000_idle_agents", |bench| {
        bench.iter(|| {
            let mut s = Scheduler::simulated();
            for _ in 0..10_000 {
                s.add(Listener { heard: 0 }).unwrap();
            }
            black_box(s)
        })
    });
    g.finish();
}

criterion_group!(benches, rounds, baselines, delivery, alarms, spawn);
criterion_main!(benches);
