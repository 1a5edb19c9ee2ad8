//! Messages: addressing, copies for subscribers, direct mail, dead letters,
//! and the order in which mail arrives.

use maslite_core::{
    Agent, AgentId, Alarm, Cx, Envelope, Error, Scheduler, Stats, StopReason, Subscription,
};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq)]
struct Note(u32);

/// A payload that counts how often it is cloned.
#[derive(Debug)]
struct Counted {
    value: u32,
    clones: Arc<AtomicUsize>,
}

impl Clone for Counted {
    fn clone(&self) -> Self {
        self.clones.fetch_add(1, Ordering::SeqCst);
        Counted { value: self.value, clones: self.clones.clone() }
    }
}

/// Keeps every message it receives.
#[derive(Default)]
struct Keeper {
    got: Vec<Envelope>,
}

impl Agent for Keeper {
    async fn update(&mut self, cx: &Cx) {
        while let Some(env) = cx.try_recv() {
            self.got.push(env);
        }
    }
}

/// Overwrites the `Counted` value of every message it gets and remembers what
/// it wrote.
#[derive(Default)]
struct Vandal {
    wrote: Vec<u32>,
}

impl Agent for Vandal {
    async fn update(&mut self, cx: &Cx) {
        while let Some(mut env) = cx.try_recv() {
            let payload = env.payload_mut::<Counted>().unwrap();
            payload.value = 99;
            self.wrote.push(payload.value);
        }
    }
}

/// Remembers the `Counted` values it reads.
#[derive(Default)]
struct Reader {
    read: Vec<u32>,
}

impl Agent for Reader {
    async fn update(&mut self, cx: &Cx) {
        while let Some(env) = cx.try_recv() {
            self.read.push(env.payload::<Counted>().unwrap().value);
        }
    }
}

#[test]
fn envelope_fields_default_to_an_outside_broadcast_named_after_the_payload() {
    let env = Envelope::new(Note(1));
    assert_eq!(env.sender(), AgentId::OUTSIDE);
    assert_eq!(env.receiver(), None);
    assert_eq!(env.topic(), "Note");
    assert!(!env.is_direct());

    let env = env.from(AgentId(1)).to(AgentId(2)).topic_is("memo");
    assert_eq!(env.sender(), AgentId(1));
    assert_eq!(env.receiver(), Some(AgentId(2)));
    assert_eq!(env.topic(), "memo");
    assert_eq!(env.payload::<Note>(), Ok(&Note(1)));
}

#[test]
fn direct_message_with_a_receiver_is_accepted() {
    let env = Envelope::new(Note(1)).to(AgentId(2)).direct().unwrap();
    assert!(env.is_direct());
    assert_eq!(env.receiver(), Some(AgentId(2)));
}

#[test]
fn subscriber_gets_a_copy_and_the_receiver_the_original() {
    let clones = Arc::new(AtomicUsize::new(0));
    let mut s = Scheduler::simulated();
    // The vandal is added first, so it is updated first in the round and
    // changes its copy before the receiver reads the original.
    let vandal = s.add(Vandal::default()).unwrap();
    let reader = s.add(Reader::default()).unwrap();
    s.subscribe(vandal, Subscription::new().receiver(reader)).unwrap();

    s.send(Envelope::new(Counted { value: 1, clones: clones.clone() }).to(reader));
    s.run().unwrap();

    assert_eq!(s.agent::<Vandal>(vandal).unwrap().wrote, vec![99]);
    assert_eq!(s.agent::<Reader>(reader).unwrap().read, vec![1], "the original is untouched");
    assert_eq!(clones.load(Ordering::SeqCst), 1, "one copy, for the subscriber only");
}

#[test]
fn each_subscriber_gets_its_own_copy() {
    let clones = Arc::new(AtomicUsize::new(0));
    let mut s = Scheduler::simulated();
    let spy_1 = s.add(Keeper::default()).unwrap();
    let spy_2 = s.add(Keeper::default()).unwrap();
    let receiver = s.add(Keeper::default()).unwrap();
    s.subscribe(spy_1, Subscription::new().receiver(receiver)).unwrap();
    s.subscribe(spy_2, Subscription::new().topic("Counted")).unwrap();

    s.send(Envelope::new(Counted { value: 7, clones: clones.clone() }).to(receiver));
    s.run().unwrap();

    for id in [spy_1, spy_2, receiver] {
        let keeper = s.agent::<Keeper>(id).unwrap();
        assert_eq!(keeper.got.len(), 1, "agent {id}");
        assert_eq!(keeper.got[0].payload::<Counted>().unwrap().value, 7);
        assert_eq!(keeper.got[0].receiver(), Some(receiver), "copies keep the addressing");
    }
    assert_eq!(clones.load(Ordering::SeqCst), 2);
}

#[test]
fn direct_message_is_never_copied() {
    let clones = Arc::new(AtomicUsize::new(0));
    let mut s = Scheduler::simulated();
    let spy = s.add(Keeper::default()).unwrap();
    let receiver = s.add(Keeper::default()).unwrap();
    s.subscribe(spy, Subscription::new().receiver(receiver)).unwrap();
    s.subscribe(spy, Subscription::new().topic("Counted")).unwrap();

    let env = Envelope::new(Counted { value: 3, clones: clones.clone() }).to(receiver);
    s.send(env.direct().unwrap());
    s.run().unwrap();

    assert_eq!(s.agent::<Keeper>(receiver).unwrap().got.len(), 1);
    assert!(s.agent::<Keeper>(spy).unwrap().got.is_empty());
    assert_eq!(clones.load(Ordering::SeqCst), 0);
}

#[test]
fn unknown_receiver_is_a_dead_letter() {
    let mut s = Scheduler::simulated();
    let keeper = s.add(Keeper::default()).unwrap();
    s.send(Envelope::new(Note(1)).to(AgentId(404)));
    s.send(Envelope::new(Note(2)).to(keeper));
    let report = s.run().unwrap();

    assert_eq!(report.stats.dead_letters, 1);
    assert_eq!(s.stats().dead_letters, 1);
    assert_eq!(report.stats.messages, 2);
    assert_eq!(s.agent::<Keeper>(keeper).unwrap().got.len(), 1, "good mail still arrives");
}

#[test]
fn dead_letter_from_an_agent_is_counted_and_the_run_goes_on() {
    struct Misdirector;
    impl Agent for Misdirector {
        async fn update(&mut self, cx: &Cx) {
            while cx.try_recv().is_some() {
                cx.send(Envelope::new(Note(0)).to(AgentId(12345)));
            }
        }
    }
    let mut s = Scheduler::simulated();
    let m = s.add(Misdirector).unwrap();
    s.send(Envelope::new(Note(1)).to(m));
    s.send(Envelope::new(Note(2)).to(m));
    let report = s.run().unwrap();
    assert_eq!(report.stats.dead_letters, 2);
    assert_eq!(report.reason, StopReason::Idle);
}

#[test]
fn subscribers_still_hear_mail_for_an_unknown_receiver() {
    let mut s = Scheduler::simulated();
    let spy = s.add(Keeper::default()).unwrap();
    s.subscribe(spy, Subscription::new().topic("Note")).unwrap();
    s.send(Envelope::new(Note(1)).to(AgentId(404)));
    let report = s.run().unwrap();
    assert_eq!(report.stats.dead_letters, 1);
    assert_eq!(s.agent::<Keeper>(spy).unwrap().got.len(), 1);
}

#[test]
fn unread_mail_of_a_removed_agent_counts_as_dead_letters() {
    let mut s = Scheduler::simulated();
    let keeper = s.add(Keeper::default()).unwrap();
    s.send(Envelope::new(Note(1)).to(keeper));
    s.send(Envelope::new(Note(2)).to(keeper));
    s.deliver_mail().unwrap();
    assert_eq!(s.inbox_len(keeper), Ok(2));
    s.remove(keeper).unwrap();
    assert_eq!(s.stats().dead_letters, 2);
}

#[test]
fn mail_to_a_removed_agent_is_a_dead_letter() {
    let mut s = Scheduler::simulated();
    let keeper = s.add(Keeper::default()).unwrap();
    s.remove(keeper).unwrap();
    s.send(Envelope::new(Note(1)).to(keeper));
    let report = s.run().unwrap();
    assert_eq!(report.stats.dead_letters, 1);
}

#[test]
fn mail_arrives_in_send_order_with_released_alarms_after() {
    struct Talker {
        to: AgentId,
        say: Vec<&'static str>,
    }
    impl Agent for Talker {
        async fn update(&mut self, cx: &Cx) {
            while cx.try_recv().is_some() {
                for word in &self.say {
                    cx.send(Envelope::new(Note(0)).to(self.to).topic_is(*word));
                }
            }
        }
    }
    let mut s = Scheduler::simulated();
    let keeper = s.add(Keeper::default()).unwrap();
    let a = s.add(Talker { to: keeper, say: vec!["a1", "a2"] }).unwrap();
    let b = s.add(Talker { to: keeper, say: vec!["b1"] }).unwrap();
    // Due in the first round; released after the round's updates.
    s.set_alarm(Alarm::at(0.0, Envelope::new(Note(0)).to(keeper).topic_is("alarm"))).unwrap();
    // Outside mail, sent b first: the round still updates a before b.
    s.send(Envelope::new(Note(0)).to(b));
    s.send(Envelope::new(Note(0)).to(a));
    s.run().unwrap();

    let topics: Vec<String> =
        s.agent::<Keeper>(keeper).unwrap().got.iter().map(|e| e.topic().to_string()).collect();
    assert_eq!(topics, ["a1", "a2", "b1", "alarm"]);
}

/// A small system with subscriptions, alarms and chatter; returns its trace.
fn chatter_trace() -> (Vec<String>, Stats) {
    type Trace = Rc<RefCell<Vec<String>>>;
    struct Chatter {
        peers: Vec<AgentId>,
        trace: Trace,
        left: u32,
    }
    impl Agent for Chatter {
        async fn setup(&mut self, cx: &Cx) {
            cx.subscribe(Subscription::new().topic("gossip")).unwrap();
        }
        async fn update(&mut self, cx: &Cx) {
            while let Some(env) = cx.try_recv() {
                let n = *env.payload::<u32>().unwrap();
                self.trace.borrow_mut().push(format!(
                    "t={} {} got {} from {} to {:?} n={}",
                    cx.now(),
                    cx.id(),
                    env.topic(),
                    env.sender(),
                    env.receiver(),
                    n
                ));
                if self.left == 0 {
                    continue;
                }
                self.left -= 1;
                for (i, &peer) in self.peers.iter().enumerate() {
                    let topic = if i % 2 == 0 { "gossip" } else { "news" };
                    cx.send(Envelope::new(n + 1).to(peer).topic_is(topic));
                }
                cx.set_alarm(Alarm::after(
                    0.5 * f64::from(n % 3 + 1),
                    Envelope::new(n + 10).to(cx.id()),
                ))
                .unwrap();
            }
        }
    }
    let trace: Trace = Rc::default();
    let mut s = Scheduler::simulated();
    let ids: Vec<AgentId> = (1..=5).map(AgentId).collect();
    for &id in &ids {
        let peers = ids.iter().copied().filter(|&p| p != id).collect();
        s.add_with_id(id, Chatter { peers, trace: trace.clone(), left: 4 }).unwrap();
    }
    s.subscribe(AgentId(3), Subscription::new().sender(AgentId(1))).unwrap();
    s.subscribe(AgentId(3), Subscription::new().receiver(AgentId(4)).topic("news")).unwrap();
    s.send(Envelope::new(0u32).to(AgentId(1)));
    s.send(Envelope::new(0u32).to(AgentId(4)).topic_is("news"));
    s.run().unwrap();
    let stats = s.stats();
    let trace = trace.borrow().clone();
    (trace, stats)
}

#[test]
fn delivery_order_is_deterministic() {
    let (first, first_stats) = chatter_trace();
    let (second, second_stats) = chatter_trace();
    assert!(first.len() > 50, "the program must do something: {} events", first.len());
    assert_eq!(first, second);
    assert_eq!(first_stats, second_stats);
}

#[test]
fn send_signs_a_new_envelope_and_keeps_a_named_sender() {
    let mut s = Scheduler::simulated();
    let keeper = s.add(Keeper::default()).unwrap();
    let broker = s
        .spawn(move |cx| async move {
            cx.recv().await;
            cx.send(Envelope::new(Note(1)).to(keeper));
            cx.send(Envelope::new(Note(2)).from(AgentId(42)).to(keeper));
        })
        .unwrap();
    s.send(Envelope::new(Note(0)).to(broker));
    s.run().unwrap();
    let senders: Vec<AgentId> =
        s.agent::<Keeper>(keeper).unwrap().got.iter().map(|e| e.sender()).collect();
    assert_eq!(senders, [broker, AgentId(42)]);
}

#[test]
fn replying_to_a_broadcast_is_an_error_that_says_so() {
    let mut env = Envelope::new(Note(1)).from(AgentId(1));
    assert_eq!(env.reply(), Err(Error::NoReceiver));
}
