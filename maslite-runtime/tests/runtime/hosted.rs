//! Tasks of the application hosted on a service's partitions
//! (`Service::host`): on the partition's own thread, beside its agents,
//! alive past the run, yielded to by a busy partition, and their panics
//! kept apart from the partition's.

use futures::FutureExt;
use maslite_core::{Agent, AgentId, Cx, Envelope, Error};
use maslite_runtime::{Runtime, ServeOptions, Service, StopReason};
use std::cell::Cell;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// A question for a [`Teller`]: a number, and where the answer goes (a
/// payload is `Clone`: the channel is shared, and taken once).
#[derive(Clone)]
struct Ask(u64, Arc<Mutex<Option<oneshot::Sender<Told>>>>);

fn ask(n: u64, to: AgentId) -> (Envelope, oneshot::Receiver<Told>) {
    let (back, answer) = oneshot::channel();
    (Envelope::new(Ask(n, Arc::new(Mutex::new(Some(back))))).to(to), answer)
}

/// The number doubled, and the name of the thread that doubled it.
#[derive(Debug)]
struct Told(u64, String);

fn thread_name() -> String {
    std::thread::current().name().unwrap_or("unnamed").to_string()
}

/// Answers each ask on its channel.
struct Teller;

impl Agent for Teller {
    async fn update(&mut self, cx: &Cx) {
        while let Some(env) = cx.try_recv() {
            let Ok(Ask(n, back)) = env.into_payload::<Ask>() else { continue };
            let back = back.lock().unwrap().take();
            if let Some(back) = back {
                let _ = back.send(Told(2 * n, thread_name()));
            }
        }
    }
}

/// A service of `partitions` with a teller on each (`AgentId(1 + p)`),
/// on the real-time clock or the simulated one.
fn tellers(partitions: usize, real_time: bool) -> Service {
    let mut b = Runtime::builder().partitions(partitions);
    if real_time {
        b = b.real_time();
    }
    let mut rt = b.build().unwrap();
    for p in 0..partitions {
        rt.add_with_id(p, AgentId(1 + p as u64), Teller).unwrap();
    }
    rt.serve(ServeOptions::new()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hosted_task_runs_on_its_partitions_thread_beside_the_agents() {
    for real_time in [true, false] {
        let service = tellers(2, real_time);
        let mut hosted = Vec::new();
        for p in 0..2usize {
            let inlet = service.inlet();
            hosted.push(
                service
                    .host(p, move || async move {
                        // `!Send` state: the task is made on the thread.
                        let asked = Rc::new(Cell::new(0u64));
                        let mut told = Vec::new();
                        for n in 0..50 {
                            let (question, answer) = ask(n, AgentId(1 + p as u64));
                            inlet.send(question).await.unwrap();
                            told.push(answer.await.expect("the teller answers"));
                            asked.set(asked.get() + 1);
                        }
                        (thread_name(), asked.get(), told)
                    })
                    .await
                    .unwrap(),
            );
        }
        let mut threads = Vec::new();
        for task in hosted {
            let (mine, asked, told) = task.await.unwrap();
            assert_eq!(asked, 50);
            for (n, Told(doubled, teller)) in told.into_iter().enumerate() {
                assert_eq!(doubled, 2 * n as u64);
                // The teller on the task's partition answered on the
                // task's own thread.
                assert_eq!(teller, mine, "real_time {real_time}");
            }
            threads.push(mine);
        }
        assert_ne!(threads[0], threads[1], "each partition has a thread of its own");
        let report = service.shutdown(Duration::from_secs(10)).await.unwrap();
        assert_eq!(report.reason, StopReason::Idle);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hosted_task_outlives_the_run_and_nothing_is_hosted_after_it() {
    let service = tellers(1, true);
    let inlet = service.inlet();
    let (go_tx, go) = oneshot::channel::<()>();
    let task = service
        .host(0, move || async move {
            go.await.unwrap();
            // The run is over: the inlet refuses, and this task still runs
            // on the partition's thread.
            let late = inlet.send(ask(1, AgentId(1)).0).await;
            (late, thread_name())
        })
        .await
        .unwrap();
    let cancel = service.cancel_token();
    let report = service.shutdown(Duration::from_secs(10)).await.unwrap();
    assert_eq!(report.reason, StopReason::Idle);
    assert!(!task.is_finished(), "the hosted task waits for its word");
    go_tx.send(()).unwrap();
    let (late, thread) = task.await.unwrap();
    assert_eq!(late, Err(Error::Stopped));
    assert!(thread.starts_with("maslite-p"), "on a partition's thread, not {thread}");
    drop(cancel);

    // Hosting once the run has ended is refused, not hung.
    let service = tellers(1, true);
    service.cancel_token().cancel();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while service.stats().running {
        assert!(tokio::time::Instant::now() < deadline, "the cancelled run ends");
        tokio::task::yield_now().await;
    }
    let refused = service.host(0, || async {}).await;
    assert_eq!(refused.err(), Some(Error::Stopped));
    assert_eq!(service.join().await.unwrap().reason, StopReason::Cancelled);
}

/// Keeps its partition busy: a message to itself every round.
struct Busy;

impl Agent for Busy {
    async fn update(&mut self, cx: &Cx) {
        while cx.try_recv().is_some() {}
        cx.send(Envelope::new(()).to(cx.id()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_partition_yields_to_its_hosted_tasks() {
    for real_time in [true, false] {
        let mut b = Runtime::builder();
        if real_time {
            b = b.real_time();
        }
        let mut rt = b.build().unwrap();
        let busy = rt.add(0, Busy).unwrap();
        rt.send(Envelope::new(()).to(busy));
        let service = rt.serve(ServeOptions::new()).unwrap();
        // The partition never waits: only its yields let this task run.
        let task = service
            .host(0, || async {
                for _ in 0..20 {
                    tokio::task::yield_now().await;
                }
                thread_name()
            })
            .await
            .unwrap();
        let thread = tokio::time::timeout(Duration::from_secs(20), task)
            .await
            .expect("the hosted task gets the thread")
            .unwrap();
        assert!(thread.starts_with("maslite-p"), "{thread}");
        assert!(service.stats().updates > 0, "the agent ran all along");
        service.cancel_token().cancel();
        assert_eq!(service.join().await.unwrap().reason, StopReason::Cancelled);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosting_fails_clearly_and_a_hosted_panic_stays_the_tasks() {
    let service = tellers(2, true);
    let err = service.host(2, || async {}).await.err();
    assert_eq!(err, Some(Error::NoPartition { partition: 2, partitions: 2 }));
    // A panic while making the task is the caller's.
    let made =
        AssertUnwindSafe(service.host(0, || -> std::future::Ready<()> { panic!("no task today") }))
            .catch_unwind()
            .await;
    let panic = made.expect_err("the caller sees the panic");
    assert_eq!(panic.downcast_ref::<&str>(), Some(&"no task today"));
    // A panic in the task is its handle's.
    let task = service.host(1, || async { panic!("lost in the task") }).await.unwrap();
    assert!(task.await.unwrap_err().is_panic());
    // The partitions go on.
    for p in 0..2u64 {
        let inlet = service.inlet();
        let task = service
            .host(p as usize, move || async move {
                let (question, answer) = ask(21, AgentId(1 + p));
                inlet.send(question).await.unwrap();
                answer.await.unwrap().0
            })
            .await
            .unwrap();
        assert_eq!(task.await.unwrap(), 42);
    }
    let report = service.shutdown(Duration::from_secs(10)).await.unwrap();
    assert_eq!(report.reason, StopReason::Idle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_the_run_ends_its_streams_end_and_its_token_is_cancelled_for_hosted_tasks() {
    // A hosted reader of an endpoint, and a hosted task that stops on the
    // runtime's token: both see the run's end, though the runtime's threads
    // stay for them.
    let mut rt = Service::builder().build().unwrap();
    let mut out = rt.endpoint(0, AgentId(100)).unwrap();
    let token = rt.cancel_token();
    let service = rt.serve(ServeOptions::new()).unwrap();
    let reader = service
        .host(0, move || async move {
            let mut n = 0;
            while out.recv().await.is_some() {
                n += 1;
            }
            n
        })
        .await
        .unwrap();
    let waiter = service.host(0, move || async move { token.cancelled().await }).await.unwrap();
    service.send(Envelope::new(1u8).to(AgentId(100))).await.unwrap();
    let report = service.shutdown(Duration::from_secs(10)).await.unwrap();
    assert_eq!(report.reason, StopReason::Idle);
    let read = tokio::time::timeout(Duration::from_secs(10), reader).await;
    assert_eq!(read.expect("the endpoint's stream ends").unwrap(), 1);
    tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("the runtime's token is cancelled")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosting_while_an_agent_waits_on_the_outside_world() {
    // On the simulated clock, a partition whose only agent awaits the
    // outside world waits for it: it still starts tasks to host (one may be
    // what the agent waits for).
    let mut rt = Runtime::builder().build().unwrap();
    let (tx, rx) = oneshot::channel::<u8>();
    rt.process(0, move |_cx| async move { rx.await.ok() }).unwrap();
    let service = rt.serve(ServeOptions::new()).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while service.stats().updates == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the process starts");
        tokio::task::yield_now().await;
    }
    let task = tokio::time::timeout(
        Duration::from_secs(10),
        service.host(0, move || async move { tx.send(7).is_ok() }),
    )
    .await
    .expect("hosting does not wait for the agent")
    .unwrap();
    assert!(task.await.unwrap(), "the hosted task freed the agent");
    service.cancel_token().cancel();
    service.join().await.unwrap();
}
