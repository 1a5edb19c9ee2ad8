//! Alarms and clocks: maslite's clock facts, setting, listing and clearing
//! alarms, and the real-time clock's idle rules.

use maslite_core::{
    Agent, AgentId, Alarm, AlarmInfo, Cx, Envelope, RunOptions, Scheduler, StopReason, Subscription,
};
use std::time::{Duration, Instant};

#[derive(Clone, Debug, PartialEq)]
struct Trial;

/// Records (clock, topic, sender) of everything it receives.
#[derive(Default)]
struct Diary {
    entries: Vec<(f64, String, AgentId)>,
}

impl Agent for Diary {
    async fn update(&mut self, cx: &Cx) {
        while let Some(env) = cx.try_recv() {
            self.entries.push((cx.now(), env.topic().to_string(), env.sender()));
        }
    }
}

fn diary_times(s: &Scheduler, id: AgentId) -> Vec<f64> {
    s.agent::<Diary>(id).unwrap().entries.iter().map(|e| e.0).collect()
}

/// maslite's way: an agent sets a required alarm for itself.
fn alarm_to_self(s: &mut Scheduler, a: AgentId, delay: f64, topic: &'static str) {
    let env = Envelope::new(Trial).from(a).to(a).topic_is(topic);
    s.set_alarm(Alarm::after(delay, env).keep_alive()).unwrap();
}

fn with_alarms_at_1_1p5_and_3() -> (Scheduler, AgentId) {
    let mut s = Scheduler::simulated();
    let a = s.add(Diary::default()).unwrap();
    alarm_to_self(&mut s, a, 1.0, "1");
    alarm_to_self(&mut s, a, 1.5, "2");
    alarm_to_self(&mut s, a, 3.0, "3");
    (s, a)
}

// ----- maslite's facts ---------------------------------------------------

#[test]
fn simulated_run_ends_at_the_last_alarm_with_none_left() {
    let (mut s, a) = with_alarms_at_1_1p5_and_3();
    assert_eq!(s.now(), 0.0);
    let report = s.run().unwrap();
    assert_eq!(report.end_time, 3.0);
    assert_eq!(s.now(), 3.0);
    assert!(s.alarms(Some(a)).is_empty());
    assert_eq!(diary_times(&s, a), [1.0, 1.5, 3.0]);
    assert_eq!(report.stats.alarms_fired, 3);
}

#[test]
fn run_for_two_seconds_ends_at_exactly_two_with_the_later_alarm_still_listed() {
    let (mut s, a) = with_alarms_at_1_1p5_and_3();
    let report = s.run_with(RunOptions::new().seconds(2.0).clear_alarms_at_end(false)).unwrap();
    assert_eq!(report.reason, StopReason::TimeLimit);
    assert_eq!(report.end_time, 2.0);
    assert_eq!(s.now(), 2.0);
    assert_eq!(
        s.alarms(Some(a)),
        [AlarmInfo {
            at: 3.0,
            sender: a,
            receiver: Some(a),
            topic: "3".into(),
            ignore_if_idle: false,
        }]
    );
    assert_eq!(diary_times(&s, a), [1.0, 1.5]);
}

#[test]
fn run_for_two_seconds_clears_the_later_alarm_by_default() {
    let (mut s, a) = with_alarms_at_1_1p5_and_3();
    let report = s.run_with(RunOptions::new().seconds(2.0)).unwrap();
    assert_eq!(report.end_time, 2.0);
    assert!(s.alarms(None).is_empty(), "cleared at the end of the run");
    // The cleared alarm never fires.
    let report = s.run().unwrap();
    assert_eq!(report.end_time, 2.0);
    assert_eq!(diary_times(&s, a), [1.0, 1.5]);
}

#[test]
fn successive_two_second_runs_land_on_even_times_then_run_ends_at_the_last_alarm() {
    let mut s = Scheduler::simulated();
    let a = s.add(Diary::default()).unwrap();
    for t in (3..22).step_by(3) {
        let env = Envelope::new(Trial).from(a).to(a).topic_is(format!("{t}_msg"));
        s.set_alarm(Alarm::after(f64::from(t), env).keep_alive()).unwrap();
    }
    for t in (2..22).step_by(2) {
        let report = s.run_with(RunOptions::new().seconds(2.0).clear_alarms_at_end(false)).unwrap();
        assert_eq!(s.now(), f64::from(t));
        assert_eq!(report.start_time, f64::from(t - 2));
        assert_eq!(report.end_time, f64::from(t));
    }
    assert_eq!(diary_times(&s, a), [3.0, 6.0, 9.0, 12.0, 15.0, 18.0]);
    let report = s.run().unwrap();
    assert_eq!(report.end_time, 21.0);
    assert_eq!(diary_times(&s, a), [3.0, 6.0, 9.0, 12.0, 15.0, 18.0, 21.0]);
}

// ----- setting alarms ------------------------------------------------------

#[test]
fn relative_alarm_goes_off_its_delay_after_now() {
    let mut s = Scheduler::simulated();
    let a = s.add(Diary::default()).unwrap();
    s.run_with(RunOptions::new().seconds(2.0).pause_if_idle(false)).unwrap();
    assert_eq!(s.now(), 2.0);
    s.set_alarm(Alarm::after(1.5, Envelope::new(Trial).to(a))).unwrap();
    assert_eq!(s.alarms(Some(a))[0].at, 3.5);
    s.run().unwrap();
    assert_eq!(diary_times(&s, a), [3.5]);
}

#[test]
fn absolute_alarm_goes_off_at_its_time() {
    let mut s = Scheduler::simulated();
    let a = s.add(Diary::default()).unwrap();
    s.run_with(RunOptions::new().seconds(2.0).pause_if_idle(false)).unwrap();
    s.set_alarm(Alarm::at(5.0, Envelope::new(Trial).to(a))).unwrap();
    s.set_alarm(Alarm::at(2.0, Envelope::new(Trial).to(a))).unwrap(); // now is not the past
    assert_eq!(s.alarms(Some(a)).iter().map(|i| i.at).collect::<Vec<_>>(), [2.0, 5.0]);
    s.run().unwrap();
    assert_eq!(diary_times(&s, a), [2.0, 5.0]);
}

#[test]
fn alarm_receiver_need_not_be_the_setter() {
    struct Setter {
        for_whom: AgentId,
    }
    impl Agent for Setter {
        async fn update(&mut self, cx: &Cx) {
            while cx.try_recv().is_some() {
                let env = Envelope::new(Trial).to(self.for_whom).topic_is("wake up");
                cx.set_alarm(Alarm::after(4.0, env)).unwrap();
            }
        }
    }
    let mut s = Scheduler::simulated();
    let sleeper = s.add(Diary::default()).unwrap();
    let setter = s.add(Setter { for_whom: sleeper }).unwrap();
    s.send(Envelope::new(Trial).to(setter));
    s.run().unwrap();
    assert_eq!(s.agent::<Diary>(sleeper).unwrap().entries, [(4.0, "wake up".to_string(), setter)]);
}

#[test]
fn alarm_set_by_an_agent_can_name_another_sender() {
    struct Forger;
    impl Agent for Forger {
        async fn update(&mut self, cx: &Cx) {
            while let Some(env) = cx.try_recv() {
                let alarm = Envelope::new(Trial).from(AgentId(77)).to(env.sender());
                cx.set_alarm(Alarm::after(1.0, alarm)).unwrap();
            }
        }
    }
    let mut s = Scheduler::simulated();
    let diary = s.add(Diary::default()).unwrap();
    let forger = s.add(Forger).unwrap();
    s.send(Envelope::new(Trial).from(diary).to(forger));
    s.run().unwrap();
    assert_eq!(s.agent::<Diary>(diary).unwrap().entries[0].2, AgentId(77));
}

#[test]
fn alarms_for_the_same_time_fire_in_the_order_set() {
    let mut s = Scheduler::simulated();
    let a = s.add(Diary::default()).unwrap();
    for topic in ["first", "second", "third"] {
        s.set_alarm(Alarm::at(1.0, Envelope::new(Trial).to(a).topic_is(topic))).unwrap();
    }
    s.set_alarm(Alarm::at(0.5, Envelope::new(Trial).to(a).topic_is("earliest"))).unwrap();
    let topics: Vec<String> = s.alarms(None).into_iter().map(|i| i.topic.to_string()).collect();
    assert_eq!(topics, ["earliest", "first", "second", "third"]);
    s.run().unwrap();
    let got: Vec<(f64, String)> =
        s.agent::<Diary>(a).unwrap().entries.iter().map(|e| (e.0, e.1.clone())).collect();
    assert_eq!(
        got,
        [
            (0.5, "earliest".to_string()),
            (1.0, "first".to_string()),
            (1.0, "second".to_string()),
            (1.0, "third".to_string())
        ]
    );
}

#[test]
fn alarm_to_a_subscribed_topic_reaches_subscribers() {
    let mut s = Scheduler::simulated();
    let spy = s.add(Diary::default()).unwrap();
    s.subscribe(spy, Subscription::new().topic("bell")).unwrap();
    s.set_alarm(Alarm::after(2.0, Envelope::new(Trial).topic_is("bell"))).unwrap();
    s.run().unwrap();
    assert_eq!(diary_times(&s, spy), [2.0]);
}

// ----- listing and clearing -------------------------------------------------

#[test]
fn alarms_are_listed_for_a_receiver_in_firing_order() {
    // maslite's test_clear_alarms.
    let mut s = Scheduler::simulated();
    let a = s.add(Diary::default()).unwrap();
    let b = s.add(Diary::default()).unwrap();
    s.set_alarm(
        Alarm::after(1.0, Envelope::new(Trial).from(a).to(a).topic_is("Alarm_b")).keep_alive(),
    )
    .unwrap();
    s.set_alarm(
        Alarm::after(1.0, Envelope::new(Trial).from(a).to(b).topic_is("Alarm_b")).keep_alive(),
    )
    .unwrap();
    s.set_alarm(
        Alarm::after(2.0, Envelope::new(Trial).from(b).to(b).topic_is("Alarm_b")).keep_alive(),
    )
    .unwrap();
    let times = |v: Vec<AlarmInfo>| v.into_iter().map(|i| (i.at, i.sender)).collect::<Vec<_>>();
    assert_eq!(times(s.alarms(Some(a))), [(1.0, a)]);
    assert_eq!(times(s.alarms(Some(b))), [(1.0, a), (2.0, b)]);
    assert_eq!(s.alarms(None).len(), 3);

    assert_eq!(s.clear_alarms(Some(b), None), 2);
    assert_eq!(times(s.alarms(None)), [(1.0, a)]);
    assert_eq!(s.clear_alarms(Some(b), None), 0);
    assert_eq!(s.alarms(None).len(), 1);
    assert_eq!(s.clear_alarms(Some(a), None), 1);
    assert!(s.alarms(None).is_empty());
}

#[test]
fn alarms_are_cleared_by_topic_with_or_without_receiver() {
    // maslite's test_clear_alarms_by_topic.
    let mut s = Scheduler::simulated();
    let a = s.add(Diary::default()).unwrap();
    let b = s.add(Diary::default()).unwrap();
    for (t, topic) in [(1.0, "1"), (3.0, "2"), (1.0, "3")] {
        s.set_alarm(Alarm::after(t, Envelope::new(Trial).to(a).topic_is(topic))).unwrap();
    }
    s.set_alarm(Alarm::after(1.0, Envelope::new(Trial).to(b).topic_is("1"))).unwrap();

    assert_eq!(s.clear_alarms(Some(a), Some("1")), 1);
    assert_eq!(s.alarms(Some(b)).len(), 1, "same topic, other receiver: kept");
    assert_eq!(s.clear_alarms(None, Some("3")), 1);
    let left: Vec<(f64, String)> =
        s.alarms(Some(a)).into_iter().map(|i| (i.at, i.topic.to_string())).collect();
    assert_eq!(left, [(3.0, "2".to_string())]);
    assert_eq!(s.clear_alarms(None, Some("nothing")), 0);
    assert_eq!(s.clear_alarms(None, None), 2);
    assert!(s.alarms(None).is_empty());
    let report = s.run().unwrap();
    assert_eq!(report.stats.alarms_fired, 0);
    assert_eq!(report.end_time, 0.0);
}

#[test]
fn agents_list_and_clear_alarms_through_cx() {
    #[derive(Default)]
    struct Planner {
        listed: Vec<(f64, String)>,
        cleared: usize,
        woken: Vec<(f64, String)>,
    }
    impl Agent for Planner {
        async fn update(&mut self, cx: &Cx) {
            while let Some(env) = cx.try_recv() {
                match env.topic() {
                    "plan" => {
                        for (t, topic) in [(1.0, "lunch"), (2.0, "meeting"), (3.0, "lunch")] {
                            let env = Envelope::new(Trial).to(cx.id()).topic_is(topic);
                            cx.set_alarm(Alarm::after(t, env)).unwrap();
                        }
                        cx.set_alarm(Alarm::after(5.0, Envelope::new(Trial).to(AgentId(900))))
                            .unwrap();
                        self.listed = cx
                            .list_alarms(Some(cx.id()))
                            .into_iter()
                            .map(|i| (i.at, i.topic.to_string()))
                            .collect();
                        self.cleared = cx.clear_alarms(Some(cx.id()), Some("lunch"));
                        cx.clear_alarms(Some(AgentId(900)), None);
                    }
                    other => self.woken.push((cx.now(), other.to_string())),
                }
            }
        }
    }
    let mut s = Scheduler::simulated();
    let p = s.add(Planner::default()).unwrap();
    s.send(Envelope::new(Trial).to(p).topic_is("plan"));
    let report = s.run().unwrap();
    let planner = s.agent::<Planner>(p).unwrap();
    assert_eq!(
        planner.listed,
        [(1.0, "lunch".to_string()), (2.0, "meeting".to_string()), (3.0, "lunch".to_string())]
    );
    assert_eq!(planner.cleared, 2);
    assert_eq!(planner.woken, [(2.0, "meeting".to_string())]);
    assert_eq!(report.end_time, 2.0, "the cleared alarms do not move the clock");
}

// ----- the simulated clock --------------------------------------------------

#[test]
fn simulated_clock_stands_still_while_mail_flows() {
    #[derive(Default)]
    struct Bouncer {
        seen: Vec<f64>,
    }
    impl Agent for Bouncer {
        async fn update(&mut self, cx: &Cx) {
            while let Some(mut env) = cx.try_recv() {
                self.seen.push(cx.now());
                let hits = env.payload_mut::<u32>().unwrap();
                *hits += 1;
                if *hits < 20 {
                    env.reply().unwrap();
                    cx.send(env);
                }
            }
        }
    }
    let mut s = Scheduler::simulated();
    let a = s.add(Bouncer::default()).unwrap();
    let b = s.add(Bouncer::default()).unwrap();
    let diary = s.add(Diary::default()).unwrap();
    s.set_alarm(Alarm::at(1.0, Envelope::new(Trial).to(diary))).unwrap();
    s.send(Envelope::new(0u32).from(a).to(b));
    let report = s.run().unwrap();
    let seen_a = s.agent::<Bouncer>(a).unwrap().seen.clone();
    let seen_b = s.agent::<Bouncer>(b).unwrap().seen.clone();
    assert_eq!(seen_a.len() + seen_b.len(), 20);
    assert!(seen_a.iter().chain(&seen_b).all(|&t| t == 0.0), "{seen_a:?} {seen_b:?}");
    assert_eq!(diary_times(&s, diary), [1.0]);
    assert_eq!(report.end_time, 1.0);
}

#[test]
fn run_without_pause_if_idle_goes_to_its_end_time() {
    let mut s = Scheduler::simulated();
    s.add(Diary::default()).unwrap();
    let report = s.run_with(RunOptions::new().seconds(5.0).pause_if_idle(false)).unwrap();
    assert_eq!(report.reason, StopReason::TimeLimit);
    assert_eq!(report.end_time, 5.0);
}

#[test]
fn simulated_time_never_runs_backwards_across_runs() {
    let mut s = Scheduler::simulated();
    let a = s.add(Diary::default()).unwrap();
    s.set_alarm(Alarm::at(4.0, Envelope::new(Trial).to(a))).unwrap();
    s.run().unwrap();
    assert_eq!(s.now(), 4.0);
    s.set_alarm(Alarm::after(0.0, Envelope::new(Trial).to(a))).unwrap();
    let report = s.run().unwrap();
    assert_eq!((report.start_time, report.end_time), (4.0, 4.0));
    assert_eq!(diary_times(&s, a), [4.0, 4.0]);
}

// ----- the real-time clock --------------------------------------------------

#[test]
fn real_time_clock_reads_unix_seconds() {
    let s = Scheduler::real_time();
    let unix =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    assert!((s.now() - unix).abs() < 60.0, "{} vs {unix}", s.now());
}

#[test]
fn keep_alive_alarm_keeps_an_idle_real_time_run_going_until_it_fired() {
    // Measured from before the scheduler exists: the alarm cannot be due
    // earlier than 50 ms after that, whatever "now" it counts from.
    let started = Instant::now();
    let mut s = Scheduler::real_time();
    let a = s.add(Diary::default()).unwrap();
    s.set_alarm(Alarm::after(0.05, Envelope::new(Trial).to(a)).keep_alive()).unwrap();
    let due = s.alarms(None)[0].at;
    let report = s.run().unwrap();
    assert!(started.elapsed() >= Duration::from_millis(50), "{:?}", started.elapsed());
    let times = diary_times(&s, a);
    assert_eq!(times.len(), 1, "the alarm fired");
    assert!(times[0] >= due, "read at {} for an alarm due at {due}", times[0]);
    assert_eq!(report.reason, StopReason::Idle);
}

#[test]
fn relative_alarm_on_the_real_time_clock_counts_from_the_wall_clock_now() {
    let mut s = Scheduler::real_time();
    let a = s.add(Diary::default()).unwrap();
    // Wall time passes between making the scheduler and setting the alarm
    // (set-up work, say); no run has ticked the clock since.
    std::thread::sleep(Duration::from_millis(100));
    let before = s.now();
    s.set_alarm(Alarm::after(0.05, Envelope::new(Trial).to(a))).unwrap();
    let at = s.alarms(None)[0].at;
    assert!(
        at >= before + 0.05,
        "due at {at}, but now was {before}: {:.3} s early",
        before + 0.05 - at
    );
}

#[test]
fn ignorable_alarm_does_not_keep_a_real_time_run_going() {
    let mut s = Scheduler::real_time();
    let a = s.add(Diary::default()).unwrap();
    // A run that waited for it would deliver it.
    s.set_alarm(Alarm::after(2.0, Envelope::new(Trial).to(a))).unwrap();
    let report = s.run().unwrap();
    assert_eq!(report.reason, StopReason::Idle);
    assert!(diary_times(&s, a).is_empty());
    assert!(s.alarms(None).is_empty(), "cleared at the end by default");
}

#[test]
fn ignorable_alarm_fires_while_a_real_time_run_is_kept_going() {
    let mut s = Scheduler::real_time();
    let a = s.add(Diary::default()).unwrap();
    s.set_alarm(Alarm::after(0.02, Envelope::new(Trial).to(a).topic_is("ignorable"))).unwrap();
    s.set_alarm(Alarm::after(0.04, Envelope::new(Trial).to(a).topic_is("required")).keep_alive())
        .unwrap();
    s.run().unwrap();
    let topics: Vec<String> =
        s.agent::<Diary>(a).unwrap().entries.iter().map(|e| e.1.clone()).collect();
    assert_eq!(topics, ["ignorable", "required"]);
}
