//! A partition's thread that dies outside any agent (here: a payload whose
//! `Drop` panics while the router drops it as a dead letter) ends the run
//! with an error naming that partition and the panic; the other partition
//! sees its wire close and stops; every thread is joined; nothing hangs.

use maslite_core::{AgentId, Envelope, Error};
use maslite_runtime::Runtime;

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
