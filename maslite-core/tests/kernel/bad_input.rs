//! Bad input gives an `Error`, never a panic, and leaves the scheduler
//! usable. An agent that panics is reported with `Error::AgentPanicked`.

use maslite_core::{
    Agent, AgentId, Alarm, Cx, Envelope, Error, Phase, RunOptions, Scheduler, Subscription,
};
use std::cell::RefCell;
use std::rc::Rc;

#[derive(Clone, Debug, PartialEq)]
struct Trial;

#[derive(Default)]
struct Counter {
    setups: u32,
    updates: u32,
}

impl Agent for Counter {
    async fn setup(&mut self, _cx: &Cx) {
        self.setups += 1;
    }
    async fn update(&mut self, cx: &Cx) {
        self.updates += 1;
        while cx.try_recv().is_some() {}
    }
}

// ----- ids and agents ---------------------------------------------------

#[test]
fn duplicate_id_is_refused_and_the_first_agent_kept() {
    let mut s = Scheduler::simulated();
    s.add_with_id(AgentId(1), Counter::default()).unwrap();
    s.agent_mut::<Counter>(AgentId(1)).unwrap().updates = 42;
    assert_eq!(
        s.add_with_id(AgentId(1), Counter::default()),
        Err(Error::DuplicateAgent(AgentId(1)))
    );
    assert_eq!(s.len(), 1);
    let first = s.agent::<Counter>(AgentId(1)).unwrap();
    assert_eq!((first.setups, first.updates), (1, 42), "the first agent is untouched");
}

/// The add is refused, and the run fails: on many partitions two agents may
/// claim one id in the same step unaware of each other, so the runtime can
/// only fail the run at the step's end; one kernel does the same, so that a
/// program has one outcome (README, "Where it differs").
#[test]
fn duplicate_id_from_inside_an_agent_is_refused_and_fails_the_run() {
    struct Cloner {
        result: Option<Result<AgentId, Error>>,
    }
    impl Agent for Cloner {
        async fn update(&mut self, cx: &Cx) {
            while cx.try_recv().is_some() {
                self.result = Some(cx.add_with_id(cx.id(), Counter::default()));
            }
        }
    }
    let mut s = Scheduler::simulated();
    let c = s.add_with_id(AgentId(3), Cloner { result: None }).unwrap();
    s.send(Envelope::new(Trial).to(c));
    assert_eq!(s.run(), Err(Error::DuplicateAgent(AgentId(3))));
    assert_eq!(s.agent::<Cloner>(c).unwrap().result, Some(Err(Error::DuplicateAgent(AgentId(3)))));
    assert_eq!(s.len(), 1);
    // The scheduler stays usable: the next run goes on.
    s.send(Envelope::new(Trial).to(c));
    assert_eq!(s.run(), Err(Error::DuplicateAgent(AgentId(3))), "the same call, the same outcome");
}

#[test]
fn the_outside_id_is_reserved() {
    let mut s = Scheduler::simulated();
    assert_eq!(
        s.add_with_id(AgentId::OUTSIDE, Counter::default()),
        Err(Error::ReservedId(AgentId::OUTSIDE))
    );
    assert!(s.is_empty());
}

#[test]
fn removing_an_unknown_agent_is_an_error() {
    let mut s = Scheduler::simulated();
    assert_eq!(s.remove(AgentId(42)), Err(Error::UnknownAgent(AgentId(42))));
    let a = s.add(Counter::default()).unwrap();
    s.remove(a).unwrap();
    assert_eq!(s.remove(a), Err(Error::UnknownAgent(a)), "removed twice");
}

#[test]
fn removing_an_unknown_agent_from_inside_is_an_error() {
    struct Remover {
        result: Option<Result<(), Error>>,
    }
    impl Agent for Remover {
        async fn update(&mut self, cx: &Cx) {
            while cx.try_recv().is_some() {
                self.result = Some(cx.remove(AgentId(999)));
            }
        }
    }
    let mut s = Scheduler::simulated();
    let r = s.add(Remover { result: None }).unwrap();
    s.send(Envelope::new(Trial).to(r));
    s.run().unwrap();
    assert_eq!(s.agent::<Remover>(r).unwrap().result, Some(Err(Error::UnknownAgent(AgentId(999)))));
}

#[test]
fn unknown_agent_cannot_be_inspected_or_mailed_directly() {
    let mut s = Scheduler::simulated();
    assert!(matches!(s.agent::<Counter>(AgentId(5)), Err(Error::UnknownAgent(AgentId(5)))));
    assert_eq!(s.inbox_len(AgentId(5)), Err(Error::UnknownAgent(AgentId(5))));
    assert_eq!(
        s.put_in_inbox(AgentId(5), Envelope::new(Trial)),
        Err(Error::UnknownAgent(AgentId(5)))
    );
    assert_eq!(s.set_keep_awake(AgentId(5), true), Err(Error::UnknownAgent(AgentId(5))));
}

#[test]
fn agent_read_as_the_wrong_type_is_an_error() {
    struct Other;
    impl Agent for Other {
        async fn update(&mut self, _cx: &Cx) {}
    }
    let mut s = Scheduler::simulated();
    let a = s.add(Counter::default()).unwrap();
    match s.agent::<Other>(a) {
        Err(Error::AgentTypeMismatch { agent, .. }) => assert_eq!(agent, a),
        Err(e) => panic!("wrong error {e:?}"),
        Ok(_) => panic!("read a Counter as Other"),
    };
}

// ----- subscriptions ------------------------------------------------------

#[test]
fn subscription_naming_no_field_is_an_error() {
    let mut s = Scheduler::simulated();
    let a = s.add(Counter::default()).unwrap();
    assert_eq!(
        s.subscribe(a, Subscription::new()),
        Err(Error::InvalidSubscription { subscriber: a, named: 0 })
    );
    assert_eq!(
        s.unsubscribe(a, &Subscription::new()),
        Err(Error::InvalidSubscription { subscriber: a, named: 0 })
    );
    assert!(s.subscriptions(a).is_empty());
}

#[test]
fn subscription_naming_all_three_fields_is_an_error() {
    let mut s = Scheduler::simulated();
    let a = s.add(Counter::default()).unwrap();
    let b = s.add(Counter::default()).unwrap();
    let all = Subscription::new().sender(a).receiver(b).topic("fish");
    assert_eq!(
        s.subscribe(a, all.clone()),
        Err(Error::InvalidSubscription { subscriber: a, named: 3 })
    );
    assert!(s.subscriptions(a).is_empty());
    assert!(s.subscribers(&all).is_empty());
}

#[test]
fn invalid_subscription_from_inside_an_agent_is_an_error() {
    #[derive(Default)]
    struct Greedy {
        results: Vec<Result<(), Error>>,
    }
    impl Agent for Greedy {
        async fn setup(&mut self, cx: &Cx) {
            self.results.push(cx.subscribe(Subscription::new()));
            self.results.push(
                cx.subscribe(Subscription::new().sender(cx.id()).receiver(cx.id()).topic("x")),
            );
            self.results.push(cx.unsubscribe(&Subscription::new()));
        }
        async fn update(&mut self, _cx: &Cx) {}
    }
    let mut s = Scheduler::simulated();
    let g = s.add(Greedy::default()).unwrap();
    assert_eq!(
        s.agent::<Greedy>(g).unwrap().results,
        [
            Err(Error::InvalidSubscription { subscriber: g, named: 0 }),
            Err(Error::InvalidSubscription { subscriber: g, named: 3 }),
            Err(Error::InvalidSubscription { subscriber: g, named: 0 }),
        ]
    );
    assert!(s.subscriptions(g).is_empty());
}

#[test]
fn topic_equal_to_an_agent_id_is_an_error() {
    let mut s = Scheduler::simulated();
    let a = s.add_with_id(AgentId(1), Counter::default()).unwrap();
    s.add_with_id(AgentId(2), Counter::default()).unwrap();
    assert_eq!(
        s.subscribe(a, Subscription::new().topic("2")),
        Err(Error::TopicIsAgentId { topic: "2".into(), agent: AgentId(2) })
    );
    assert_eq!(
        s.subscribe(a, Subscription::new().receiver(a).topic(String::from("1"))),
        Err(Error::TopicIsAgentId { topic: "1".into(), agent: AgentId(1) })
    );
    assert!(s.subscriptions(a).is_empty());
}

#[test]
fn unknown_subscriber_is_an_error() {
    let mut s = Scheduler::simulated();
    assert_eq!(
        s.subscribe(AgentId(8), Subscription::new().topic("news")),
        Err(Error::UnknownAgent(AgentId(8)))
    );
    assert!(s.subscribers(&Subscription::new().topic("news")).is_empty());
}

// ----- messages ---------------------------------------------------------

#[test]
fn direct_message_without_a_receiver_is_an_error() {
    assert_eq!(Envelope::new(Trial).direct().err(), Some(Error::DirectWithoutReceiver));
    let mut env = Envelope::new(Trial).to(AgentId(2)).direct().unwrap();
    assert_eq!(env.set_receiver(None), Err(Error::DirectWithoutReceiver));
    assert_eq!(env.receiver(), Some(AgentId(2)));
}

#[test]
fn replying_to_a_broadcast_is_an_error() {
    let mut env = Envelope::new(Trial).from(AgentId(1));
    assert!(env.reply().is_err());
    assert_eq!((env.sender(), env.receiver()), (AgentId(1), None), "unchanged");
}

#[test]
fn wrong_payload_type_is_an_error() {
    let mut env = Envelope::new(String::from("text"));
    assert_eq!(
        env.payload::<u32>(),
        Err(Error::WrongPayload { expected: "u32", found: "alloc::string::String" })
    );
    assert!(matches!(env.payload_mut::<Trial>(), Err(Error::WrongPayload { .. })));
    assert!(!env.is::<u32>());
    let env = env.downcast::<u32>().unwrap_err();
    assert!(matches!(env.clone().into_payload::<u8>(), Err(Error::WrongPayload { .. })));
    assert_eq!(env.into_payload::<String>(), Ok("text".to_string()), "the payload survives");
}

#[test]
fn wrong_payload_type_inside_an_agent_is_an_error_not_a_crash() {
    #[derive(Default)]
    struct Picky {
        errors: u32,
        ok: u32,
    }
    impl Agent for Picky {
        async fn update(&mut self, cx: &Cx) {
            while let Some(env) = cx.try_recv() {
                match env.payload::<u64>() {
                    Ok(_) => self.ok += 1,
                    Err(Error::WrongPayload { .. }) => self.errors += 1,
                    Err(e) => panic!("unexpected {e}"),
                }
            }
        }
    }
    let mut s = Scheduler::simulated();
    let p = s.add(Picky::default()).unwrap();
    s.send(Envelope::new(1u64).to(p));
    s.send(Envelope::new("one").to(p));
    s.run().unwrap();
    let p = s.agent::<Picky>(p).unwrap();
    assert_eq!((p.ok, p.errors), (1, 1));
}

// ----- alarms and times -------------------------------------------------

#[test]
fn absolute_alarm_in_the_past_is_an_error() {
    let mut s = Scheduler::simulated();
    let a = s.add(Counter::default()).unwrap();
    s.run_with(RunOptions::new().seconds(3.0).pause_if_idle(false)).unwrap();
    assert_eq!(s.now(), 3.0);
    assert_eq!(
        s.set_alarm(Alarm::at(1.0, Envelope::new(Trial).to(a))),
        Err(Error::AlarmInPast { at: 1.0, now: 3.0 })
    );
    assert!(s.alarms(None).is_empty());
}

#[test]
fn absolute_alarm_in_the_past_from_inside_an_agent_is_an_error() {
    struct Late {
        result: Option<Result<(), Error>>,
    }
    impl Agent for Late {
        async fn update(&mut self, cx: &Cx) {
            while cx.try_recv().is_some() {
                self.result = Some(cx.set_alarm(Alarm::at(cx.now() - 0.5, Envelope::new(Trial))));
            }
        }
    }
    let mut s = Scheduler::simulated();
    let late = s.add(Late { result: None }).unwrap();
    s.set_alarm(Alarm::at(2.0, Envelope::new(Trial).to(late))).unwrap();
    s.run().unwrap();
    assert_eq!(
        s.agent::<Late>(late).unwrap().result,
        Some(Err(Error::AlarmInPast { at: 1.5, now: 2.0 }))
    );
}

#[test]
fn absolute_alarm_in_the_past_on_the_real_time_clock_is_an_error() {
    let mut s = Scheduler::real_time();
    // Wall time passes after the scheduler is made; no run ticks its clock.
    std::thread::sleep(std::time::Duration::from_millis(100));
    let past = s.now() - 0.05;
    assert!(
        matches!(
            s.set_alarm(Alarm::at(past, Envelope::new(Trial))),
            Err(Error::AlarmInPast { at, .. }) if at == past
        ),
        "an alarm 50 ms in the past was accepted"
    );
}

#[test]
fn negative_or_non_finite_times_are_errors() {
    let mut s = Scheduler::simulated();
    assert_eq!(
        s.set_alarm(Alarm::after(-1.0, Envelope::new(Trial))),
        Err(Error::InvalidTime(-1.0))
    );
    assert!(matches!(
        s.set_alarm(Alarm::after(f64::NAN, Envelope::new(Trial))),
        Err(Error::InvalidTime(t)) if t.is_nan()
    ));
    assert_eq!(
        s.set_alarm(Alarm::at(f64::INFINITY, Envelope::new(Trial))),
        Err(Error::InvalidTime(f64::INFINITY))
    );
    assert!(s.alarms(None).is_empty());
    assert_eq!(s.run_with(RunOptions::new().seconds(-2.0)), Err(Error::InvalidTime(-2.0)));
    assert_eq!(s.now(), 0.0);
}

// ----- panics -------------------------------------------------------------

/// Panics in the phase named by `when`.
struct Fragile {
    when: Phase,
    updates: u32,
}

impl Agent for Fragile {
    async fn setup(&mut self, _cx: &Cx) {
        if self.when == Phase::Setup {
            panic!("broke in setup");
        }
    }
    async fn update(&mut self, cx: &Cx) {
        self.updates += 1;
        while cx.try_recv().is_some() {}
        if self.when == Phase::Update {
            panic!("broke in update {}", self.updates);
        }
    }
    async fn teardown(&mut self, _cx: &Cx) {
        if self.when == Phase::Teardown {
            panic!("broke in teardown");
        }
    }
}

#[test]
fn panic_in_setup_is_reported_and_the_agent_never_joins() {
    let mut s = Scheduler::simulated();
    let good = s.add(Counter::default()).unwrap();
    let result = s.add_with_id(AgentId(66), Fragile { when: Phase::Setup, updates: 0 });
    assert_eq!(
        result,
        Err(Error::AgentPanicked {
            agent: AgentId(66),
            phase: Phase::Setup,
            message: "broke in setup".into()
        })
    );
    assert!(!s.contains(AgentId(66)));
    assert_eq!(s.len(), 1);
    assert_eq!(s.agent_ids(), [good]);
    // Still usable, and the id is free again.
    s.send(Envelope::new(Trial).to(good));
    s.run().unwrap();
    assert_eq!(s.agent::<Counter>(good).unwrap().updates, 1);
    s.add_with_id(AgentId(66), Counter::default()).unwrap();
}

#[test]
fn panic_in_update_stops_the_run_and_the_scheduler_stays_usable() {
    let mut s = Scheduler::simulated();
    let fragile = s.add(Fragile { when: Phase::Update, updates: 0 }).unwrap();
    let good = s.add(Counter::default()).unwrap();
    s.send(Envelope::new(Trial).to(fragile));
    s.send(Envelope::new(Trial).to(good));

    let err = s.run().unwrap_err();
    assert_eq!(
        err,
        Error::AgentPanicked {
            agent: fragile,
            phase: Phase::Update,
            message: "broke in update 1".into()
        }
    );
    assert!(err.to_string().contains(&fragile.to_string()), "{err}");

    // Others can be inspected; the failed agent too.
    assert_eq!(s.agent::<Counter>(good).unwrap().updates, 0, "the round stopped at the panic");
    assert_eq!(s.agent::<Fragile>(fragile).unwrap().updates, 1);

    // Run again: the rest of the round goes on; the failed agent gets no more
    // mail.
    s.send(Envelope::new(Trial).to(fragile));
    let report = s.run().unwrap();
    assert_eq!(s.agent::<Counter>(good).unwrap().updates, 1);
    assert_eq!(s.agent::<Fragile>(fragile).unwrap().updates, 1);
    assert_eq!(report.stats.dead_letters, 1);

    // And it can be removed.
    s.remove(fragile).unwrap();
    assert_eq!(s.agent_ids(), [good]);
}

#[test]
fn panic_in_teardown_is_reported_and_the_agent_is_gone() {
    let mut s = Scheduler::simulated();
    let good = s.add(Counter::default()).unwrap();
    let fragile = s.add(Fragile { when: Phase::Teardown, updates: 0 }).unwrap();
    assert_eq!(
        s.remove(fragile),
        Err(Error::AgentPanicked {
            agent: fragile,
            phase: Phase::Teardown,
            message: "broke in teardown".into()
        })
    );
    assert!(!s.contains(fragile));
    assert_eq!(s.agent_ids(), [good]);
    assert_eq!(s.len(), 1, "len() agrees with agent_ids()");
    s.send(Envelope::new(Trial).to(good));
    s.run().unwrap();
    assert_eq!(s.agent::<Counter>(good).unwrap().updates, 1);
}

#[test]
fn panic_in_teardown_of_an_agent_removed_by_another_stops_the_run() {
    struct Remover {
        victim: AgentId,
    }
    impl Agent for Remover {
        async fn update(&mut self, cx: &Cx) {
            while cx.try_recv().is_some() {
                cx.remove(self.victim).unwrap();
            }
        }
    }
    let mut s = Scheduler::simulated();
    let fragile = s.add(Fragile { when: Phase::Teardown, updates: 0 }).unwrap();
    let remover = s.add(Remover { victim: fragile }).unwrap();
    s.send(Envelope::new(Trial).to(remover));
    assert!(matches!(
        s.run(),
        Err(Error::AgentPanicked { agent, phase: Phase::Teardown, .. }) if agent == fragile
    ));
    assert!(!s.contains(fragile));
    assert!(s.contains(remover));
    s.run().unwrap();
}

#[test]
fn panic_in_an_async_body_is_reported_as_its_process() {
    let mut s = Scheduler::simulated();
    let p = s
        .spawn(|cx| async move {
            cx.sleep(1.5).await;
            panic!("process broke at {}", cx.now());
        })
        .unwrap();
    assert_eq!(
        s.run(),
        Err(Error::AgentPanicked {
            agent: p,
            phase: Phase::Process,
            message: "process broke at 1.5".into()
        })
    );
    assert_eq!(s.now(), 1.5);
    // Usable afterwards.
    let c = s.add(Counter::default()).unwrap();
    s.send(Envelope::new(Trial).to(c));
    s.run().unwrap();
    assert_eq!(s.agent::<Counter>(c).unwrap().updates, 1);
}

#[test]
fn panic_in_an_async_body_before_its_first_wait_is_reported_by_spawn() {
    // The first poll of an async body runs inside `spawn`, as `setup` runs
    // inside `add`: an agent whose start panicked never joins.
    let mut s = Scheduler::simulated();
    let good = s.add(Counter::default()).unwrap();
    let result = s.spawn_with_id(AgentId(77), |_cx| async move {
        panic!("broke at once");
    });
    assert_eq!(
        result,
        Err(Error::AgentPanicked {
            agent: AgentId(77),
            phase: Phase::Process,
            message: "broke at once".into()
        })
    );
    assert!(!s.contains(AgentId(77)));
    assert_eq!(s.agent_ids(), [good]);
    assert_eq!(s.len(), 1);
}

#[test]
fn panic_in_setup_of_an_agent_added_from_inside_stops_the_run() {
    struct Parent {
        child: Option<AgentId>,
    }
    impl Agent for Parent {
        async fn update(&mut self, cx: &Cx) {
            while cx.try_recv().is_some() {
                self.child = Some(cx.add(Fragile { when: Phase::Setup, updates: 0 }).unwrap());
            }
        }
    }
    let mut s = Scheduler::simulated();
    let parent = s.add(Parent { child: None }).unwrap();
    s.send(Envelope::new(Trial).to(parent));
    let err = s.run().unwrap_err();
    let child = s.agent::<Parent>(parent).unwrap().child.unwrap();
    assert_eq!(
        err,
        Error::AgentPanicked {
            agent: child,
            phase: Phase::Setup,
            message: "broke in setup".into()
        }
    );
    assert!(!s.contains(child));
    assert_eq!(s.len(), 1);
}

#[test]
fn non_text_panic_payload_is_still_reported() {
    struct Weird;
    impl Agent for Weird {
        async fn update(&mut self, _cx: &Cx) {
            std::panic::panic_any(17u8);
        }
    }
    let mut s = Scheduler::simulated();
    let w = s.add(Weird).unwrap();
    s.send(Envelope::new(Trial).to(w));
    assert!(matches!(
        s.run(),
        Err(Error::AgentPanicked { agent, phase: Phase::Update, .. }) if agent == w
    ));
}

#[test]
fn panicking_agent_leaves_shared_state_usable() {
    // The panic unwinds through the agent while it holds the kernel's
    // handle; the kernel must not be left with borrowed state.
    type Seen = Rc<RefCell<Vec<u32>>>;
    struct PanicsAfterSending {
        to: AgentId,
    }
    impl Agent for PanicsAfterSending {
        async fn update(&mut self, cx: &Cx) {
            while cx.try_recv().is_some() {}
            cx.send(Envelope::new(1u32).to(self.to));
            cx.subscribe(Subscription::new().topic("anything")).unwrap();
            panic!("after sending");
        }
    }
    struct Listener {
        seen: Seen,
    }
    impl Agent for Listener {
        async fn update(&mut self, cx: &Cx) {
            while let Some(env) = cx.try_recv() {
                self.seen.borrow_mut().push(*env.payload::<u32>().unwrap());
            }
        }
    }
    let seen = Seen::default();
    let mut s = Scheduler::simulated();
    let listener = s.add(Listener { seen: seen.clone() }).unwrap();
    let bad = s.add(PanicsAfterSending { to: listener }).unwrap();
    s.send(Envelope::new(Trial).to(bad));
    assert!(s.run().is_err());
    assert!(s.subscriptions(bad).is_empty(), "a failed agent's subscriptions go");
    s.send(Envelope::new(2u32).to(listener));
    s.run().unwrap();
    // What the agent sent before panicking is delivered with the next run.
    assert_eq!(*seen.borrow(), [1, 2]);
}
