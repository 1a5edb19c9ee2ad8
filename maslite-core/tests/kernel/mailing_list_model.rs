//! The mailing list against a reference model: a plain list of
//! (subscriber, pattern) pairs searched linearly.

use maslite_core::{AgentId, Error, MailingList, Subscription};
use proptest::prelude::*;
use std::collections::BTreeSet;

const TOPICS: [&str; 3] = ["a", "b", "c"];
/// Message topics include one nobody can subscribe to.
const MESSAGE_TOPICS: [&str; 4] = ["a", "b", "c", "d"];

#[derive(Clone, Debug)]
enum Op {
    Subscribe(AgentId, Subscription),
    Unsubscribe(AgentId, Subscription),
    UnsubscribeAll(AgentId),
}

#[derive(Clone, Debug)]
struct Message {
    sender: AgentId,
    receiver: Option<AgentId>,
    topic: &'static str,
    direct: bool,
}

fn agent() -> impl Strategy<Value = AgentId> {
    (1u64..=4).prop_map(AgentId)
}

/// Any pattern, valid or not (each field named half the time).
fn pattern() -> impl Strategy<Value = Subscription> {
    (
        proptest::option::of(agent()),
        proptest::option::of(agent()),
        proptest::option::of(proptest::sample::select(&TOPICS[..])),
    )
        .prop_map(|(sender, receiver, topic)| Subscription {
            sender,
            receiver,
            topic: topic.map(Into::into),
        })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (agent(), pattern()).prop_map(|(a, p)| Op::Subscribe(a, p)),
        2 => (agent(), pattern()).prop_map(|(a, p)| Op::Unsubscribe(a, p)),
        1 => agent().prop_map(Op::UnsubscribeAll),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    (
        (1u64..=5).prop_map(AgentId),
        proptest::option::of((1u64..=5).prop_map(AgentId)),
        proptest::sample::select(&MESSAGE_TOPICS[..]),
        any::<bool>(),
    )
        .prop_map(|(sender, receiver, topic, direct)| Message {
            sender,
            receiver,
            topic,
            direct,
        })
}

/// The reference: subscriptions in the order made, no duplicates.
#[derive(Default)]
struct Model {
    pairs: Vec<(AgentId, Subscription)>,
}

fn named(p: &Subscription) -> usize {
    usize::from(p.sender.is_some())
        + usize::from(p.receiver.is_some())
        + usize::from(p.topic.is_some())
}

fn pattern_matches(p: &Subscription, m: &Message) -> bool {
    p.sender.is_none_or(|s| s == m.sender)
        && p.receiver.is_none_or(|r| Some(r) == m.receiver)
        && p.topic.as_ref().is_none_or(|t| t.as_str() == m.topic)
}

impl Model {
    fn subscribe(&mut self, a: AgentId, p: Subscription) {
        if !self.pairs.iter().any(|(x, q)| *x == a && *q == p) {
            self.pairs.push((a, p));
        }
    }
    fn unsubscribe(&mut self, a: AgentId, p: &Subscription) {
        self.pairs.retain(|(x, q)| !(*x == a && q == p));
    }
    fn unsubscribe_all(&mut self, a: AgentId) {
        self.pairs.retain(|(x, _)| *x != a);
    }
    fn subscriptions(&self, a: AgentId) -> Vec<Subscription> {
        self.pairs.iter().filter(|(x, _)| *x == a).map(|(_, p)| p.clone()).collect()
    }
    fn subscribers(&self, p: &Subscription) -> Vec<AgentId> {
        self.pairs.iter().filter(|(_, q)| q == p).map(|(x, _)| *x).collect()
    }
    fn recipients(&self, m: &Message) -> Vec<AgentId> {
        let mut out: Vec<AgentId> = m.receiver.into_iter().collect();
        if m.direct {
            return out;
        }
        for (x, p) in &self.pairs {
            if pattern_matches(p, m) && !out.contains(x) {
                out.push(*x);
            }
        }
        out
    }
    fn topics(&self) -> Vec<String> {
        let set: BTreeSet<String> = self
            .pairs
            .iter()
            .filter_map(|(_, p)| p.topic.as_ref().map(|t| t.to_string()))
            .collect();
        set.into_iter().collect()
    }
}

fn check_agrees(
    list: &MailingList,
    model: &Model,
    probe: &Subscription,
    messages: &[Message],
) -> Result<(), TestCaseError> {
    prop_assert_eq!(list.len(), model.pairs.len());
    prop_assert_eq!(list.is_empty(), model.pairs.is_empty());
    for a in (1..=5).map(AgentId) {
        prop_assert_eq!(list.subscriptions(a), model.subscriptions(a), "subscriptions of {}", a);
    }
    let mut patterns: Vec<Subscription> = model.pairs.iter().map(|(_, p)| p.clone()).collect();
    patterns.push(probe.clone());
    for p in &patterns {
        prop_assert_eq!(list.subscribers(p), model.subscribers(p), "subscribers of {:?}", p);
    }
    let topics: Vec<String> = list.topics().iter().map(|t| t.to_string()).collect();
    prop_assert_eq!(topics, model.topics());
    for m in messages {
        let got = list.recipients(m.sender, m.receiver, m.topic, m.direct);
        let want = model.recipients(m);
        if let Some(r) = m.receiver {
            prop_assert_eq!(got.first(), Some(&r), "receiver first for {:?}", m);
        }
        let got_set: BTreeSet<AgentId> = got.iter().copied().collect();
        prop_assert_eq!(got_set.len(), got.len(), "each recipient once: {:?} for {:?}", got, m);
        let want_set: BTreeSet<AgentId> = want.iter().copied().collect();
        prop_assert_eq!(got_set, want_set, "recipients of {:?}", m);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn mailing_list_agrees_with_the_reference_model(
        steps in proptest::collection::vec(
            (op(), proptest::collection::vec(message(), 4)),
            1..40,
        )
    ) {
        let mut list = MailingList::new();
        let mut model = Model::default();
        for (op, messages) in steps {
            let probe = match &op {
                Op::Subscribe(a, p) | Op::Unsubscribe(a, p) => {
                    let valid = (1..=2).contains(&named(p));
                    let result = match &op {
                        Op::Subscribe(..) => list.subscribe(*a, p.clone()),
                        _ => list.unsubscribe(*a, p),
                    };
                    if valid {
                        prop_assert_eq!(result, Ok(()));
                        match &op {
                            Op::Subscribe(..) => model.subscribe(*a, p.clone()),
                            _ => model.unsubscribe(*a, p),
                        }
                    } else {
                        prop_assert_eq!(
                            result,
                            Err(Error::InvalidSubscription { subscriber: *a, named: named(p) })
                        );
                    }
                    p.clone()
                }
                Op::UnsubscribeAll(a) => {
                    list.unsubscribe_all(*a);
                    model.unsubscribe_all(*a);
                    Subscription::new().sender(*a)
                }
            };
            check_agrees(&list, &model, &probe, &messages)?;
        }
    }
}

#[test]
fn recipients_of_a_direct_message_are_its_receiver_only() {
    let mut list = MailingList::new();
    list.subscribe(AgentId(2), Subscription::new().receiver(AgentId(1))).unwrap();
    assert_eq!(list.recipients(AgentId(3), Some(AgentId(1)), "x", true), [AgentId(1)]);
    assert_eq!(list.recipients(AgentId(3), Some(AgentId(1)), "x", false), [AgentId(1), AgentId(2)]);
}

#[test]
fn invalid_patterns_change_nothing() {
    let mut list = MailingList::new();
    list.subscribe(AgentId(1), Subscription::new().topic("a")).unwrap();
    let three = Subscription::new().sender(AgentId(1)).receiver(AgentId(2)).topic("a");
    assert!(list.subscribe(AgentId(1), three.clone()).is_err());
    assert!(list.subscribe(AgentId(1), Subscription::new()).is_err());
    assert!(list.unsubscribe(AgentId(1), &Subscription::new()).is_err());
    assert!(list.unsubscribe(AgentId(1), &three).is_err());
    assert_eq!(list.len(), 1);
    assert_eq!(list.subscriptions(AgentId(1)), [Subscription::new().topic("a")]);
}
