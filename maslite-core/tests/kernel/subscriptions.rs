//! Subscriptions: who gets a copy of what, through the scheduler and through
//! an agent's `Cx`.

use maslite_core::{Agent, AgentId, Cx, Envelope, Scheduler, Subscription};

#[derive(Clone, Debug, PartialEq)]
struct Trial;

/// Takes nothing out of its inbox: tests read the inbox directly.
struct Idle;

impl Agent for Idle {
    async fn update(&mut self, _cx: &Cx) {}
}

/// Keeps what it receives.
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

fn inbox_lens(s: &Scheduler, ids: &[AgentId]) -> Vec<usize> {
    ids.iter().map(|&id| s.inbox_len(id).unwrap()).collect()
}

fn clear_inboxes(s: &Scheduler, ids: &[AgentId]) {
    for &id in ids {
        s.take_inbox(id).unwrap();
    }
}

#[test]
fn spies_get_what_their_patterns_match() {
    // maslite's test_message_and_broadcast_subscriptions.
    let mut s = Scheduler::simulated();
    let ids: Vec<AgentId> = (0..7).map(|_| s.add(Idle).unwrap()).collect();
    let [a, b, c, spy_a_b, spy_b_hello, spy_hello, spy_all_c] = ids[..] else { unreachable!() };
    s.subscribe(spy_a_b, Subscription::new().sender(a).receiver(b)).unwrap();
    s.subscribe(spy_b_hello, Subscription::new().sender(b).topic("Hello")).unwrap();
    s.subscribe(spy_hello, Subscription::new().topic("Hello")).unwrap();
    s.subscribe(spy_all_c, Subscription::new().sender(c)).unwrap();
    s.subscribe(spy_all_c, Subscription::new().receiver(c)).unwrap();

    let cases: [(Envelope, [usize; 7]); 6] = [
        // a→b Hello: b, spy_a_b, spy_hello.
        (Envelope::new(Trial).from(a).to(b).topic_is("Hello"), [0, 1, 0, 1, 0, 1, 0]),
        // b→a Hello: a, spy_b_hello, spy_hello.
        (Envelope::new(Trial).from(b).to(a).topic_is("Hello"), [1, 0, 0, 0, 1, 1, 0]),
        // b→c Hello: c, spy_b_hello, spy_hello, spy_all_c.
        (Envelope::new(Trial).from(b).to(c).topic_is("Hello"), [0, 0, 1, 0, 1, 1, 1]),
        // broadcast from c, Hello: spy_hello, spy_all_c.
        (Envelope::new(Trial).from(c).topic_is("Hello"), [0, 0, 0, 0, 0, 1, 1]),
        // a→b another topic: b, spy_a_b.
        (Envelope::new(Trial).from(a).to(b).topic_is("How are you?"), [0, 1, 0, 1, 0, 0, 0]),
        // a→b direct: b only.
        (
            Envelope::new(Trial).from(a).to(b).topic_is("How are you, really?").direct().unwrap(),
            [0, 1, 0, 0, 0, 0, 0],
        ),
    ];
    for (i, (env, expected)) in cases.into_iter().enumerate() {
        s.send(env);
        s.deliver_mail().unwrap();
        assert_eq!(inbox_lens(&s, &ids), expected, "message {}", i + 1);
        clear_inboxes(&s, &ids);
    }
}

#[test]
fn every_one_or_two_field_pattern_is_accepted_and_matches() {
    let mut s = Scheduler::simulated();
    let a = s.add(Idle).unwrap();
    let b = s.add(Idle).unwrap();
    let patterns = [
        Subscription::new().sender(a),
        Subscription::new().receiver(b),
        Subscription::new().topic("Hello"),
        Subscription::new().sender(a).receiver(b),
        Subscription::new().sender(a).topic("Hello"),
        Subscription::new().receiver(b).topic("Hello"),
    ];
    let spies: Vec<AgentId> = patterns
        .iter()
        .map(|p| {
            let spy = s.add(Idle).unwrap();
            s.subscribe(spy, p.clone()).unwrap();
            spy
        })
        .collect();

    // Matches all six patterns.
    s.send(Envelope::new(Trial).from(a).to(b).topic_is("Hello"));
    s.deliver_mail().unwrap();
    assert_eq!(inbox_lens(&s, &spies), [1; 6]);
    clear_inboxes(&s, &spies);

    // Matches none: other sender, receiver and topic.
    s.send(Envelope::new(Trial).from(b).to(a).topic_is("Bye"));
    s.deliver_mail().unwrap();
    assert_eq!(inbox_lens(&s, &spies), [0; 6]);

    // Same sender and receiver, other topic: only the topic-free patterns.
    s.send(Envelope::new(Trial).from(a).to(b).topic_is("Bye"));
    s.deliver_mail().unwrap();
    assert_eq!(inbox_lens(&s, &spies), [1, 1, 0, 1, 0, 0]);
}

#[test]
fn agent_matching_two_patterns_gets_one_copy() {
    let mut s = Scheduler::simulated();
    let a = s.add(Idle).unwrap();
    let b = s.add(Idle).unwrap();
    let spy = s.add(Idle).unwrap();
    s.subscribe(spy, Subscription::new().sender(a)).unwrap();
    s.subscribe(spy, Subscription::new().topic("Hello")).unwrap();
    s.subscribe(spy, Subscription::new().sender(a).receiver(b)).unwrap();
    s.send(Envelope::new(Trial).from(a).to(b).topic_is("Hello"));
    s.deliver_mail().unwrap();
    assert_eq!(s.inbox_len(spy), Ok(1));
    assert_eq!(s.inbox_len(b), Ok(1));
}

#[test]
fn receiver_that_also_subscribes_gets_the_message_once() {
    let mut s = Scheduler::simulated();
    let a = s.add(Idle).unwrap();
    let b = s.add(Idle).unwrap();
    s.subscribe(b, Subscription::new().receiver(b)).unwrap();
    s.subscribe(b, Subscription::new().topic("Hello")).unwrap();
    s.send(Envelope::new(Trial).from(a).to(b).topic_is("Hello"));
    s.deliver_mail().unwrap();
    assert_eq!(s.inbox_len(b), Ok(1));
}

#[test]
fn subscribing_twice_to_one_pattern_is_the_same_as_once() {
    let mut s = Scheduler::simulated();
    let spy = s.add(Idle).unwrap();
    let pattern = Subscription::new().topic("Hello");
    s.subscribe(spy, pattern.clone()).unwrap();
    s.subscribe(spy, pattern.clone()).unwrap();
    assert_eq!(s.subscriptions(spy), std::slice::from_ref(&pattern));
    assert_eq!(s.subscribers(&pattern), [spy]);
    s.send(Envelope::new(Trial).topic_is("Hello"));
    s.deliver_mail().unwrap();
    assert_eq!(s.inbox_len(spy), Ok(1));
    // One unsubscribe undoes it.
    s.unsubscribe(spy, &pattern).unwrap();
    assert!(s.subscriptions(spy).is_empty());
}

#[test]
fn direct_message_ignores_subscriptions() {
    let mut s = Scheduler::simulated();
    let a = s.add(Idle).unwrap();
    let b = s.add(Idle).unwrap();
    let spy = s.add(Idle).unwrap();
    s.subscribe(spy, Subscription::new().sender(a)).unwrap();
    s.subscribe(spy, Subscription::new().receiver(b)).unwrap();
    s.subscribe(spy, Subscription::new().topic("Trial")).unwrap();
    let env = Envelope::new(Trial).from(a).to(b).direct().unwrap();
    assert_eq!(s.recipients(&env), [b]);
    s.send(env);
    s.deliver_mail().unwrap();
    assert_eq!(s.inbox_len(b), Ok(1));
    assert_eq!(s.inbox_len(spy), Ok(0));
}

#[test]
fn broadcast_goes_to_matching_subscribers_only() {
    let mut s = Scheduler::simulated();
    let a = s.add(Idle).unwrap();
    let listener = s.add(Idle).unwrap();
    let deaf = s.add(Idle).unwrap();
    s.subscribe(listener, Subscription::new().topic("news")).unwrap();
    s.subscribe(deaf, Subscription::new().topic("sports")).unwrap();
    s.send(Envelope::new(Trial).from(a).topic_is("news"));
    s.deliver_mail().unwrap();
    assert_eq!(inbox_lens(&s, &[a, listener, deaf]), [0, 1, 0]);
}

#[test]
fn broadcast_nobody_hears_is_counted_as_unheard() {
    let mut s = Scheduler::simulated();
    s.add(Idle).unwrap();
    s.send(Envelope::new(Trial).topic_is("into the void"));
    let report = s.run().unwrap();
    assert_eq!(report.stats.unheard, 1);
    assert_eq!(report.stats.dead_letters, 0, "a broadcast has no receiver to miss");
}

#[test]
fn default_topic_is_the_payload_type_name() {
    let mut s = Scheduler::simulated();
    let spy = s.add(Idle).unwrap();
    s.subscribe(spy, Subscription::new().topic("Trial")).unwrap();
    s.send(Envelope::new(Trial));
    s.send(Envelope::new(5u32));
    s.deliver_mail().unwrap();
    let got = s.take_inbox(spy).unwrap();
    assert_eq!(got.len(), 1);
    assert!(got[0].is::<Trial>());
}

#[test]
fn recipients_are_the_receiver_first_then_subscribers_each_once() {
    let mut s = Scheduler::simulated();
    let a = s.add(Idle).unwrap();
    let b = s.add(Idle).unwrap();
    let spy_1 = s.add(Idle).unwrap();
    let spy_2 = s.add(Idle).unwrap();
    s.subscribe(spy_2, Subscription::new().topic("Hello")).unwrap();
    s.subscribe(spy_1, Subscription::new().sender(a)).unwrap();
    s.subscribe(spy_1, Subscription::new().receiver(b)).unwrap();
    s.subscribe(b, Subscription::new().sender(a)).unwrap();
    let recipients = s.recipients(&Envelope::new(Trial).from(a).to(b).topic_is("Hello"));
    assert_eq!(recipients.first(), Some(&b));
    let mut rest = recipients[1..].to_vec();
    rest.sort();
    assert_eq!(rest, [spy_1, spy_2]);
}

#[test]
fn recipients_are_resolved_at_delivery_not_at_send() {
    /// Announces news and writes to agent 5 in its setup, before anyone
    /// listens and before agent 5 exists.
    struct Herald;
    impl Agent for Herald {
        async fn setup(&mut self, cx: &Cx) {
            cx.send(Envelope::new(Trial).topic_is("news"));
            cx.send(Envelope::new(Trial).to(AgentId(5)).topic_is("letter"));
        }
        async fn update(&mut self, _cx: &Cx) {}
    }
    let mut s = Scheduler::simulated();
    s.add(Herald).unwrap();
    let late = s.add(Keeper::default()).unwrap();
    s.subscribe(late, Subscription::new().topic("news")).unwrap();
    s.add_with_id(AgentId(5), Keeper::default()).unwrap();

    let report = s.run().unwrap();
    assert_eq!(report.stats.dead_letters, 0);
    assert_eq!(report.stats.unheard, 0);
    let topics = |id| -> Vec<String> {
        s.agent::<Keeper>(id).unwrap().got.iter().map(|e| e.topic().to_string()).collect()
    };
    assert_eq!(topics(late), ["news"]);
    assert_eq!(topics(AgentId(5)), ["letter"]);
}

#[test]
fn unsubscribed_agent_gets_no_more_copies() {
    let mut s = Scheduler::simulated();
    let spy = s.add(Idle).unwrap();
    let by_topic = Subscription::new().topic("Hello");
    let by_receiver = Subscription::new().receiver(AgentId(99));
    s.subscribe(spy, by_topic.clone()).unwrap();
    s.subscribe(spy, by_receiver.clone()).unwrap();

    s.unsubscribe(spy, &by_topic).unwrap();
    assert_eq!(s.subscriptions(spy), std::slice::from_ref(&by_receiver));
    assert!(s.subscribers(&by_topic).is_empty());
    s.send(Envelope::new(Trial).topic_is("Hello"));
    s.deliver_mail().unwrap();
    assert_eq!(s.inbox_len(spy), Ok(0));

    // Unsubscribing from what one is not subscribed to is fine.
    s.unsubscribe(spy, &by_topic).unwrap();

    s.unsubscribe_all(spy);
    assert!(s.subscriptions(spy).is_empty());
    assert!(s.subscribers(&by_receiver).is_empty());
}

#[test]
fn subscriptions_are_listed_in_the_order_made_and_subscribers_in_order_joined() {
    let mut s = Scheduler::simulated();
    let a = s.add(Idle).unwrap();
    let b = s.add(Idle).unwrap();
    let c = s.add(Idle).unwrap();
    let fish_b = Subscription::new().receiver(b).topic("fish");
    let fish_c = Subscription::new().receiver(c).topic("fish");
    let physics = Subscription::new().topic("quantum physics");
    s.subscribe(a, fish_b.clone()).unwrap();
    s.subscribe(a, fish_c.clone()).unwrap();
    s.subscribe(a, physics.clone()).unwrap();
    s.subscribe(c, Subscription::new().receiver(a)).unwrap();
    s.subscribe(b, physics.clone()).unwrap();

    assert_eq!(s.subscriptions(a), [fish_b, fish_c, physics.clone()]);
    assert!(s.subscriptions(AgentId(12345)).is_empty());
    assert_eq!(s.subscriptions(c), [Subscription::new().receiver(a)]);
    assert_eq!(s.subscribers(&physics), [a, b]);

    // maslite's `unsubscribe(everything=True)` then a fresh subscription.
    s.unsubscribe_all(c);
    assert!(s.subscriptions(c).is_empty());
    s.subscribe(c, Subscription::new().receiver(c)).unwrap();
    assert_eq!(s.subscriptions(c), [Subscription::new().receiver(c)]);
    assert_eq!(s.subscriptions(a).len(), 3, "others keep theirs");
}

#[test]
fn removed_agent_loses_its_subscriptions() {
    let mut s = Scheduler::simulated();
    let spy = s.add(Idle).unwrap();
    let pattern = Subscription::new().topic("Hello");
    s.subscribe(spy, pattern.clone()).unwrap();
    s.remove(spy).unwrap();
    assert!(s.subscriptions(spy).is_empty());
    assert!(s.subscribers(&pattern).is_empty());
    s.send(Envelope::new(Trial).topic_is("Hello"));
    let report = s.run().unwrap();
    assert_eq!(report.stats.unheard, 1);
}

#[test]
fn topic_that_is_not_a_registered_agent_id_is_fine() {
    let mut s = Scheduler::simulated();
    let spy = s.add_with_id(AgentId(1), Idle).unwrap();
    s.subscribe(spy, Subscription::new().topic("2")).unwrap();
    s.subscribe(spy, Subscription::new().topic("one")).unwrap();
    assert_eq!(s.subscriptions(spy).len(), 2);
}

#[test]
fn agents_manage_their_subscriptions_through_cx() {
    #[derive(Default)]
    struct Subscriber {
        after_setup: Vec<Subscription>,
        got: Vec<String>,
        listing: Vec<Vec<Subscription>>,
    }
    impl Agent for Subscriber {
        async fn setup(&mut self, cx: &Cx) {
            cx.subscribe(Subscription::new().topic("news")).unwrap();
            cx.subscribe(Subscription::new().topic("weather")).unwrap();
            self.after_setup = cx.subscriptions();
        }
        async fn update(&mut self, cx: &Cx) {
            while let Some(env) = cx.try_recv() {
                self.got.push(env.topic().to_string());
                match env.topic() {
                    "stop news" => cx.unsubscribe(&Subscription::new().topic("news")).unwrap(),
                    "stop all" => cx.unsubscribe_all(),
                    _ => {}
                }
                self.listing.push(cx.subscriptions());
            }
        }
    }
    let mut s = Scheduler::simulated();
    let sub = s.add(Subscriber::default()).unwrap();
    let news = Subscription::new().topic("news");
    let weather = Subscription::new().topic("weather");
    assert_eq!(s.agent::<Subscriber>(sub).unwrap().after_setup, [news.clone(), weather.clone()]);
    assert_eq!(s.subscribers(&news), [sub]);

    s.send(Envelope::new(Trial).topic_is("news"));
    s.run().unwrap();
    s.send(Envelope::new(Trial).to(sub).topic_is("stop news"));
    s.run().unwrap();
    s.send(Envelope::new(Trial).topic_is("news"));
    s.send(Envelope::new(Trial).topic_is("weather"));
    s.run().unwrap();
    s.send(Envelope::new(Trial).to(sub).topic_is("stop all"));
    s.run().unwrap();
    s.send(Envelope::new(Trial).topic_is("weather"));
    s.run().unwrap();

    let agent = s.agent::<Subscriber>(sub).unwrap();
    assert_eq!(agent.got, ["news", "stop news", "weather", "stop all"]);
    assert_eq!(
        agent.listing,
        [vec![news.clone(), weather.clone()], vec![weather.clone()], vec![weather.clone()], vec![],]
    );
}

#[test]
fn cx_lists_the_subscribers_of_a_pattern() {
    struct Census {
        seen: Vec<AgentId>,
    }
    impl Agent for Census {
        async fn update(&mut self, cx: &Cx) {
            while cx.try_recv().is_some() {
                self.seen = cx.subscribers(&Subscription::new().topic("Hello"));
            }
        }
    }
    let mut s = Scheduler::simulated();
    let census = s.add(Census { seen: vec![] }).unwrap();
    let x = s.add(Idle).unwrap();
    let y = s.add(Idle).unwrap();
    s.subscribe(y, Subscription::new().topic("Hello")).unwrap();
    s.subscribe(x, Subscription::new().topic("Hello")).unwrap();
    s.send(Envelope::new(Trial).to(census));
    s.run().unwrap();
    assert_eq!(s.agent::<Census>(census).unwrap().seen, [y, x]);
}
