//! A runtime served in the background of a tokio application: messages in
//! through bounded inlets, replies out through endpoint streams, live
//! stats, graceful and abrupt stops, backpressure and counted drops.

use futures::StreamExt;
use maslite_core::{Agent, AgentId, Cx, Envelope, Error};
use maslite_runtime::{Overflow, Runtime, ServeOptions, StopReason};
use std::time::Duration;

/// A request: answer `n * 2` to the sender.
#[derive(Clone, Debug)]
struct Ask(u64);
#[derive(Clone, Debug)]
struct Answer(u64);

/// Doubles what it is asked and replies to the asker.
struct Doubler;

impl Agent for Doubler {
    async fn update(&mut self, cx: &Cx) {
        while let Some(mut env) = cx.try_recv() {
            let n = env.payload::<Ask>().unwrap().0;
            env.reply().unwrap();
            let back = Envelope::new(Answer(n * 2)).from(cx.id()).to(env.receiver().unwrap());
            cx.send(back);
        }
    }
}

const DOUBLERS: [AgentId; 2] = [AgentId(1), AgentId(2)];
const REPLIES: AgentId = AgentId(1000);

fn system(partitions: usize, real_time: bool) -> (Runtime, maslite_runtime::Outbound) {
    let mut b = Runtime::builder().partitions(partitions);
    if real_time {
        b = b.real_time();
    }
    let mut rt = b.build().unwrap();
    for (i, id) in DOUBLERS.iter().enumerate() {
        rt.add_with_id(i % partitions, *id, Doubler).unwrap();
    }
    let out = rt.endpoint(partitions - 1, REPLIES).unwrap();
    (rt, out)
}

/// Concurrent clients each send `per` asks; every answer comes out once.
async fn round_trip(partitions: usize, real_time: bool) {
    let (rt, mut out) = system(partitions, real_time);
    let service = rt.serve(ServeOptions::new().capacity(16)).unwrap();
    let clients = 4u64;
    let per = 500u64;
    let mut tasks = Vec::new();
    for c in 0..clients {
        let inlet = service.inlet();
        tasks.push(tokio::spawn(async move {
            for i in 0..per {
                let n = c * per + i;
                let to = DOUBLERS[(n % 2) as usize];
                inlet.send(Envelope::new(Ask(n)).from(REPLIES).to(to)).await.unwrap();
            }
        }));
    }
    let mut got = Vec::new();
    while got.len() < (clients * per) as usize {
        let env = tokio::time::timeout(Duration::from_secs(20), out.next())
            .await
            .expect("answers keep coming")
            .expect("the stream is open");
        got.push(env.payload::<Answer>().unwrap().0);
    }
    for t in tasks {
        t.await.unwrap();
    }
    got.sort_unstable();
    let want: Vec<u64> = (0..clients * per).map(|n| n * 2).collect();
    assert_eq!(got, want);
    let stats = service.stats();
    assert_eq!(stats.accepted, clients * per);
    assert!(stats.running);
    let report = service.shutdown(Duration::from_secs(10)).await.unwrap();
    assert_eq!(report.reason, StopReason::Idle);
    assert_eq!(report.dead_letters(), 0);
    // The endpoint's stream ends with the service.
    assert!(out.next().await.is_none());
    assert_eq!(out.forwarded(), clients * per);
    assert_eq!(out.dropped(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_time_service_answers_every_client() {
    round_trip(2, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_service_answers_every_client() {
    round_trip(2, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_partition_service_answers_every_client() {
    round_trip(1, true).await;
    round_trip(1, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sending_to_a_stopped_service_is_an_error_not_a_hang() {
    for real_time in [true, false] {
        let (rt, _out) = system(2, real_time);
        let service = rt.serve(ServeOptions::new()).unwrap();
        let inlet = service.inlet();
        assert!(inlet.is_open());
        service.shutdown(Duration::from_secs(5)).await.unwrap();
        let late = Envelope::new(Ask(1)).from(REPLIES).to(DOUBLERS[0]);
        assert_eq!(inlet.send(late.clone()).await, Err(Error::Stopped));
        assert_eq!(inlet.try_send(late), Err(Error::Stopped));
        assert!(!inlet.is_open());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_stops_at_once_and_the_inlet_refuses() {
    let (rt, _out) = system(2, true);
    let service = rt.serve(ServeOptions::new()).unwrap();
    let inlet = service.inlet();
    service.cancel_token().cancel();
    let report = service.join().await.unwrap();
    assert_eq!(report.reason, StopReason::Cancelled);
    let late = Envelope::new(Ask(1)).from(REPLIES).to(DOUBLERS[0]);
    assert_eq!(inlet.send(late).await, Err(Error::Stopped));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_answers_what_was_accepted() {
    for real_time in [true, false] {
        let (rt, mut out) = system(2, real_time);
        let service = rt.serve(ServeOptions::new().capacity(4096)).unwrap();
        let n = 3000u64;
        for i in 0..n {
            service.send(Envelope::new(Ask(i)).from(REPLIES).to(DOUBLERS[0])).await.unwrap();
        }
        // Stop with all of them still in the inlet or in flight: the
        // reader keeps reading meanwhile (the endpoint holds 1 024).
        let reader = tokio::spawn(async move {
            let mut count = 0u64;
            while let Some(env) = out.next().await {
                env.payload::<Answer>().unwrap();
                count += 1;
            }
            count
        });
        let report = service.shutdown(Duration::from_secs(20)).await.unwrap();
        assert_eq!(report.reason, StopReason::Idle, "real_time {real_time}");
        assert_eq!(reader.await.unwrap(), n, "real_time {real_time}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_holds_the_intake_back_and_loses_nothing() {
    for real_time in [true, false] {
        let mut b = Runtime::builder().partitions(2);
        if real_time {
            b = b.real_time();
        }
        let mut rt = b.build().unwrap();
        rt.add_with_id(0, DOUBLERS[0], Doubler).unwrap();
        let mut out = rt.endpoint_with(1, REPLIES, 2, Overflow::Block).unwrap();
        let service = rt.serve(ServeOptions::new().capacity(4)).unwrap();
        // Nobody reads: the endpoint fills (2) and stalls, the intake
        // stops taking, the inlet (4 per partition) fills, and the producer
        // waits — it cannot get 10 000 asks in.
        let n = 10_000u64;
        let inlet = service.inlet();
        let mut producer = tokio::spawn(async move {
            for i in 0..n {
                inlet.send(Envelope::new(Ask(i)).from(REPLIES).to(DOUBLERS[0])).await.unwrap();
            }
        });
        let waited = tokio::time::timeout(Duration::from_secs(1), &mut producer).await;
        assert!(waited.is_err(), "the producer was held back (real_time {real_time})");
        let stats = service.stats();
        assert!(stats.held_back);
        // (How many got in before the stall depends on thread scheduling.)
        assert!(stats.accepted < n, "{} accepted while nobody read", stats.accepted);
        // Full now: `try_send` says so instead of waiting.
        assert_eq!(
            service.inlet().try_send(Envelope::new(Ask(n)).from(REPLIES).to(DOUBLERS[0])),
            Err(Error::Full)
        );
        // The reader catches up: every ask is answered, nothing is lost.
        let mut got = 0u64;
        while got < n {
            let env = tokio::time::timeout(Duration::from_secs(20), out.next())
                .await
                .expect("answers come once read")
                .unwrap();
            env.payload::<Answer>().unwrap();
            got += 1;
        }
        producer.await.unwrap();
        let accepted = n;
        let report = service.shutdown(Duration::from_secs(10)).await.unwrap();
        assert_eq!(report.reason, StopReason::Idle);
        while out.next().await.is_some() {}
        assert_eq!(out.forwarded(), accepted, "real_time {real_time}");
        assert_eq!(out.dropped(), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_that_finds_no_room_in_time_is_refused_not_hung() {
    let mut rt = Runtime::builder().partitions(2).real_time().build().unwrap();
    rt.add_with_id(0, DOUBLERS[0], Doubler).unwrap();
    // Nobody reads the answers: the endpoint (room for 1) stalls, the
    // intake stops, and the inlet (4 per partition) fills.
    let mut out = rt.endpoint_with(1, REPLIES, 1, Overflow::Block).unwrap();
    let service = rt.serve(ServeOptions::new().capacity(4)).unwrap();
    let inlet = service.inlet();
    let ask = |i| Envelope::new(Ask(i)).from(REPLIES).to(DOUBLERS[0]);
    let mut sent = 0u64;
    let deadline = Duration::from_millis(50);
    loop {
        match inlet.send_timeout(ask(sent), deadline).await {
            Ok(()) => sent += 1,
            Err(e) => {
                assert_eq!(e, Error::Full);
                break;
            }
        }
        assert!(sent < 10_000, "the intake is held back: the inlet fills");
    }
    // Bounded: what got in is the inlet's room and what the system holds
    // while the endpoint is stalled, not the 10 000 a hang would hide.
    assert!(service.stats().held_back);
    assert_eq!(service.stats().accepted, sent);
    // A refused send was not taken in: every answer read is one accepted.
    let reader = tokio::spawn(async move {
        let mut got = 0u64;
        while let Some(env) = out.next().await {
            env.payload::<Answer>().unwrap();
            got += 1;
        }
        got
    });
    // Read again, the system has room: a deadline is no longer reached.
    inlet.send_timeout(ask(sent), Duration::from_secs(20)).await.unwrap();
    let report = service.shutdown(Duration::from_secs(10)).await.unwrap();
    assert_eq!(report.reason, StopReason::Idle);
    assert_eq!(reader.await.unwrap(), sent + 1);
    assert_eq!(
        inlet.send_timeout(ask(0), deadline).await,
        Err(Error::Stopped),
        "a stopped service refuses at once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_when_full_is_counted() {
    let mut rt = Runtime::builder().partitions(2).real_time().build().unwrap();
    rt.add_with_id(0, DOUBLERS[0], Doubler).unwrap();
    let mut out = rt.endpoint_with(1, REPLIES, 3, Overflow::Drop).unwrap();
    let service = rt.serve(ServeOptions::new().capacity(64)).unwrap();
    let n = 200u64;
    for i in 0..n {
        service.send(Envelope::new(Ask(i)).from(REPLIES).to(DOUBLERS[0])).await.unwrap();
    }
    service.shutdown(Duration::from_secs(10)).await.unwrap();
    let mut read = 0u64;
    while out.next().await.is_some() {
        read += 1;
    }
    assert_eq!(read, 3, "the stream held 3, nobody read during the run");
    assert_eq!(out.forwarded(), 3);
    assert_eq!(out.dropped(), n - 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulated_clock_jumps_between_requests() {
    // An agent that answers after a simulated hour: the service's clock
    // jumps there at once (idle in between), then waits for more.
    let mut rt = Runtime::new(2).unwrap();
    rt.spawn_with_id(0, DOUBLERS[0], |cx| async move {
        loop {
            let mut env = cx.recv().await;
            let n = env.payload::<Ask>().unwrap().0;
            cx.sleep(3600.0).await;
            env.reply().unwrap();
            cx.send(Envelope::new(Answer(n * 2)).to(env.receiver().unwrap()));
        }
    })
    .unwrap();
    let mut out = rt.endpoint(1, REPLIES).unwrap();
    let service = rt.serve(ServeOptions::new()).unwrap();
    for i in 0..3 {
        service.send(Envelope::new(Ask(i)).from(REPLIES).to(DOUBLERS[0])).await.unwrap();
        let env = tokio::time::timeout(Duration::from_secs(10), out.next()).await.unwrap().unwrap();
        assert_eq!(env.payload::<Answer>().unwrap().0, i * 2);
    }
    assert_eq!(service.stats().now, 3.0 * 3600.0);
    let report = service.shutdown(Duration::from_secs(5)).await.unwrap();
    assert_eq!(report.end_time, 3.0 * 3600.0);
}

#[test]
fn serving_outside_tokio_is_a_clear_error() {
    let (rt, _out) = system(1, true);
    match rt.serve(ServeOptions::new()) {
        Err(Error::Config(m)) => assert!(m.contains("tokio"), "{m}"),
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[test]
fn progress_samples_a_long_run() {
    // A ring that passes a token for a long while on the simulated clock.
    let mut rt = Runtime::new(2).unwrap();
    let n = 4u64;
    for i in 0..n {
        let next = AgentId((i + 1) % n + 1);
        rt.spawn_with_id((i % 2) as usize, AgentId(i + 1), move |cx| async move {
            loop {
                let hops = cx.recv().await.into_payload::<u64>().unwrap();
                if hops == 0 {
                    cx.pause();
                    return;
                }
                cx.sleep(0.001).await;
                cx.send(Envelope::new(hops - 1).to(next));
            }
        })
        .unwrap();
    }
    rt.send(Envelope::new(50_000u64).to(AgentId(1)));
    let progress = rt.progress(Duration::from_millis(2));
    let mut progress = progress;
    let reader = std::thread::spawn(move || {
        std::iter::from_fn(|| progress.next_blocking()).collect::<Vec<_>>()
    });
    let report = rt.run().unwrap();
    assert_eq!(report.reason, StopReason::Paused);
    drop(rt); // the stream ends with the runtime
    let samples = reader.join().unwrap();
    assert!(samples.len() >= 2, "{} samples", samples.len());
    for w in samples.windows(2) {
        assert!(w[1].now >= w[0].now);
        assert!(w[1].messages >= w[0].messages);
        assert!(w[1].wall > w[0].wall);
    }
    let last = samples.last().unwrap();
    assert!(last.now > 0.0 && last.now <= report.end_time);
    assert!(last.messages > 0 && last.ratio > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookahead_service_takes_broadcasts_between_windows() {
    // A ticker keeps the windows going (an alarm every simulated second,
    // forever); listeners on both partitions hear broadcasts from outside.
    #[derive(Clone)]
    struct Tick;
    #[derive(Clone)]
    struct News(u64);
    let mut rt = Runtime::builder().partitions(2).lookahead(0.5).build().unwrap();
    // (One endpoint per partition: a reply crossing partitions inside a
    // window would break the lookahead promise.)
    let mut outs = [rt.endpoint(0, REPLIES).unwrap(), rt.endpoint(1, AgentId(1001)).unwrap()];
    rt.spawn(0, |cx| async move {
        loop {
            cx.sleep(1.0).await;
            cx.send(Envelope::new(Tick).to(cx.id()));
            let _ = cx.recv().await;
        }
    })
    .unwrap();
    for p in 0..2 {
        let id = rt
            .spawn(p, move |cx| async move {
                loop {
                    let env = cx.recv().await;
                    let n = env.payload::<News>().unwrap().0;
                    let to = AgentId(1000 + p as u64);
                    cx.send(Envelope::new(Answer(n * 10 + p as u64)).to(to));
                }
            })
            .unwrap();
        rt.subscribe(id, maslite_core::Subscription::new().topic("news")).unwrap();
    }
    let service = rt.serve(ServeOptions::new()).unwrap();
    // The windows are running: the ticker has moved the clock.
    tokio::time::timeout(Duration::from_secs(10), async {
        while service.stats().now < 2.0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the ticker moves the clock");
    for n in 1..=3u64 {
        service.send(Envelope::new(News(n)).topic_is("news")).await.unwrap();
        for (p, out) in outs.iter_mut().enumerate() {
            let env =
                tokio::time::timeout(Duration::from_secs(10), out.next()).await.unwrap().unwrap();
            assert_eq!(env.payload::<Answer>().unwrap().0, n * 10 + p as u64);
        }
    }
    let report = service.shutdown(Duration::from_secs(5)).await.unwrap();
    assert_eq!(report.reason, StopReason::Idle);
    assert!(report.end_time >= 2.0, "{}", report.end_time);
}
