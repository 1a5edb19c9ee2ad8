//! How partitions' threads end.
//!
//! - A partition's thread that dies outside any agent (here: a payload
//!   whose `Drop` panics while the router drops it as a dead letter) ends
//!   the run with an error naming that partition and the panic; the other
//!   partition sees its wire close and stops; nothing hangs.
//! - Stopping a runtime (or dropping it) returns only once every partition
//!   has dropped everything it held: agents, mail, its tokio tasks — the
//!   `LocalSet`'s and the tokio runtime's own, although the thread and an
//!   empty runtime are kept for the next partition (the reuse itself is
//!   tested in `thread_reuse.rs`, a binary of its own).

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
                loop {
                    let _ = cx.recv().await;
                }
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
        loop {
            let _ = cx.recv().await;
        }
    })
    .unwrap();
    rt.run().unwrap();
    assert_eq!(started.load(Ordering::SeqCst), 1, "the task is running");
    assert_eq!(dropped.load(Ordering::SeqCst), 0, "nothing dropped while running");
    rt.stop().unwrap();
    assert_eq!(dropped.load(Ordering::SeqCst), 1, "the task went with its runtime");
}
