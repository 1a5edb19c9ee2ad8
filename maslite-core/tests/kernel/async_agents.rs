//! Agents written as async closures (`s.spawn(|cx| async move { .. })`), and
//! trait agents that await inside `update`.

use maslite_core::{Agent, AgentId, Alarm, Cx, Envelope, Error, RunOptions, Scheduler};
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

#[derive(Clone, Debug, PartialEq)]
struct Ping(u32);

type Log = Rc<RefCell<Vec<(String, f64)>>>;

fn entries(log: &Log) -> Vec<(String, f64)> {
    log.borrow().clone()
}

fn push(log: &Log, what: impl Into<String>, now: f64) {
    log.borrow_mut().push((what.into(), now));
}

#[test]
fn spawned_agent_receives_and_sleeps_in_simulated_time() {
    let log = Log::default();
    let mut s = Scheduler::simulated();
    let l = log.clone();
    let greeter = s
        .spawn(move |cx| async move {
            let hello = cx.recv().await;
            push(&l, format!("got {}", hello.payload::<&str>().unwrap()), cx.now());
            cx.sleep(2.0).await;
            push(&l, "slept", cx.now());
        })
        .unwrap();
    s.send(Envelope::new("hello").to(greeter));
    let report = s.run().unwrap();
    assert_eq!(report.end_time, 2.0);
    assert_eq!(entries(&log), [("got hello".to_string(), 0.0), ("slept".to_string(), 2.0)]);
}

#[test]
fn sleeps_add_up_exactly() {
    let log = Log::default();
    let mut s = Scheduler::simulated();
    let l = log.clone();
    s.spawn(move |cx| async move {
        for dt in [0.5, 1.25, 3.0] {
            cx.sleep(dt).await;
            push(&l, format!("after {dt}"), cx.now());
        }
        cx.sleep_until(10.0).await;
        push(&l, "until 10", cx.now());
        cx.sleep_until(4.0).await; // in the past: returns at once
        push(&l, "until 4", cx.now());
        cx.sleep(-1.0).await; // negative: returns at once
        push(&l, "negative", cx.now());
    })
    .unwrap();
    let report = s.run().unwrap();
    let times: Vec<f64> = entries(&log).into_iter().map(|e| e.1).collect();
    assert_eq!(times, [0.5, 1.75, 4.75, 10.0, 10.0, 10.0]);
    assert_eq!(report.end_time, 10.0);
}

#[test]
fn sleepers_wake_in_time_order() {
    let log = Log::default();
    let mut s = Scheduler::simulated();
    for (name, dt) in [("three", 3.0), ("one", 1.0), ("two", 2.0), ("also one", 1.0)] {
        let l = log.clone();
        s.spawn(move |cx| async move {
            cx.sleep(dt).await;
            push(&l, name, cx.now());
        })
        .unwrap();
    }
    s.run().unwrap();
    let names: Vec<String> = entries(&log).into_iter().map(|e| e.0).collect();
    // Same wake time: insertion order.
    assert_eq!(names, ["one", "also one", "two", "three"]);
}

#[test]
fn process_agent_whose_body_returns_leaves_the_system() {
    let mut s = Scheduler::simulated();
    let stays = s
        .spawn(|cx| async move {
            loop {
                let _ = cx.recv().await;
            }
        })
        .unwrap();
    let leaves = s
        .spawn(|cx| async move {
            let _ = cx.recv().await;
            cx.sleep(1.0).await;
        })
        .unwrap();
    assert_eq!(s.len(), 2);
    s.send(Envelope::new(Ping(1)).to(leaves));
    s.run().unwrap();
    assert!(!s.contains(leaves));
    assert!(s.contains(stays));
    assert_eq!(s.len(), 1);
    assert_eq!(s.agent_ids(), [stays]);

    s.send(Envelope::new(Ping(2)).to(leaves));
    let report = s.run().unwrap();
    assert_eq!(report.stats.dead_letters, 1, "it is gone");
}

#[test]
fn body_that_returns_at_once_never_stays() {
    let mut s = Scheduler::simulated();
    let id = s.spawn(|_cx| async move {}).unwrap();
    assert!(!s.contains(id));
    assert!(s.is_empty());
}

#[test]
fn process_and_trait_agents_talk() {
    struct Echo;
    impl Agent for Echo {
        async fn update(&mut self, cx: &Cx) {
            while let Some(mut env) = cx.try_recv() {
                env.payload_mut::<Ping>().unwrap().0 += 1;
                env.reply().unwrap();
                cx.send(env);
            }
        }
    }
    let got = Rc::new(RefCell::new(Vec::new()));
    let mut s = Scheduler::simulated();
    let echo = s.add(Echo).unwrap();
    let g = got.clone();
    let asker = s
        .spawn(move |cx| async move {
            for n in [10, 20, 30] {
                cx.send(Envelope::new(Ping(n)).to(echo));
                let reply = cx.recv().await;
                assert_eq!(reply.sender(), echo);
                g.borrow_mut().push(reply.into_payload::<Ping>().unwrap().0);
                cx.sleep(1.0).await;
            }
        })
        .unwrap();
    let report = s.run().unwrap();
    assert_eq!(*got.borrow(), [11, 21, 31]);
    assert_eq!(report.end_time, 3.0);
    assert!(!s.contains(asker));
}

#[test]
fn process_agent_spawns_and_adds_others_through_cx() {
    #[derive(Default)]
    struct Counter {
        got: u32,
    }
    impl Agent for Counter {
        async fn update(&mut self, cx: &Cx) {
            while cx.try_recv().is_some() {
                self.got += 1;
            }
        }
    }
    let log = Log::default();
    let ids = Rc::new(RefCell::new(Vec::new()));
    let mut s = Scheduler::simulated();
    let (l, i) = (log.clone(), ids.clone());
    s.spawn(move |cx| async move {
        let counter = cx.add(Counter::default()).unwrap();
        let l2 = l.clone();
        let child = cx
            .spawn(move |cx| async move {
                let env = cx.recv().await;
                push(&l2, format!("child got {}", env.payload::<Ping>().unwrap().0), cx.now());
            })
            .unwrap();
        i.borrow_mut().extend([counter, child]);
        cx.sleep(1.0).await;
        cx.send(Envelope::new(Ping(7)).to(child));
        cx.send(Envelope::new(Ping(8)).to(counter));
    })
    .unwrap();
    s.run().unwrap();
    let ids = ids.borrow();
    assert_eq!(entries(&log), [("child got 7".to_string(), 1.0)]);
    assert_eq!(s.agent::<Counter>(ids[0]).unwrap().got, 1);
    assert!(!s.contains(ids[1]), "the child's body returned");
}

#[test]
fn spawn_with_a_chosen_id() {
    let mut s = Scheduler::simulated();
    let seen = Rc::new(RefCell::new(None));
    let sn = seen.clone();
    let id = s
        .spawn_with_id(AgentId(42), move |cx| async move {
            *sn.borrow_mut() = Some(cx.id());
            let _ = cx.recv().await;
        })
        .unwrap();
    assert_eq!(id, AgentId(42));
    assert_eq!(*seen.borrow(), Some(AgentId(42)));
    assert_eq!(
        s.spawn_with_id(AgentId(42), |_cx| async move {}),
        Err(Error::DuplicateAgent(AgentId(42)))
    );
}

#[test]
fn process_agent_is_not_inspectable() {
    let mut s = Scheduler::simulated();
    let id = s
        .spawn(|cx| async move {
            let _ = cx.recv().await;
        })
        .unwrap();
    struct Whatever;
    impl Agent for Whatever {
        async fn update(&mut self, _cx: &Cx) {}
    }
    assert!(matches!(s.agent::<Whatever>(id), Err(Error::NotInspectable(x)) if x == id));
}

#[test]
fn removed_sleeper_does_not_hold_the_clock() {
    let mut s = Scheduler::simulated();
    let sleeper = s
        .spawn(|cx| async move {
            cx.sleep(10.0).await;
            panic!("woke up after being removed");
        })
        .unwrap();
    s.remove(sleeper).unwrap();
    let report = s.run().unwrap();
    assert_eq!(report.end_time, 0.0);
    assert_eq!(report.stats.alarms_fired, 0);
}

#[test]
fn sleep_is_not_a_listable_or_clearable_alarm_and_survives_the_end_of_a_run() {
    let log = Log::default();
    let mut s = Scheduler::simulated();
    let l = log.clone();
    s.spawn(move |cx| async move {
        cx.sleep(2.0).await;
        push(&l, "woke", cx.now());
    })
    .unwrap();
    let report = s.run_with(RunOptions::new().seconds(1.0)).unwrap(); // clears alarms at end
    assert_eq!(report.end_time, 1.0);
    assert!(s.alarms(None).is_empty());
    assert_eq!(s.clear_alarms(None, None), 0);
    s.run().unwrap();
    assert_eq!(entries(&log), [("woke".to_string(), 2.0)]);
}

#[test]
fn trait_agent_can_sleep_inside_update_and_is_busy_meanwhile() {
    #[derive(Default)]
    struct Slow {
        done: Vec<(u32, f64)>,
    }
    impl Agent for Slow {
        async fn update(&mut self, cx: &Cx) {
            while let Some(env) = cx.try_recv() {
                cx.sleep(2.0).await;
                self.done.push((env.payload::<Ping>().unwrap().0, cx.now()));
            }
        }
    }
    let mut s = Scheduler::simulated();
    let slow = s.add(Slow::default()).unwrap();
    s.send(Envelope::new(Ping(1)).to(slow));
    s.run_with(RunOptions::new().seconds(1.0)).unwrap();
    // Suspended in the middle of its update: its state is lent out.
    assert!(matches!(s.agent::<Slow>(slow), Err(Error::AgentBusy(x)) if x == slow));
    // Mail that arrives while it sleeps is read when it wakes.
    s.send(Envelope::new(Ping(2)).to(slow));
    s.run().unwrap();
    assert_eq!(s.agent::<Slow>(slow).unwrap().done, [(1, 2.0), (2, 4.0)]);
}

#[test]
fn real_time_sleep_lasts_at_least_its_delay() {
    let started = Instant::now();
    let mut s = Scheduler::real_time();
    let times = Rc::new(RefCell::new(None));
    let t = times.clone();
    s.spawn(move |cx| async move {
        let before = cx.now();
        cx.sleep(0.03).await;
        *t.borrow_mut() = Some((before, cx.now()));
    })
    .unwrap();
    s.run().unwrap();
    assert!(started.elapsed() >= Duration::from_millis(30), "{:?}", started.elapsed());
    let (before, after) = times.borrow().expect("the sleeper woke");
    assert!(after - before >= 0.03, "{after} - {before}");
}

// ----- waiting on something outside the kernel -------------------------

/// A one-shot value completed from another thread, built from std only.
struct Slot<T> {
    value: Option<T>,
    waker: Option<Waker>,
}

struct External<T> {
    inner: Arc<(Mutex<Slot<T>>, Condvar)>,
}

struct Completer<T> {
    inner: Arc<(Mutex<Slot<T>>, Condvar)>,
}

fn external<T>() -> (External<T>, Completer<T>) {
    let inner = Arc::new((Mutex::new(Slot { value: None, waker: None }), Condvar::new()));
    (External { inner: inner.clone() }, Completer { inner })
}

impl<T> Future for External<T> {
    type Output = T;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let (lock, cvar) = &*self.inner;
        let mut slot = lock.lock().unwrap();
        if let Some(value) = slot.value.take() {
            return Poll::Ready(value);
        }
        slot.waker = Some(cx.waker().clone());
        cvar.notify_all();
        Poll::Pending
    }
}

impl<T> Completer<T> {
    /// Waits until the future has been polled (so its agent is really
    /// suspended on it), then completes it.
    fn complete_once_awaited(self, value: T) {
        let (lock, cvar) = &*self.inner;
        let slot = lock.lock().unwrap();
        // Bounded, so that a kernel that never polls the agent fails the
        // test instead of hanging this thread.
        let (mut slot, _) =
            cvar.wait_timeout_while(slot, Duration::from_secs(10), |s| s.waker.is_none()).unwrap();
        slot.value = Some(value);
        let waker = slot.waker.take();
        drop(slot);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

#[test]
fn agent_awaiting_an_external_future_holds_simulated_time() {
    let log = Log::default();
    let (ext, completer) = external::<u32>();
    let helper = std::thread::spawn(move || completer.complete_once_awaited(99));

    let mut s = Scheduler::simulated();
    let l = log.clone();
    s.spawn(move |cx| async move {
        cx.sleep(1.0).await;
        push(&l, "sleeper woke", cx.now());
    })
    .unwrap();
    let l = log.clone();
    s.spawn(move |cx| async move {
        let value = ext.await;
        // Had the clock jumped to the sleeper's wake-up while this agent was
        // busy, it would read 1.0 here (or never get here).
        push(&l, format!("external gave {value}"), cx.now());
        cx.sleep(0.5).await;
        push(&l, "worker slept", cx.now());
    })
    .unwrap();
    let report = s.run().unwrap();
    helper.join().unwrap();

    assert_eq!(
        entries(&log),
        [
            ("external gave 99".to_string(), 0.0),
            ("worker slept".to_string(), 0.5),
            ("sleeper woke".to_string(), 1.0)
        ]
    );
    assert_eq!(report.end_time, 1.0);
}

#[test]
fn trait_agent_awaiting_an_external_future_in_update_holds_simulated_time() {
    struct Fetcher {
        pending: Option<External<&'static str>>,
        got: Vec<(&'static str, f64)>,
    }
    impl Agent for Fetcher {
        async fn update(&mut self, cx: &Cx) {
            while cx.try_recv().is_some() {
                if let Some(ext) = self.pending.take() {
                    let value = ext.await;
                    self.got.push((value, cx.now()));
                }
            }
        }
    }
    let (ext, completer) = external();
    let helper = std::thread::spawn(move || completer.complete_once_awaited("fetched"));
    let mut s = Scheduler::simulated();
    let f = s.add(Fetcher { pending: Some(ext), got: vec![] }).unwrap();
    s.send(Envelope::new(Ping(0)).to(f));
    // An alarm the clock would jump to if it ignored the busy agent.
    s.set_alarm(Alarm::at(5.0, Envelope::new(Ping(1)).to(f))).unwrap();
    let report = s.run().unwrap();
    helper.join().unwrap();
    assert_eq!(s.agent::<Fetcher>(f).unwrap().got, [("fetched", 0.0)]);
    assert_eq!(report.end_time, 5.0);
}

/// `cx.spawn_on` on a bare kernel (which ignores the partition): the child
/// starts in the next round, not nested in its creator's update as
/// `cx.spawn`'s does; mail sent to it meanwhile waits for it. `cx.add_on`
/// likewise runs the setup in the next round.
#[test]
fn a_child_placed_with_spawn_on_starts_in_the_next_round() {
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut s = Scheduler::simulated();
    let l = log.clone();
    let boss = s
        .spawn(move |cx| async move {
            cx.recv().await;
            let l1 = l.clone();
            let placed = cx
                .spawn_on(3, move |cx| async move {
                    l1.lock().unwrap().push(format!("placed starts in round {}", cx.round()));
                    let env = cx.recv().await;
                    l1.lock().unwrap().push(format!("placed got {:?}", env.payload::<&str>()));
                })
                .unwrap();
            let l2 = l.clone();
            cx.spawn(move |cx| async move {
                l2.lock().unwrap().push(format!("nested starts in round {}", cx.round()));
            })
            .unwrap();
            cx.send(Envelope::new("early").to(placed));
            struct Late(Arc<Mutex<Vec<String>>>);
            impl Agent for Late {
                async fn setup(&mut self, cx: &Cx) {
                    self.0.lock().unwrap().push(format!("add_on setup in round {}", cx.round()));
                }
                async fn update(&mut self, cx: &Cx) {
                    while cx.try_recv().is_some() {}
                }
            }
            cx.add_on(0, Late(l.clone())).unwrap();
            l.lock().unwrap().push(format!("boss done in round {}", cx.round()));
        })
        .unwrap();
    s.send(Envelope::new("go").to(boss));
    s.run().unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        [
            "boss done in round 1",
            "nested starts in round 1",
            "placed starts in round 2",
            "placed got Ok(\"early\")",
            "add_on setup in round 2",
        ]
    );
    assert_eq!(s.len(), 1, "the boss and the placed child ended; Late stays");
}
