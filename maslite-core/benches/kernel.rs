//! Criterion benches of the kernel's hot paths: a round of ping-pong, the
//! delivery of one broadcast to many subscribers, the alarm queue, adding
//! agents. Run with `cargo bench -p maslite-core`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use maslite_core::{Agent, Alarm, Cx, Envelope, RunOptions, Scheduler, Subscription};
use std::hint::black_box;

#[derive(Clone)]
struct Ball;

struct Player;

impl Agent for Player {
    async fn update(&mut self, cx: &Cx) {
        while let Some(mut ball) = cx.receive() {
            ball.reply().expect("the ball has a receiver");
            cx.send(ball);
        }
    }
}

/// Counts what it hears.
struct Listener {
    heard: u64,
}

impl Agent for Listener {
    async fn update(&mut self, cx: &Cx) {
        while cx.receive().is_some() {
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
    s.send(Envelope::new(Ball).from(a).to(b));
    g.bench_function("pingpong_1000_messages", |bench| {
        bench.iter(|| black_box(s.run_with(RunOptions::new().iterations(1000)).unwrap()))
    });
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

criterion_group!(benches, rounds, delivery, alarms, spawn);
criterion_main!(benches);
