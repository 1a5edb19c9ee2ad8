//! Edge cases found in review: each test pins down a behaviour that once went
//! wrong (a hang, a lost or doubled message, a panic instead of an error).

use maslite_core::{
    Agent, AgentId, Alarm, Cx, Envelope, Error, RunOptions, Scheduler, Stats, StopReason,
    Subscription, TestBed,
};
use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

#[derive(Clone, Debug, PartialEq)]
struct Note(u32);

/// Runs `f` on its own thread; `None` if it did not finish within 5 s (a
/// hang), so a regression fails the test instead of stalling the suite.
fn finishes<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(5)).ok()
}

/// Wakes itself and yields once, as `tokio::task::yield_now` does.
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[test]
fn a_panic_among_woken_agents_keeps_the_other_wake_ups() {
    let outcome = finishes(|| {
        let mut s = Scheduler::simulated();
        s.spawn(|_cx| async move {
            YieldNow(false).await;
            panic!("boom");
        })
        .unwrap();
        let done = Rc::new(Cell::new(false));
        let d = done.clone();
        s.spawn(move |_cx| async move {
            YieldNow(false).await;
            d.set(true);
        })
        .unwrap();
        let first = s.run().map(|r| r.reason);
        let second = s.run().map(|r| r.reason);
        (format!("{first:?}"), second, done.get())
    });
    let (first, second, done) = outcome.expect("the second run hung");
    assert!(first.contains("AgentPanicked"), "{first}");
    assert_eq!(second, Ok(StopReason::Idle));
    assert!(done, "the other woken agent went on");
}

/// A sends one note to B and pauses the run in the same round.
fn paused_after_a_note(s: &mut Scheduler) -> (AgentId, AgentId, Rc<RefCell<Vec<u32>>>) {
    let heard: Rc<RefCell<Vec<u32>>> = Rc::default();
    let h = heard.clone();
    let spy = s
        .spawn(move |cx| async move {
            loop {
                let env = cx.recv().await;
                h.borrow_mut().push(env.payload::<Note>().unwrap().0);
            }
        })
        .unwrap();
    let b = s
        .spawn(|cx| async move {
            loop {
                cx.recv().await;
            }
        })
        .unwrap();
    let a = s
        .spawn(move |cx| async move {
            cx.recv().await;
            cx.send(Envelope::new(Note(7)).to(b));
            cx.pause();
            loop {
                cx.recv().await;
            }
        })
        .unwrap();
    s.send(Envelope::new(Note(0)).to(a));
    assert_eq!(s.run().unwrap().reason, StopReason::Paused);
    (spy, b, heard)
}

#[test]
fn mail_of_a_finished_run_is_not_copied_to_a_later_subscriber() {
    let mut s = Scheduler::simulated();
    let (spy, b, heard) = paused_after_a_note(&mut s);
    // The note reached b at the end of that run; a subscription made now
    // is too late for it.
    s.subscribe(spy, Subscription::new().receiver(b)).unwrap();
    s.run().unwrap();
    assert!(heard.borrow().is_empty());
    let stats = s.stats();
    assert_eq!((stats.messages, stats.deliveries), (2, 2));
}

#[test]
fn taking_an_inbox_then_subscribing_redelivers_nothing() {
    let mut s = Scheduler::simulated();
    let (spy, b, heard) = paused_after_a_note(&mut s);
    assert_eq!(s.take_inbox(b).unwrap().len(), 1);
    s.send(Envelope::new(Note(8)).to(b));
    s.deliver_mail().unwrap();
    let before = s.stats().messages;
    s.subscribe(spy, Subscription::new().receiver(b)).unwrap();
    s.run().unwrap();
    assert!(heard.borrow().is_empty());
    assert!(s.stats().messages >= before, "the message count never goes back");
    assert_eq!(s.stats().messages, 3);
}

/// Counts the jobs it gets.
struct Fresh(Rc<Cell<u32>>);

impl Agent for Fresh {
    async fn update(&mut self, cx: &Cx) {
        while cx.try_recv().is_some() {
            self.0.set(self.0.get() + 1);
        }
    }
}

/// A sends a job to X; X's body ends in the same round; C adds a new agent
/// under X's id. Under maslite's rule the new X gets the job.
fn receiver_replaced_mid_round(with_some_subscription: bool) -> (u32, Stats) {
    let mut s = Scheduler::simulated();
    let got = Rc::new(Cell::new(0));
    let x = AgentId(100);
    let a = s
        .spawn(move |cx| async move {
            cx.recv().await;
            cx.send(Envelope::new(Note(1)).to(x));
        })
        .unwrap();
    s.spawn_with_id(x, |cx| async move {
        cx.recv().await;
    })
    .unwrap();
    let g = got.clone();
    let c = s
        .spawn(move |cx| async move {
            cx.recv().await;
            cx.add_with_id(x, Fresh(g)).unwrap();
        })
        .unwrap();
    if with_some_subscription {
        // Any subscription sends all mail through the outbox.
        s.subscribe(c, Subscription::new().sender(AgentId(999))).unwrap();
    }
    for id in [a, x, c] {
        s.send(Envelope::new(Note(0)).to(id));
    }
    s.run().unwrap();
    (got.get(), s.stats())
}

#[test]
fn mail_to_an_agent_that_leaves_in_the_same_round_goes_to_its_successor() {
    let (got, stats) = receiver_replaced_mid_round(false);
    assert_eq!(got, 1);
    assert_eq!(stats.dead_letters, 0);
    assert_eq!((got, stats), receiver_replaced_mid_round(true), "both delivery paths agree");
}

#[test]
fn sleep_until_nan_is_now_and_an_infinite_sleep_holds_nothing() {
    let reasons = finishes(|| {
        let mut s = Scheduler::simulated();
        let woke = Rc::new(Cell::new(false));
        let w = woke.clone();
        s.spawn(move |cx| async move {
            cx.sleep_until(f64::NAN).await;
            w.set(true);
            cx.sleep(f64::INFINITY).await;
        })
        .unwrap();
        let r = s.run().unwrap();
        (r.reason, r.end_time, woke.get(), s.set_alarm(Alarm::at(5.0, Envelope::new(Note(1)))))
    });
    let (reason, end, woke, alarm) = reasons.expect("a NaN or infinite sleep hung the run");
    assert_eq!((reason, end, woke), (StopReason::Idle, 0.0, true));
    assert_eq!(alarm, Ok(()), "the clock did not run off to infinity");
}

#[test]
fn real_time_sleep_until_nan_does_not_hang() {
    let reason = finishes(|| {
        let mut s = Scheduler::real_time();
        s.spawn(|cx| async move { cx.sleep_until(f64::NAN).await }).unwrap();
        s.run().map(|r| r.reason)
    });
    assert_eq!(reason, Some(Ok(StopReason::Idle)));
}

/// Takes one message, then waits inside `update` for one more.
struct Waiter {
    inbox_at_update: Rc<RefCell<Vec<usize>>>,
    torn_down: Rc<Cell<bool>>,
}

impl Agent for Waiter {
    async fn update(&mut self, cx: &Cx) {
        self.inbox_at_update.borrow_mut().push(cx.inbox_len());
        cx.try_recv();
        cx.recv().await;
    }
    async fn teardown(&mut self, _cx: &Cx) {
        self.torn_down.set(true);
    }
}

type UpdateLog = Rc<RefCell<Vec<usize>>>;

fn waiter(s: &mut Scheduler) -> (AgentId, UpdateLog, Rc<Cell<bool>>) {
    let log: UpdateLog = Rc::default();
    let torn = Rc::new(Cell::new(false));
    let id = s.add(Waiter { inbox_at_update: log.clone(), torn_down: torn.clone() }).unwrap();
    (id, log, torn)
}

#[test]
fn an_update_that_waits_for_mail_inside_gets_no_empty_update_after() {
    let mut s = Scheduler::simulated();
    let (w, log, _) = waiter(&mut s);
    s.send(Envelope::new(Note(1)).to(w));
    s.set_alarm(Alarm::after(1.0, Envelope::new(Note(2)).to(w))).unwrap();
    s.run().unwrap();
    assert_eq!(*log.borrow(), [1], "one update; the second note ended it");
    assert!(s.agent::<Waiter>(w).is_ok(), "at rest, so inspectable");
}

#[test]
fn removing_an_agent_waiting_for_mail_inside_update_runs_teardown() {
    let mut s = Scheduler::simulated();
    let (w, _, torn) = waiter(&mut s);
    s.send(Envelope::new(Note(1)).to(w));
    s.run().unwrap();
    assert!(matches!(s.agent::<Waiter>(w), Err(Error::AgentBusy(_))));
    s.remove(w).unwrap();
    assert!(torn.get());
    assert_eq!(s.len(), 0);
    assert!(s.agent_ids().is_empty());
}

/// Completes when a thread says so, after a short wall-clock delay.
struct External(Arc<Mutex<(bool, Option<Waker>)>>);

impl External {
    fn start() -> External {
        let state = Arc::new(Mutex::new((false, None::<Waker>)));
        let remote = state.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            let waker = {
                let mut s = remote.lock().unwrap();
                s.0 = true;
                s.1.take()
            };
            if let Some(w) = waker {
                w.wake();
            }
        });
        External(state)
    }
}

impl Future for External {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = self.0.lock().unwrap();
        if s.0 {
            Poll::Ready(())
        } else {
            s.1 = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

#[test]
fn a_recv_polled_once_and_dropped_does_not_hide_an_external_wait() {
    let result = finishes(|| {
        let mut s = Scheduler::simulated();
        let seen = Rc::new(Cell::new(-1.0));
        let at = seen.clone();
        s.spawn(move |cx| async move {
            {
                // Peek: is there mail already? (polls recv once, then drops it)
                let mut recv = pin!(cx.recv());
                poll_fn(|c| Poll::Ready(recv.as_mut().poll(c).is_ready())).await;
            }
            External::start().await;
            at.set(cx.now());
        })
        .unwrap();
        s.set_alarm(Alarm::at(10.0, Envelope::new(Note(1)))).unwrap();
        let report = s.run_with(RunOptions::new().clear_alarms_at_end(false)).unwrap();
        (seen.get(), report.end_time)
    });
    let (seen, end) = result.expect("the run hung");
    assert_eq!(seen, 0.0, "the clock waited for the busy agent");
    assert_eq!(end, 10.0);
}

/// Whose clone panics.
struct Fragile;

impl Clone for Fragile {
    fn clone(&self) -> Self {
        panic!("no copies of this")
    }
}

#[test]
fn a_payload_whose_clone_panics_stops_the_run_with_an_error() {
    let mut s = Scheduler::simulated();
    let quiet = |cx: Cx| async move {
        loop {
            cx.recv().await;
        }
    };
    let a = s.spawn(quiet).unwrap();
    let spy = s.spawn(quiet).unwrap();
    s.subscribe(spy, Subscription::new().receiver(a)).unwrap();
    s.send(Envelope::new(Fragile).to(a));
    s.send(Envelope::new(Note(1)).to(a));
    let err = s.run().unwrap_err();
    assert!(matches!(err, Error::PayloadPanicked { .. }), "{err:?}");
    assert!(err.to_string().contains("no copies of this"));
    // The receiver still got both originals, the spy the note's copy; the
    // copy that could not be made is a dead letter: nothing unaccounted.
    assert_eq!(s.inbox_len(a), Ok(2));
    assert_eq!(s.inbox_len(spy), Ok(1));
    let stats = s.stats();
    assert_eq!((stats.messages, stats.deliveries, stats.dead_letters), (2, 3, 1));
}

/// Removes itself on its first update.
struct Leaver;

impl Agent for Leaver {
    async fn update(&mut self, cx: &Cx) {
        cx.remove(cx.id()).unwrap();
    }
}

#[test]
fn the_test_bed_reports_an_agent_that_left_instead_of_panicking() {
    let mut bed = TestBed::new(Leaver).unwrap();
    bed.give(Envelope::new(Note(1))).unwrap();
    bed.update().unwrap();
    assert!(bed.give(Envelope::new(Note(2))).is_err());
    assert!(bed.agent().is_err());
}

#[test]
fn recv_and_sleep_inside_futures_unordered_complete() {
    use futures::stream::{FuturesUnordered, StreamExt};
    let outcome = finishes(|| {
        let mut s = Scheduler::simulated();
        let got = Rc::new(RefCell::new(Vec::new()));
        let g = got.clone();
        let a = s
            .spawn(move |cx| async move {
                // Two waits raced in a combinator that polls only the woken.
                let mut both = FuturesUnordered::new();
                both.push(Box::pin(async {
                    let env = cx.recv().await;
                    format!("mail {}", env.payload::<Note>().unwrap().0)
                }) as Pin<Box<dyn Future<Output = String>>>);
                both.push(Box::pin(async {
                    cx.sleep(2.0).await;
                    format!("woke at {}", cx.now())
                }));
                while let Some(what) = both.next().await {
                    g.borrow_mut().push(what);
                }
            })
            .unwrap();
        s.set_alarm(Alarm::at(1.0, Envelope::new(Note(5)).to(a))).unwrap();
        let report = s.run().unwrap();
        (got.take(), report.end_time, s.contains(a))
    });
    let (got, end, still_there) = outcome.expect("the run hung");
    assert_eq!(got, ["mail 5", "woke at 2"]);
    assert_eq!(end, 2.0);
    assert!(!still_there, "its body returned");
}

/// Counts the inbox at each update, then empties it.
struct Counter(UpdateLog);

impl Agent for Counter {
    async fn update(&mut self, cx: &Cx) {
        self.0.borrow_mut().push(cx.inbox_len());
        while cx.try_recv().is_some() {}
    }
}

#[test]
fn an_agent_in_a_reused_slot_is_updated_once_for_its_mail() {
    let mut s = Scheduler::simulated();
    let a = s.add(Counter(UpdateLog::default())).unwrap();
    s.send(Envelope::new(Note(1)).to(a));
    s.deliver_mail().unwrap(); // a is marked for the next round...
    s.remove(a).unwrap(); // ...and leaves; b takes its slot
    let log = UpdateLog::default();
    let b = s.add(Counter(log.clone())).unwrap();
    s.send(Envelope::new(Note(2)).to(b));
    s.run().unwrap();
    assert_eq!(*log.borrow(), [1]);
}

#[test]
fn a_departed_agents_handle_cannot_reach_the_next_owner_of_its_slot() {
    let mut s = Scheduler::simulated();
    let saved: Rc<RefCell<Option<Cx>>> = Rc::default();
    let keep = saved.clone();
    let a = s
        .spawn(move |cx| async move {
            *keep.borrow_mut() = Some(cx.clone());
            cx.recv().await;
        })
        .unwrap();
    s.remove(a).unwrap();
    let got = UpdateLog::default();
    let b = s.add(Counter(got.clone())).unwrap();
    s.send(Envelope::new(Note(7)).to(b));
    s.deliver_mail().unwrap();
    let old = saved.borrow_mut().take().unwrap();
    assert!(old.try_recv().is_none(), "the old handle sees nothing");
    assert_eq!(old.inbox_len(), 0);
    old.set_keep_awake(true);
    assert!(!old.keep_awake());
    s.run().unwrap();
    assert_eq!(*got.borrow(), [1], "b got its mail, once");
}

#[test]
fn a_poll_for_an_outside_wake_up_leaves_no_update_on_an_empty_inbox() {
    /// Takes its mail, yields to the outside, takes what came meanwhile.
    struct Yielder(UpdateLog);
    impl Agent for Yielder {
        async fn update(&mut self, cx: &Cx) {
            self.0.borrow_mut().push(cx.inbox_len());
            while cx.try_recv().is_some() {}
            YieldNow(false).await;
            while cx.try_recv().is_some() {}
        }
    }
    /// Kept awake: sends one note a round, three in all.
    struct Feeder {
        to: AgentId,
        sent: u32,
    }
    impl Agent for Feeder {
        async fn update(&mut self, cx: &Cx) {
            if self.sent < 3 {
                self.sent += 1;
                cx.send(Envelope::new(Note(self.sent)).to(self.to));
            } else {
                cx.set_keep_awake(false);
            }
        }
    }
    let log = UpdateLog::default();
    let mut s = Scheduler::simulated();
    let y = s.add(Yielder(log.clone())).unwrap();
    let f = s.add(Feeder { to: y, sent: 0 }).unwrap();
    s.set_keep_awake(f, true).unwrap();
    s.run().unwrap();
    assert!(!log.borrow().contains(&0), "updates saw {:?}", log.borrow());
}

#[test]
fn mail_sent_between_runs_keeps_its_order() {
    #[derive(Clone)]
    struct Word(&'static str);
    struct Reader(Rc<RefCell<Vec<&'static str>>>);
    impl Agent for Reader {
        async fn update(&mut self, cx: &Cx) {
            while let Some(e) = cx.try_recv() {
                self.0.borrow_mut().push(e.payload::<Word>().unwrap().0);
            }
        }
    }
    struct Kicker(AgentId);
    impl Agent for Kicker {
        async fn update(&mut self, cx: &Cx) {
            while cx.try_recv().is_some() {}
            cx.send(Envelope::new(Word("first")).to(self.0));
            cx.pause();
        }
    }
    struct Greeter(AgentId);
    impl Agent for Greeter {
        async fn setup(&mut self, cx: &Cx) {
            cx.send(Envelope::new(Word("second")).to(self.0));
        }
        async fn update(&mut self, _cx: &Cx) {}
    }
    let words: Rc<RefCell<Vec<&'static str>>> = Rc::default();
    let mut s = Scheduler::simulated();
    let r = s.add(Reader(words.clone())).unwrap();
    let k = s.add(Kicker(r)).unwrap();
    let other = s.add(Greeter(AgentId(12345))).unwrap();
    s.put_in_inbox(k, Envelope::new(Word("go"))).unwrap();
    s.run().unwrap(); // paused with "first" on its way to r
    s.add(Greeter(r)).unwrap(); // its setup sends "second"
    s.remove(other).unwrap();
    s.run().unwrap();
    assert_eq!(*words.borrow(), ["first", "second"]);
}
