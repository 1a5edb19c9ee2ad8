//! Agents: ids, lifecycle, adding and removing agents while running, when
//! `update` runs, and maslite's ping-pong test.

use maslite_core::{Agent, AgentId, Cx, Envelope, Error, RunOptions, Scheduler, StopReason};
use std::cell::RefCell;
use std::rc::Rc;

#[derive(Clone, Debug, PartialEq)]
struct Note(u32);

type Log = Rc<RefCell<Vec<String>>>;

/// Logs its lifecycle and counts its updates.
struct Trial {
    name: &'static str,
    log: Log,
    updates: u32,
}

impl Trial {
    fn new(name: &'static str, log: &Log) -> Trial {
        Trial { name, log: log.clone(), updates: 0 }
    }
}

impl Agent for Trial {
    async fn setup(&mut self, cx: &Cx) {
        self.log.borrow_mut().push(format!("{} setup as {}", self.name, cx.id()));
    }
    async fn update(&mut self, cx: &Cx) {
        self.updates += 1;
        while cx.try_recv().is_some() {}
        self.log.borrow_mut().push(format!("{} update", self.name));
    }
    async fn teardown(&mut self, _cx: &Cx) {
        self.log.borrow_mut().push(format!("{} teardown", self.name));
    }
}

/// Counts updates and takes no mail out (maslite's plain counter).
#[derive(Default)]
struct Counter {
    updates: u32,
    received: u32,
}

impl Agent for Counter {
    async fn update(&mut self, cx: &Cx) {
        self.updates += 1;
        while cx.try_recv().is_some() {
            self.received += 1;
        }
    }
}

#[test]
fn user_chosen_ids_are_kept_in_insertion_order() {
    let mut s = Scheduler::simulated();
    for n in [3, 1, 4, 2] {
        assert_eq!(s.add_with_id(AgentId(n), Counter::default()), Ok(AgentId(n)));
    }
    assert_eq!(s.agent_ids(), [AgentId(3), AgentId(1), AgentId(4), AgentId(2)]);
    assert_eq!(s.len(), 4);
    assert!(s.contains(AgentId(4)));
    assert!(!s.contains(AgentId(5)));
}

#[test]
fn allocated_ids_are_distinct_and_skip_ids_in_use() {
    let mut s = Scheduler::simulated();
    s.add_with_id(AgentId(1), Counter::default()).unwrap();
    s.add_with_id(AgentId(2), Counter::default()).unwrap();
    let mut ids = vec![AgentId(1), AgentId(2)];
    for _ in 0..5 {
        let id = s.add(Counter::default()).unwrap();
        assert!(!ids.contains(&id), "{id} allocated twice");
        assert_ne!(id, AgentId::OUTSIDE);
        ids.push(id);
    }
    // A user id that an allocation would reach later is skipped too.
    let next_guess = AgentId(ids.iter().map(|i| i.0).max().unwrap() + 1);
    s.add_with_id(next_guess, Counter::default()).unwrap();
    let id = s.add(Counter::default()).unwrap();
    assert_ne!(id, next_guess);
    assert_eq!(s.len(), 9);
}

#[test]
fn setup_runs_on_add_and_teardown_on_remove() {
    let log = Log::default();
    let mut s = Scheduler::simulated();
    let a = s.add_with_id(AgentId(7), Trial::new("a", &log)).unwrap();
    assert_eq!(*log.borrow(), ["a setup as 7"]);
    s.remove(a).unwrap();
    assert_eq!(*log.borrow(), ["a setup as 7", "a teardown"]);
    assert!(!s.contains(a));
    assert!(s.is_empty());
}

#[test]
fn removed_id_can_be_used_again() {
    let log = Log::default();
    let mut s = Scheduler::simulated();
    s.add_with_id(AgentId(1), Trial::new("first", &log)).unwrap();
    s.remove(AgentId(1)).unwrap();
    s.add_with_id(AgentId(1), Trial::new("second", &log)).unwrap();
    assert_eq!(*log.borrow(), ["first setup as 1", "first teardown", "second setup as 1"]);
}

#[test]
fn added_agent_is_not_updated_until_it_has_mail() {
    let mut s = Scheduler::simulated();
    let a = s.add(Counter::default()).unwrap();
    let b = s.add(Counter::default()).unwrap();
    let report = s.run().unwrap();
    assert_eq!(report.reason, StopReason::Idle);
    assert_eq!(s.agent::<Counter>(a).unwrap().updates, 0);

    s.send(Envelope::new(Note(1)).to(b));
    s.run().unwrap();
    assert_eq!(s.agent::<Counter>(a).unwrap().updates, 0, "no mail, no update");
    assert_eq!(s.agent::<Counter>(b).unwrap().updates, 1);
    assert_eq!(s.agent::<Counter>(b).unwrap().received, 1);
}

#[test]
fn mail_arriving_in_one_delivery_gives_one_update() {
    let mut s = Scheduler::simulated();
    let a = s.add(Counter::default()).unwrap();
    for n in 0..3 {
        s.send(Envelope::new(Note(n)).to(a));
    }
    s.run().unwrap();
    let c = s.agent::<Counter>(a).unwrap();
    assert_eq!((c.updates, c.received), (1, 3));
}

#[test]
fn mail_put_straight_into_an_inbox_is_read_in_the_next_run() {
    let mut s = Scheduler::simulated();
    let a = s.add(Counter::default()).unwrap();
    s.put_in_inbox(a, Envelope::new(Note(1))).unwrap();
    assert_eq!(s.inbox_len(a), Ok(1));
    s.run().unwrap();
    assert_eq!(s.agent::<Counter>(a).unwrap().received, 1);
    assert_eq!(s.inbox_len(a), Ok(0));
}

#[test]
fn kept_awake_agent_is_updated_every_round_without_mail() {
    let mut s = Scheduler::simulated();
    let awake = s.add(Counter::default()).unwrap();
    let asleep = s.add(Counter::default()).unwrap();
    s.set_keep_awake(awake, true).unwrap();
    let report = s.run_with(RunOptions::new().iterations(5).pause_if_idle(false)).unwrap();
    assert_eq!(report.reason, StopReason::Iterations);
    assert_eq!(s.agent::<Counter>(awake).unwrap().updates, 5);
    assert_eq!(s.agent::<Counter>(asleep).unwrap().updates, 0);

    s.set_keep_awake(awake, false).unwrap();
    s.run_with(RunOptions::new().iterations(5).pause_if_idle(false)).unwrap();
    assert_eq!(s.agent::<Counter>(awake).unwrap().updates, 5, "asleep again");
}

#[test]
fn agent_can_keep_itself_awake_and_let_go() {
    // maslite's TrialAgent: when updated while kept awake, it pauses the
    // scheduler and stops keeping awake.
    #[derive(Default)]
    struct Napper {
        updates: u32,
        awake_in_setup: bool,
    }
    impl Agent for Napper {
        async fn setup(&mut self, cx: &Cx) {
            cx.set_keep_awake(true);
            self.awake_in_setup = cx.keep_awake();
        }
        async fn update(&mut self, cx: &Cx) {
            self.updates += 1;
            if cx.keep_awake() {
                cx.pause();
                cx.set_keep_awake(false);
            }
        }
    }
    let mut s = Scheduler::simulated();
    let n = s.add(Napper::default()).unwrap();
    assert!(s.agent::<Napper>(n).unwrap().awake_in_setup);
    let report = s.run().unwrap();
    assert_eq!(report.reason, StopReason::Paused);
    assert_eq!(s.agent::<Napper>(n).unwrap().updates, 1);
    s.run().unwrap();
    assert_eq!(s.agent::<Napper>(n).unwrap().updates, 1, "no longer kept awake");
}

/// Hires a worker on "hire", mails it, fires it on "fire", and quits on
/// "quit" by removing itself.
struct Manager {
    log: Log,
    worker: Option<AgentId>,
}

impl Agent for Manager {
    async fn update(&mut self, cx: &Cx) {
        while let Some(env) = cx.try_recv() {
            match env.topic() {
                "hire" => {
                    let id = cx.add(Trial::new("worker", &self.log)).unwrap();
                    self.log.borrow_mut().push(format!("hired {id}, exists: {}", cx.exists(id)));
                    cx.send(Envelope::new(Note(1)).to(id));
                    self.worker = Some(id);
                }
                "fire" => {
                    cx.remove(self.worker.take().unwrap()).unwrap();
                    self.log.borrow_mut().push("fired".into());
                }
                "quit" => cx.remove(cx.id()).unwrap(),
                _ => {}
            }
        }
    }
    async fn teardown(&mut self, _cx: &Cx) {
        self.log.borrow_mut().push("manager teardown".into());
    }
}

#[test]
fn agents_add_and_remove_other_agents_while_running() {
    let log = Log::default();
    let mut s = Scheduler::simulated();
    let boss = s.add(Manager { log: log.clone(), worker: None }).unwrap();

    s.send(Envelope::new(Note(0)).to(boss).topic_is("hire"));
    s.run().unwrap();
    let worker = s.agent::<Manager>(boss).unwrap().worker.unwrap();
    assert!(s.contains(worker));
    assert_eq!(s.agent::<Trial>(worker).unwrap().updates, 1, "the worker got its mail");
    assert_eq!(
        *log.borrow(),
        [
            format!("hired {worker}, exists: true"),
            format!("worker setup as {worker}"),
            "worker update".into()
        ]
    );

    log.borrow_mut().clear();
    s.send(Envelope::new(Note(0)).to(boss).topic_is("fire"));
    s.run().unwrap();
    assert!(!s.contains(worker));
    // Removal is carried out when the manager yields: after its update.
    assert_eq!(*log.borrow(), ["fired", "worker teardown"]);
    assert_eq!(s.agent_ids(), [boss]);
}

#[test]
fn removal_cancels_a_suspended_update_and_runs_teardown_at_once() {
    /// Sleeps inside its update.
    struct Slow {
        log: Log,
    }
    impl Agent for Slow {
        async fn update(&mut self, cx: &Cx) {
            while cx.try_recv().is_some() {
                cx.sleep(2.0).await;
                self.log.borrow_mut().push(format!("update done at {}", cx.now()));
            }
        }
        async fn teardown(&mut self, cx: &Cx) {
            self.log.borrow_mut().push(format!("teardown at {}", cx.now()));
        }
    }
    let log = Log::default();
    let mut s = Scheduler::simulated();
    let slow = s.add(Slow { log: log.clone() }).unwrap();
    s.send(Envelope::new(Note(1)).to(slow));
    s.run_with(RunOptions::new().seconds(1.0)).unwrap();
    assert!(log.borrow().is_empty(), "still inside its update");

    s.remove(slow).unwrap();
    assert!(!s.contains(slow));
    // The update sleeping until t=2 is cancelled; teardown ran at removal.
    assert_eq!(*log.borrow(), ["teardown at 1"]);
    assert!(s.is_empty());
    let report = s.run().unwrap();
    assert_eq!(report.end_time, 1.0, "the cancelled sleep holds no alarm");
    assert_eq!(*log.borrow(), ["teardown at 1"]);
}

#[test]
fn agent_can_remove_itself() {
    let log = Log::default();
    let mut s = Scheduler::simulated();
    let boss = s.add(Manager { log: log.clone(), worker: None }).unwrap();
    s.send(Envelope::new(Note(0)).to(boss).topic_is("quit"));
    s.run().unwrap();
    assert!(!s.contains(boss));
    assert_eq!(*log.borrow(), ["manager teardown"]);
    assert!(s.is_empty());
}

#[test]
fn agent_added_from_inside_with_a_chosen_id_gets_it() {
    struct Founder {
        result: Option<Result<AgentId, Error>>,
    }
    impl Agent for Founder {
        async fn update(&mut self, cx: &Cx) {
            while cx.try_recv().is_some() {
                self.result = Some(cx.add_with_id(AgentId(50), Counter::default()));
            }
        }
    }
    let mut s = Scheduler::simulated();
    let f = s.add(Founder { result: None }).unwrap();
    s.send(Envelope::new(Note(0)).to(f));
    s.run().unwrap();
    assert_eq!(s.agent::<Founder>(f).unwrap().result, Some(Ok(AgentId(50))));
    assert!(s.contains(AgentId(50)));
    assert_eq!(s.agent::<Counter>(AgentId(50)).unwrap().updates, 0);
}

#[test]
fn mail_sent_to_an_agent_added_in_the_same_update_arrives() {
    // The new agent exists by the time the round's mail is delivered.
    let log = Log::default();
    let mut s = Scheduler::simulated();
    let boss = s.add(Manager { log: log.clone(), worker: None }).unwrap();
    s.send(Envelope::new(Note(0)).to(boss).topic_is("hire"));
    let report = s.run().unwrap();
    assert_eq!(report.stats.dead_letters, 0);
}

// ----- maslite's ping-pong test -----------------------------------------

#[derive(Clone)]
struct Ball;

#[derive(Clone)]
struct Serve {
    opponent: AgentId,
}

#[derive(Debug, PartialEq)]
enum Outcome {
    Won,
    Beaten,
}

/// maslite's `PingPongPlayer`: hits back until its update count reaches the
/// limit, then smashes; a smash received means beaten.
struct Player {
    limit: u32,
    updates: u32,
    outcome: Option<Outcome>,
}

impl Agent for Player {
    async fn update(&mut self, cx: &Cx) {
        self.updates += 1;
        let Some(mut msg) = cx.try_recv() else { return };
        if let Ok(serve) = msg.payload::<Serve>() {
            cx.send(Envelope::new(Ball).to(serve.opponent).topic_is("ping"));
            return;
        }
        match msg.topic() {
            "ping" | "pong" => {
                msg.reply().unwrap();
                if self.updates < self.limit {
                    let next = if msg.topic() == "ping" { "pong" } else { "ping" };
                    msg.set_topic(next);
                } else {
                    msg.set_topic("smash");
                    self.outcome = Some(Outcome::Won);
                }
                cx.send(msg);
            }
            "smash" => self.outcome = Some(Outcome::Beaten),
            other => panic!("unexpected topic {other}"),
        }
    }
}

#[test]
fn ping_pong_players_update_exactly_limit_times_and_the_server_wins() {
    // In maslite every added agent is updated once when the run starts, so
    // the server's first update is its serve. Here agents update only with
    // mail, so the serve is an update triggered by a `Serve` message.
    let limit = 5000;
    let mut s = Scheduler::simulated();
    let a = s.add(Player { limit, updates: 0, outcome: None }).unwrap();
    let b = s.add(Player { limit, updates: 0, outcome: None }).unwrap();
    s.send(Envelope::new(Serve { opponent: b }).to(a));
    let report = s.run().unwrap();

    let pa = s.agent::<Player>(a).unwrap();
    let pb = s.agent::<Player>(b).unwrap();
    assert_eq!(pa.updates, limit);
    assert_eq!(pb.updates, limit);
    assert_eq!(pa.outcome, Some(Outcome::Won), "the server smashes");
    assert_eq!(pb.outcome, Some(Outcome::Beaten));
    assert_eq!(report.reason, StopReason::Idle);
    // The serve order plus 9999 strokes, one per round.
    assert_eq!(report.stats.messages, 2 * u64::from(limit));
    assert_eq!(report.end_time, 0.0, "no alarms: simulated time stands still");
}

#[test]
fn take_agent_removes_it_and_returns_its_final_state() {
    struct Tally {
        seen: u32,
        torn_down: bool,
    }
    impl Agent for Tally {
        async fn update(&mut self, cx: &Cx) {
            while cx.try_recv().is_some() {
                self.seen += 1;
            }
        }
        async fn teardown(&mut self, _cx: &Cx) {
            self.torn_down = true;
        }
    }
    let mut s = Scheduler::simulated();
    let t = s.add(Tally { seen: 0, torn_down: false }).unwrap();
    s.send(Envelope::new(Note(1)).to(t));
    s.send(Envelope::new(Note(2)).to(t));
    s.run().unwrap();

    // Asking for the wrong type removes nothing.
    assert!(matches!(s.take_agent::<Manager>(t), Err(Error::AgentTypeMismatch { .. })));
    assert!(s.contains(t));

    let tally: Tally = s.take_agent(t).unwrap();
    assert_eq!((tally.seen, tally.torn_down), (2, true));
    assert!(!s.contains(t));
    assert_eq!(s.take_agent::<Tally>(t).err(), Some(Error::UnknownAgent(t)));
}

#[test]
fn an_agent_added_after_others_left_is_still_updated_last() {
    /// Records the order in which agents are updated.
    struct Clerk {
        name: &'static str,
        log: Rc<RefCell<Vec<&'static str>>>,
    }
    impl Agent for Clerk {
        async fn update(&mut self, cx: &Cx) {
            while cx.try_recv().is_some() {}
            self.log.borrow_mut().push(self.name);
        }
    }
    let log: Rc<RefCell<Vec<&'static str>>> = Rc::default();
    let mut s = Scheduler::simulated();
    let clerk = |name| Clerk { name, log: log.clone() };
    let a = s.add(clerk("a")).unwrap();
    let b = s.add(clerk("b")).unwrap();
    let c = s.add(clerk("c")).unwrap();
    s.remove(a).unwrap();
    s.remove(b).unwrap();
    // d and e take the slots a and b left; they still come after c.
    let d = s.add(clerk("d")).unwrap();
    let e = s.add(clerk("e")).unwrap();
    for id in [e, d, c] {
        s.send(Envelope::new(Note(0)).to(id));
    }
    s.run().unwrap();
    assert_eq!(*log.borrow(), ["c", "d", "e"]);
    assert_eq!(s.agent_ids(), [c, d, e]);
}

/// Was: each agent added in an update ran its setup, then carried out the
/// adds still queued from inside that setup's poll, one level deeper each:
/// an agent adding 500 000 others overflowed the stack.
#[test]
fn an_agent_adding_very_many_agents_in_one_update_does_not_nest() {
    struct Quiet;
    impl Agent for Quiet {
        async fn setup(&mut self, cx: &Cx) {
            // A setup that sends: it runs inside the queue's loop.
            cx.send(Envelope::new(Note(0)).to(cx.id()));
        }
        async fn update(&mut self, cx: &Cx) {
            while cx.try_recv().is_some() {}
        }
    }
    const N: usize = 200_000;
    let mut s = Scheduler::simulated();
    let maker = s
        .spawn(|cx| async move {
            let _go = cx.recv().await;
            for _ in 0..N {
                cx.add(Quiet).unwrap();
            }
        })
        .unwrap();
    s.send(Envelope::new(Note(1)).to(maker));
    let report = s.run().unwrap();
    assert_eq!(s.len(), N, "every agent joined; the maker's body ended");
    assert_eq!(report.stats.messages, N as u64 + 1, "and each setup's note was delivered");
}
