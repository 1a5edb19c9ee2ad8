//! The scheduler loop: round order, stop conditions, run reports.

use maslite_core::{
    Agent, AgentId, Alarm, Cx, Envelope, RunOptions, Scheduler, StopReason, Subscription,
};
use std::cell::RefCell;
use std::rc::Rc;

#[derive(Clone, Debug, PartialEq)]
struct Trial;

type Trace = Rc<RefCell<Vec<AgentId>>>;

/// Records its id in a shared trace at every update.
struct Recorder {
    trace: Trace,
}

impl Agent for Recorder {
    async fn update(&mut self, cx: &Cx) {
        while cx.try_recv().is_some() {}
        self.trace.borrow_mut().push(cx.id());
    }
}

/// Bounces every message back to its sender, forever.
#[derive(Default)]
struct Wall {
    hits: u64,
}

impl Agent for Wall {
    async fn update(&mut self, cx: &Cx) {
        while let Some(mut env) = cx.try_recv() {
            self.hits += 1;
            env.reply().unwrap();
            cx.send(env);
        }
    }
}

#[test]
fn rounds_update_agents_in_insertion_order() {
    let trace = Trace::default();
    let mut s = Scheduler::simulated();
    let order = [AgentId(30), AgentId(10), AgentId(20), AgentId(5)];
    for id in order {
        s.add_with_id(id, Recorder { trace: trace.clone() }).unwrap();
    }
    // Mail sent in reverse order; the round still goes by insertion.
    for &id in order.iter().rev() {
        s.send(Envelope::new(Trial).to(id));
    }
    s.run().unwrap();
    assert_eq!(*trace.borrow(), order);
}

#[test]
fn agents_added_later_are_updated_later_in_the_round() {
    let trace = Trace::default();
    let mut s = Scheduler::simulated();
    let first = s.add_with_id(AgentId(9), Recorder { trace: trace.clone() }).unwrap();
    let second = s.add_with_id(AgentId(1), Recorder { trace: trace.clone() }).unwrap();
    s.remove(first).unwrap();
    let third = s.add_with_id(AgentId(9), Recorder { trace: trace.clone() }).unwrap();
    s.send(Envelope::new(Trial).to(third));
    s.send(Envelope::new(Trial).to(second));
    s.run().unwrap();
    assert_eq!(*trace.borrow(), [second, third], "re-added agent 9 goes last");
}

#[test]
fn iterations_limit_stops_after_that_many_rounds() {
    let mut s = Scheduler::simulated();
    let a = s.add(Wall::default()).unwrap();
    let b = s.add(Wall::default()).unwrap();
    s.send(Envelope::new(Trial).from(a).to(b));
    let report = s.run_with(RunOptions::new().iterations(7)).unwrap();
    assert_eq!(report.reason, StopReason::Iterations);
    assert_eq!(report.stats.rounds, 7);
    let hits = s.agent::<Wall>(a).unwrap().hits + s.agent::<Wall>(b).unwrap().hits;
    assert_eq!(hits, 7, "one stroke per round");

    // The ball is still in play: the next run picks it up.
    let report = s.run_with(RunOptions::new().iterations(3)).unwrap();
    assert_eq!(report.stats.rounds, 3);
    let hits = s.agent::<Wall>(a).unwrap().hits + s.agent::<Wall>(b).unwrap().hits;
    assert_eq!(hits, 10);
}

#[test]
fn pause_from_an_agent_stops_at_the_end_of_the_round() {
    struct Pauser {
        forward_to: AgentId,
    }
    impl Agent for Pauser {
        async fn update(&mut self, cx: &Cx) {
            while cx.try_recv().is_some() {
                cx.pause();
                cx.send(Envelope::new(Trial).to(self.forward_to));
            }
        }
    }
    let trace = Trace::default();
    let mut s = Scheduler::simulated();
    let later = s.add_with_id(AgentId(3), Recorder { trace: trace.clone() }).unwrap();
    let pauser = s.add_with_id(AgentId(1), Pauser { forward_to: later }).unwrap();
    let same_round = s.add_with_id(AgentId(2), Recorder { trace: trace.clone() }).unwrap();
    s.send(Envelope::new(Trial).to(pauser));
    s.send(Envelope::new(Trial).to(same_round));

    let report = s.run().unwrap();
    assert_eq!(report.reason, StopReason::Paused);
    assert_eq!(report.stats.rounds, 1);
    // The agent after the pauser in the same round was still updated, and the
    // round's mail was delivered but not yet read.
    assert_eq!(*trace.borrow(), [same_round]);
    assert_eq!(s.inbox_len(later), Ok(1));

    let report = s.run().unwrap();
    assert_eq!(report.reason, StopReason::Idle);
    assert_eq!(*trace.borrow(), [same_round, later]);
}

#[test]
fn idle_run_stops_with_reason_idle() {
    let mut s = Scheduler::simulated();
    let report = s.run().unwrap();
    assert_eq!(report.reason, StopReason::Idle);
    assert_eq!(report.stats.rounds, 1);
    assert_eq!((report.start_time, report.end_time), (0.0, 0.0));
}

#[test]
fn mail_sent_from_outside_is_delivered_when_the_run_starts() {
    let trace = Trace::default();
    let mut s = Scheduler::simulated();
    let a = s.add(Recorder { trace: trace.clone() }).unwrap();
    s.send(Envelope::new(Trial).to(a));
    assert_eq!(s.inbox_len(a), Ok(0), "posted, not yet delivered");
    let report = s.run_with(RunOptions::new().iterations(1)).unwrap();
    assert_eq!(*trace.borrow(), [a]);
    assert_eq!(report.stats.messages, 1);
    assert_eq!(report.stats.deliveries, 1);
}

#[test]
fn deliver_mail_fills_inboxes_without_running_agents() {
    let trace = Trace::default();
    let mut s = Scheduler::simulated();
    let a = s.add(Recorder { trace: trace.clone() }).unwrap();
    s.send(Envelope::new(Trial).to(a));
    s.deliver_mail().unwrap();
    assert_eq!(s.inbox_len(a), Ok(1));
    assert!(trace.borrow().is_empty());
    let mail = s.take_inbox(a).unwrap();
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].receiver(), Some(a));
}

#[test]
fn run_report_counts_what_that_run_did() {
    let mut s = Scheduler::simulated();
    let a = s.add(Wall::default()).unwrap();
    let b = s.add(Wall::default()).unwrap();
    let spy = s.add(Recorder { trace: Trace::default() }).unwrap();
    s.subscribe(spy, Subscription::new().sender(a)).unwrap();
    s.send(Envelope::new(Trial).from(b).to(a));
    let first = s.run_with(RunOptions::new().iterations(4)).unwrap();
    // Rounds 1-4: a, b, a, b hit; a's two strokes are copied to the spy.
    assert_eq!(first.stats.rounds, 4);
    assert_eq!(first.stats.messages, 5, "the serve and four strokes");
    assert_eq!(first.stats.deliveries, 7);
    let second = s.run_with(RunOptions::new().iterations(2)).unwrap();
    assert_eq!(second.stats.rounds, 2);
    assert_eq!(s.stats().rounds, 6, "the scheduler's counters add up its runs");
    assert_eq!(s.stats().messages, first.stats.messages + second.stats.messages);
}

#[test]
fn agent_can_be_inspected_and_changed_between_runs() {
    let mut s = Scheduler::simulated();
    let a = s.add(Wall::default()).unwrap();
    s.agent_mut::<Wall>(a).unwrap().hits = 41;
    s.send(Envelope::new(Trial).from(AgentId(999)).to(a));
    s.run().unwrap();
    assert_eq!(s.agent::<Wall>(a).unwrap().hits, 42);
}

#[test]
fn same_program_gives_the_same_trace_twice() {
    fn program() -> Vec<AgentId> {
        let trace = Trace::default();
        let mut s = Scheduler::simulated();
        let ids: Vec<AgentId> =
            (0..6).map(|_| s.add(Recorder { trace: trace.clone() }).unwrap()).collect();
        for (i, &id) in ids.iter().enumerate() {
            s.subscribe(id, Subscription::new().topic(format!("t{}", i % 3))).unwrap();
        }
        for round in 0..10u32 {
            for i in 0..3 {
                let t = f64::from(round) * 0.25 + f64::from(i) * 0.1;
                let env = Envelope::new(Trial).topic_is(format!("t{}", (round + i) % 3));
                s.set_alarm(Alarm::at(t, env)).unwrap();
            }
        }
        s.run().unwrap();
        let out = trace.borrow().clone();
        out
    }
    let first = program();
    assert!(first.len() >= 30, "{first:?}");
    assert_eq!(first, program());
}

#[test]
fn zero_iterations_run_no_round() {
    let mut s = Scheduler::simulated();
    let report = s.run_with(RunOptions::new().iterations(0)).unwrap();
    assert_eq!(report.reason, StopReason::Iterations);
    assert_eq!(report.stats.rounds, 0);
}

#[test]
fn the_report_counts_the_alarms_cleared_at_the_end() {
    let mut s = Scheduler::simulated();
    s.set_alarm(Alarm::at(10.0, Envelope::new(1u8))).unwrap();
    s.set_alarm(Alarm::at(20.0, Envelope::new(2u8))).unwrap();
    let report = s.run_with(RunOptions::new().seconds(5.0)).unwrap();
    assert_eq!((report.end_time, report.alarms_cleared), (5.0, 2));
    assert!(s.alarms(None).is_empty());
    s.set_alarm(Alarm::at(30.0, Envelope::new(3u8))).unwrap();
    let kept = s.run_with(RunOptions::new().seconds(5.0).clear_alarms_at_end(false)).unwrap();
    assert_eq!(kept.alarms_cleared, 0);
    assert_eq!(s.alarms(None).len(), 1);
}
