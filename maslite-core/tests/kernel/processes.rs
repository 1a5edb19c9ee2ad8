//! Processes as SimPy users write them: mail or a timeout, selective
//! receive, resources, joins, interrupts, results read after the run.

use futures::future::{select, Either};
use maslite_core::{AgentId, Cx, Envelope, Resource, Scheduler, StopReason};
use std::cell::RefCell;
use std::rc::Rc;

type Log = Rc<RefCell<Vec<String>>>;

fn say(log: &Log, line: String) {
    log.borrow_mut().push(line);
}

#[test]
fn recv_timeout_gives_mail_or_none_on_the_kernels_clock() {
    let log = Log::default();
    let mut s = Scheduler::simulated();
    let l = log.clone();
    let clerk = s
        .spawn(move |cx| async move {
            for _ in 0..3 {
                let got = cx.recv_timeout(2.0).await;
                say(&l, format!("t={} {:?}", cx.now(), got.map(|e| *e.payload::<u32>().unwrap())));
            }
        })
        .unwrap();
    // At 1 (inside the first wait), at 4 (exactly when the second ends:
    // mail that comes as the wait ends wins).
    s.set_alarm(maslite_core::Alarm::at(1.0, Envelope::new(1u32).to(clerk))).unwrap();
    s.set_alarm(maslite_core::Alarm::at(3.0, Envelope::new(3u32).to(clerk))).unwrap();
    s.run().unwrap();
    assert_eq!(*log.borrow(), ["t=1 Some(1)", "t=3 Some(3)", "t=5 None"]);
    assert!(s.is_empty(), "the clerk ended");
}

#[test]
fn recv_where_takes_the_first_match_and_leaves_the_rest_in_order() {
    let log = Log::default();
    let mut s = Scheduler::simulated();
    let l = log.clone();
    let car = s
        .spawn(move |cx| async move {
            let grant = cx.recv_where(|e| e.topic() == "grant").await;
            say(&l, format!("grant {}", grant.payload::<u32>().unwrap()));
            while let Some(e) = cx.try_recv() {
                say(&l, format!("then {}", e.payload::<u32>().unwrap()));
            }
        })
        .unwrap();
    for (n, topic) in [(1u32, "news"), (2, "news"), (3, "grant"), (4, "news")] {
        s.send(Envelope::new(n).to(car).topic_is(topic));
    }
    s.run().unwrap();
    assert_eq!(*log.borrow(), ["grant 3", "then 1", "then 2", "then 4"]);
}

/// Holds a unit of `res` for `hold` seconds from `at`, logging.
fn user(
    log: &Log,
    name: &'static str,
    res: AgentId,
    at: f64,
    hold: f64,
    priority: i64,
) -> impl FnOnce(Cx) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> {
    let log = log.clone();
    move |cx| {
        Box::pin(async move {
            cx.sleep_until(at).await;
            let grant = cx.request_with_priority(res, priority).await;
            say(&log, format!("{name} gets it at {}", cx.now()));
            cx.sleep(hold).await;
            drop(grant);
        })
    }
}

#[test]
fn a_resource_serves_by_priority_then_in_request_order_at_the_time_asked() {
    let log = Log::default();
    let mut s = Scheduler::simulated();
    let res = s.add(Resource::new(2)).unwrap();
    s.spawn(user(&log, "a", res, 0.0, 10.0, 0)).unwrap();
    s.spawn(user(&log, "b", res, 0.0, 5.0, 0)).unwrap();
    s.spawn(user(&log, "c", res, 1.0, 1.0, 5)).unwrap();
    s.spawn(user(&log, "d", res, 2.0, 1.0, 5)).unwrap();
    s.spawn(user(&log, "e", res, 3.0, 1.0, -1)).unwrap();
    s.run().unwrap();
    assert_eq!(
        *log.borrow(),
        ["a gets it at 0", "b gets it at 0", "e gets it at 5", "c gets it at 6", "d gets it at 7"]
    );
    let r = s.agent::<Resource>(res).unwrap();
    assert_eq!((r.in_use(), r.queued(), r.granted()), (0, 0, 5));
}

/// A request given up at the very time its grant is made: the grant crosses
/// the cancel, is dropped where it arrives, and the unit comes back.
#[test]
fn a_request_given_up_as_it_is_granted_leaks_nothing_and_leaves_no_mail() {
    let log = Log::default();
    let mut s = Scheduler::simulated();
    let res = s.add(Resource::new(1)).unwrap();
    s.spawn(user(&log, "holder", res, 0.0, 1.0, 0)).unwrap();
    let l = log.clone();
    let quitter = s
        .spawn(move |cx| async move {
            match select(cx.request(res), cx.sleep(1.0)).await {
                Either::Left(_) => say(&l, format!("served at {}", cx.now())),
                Either::Right(_) => say(&l, format!("gave up at {}", cx.now())),
            }
            cx.recv().await; // stays, to show its inbox
        })
        .unwrap();
    s.spawn(user(&log, "late", res, 1.0, 1.0, 0)).unwrap();
    s.run().unwrap();
    assert_eq!(*log.borrow(), ["holder gets it at 0", "gave up at 1", "late gets it at 1"]);
    assert_eq!(s.inbox_len(quitter), Ok(0), "the crossed grant was dropped");
    let r = s.agent::<Resource>(res).unwrap();
    assert_eq!((r.in_use(), r.queued()), (0, 0));
}

#[test]
fn joined_processes_give_their_values_and_outside_ones_keep_them() {
    let mut s = Scheduler::simulated();
    let boss = s
        .process(|cx| async move {
            let kids: Vec<_> = (1..=3u32)
                .map(|k| {
                    cx.process(move |cx| async move {
                        cx.sleep(f64::from(4 - k)).await;
                        k * 10
                    })
                    .unwrap()
                })
                .collect();
            cx.send(Envelope::new("not a value").to(cx.id()));
            let mut got = Vec::new();
            for kid in &kids {
                got.push((kid.join(&cx).await, cx.now()));
            }
            let other = cx.try_recv().map(|e| *e.payload::<&str>().unwrap());
            (got, other)
        })
        .unwrap();
    s.run().unwrap();
    assert_eq!(s.take_result::<u8>(boss), None, "not a u8");
    let (got, other) = s.take_result::<(Vec<(u32, f64)>, Option<&str>)>(boss).unwrap();
    assert_eq!(got, [(10, 3.0), (20, 3.0), (30, 3.0)]);
    assert_eq!(other, Some("not a value"), "joins left other mail queued");
    assert!(s.take_result::<(Vec<(u32, f64)>, Option<&str>)>(boss).is_none(), "taken once");
}

#[test]
fn an_interrupt_ends_an_interruptible_wait_at_that_time_only() {
    let log = Log::default();
    let mut s = Scheduler::simulated();
    let l = log.clone();
    let machine = s
        .spawn(move |cx| async move {
            // Not interruptible: the interrupt waits in the inbox.
            cx.sleep(1.0).await;
            match cx.interruptible(cx.sleep(10.0)).await {
                Ok(()) => say(&l, "worked".into()),
                Err(i) => say(&l, format!("broke at {} from {}", cx.now(), i.0.sender())),
            }
            match cx.interruptible(cx.recv()).await {
                Ok(e) => say(&l, format!("mail {}", e.payload::<&str>().unwrap())),
                Err(_) => say(&l, "broke again".into()),
            }
        })
        .unwrap();
    let mechanic = s
        .spawn(move |cx| async move {
            cx.sleep(0.5).await;
            cx.interrupt(machine, "early");
            cx.sleep(0.5).await;
            cx.send(Envelope::new("fixed").to(machine));
        })
        .unwrap();
    s.run().unwrap();
    // The interrupt sent at 0.5 waited in the inbox: the interruptible
    // sleep from 1 ends at once.
    assert_eq!(*log.borrow(), [format!("broke at 1 from {mechanic}"), "mail fixed".to_string()]);
}

/// An agent waiting on something the kernel does not drive when a run
/// stops is listed in the report (and named in a warning).
#[test]
fn the_report_lists_agents_waiting_outside_the_kernel() {
    let mut s = Scheduler::simulated();
    let (tx, rx) = futures::channel::oneshot::channel::<()>();
    let stuck = s
        .spawn(move |cx| async move {
            cx.recv().await;
            let _ = rx.await; // nothing in the kernel will ever wake this
        })
        .unwrap();
    let pauser = s
        .spawn(|cx| async move {
            cx.recv().await;
            cx.pause();
            cx.recv().await;
        })
        .unwrap();
    s.send(Envelope::new("go").to(stuck));
    s.send(Envelope::new("go").to(pauser));
    let report = s.run().unwrap();
    assert_eq!(report.reason, StopReason::Paused);
    assert_eq!(report.waiting_outside, [stuck]);
    // Woken from outside, it ends: nothing waits outside any more.
    tx.send(()).unwrap();
    let report = s.run().unwrap();
    assert!(report.waiting_outside.is_empty(), "{report:?}");
    assert!(!s.contains(stuck));
}
