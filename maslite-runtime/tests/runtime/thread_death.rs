//! How partitions' threads end.
//!
//! - A partition's thread that dies outside any agent (here: a payload
//!   whose `Drop` panics while the router drops it as a dead letter) ends
//!   the run with an error naming that partition and the panic; the other
//!   partition sees its wire close and stops; nothing hangs.
//! - Stopping a runtime (or dropping it) returns only once every partition
//!   has dropped everything it held: agents, mail, its tokio tasks — the
//!   `LocalSet`'s, the tokio runtime's own and its blocking pool's —
//!   although the thread is kept for the next partition (the reuse itself
//!   is tested in `thread_reuse.rs`, a binary of its own).

use maslite_core::{AgentId, Envelope, Error};
use maslite_runtime::Runtime;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A payload that panics when the original (not a clone) is dropped.
struct Grenade {
    armed: bool,
}

impl Clone for Grenade {
    fn clone(&self) -> Self {
        Grenade { armed: false }
    }
}

impl Drop for Grenade {
    fn drop(&mut self) {
        if self.armed && !std::thread::panicking() {
            self.armed = false;
            panic!("grenade went off");
        }
    }
}

#[test]
fn a_dead_partition_thread_ends_the_run_with_its_number_and_panic() {
    let mut rt = Runtime::new(2).unwrap();
    // A steady exchange on partition 0, so it is waiting on partition 1
    // when partition 1 dies.
    rt.spawn_with_id(0, AgentId(1), |cx| async move {
        loop {
            let env = cx.recv().await;
            cx.send(Envelope::new(env.into_payload::<u32>().unwrap()).to(AgentId(2)));
        }
    })
    .unwrap();
    rt.spawn_with_id(1, AgentId(2), |cx| async move {
        let mut n = 0u32;
        loop {
            let _ = cx.recv().await;
            n += 1;
            if n == 3 {
                // To nobody: the router drops it as a dead letter.
                cx.send(Envelope::new(Grenade { armed: true }).to(AgentId(404)));
            }
            cx.send(Envelope::new(n).to(AgentId(1)));
        }
    })
    .unwrap();
    rt.send(Envelope::new(0u32).to(AgentId(1)));
    let err = rt.run().unwrap_err();
    match &err {
        Error::PartitionDied { partition, message } => {
            assert_eq!(*partition, 1);
            assert!(message.contains("grenade went off"), "{message}");
        }
        other => panic!("expected PartitionDied, got {other:?}"),
    }
    // The runtime is spent, and stopping it returns.
    assert_eq!(rt.run().unwrap_err(), Error::Stopped);
    rt.stop().unwrap();
}

/// What an agent that only waits does: reads its mail, for ever.
async fn read_forever(cx: &maslite_core::Cx) {
    loop {
        let _ = cx.recv().await;
    }
}

/// Counts its drops.
struct Held(Arc<AtomicUsize>);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn stopping_returns_once_every_partition_has_dropped_what_it_held() {
    for by_stop in [true, false] {
        let dropped = Arc::new(AtomicUsize::new(0));
        let started = Arc::new(AtomicUsize::new(0));
        let mut rt = Runtime::new(2).unwrap();
        for p in 0..2 {
            let (in_agent, in_task) = (Held(dropped.clone()), Held(dropped.clone()));
            let started = started.clone();
            rt.spawn(p, move |cx| async move {
                let _held = in_agent;
                // A task of the partition's tokio runtime, never finished.
                tokio::task::spawn_local(async move {
                    let _held = in_task;
                    started.fetch_add(1, Ordering::SeqCst);
                    std::future::pending::<()>().await
                });
                tokio::task::yield_now().await;
                read_forever(&cx).await
            })
            .unwrap();
        }
        rt.run().unwrap();
        assert_eq!(started.load(Ordering::SeqCst), 2, "both tasks are running");
        assert_eq!(dropped.load(Ordering::SeqCst), 0, "nothing dropped while running");
        if by_stop {
            rt.stop().unwrap();
        } else {
            drop(rt);
        }
        assert_eq!(dropped.load(Ordering::SeqCst), 4, "stopped by {}", by_stop);
    }
}

#[test]
fn a_task_left_in_the_partitions_tokio_runtime_is_dropped_with_it() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let mut rt = Runtime::new(1).unwrap();
    let (held, running) = (Held(dropped.clone()), started.clone());
    rt.spawn(0, move |cx| async move {
        // A task of the runtime itself, not of the partition's `LocalSet`:
        // the runtime cannot be kept for the next partition with it alive.
        tokio::spawn(async move {
            let _held = held;
            running.fetch_add(1, Ordering::SeqCst);
            std::future::pending::<()>().await
        });
        tokio::task::yield_now().await;
        read_forever(&cx).await
    })
    .unwrap();
    rt.run().unwrap();
    assert_eq!(started.load(Ordering::SeqCst), 1, "the task is running");
    assert_eq!(dropped.load(Ordering::SeqCst), 0, "nothing dropped while running");
    rt.stop().unwrap();
    assert_eq!(dropped.load(Ordering::SeqCst), 1, "the task went with its runtime");
}

#[test]
fn a_blocking_task_left_by_an_agent_is_done_when_stop_returns() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let mut rt = Runtime::new(1).unwrap();
    let held = Held(dropped.clone());
    rt.spawn(0, move |cx| async move {
        // Not awaited, as a `tokio::fs` write whose future was dropped: the
        // partition's tokio runtime counts no task for it.
        drop(tokio::task::spawn_blocking(move || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            drop(held);
        }));
        read_forever(&cx).await
    })
    .unwrap();
    rt.run().unwrap();
    rt.stop().unwrap();
    assert_eq!(dropped.load(Ordering::SeqCst), 1, "the blocking task ended before stop returned");
}

#[test]
fn a_task_spawned_through_a_stopped_partitions_handle_never_runs() {
    let handle = Arc::new(std::sync::Mutex::new(None));
    let mut rt = Runtime::new(1).unwrap();
    let kept = handle.clone();
    rt.spawn(0, move |cx| async move {
        *kept.lock().unwrap() = Some(tokio::runtime::Handle::current());
        read_forever(&cx).await
    })
    .unwrap();
    rt.run().unwrap();
    rt.stop().unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let counter = ran.clone();
    let old = handle.lock().unwrap().take().expect("the agent ran");
    drop(old.spawn(async move {
        counter.fetch_add(1, Ordering::SeqCst);
    }));
    // The next runtime, maybe on the same thread.
    let mut rt = Runtime::new(1).unwrap();
    rt.spawn(0, move |cx| async move {
        tokio::task::yield_now().await;
        read_forever(&cx).await
    })
    .unwrap();
    rt.run().unwrap();
    rt.stop().unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 0, "a task of the stopped runtime ran in the next");
}

/// Adds up what its agents (one per partition, each given 5) return.
fn small_run(partitions: usize) -> u64 {
    let mut rt = Runtime::new(partitions).unwrap();
    let ids: Vec<_> = (0..partitions)
        .map(|p| {
            rt.process(p, move |cx| async move {
                let n = cx.recv().await.into_payload::<u64>().unwrap();
                tokio::time::sleep(std::time::Duration::from_micros(10)).await;
                n + p as u64
            })
            .unwrap()
        })
        .collect();
    for &id in &ids {
        rt.send(Envelope::new(5u64).to(id));
    }
    rt.run().unwrap();
    let total = ids.iter().map(|&id| rt.take_result::<u64>(id).unwrap().expect("ended")).sum();
    rt.stop().unwrap();
    total
}

#[test]
fn runtimes_built_at_once_from_threads_and_tokio_tasks_share_the_kept_threads() {
    let threads: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(|| {
                for _ in 0..25 {
                    assert_eq!(small_run(2), 5 + 5 + 1);
                }
            })
        })
        .collect();
    let tokio =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    tokio.block_on(async {
        let tasks: Vec<_> = (0..2)
            .map(|_| {
                tokio::spawn(async {
                    for _ in 0..10 {
                        assert_eq!(small_run(3), 15 + 3);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    for thread in threads {
        thread.join().unwrap();
    }
}
