//! A partition's thread serves the next runtime's partition of the same
//! number once the first has stopped, with nothing of the first left in it. A binary of its own: the waiting threads are the
//! process's, and tests running beside this one would take them.

use maslite_core::Envelope;
use maslite_runtime::Runtime;
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;

/// Runs a 2-partition model once and stops it: the threads its partitions
/// ran on, and what each partition's agent added up.
fn run_once() -> (Vec<ThreadId>, Vec<u64>) {
    let seen = Arc::new(Mutex::new(vec![None; 2]));
    let mut rt = Runtime::new(2).unwrap();
    let ids: Vec<_> = (0..2)
        .map(|p| {
            let seen = seen.clone();
            rt.process(p, move |cx| async move {
                seen.lock().unwrap()[p] = Some(std::thread::current().id());
                let mut total = 0u64;
                loop {
                    let n = cx.recv().await.into_payload::<u64>().unwrap();
                    // The partition's tokio timers work on a kept thread.
                    tokio::time::sleep(std::time::Duration::from_micros(10)).await;
                    if n == 0 {
                        return total;
                    }
                    total += n;
                }
            })
            .unwrap()
        })
        .collect();
    for (i, &id) in ids.iter().enumerate() {
        for n in [3u64, 4, 0] {
            rt.send(Envelope::new(if n == 0 { 0 } else { n + i as u64 }).to(id));
        }
    }
    rt.run().unwrap();
    let totals = ids.iter().map(|&id| rt.take_result::<u64>(id).unwrap().expect("ended")).collect();
    rt.stop().unwrap();
    let threads = seen.lock().unwrap().iter().map(|t| t.expect("each agent ran")).collect();
    (threads, totals)
}

#[test]
fn the_next_runtime_runs_its_partitions_on_the_same_threads() {
    let (first, totals) = run_once();
    assert_eq!(totals, vec![7, 9]);
    assert_ne!(first[0], first[1], "a thread per partition");
    for _ in 0..3 {
        let (again, totals) = run_once();
        assert_eq!(totals, vec![7, 9], "the same results on kept threads");
        assert_eq!(again, first, "each partition on the thread its number had");
    }
}
