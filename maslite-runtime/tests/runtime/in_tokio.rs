//! The runtime inside a tokio application: `run_async` awaits the
//! partitions without blocking the application's executor, the runtime
//! moves between tasks, the application's cancellation token stops it, and
//! its blocking calls return from a task that has spent tokio's budget.

use maslite_core::{AgentId, Envelope, RunOptions};
use maslite_runtime::{CancellationToken, Runtime, StopReason};

#[derive(Clone)]
struct Tick(u32);

/// Two agents on two partitions bounce a tick `n` times, one simulated
/// second apart; the last one pauses the run.
fn bouncing(n: u32) -> Runtime {
    let mut rt = Runtime::new(2).unwrap();
    let b = AgentId(2);
    let a = rt
        .spawn_with_id(0, AgentId(1), move |cx| async move {
            loop {
                let t = cx.recv().await.into_payload::<Tick>().unwrap();
                if t.0 >= n {
                    cx.pause();
                    return;
                }
                cx.sleep(1.0).await;
                cx.send(Envelope::new(Tick(t.0 + 1)).to(b));
            }
        })
        .unwrap();
    rt.spawn_with_id(1, b, move |cx| async move {
        loop {
            let t = cx.recv().await.into_payload::<Tick>().unwrap();
            cx.send(Envelope::new(Tick(t.0 + 1)).to(a));
        }
    })
    .unwrap();
    rt.send(Envelope::new(Tick(0)).to(a));
    rt
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_async_inside_a_multi_thread_runtime() {
    let mut rt = bouncing(10);
    let report = rt.run_async(RunOptions::default()).await.unwrap();
    assert_eq!(report.reason, StopReason::Paused);
    assert_eq!(report.end_time, 5.0);
    // Ticks 1..=10, each from one partition to the other.
    assert_eq!(report.cross_partition(), 10);
}

#[tokio::test(flavor = "current_thread")]
async fn run_async_on_a_current_thread_runtime_with_other_tasks_going() {
    // Another task keeps running on the same thread while the run goes on.
    let ticker = tokio::spawn(async {
        let mut n = 0u32;
        for _ in 0..5 {
            tokio::task::yield_now().await;
            n += 1;
        }
        n
    });
    let mut rt = bouncing(4);
    let report = rt.run_async(RunOptions::default()).await.unwrap();
    assert_eq!(report.reason, StopReason::Paused);
    assert_eq!(ticker.await.unwrap(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runtime_moves_into_a_spawned_task() {
    let rt = bouncing(6);
    let report = tokio::spawn(async move {
        let mut rt = rt;
        rt.run_async(RunOptions::default()).await
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(report.end_time, 3.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_applications_token_stops_an_endless_run() {
    // The application's token (the runtime takes a child of it).
    let app = CancellationToken::new();
    let mut rt = Runtime::builder().partitions(2).cancel_token(app.clone()).build().unwrap();
    let b = AgentId(2);
    // An endless exchange: only the token ends it.
    let a = rt
        .spawn_with_id(0, AgentId(1), move |cx| async move {
            loop {
                let env = cx.recv().await;
                cx.sleep(1.0).await;
                cx.send(Envelope::new(env.into_payload::<Tick>().unwrap()).to(b));
            }
        })
        .unwrap();
    rt.spawn_with_id(1, b, move |cx| async move {
        loop {
            let env = cx.recv().await;
            cx.send(Envelope::new(env.into_payload::<Tick>().unwrap()).to(a));
        }
    })
    .unwrap();
    rt.send(Envelope::new(Tick(0)).to(a));
    let stopper = {
        let app = app.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            app.cancel();
        })
    };
    let report = rt.run_async(RunOptions::default()).await.unwrap();
    stopper.await.unwrap();
    assert_eq!(report.reason, StopReason::Cancelled);
    assert!(report.end_time > 0.0);
    assert_eq!(report.sent(), report.delivered() + report.dead_letters() + report.pending());
}

/// The trap of tokio's timers in simulated time: `tokio::time::timeout`
/// around `cx.recv()` waits on the wall clock, which the simulated run does
/// not wait for; the run ends with the agent still suspended, and the
/// report names it (as a warning does) instead of losing it silently.
#[test]
fn an_agent_left_on_a_tokio_timer_in_simulated_time_is_named_in_the_report() {
    let mut rt = Runtime::new(2).unwrap();
    let trapped = rt
        .spawn(1, |cx| async move {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(3600), cx.recv()).await;
        })
        .unwrap();
    let fine = rt
        .spawn(0, |cx| async move {
            let _ = cx.recv_timeout(3600.0).await;
        })
        .unwrap();
    let report = rt.run().unwrap();
    assert_eq!(report.end_time, 3600.0, "the kernel's timeout ran out on the simulated clock");
    assert_eq!(report.waiting_outside(), [trapped]);
    assert_eq!(report.partitions[1].waiting_outside, [trapped]);
    assert!(rt.partition_of(fine).is_none(), "the kernel's timeout ended its agent");
}

/// A task that has spent tokio's cooperative budget gets `Pending` from
/// tokio's channels, its waker deferred until the worker parks. The
/// runtime's blocking calls (reading an agent, a run, stopping) block that
/// worker, so they must not be held to the budget: each returns here. (On
/// a regression this test fails after a minute instead of hanging.)
#[test]
fn blocking_calls_return_from_a_task_that_spent_its_budget() {
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let app = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        app.block_on(async move {
            let spend = || async {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                for i in 0..1000 {
                    tx.send(i).unwrap();
                }
                while tokio::task::coop::has_budget_remaining() {
                    rx.recv().await.unwrap();
                }
            };
            let mut rt = bouncing(3);
            spend().await;
            let report = rt.run().unwrap();
            assert_eq!(report.reason, StopReason::Paused);
            spend().await;
            let on = rt.with_partition(1, |s| s.contains(AgentId(2))).unwrap();
            assert!(on);
            spend().await;
            drop(rt);
            let rt = bouncing(1);
            spend().await;
            rt.stop().unwrap();
        });
        let _ = done.send(());
    });
    finished
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("every blocking call returned");
}
