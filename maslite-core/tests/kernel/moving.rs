//! Agents taken out of one kernel and installed in another (what
//! `Runtime::apply_placement` does between partitions), and the load each
//! agent puts on its kernel.

use maslite_core::{Agent, AgentId, Alarm, Cx, Driver, Envelope, Error, Immovable, RemoteAlarms};
use maslite_core::{RunOptions, Scheduler};

#[derive(Clone, Debug, PartialEq)]
struct Job(u32);

/// Sums the jobs it reads; kept awake if asked.
#[derive(Default)]
struct Worker {
    done: Vec<u32>,
    awake: bool,
}

impl Agent for Worker {
    async fn setup(&mut self, cx: &Cx) {
        cx.set_keep_awake(self.awake);
    }
    async fn update(&mut self, cx: &Cx) {
        while let Some(env) = cx.try_recv() {
            self.done.push(env.payload::<Job>().unwrap().0);
        }
    }
}

/// Sleeps inside its update: suspended there between runs.
struct Napper;

impl Agent for Napper {
    async fn update(&mut self, cx: &Cx) {
        while cx.try_recv().is_some() {}
        cx.sleep(10.0).await;
    }
}

fn partition() -> Driver {
    Driver::new(Scheduler::simulated(), RemoteAlarms::Kept)
}

#[test]
fn a_moved_agent_takes_its_state_inbox_alarms_and_flags() {
    let (mut here, mut there) = (partition(), partition());
    let w = here.add_placed_movable(AgentId(7), 3, Worker { done: vec![], awake: true }).unwrap();
    here.deliver_to(w, Envelope::new(Job(1)).to(w)).unwrap();
    here.step_round().unwrap();
    // Mail delivered and not read yet, and an alarm for later.
    here.deliver_to(w, Envelope::new(Job(2)).to(w)).unwrap();
    here.set_alarm_stamped(Alarm::at(5.0, Envelope::new(Job(3)).to(w))).unwrap();
    assert_eq!(here.immovable(&[w]).unwrap(), []);
    let moving = here.take_moving(&[w]).unwrap();
    assert_eq!(moving.len(), 1);
    assert!(!here.contains(w));
    assert_eq!(here.alarms(None).len(), 0, "its alarm went with it");
    there.insert_moving(moving).unwrap();
    assert!(there.contains(w));
    assert_eq!(there.inbox_len(w).unwrap(), 1);
    assert_eq!(there.alarms(Some(w)).len(), 1);
    assert_eq!(there.kept_awake(), 1);
    assert_eq!(here.kept_awake(), 0);
    there.step_round().unwrap();
    there.set_time(5.0).unwrap();
    assert_eq!(there.fire_due_alarms(), 1);
    let mut out = Vec::new();
    there.take_outbox_into(&mut out);
    there.deliver_to(w, out.pop().unwrap()).unwrap();
    there.step_round().unwrap();
    // Its setup did not run again (it would have pushed nothing, but the
    // state is the one it had): 1 read here, 2 and 3 there.
    assert_eq!(there.agent::<Worker>(w).unwrap().done, [1, 2, 3]);
}

#[test]
fn agents_that_cannot_move_are_named_and_nothing_moves() {
    let mut s = partition();
    let ok = s.add_placed_movable(AgentId(1), 1, Worker::default()).unwrap();
    let plain = s.add_placed(AgentId(2), 2, Worker::default()).unwrap();
    let body = s.spawn_placed(AgentId(3), 3, |cx| async move {
        cx.recv().await;
    });
    let body = body.unwrap();
    let napper = s.add_placed_movable(AgentId(4), 4, Napper).unwrap();
    s.deliver_to(napper, Envelope::new(Job(0)).to(napper)).unwrap();
    s.step_round().unwrap();
    let all = [ok, plain, body, napper];
    let e = s.take_moving(&all).unwrap_err();
    assert_eq!(
        e,
        Error::CannotMove(vec![
            (plain, Immovable::NotSend),
            (body, Immovable::AsyncFn),
            (napper, Immovable::Suspended),
        ])
    );
    assert!(e.to_string().contains("agent 4 (suspended inside its setup or update)"), "{e}");
    assert!(all.iter().all(|&id| s.contains(id)), "nothing moved");
    assert_eq!(s.take_moving(&[AgentId(99)]).unwrap_err(), Error::UnknownAgent(AgentId(99)));
    // The one that can, alone, moves.
    assert_eq!(s.take_moving(&[ok]).unwrap().len(), 1);
    assert!(!s.contains(ok));
}

#[test]
fn loads_count_the_rounds_an_agent_was_polled_in_when_measured() {
    let mut s = Scheduler::simulated();
    let a = s.add(Worker::default()).unwrap();
    let b = s.add(Worker::default()).unwrap();
    for i in 0..3 {
        s.set_alarm(Alarm::at(i as f64, Envelope::new(Job(i)).to(a))).unwrap();
    }
    s.run_with(RunOptions::new().seconds(0.5).clear_alarms_at_end(false)).unwrap();
    let mut loads = Vec::new();
    s.take_loads_into(&mut loads);
    assert_eq!(loads, [(a, 0), (b, 0)], "not measured yet");
    s.measure_load(true);
    s.send(Envelope::new(Job(9)).to(b));
    s.run().unwrap();
    s.take_loads_into(&mut loads);
    assert_eq!(loads, [(a, 0), (b, 0), (a, 2), (b, 1)]);
}
