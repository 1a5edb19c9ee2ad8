//! The mailing list: who gets a copy of what.
//!
//! A subscription is a pattern over (sender, receiver, topic) that names one
//! or two of the three; an unnamed field matches anything. The recipients of
//! a non-direct message are its receiver plus every subscriber whose pattern
//! matches, each once. A direct message goes to its receiver only.
//!
//! There is one map per kind of pattern (six kinds), so finding the
//! subscribers of a message is at most six hash look-ups, and none at all
//! while nobody subscribes: point-to-point mail never touches this file.
//! Topic look-ups take `&str` (no allocation) and are skipped while nobody
//! subscribes by topic, so a message's default topic is not even computed.

use crate::error::{Error, Result};
use crate::id::AgentId;
use crate::topic::Topic;
use rustc_hash::{FxHashMap, FxHashSet};

/// A pattern over (sender, receiver, topic). `None` matches anything; a valid
/// subscription names one or two fields.
///
/// ```
/// use maslite_core::{AgentId, Subscription};
/// let spy = Subscription::new().sender(AgentId(1)).topic("Hello");
/// assert_eq!(spy.named(), 2);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Subscription {
    /// Match messages from this sender.
    pub sender: Option<AgentId>,
    /// Match messages to this receiver.
    pub receiver: Option<AgentId>,
    /// Match messages with this topic.
    pub topic: Option<Topic>,
}

impl Subscription {
    /// An empty pattern, to be narrowed with [`sender`](Self::sender),
    /// [`receiver`](Self::receiver) and [`topic`](Self::topic).
    pub fn new() -> Subscription {
        Subscription::default()
    }

    /// Matches only messages from `sender`.
    pub fn sender(mut self, sender: AgentId) -> Subscription {
        self.sender = Some(sender);
        self
    }

    /// Matches only messages to `receiver`.
    pub fn receiver(mut self, receiver: AgentId) -> Subscription {
        self.receiver = Some(receiver);
        self
    }

    /// Matches only messages with `topic`.
    pub fn topic(mut self, topic: impl Into<Topic>) -> Subscription {
        self.topic = Some(topic.into());
        self
    }

    /// How many of the three fields are named.
    pub fn named(&self) -> usize {
        self.sender.is_some() as usize
            + self.receiver.is_some() as usize
            + self.topic.is_some() as usize
    }

    /// Whether a message with these fields matches the pattern.
    pub fn matches(&self, sender: AgentId, receiver: Option<AgentId>, topic: &str) -> bool {
        self.sender.is_none_or(|s| s == sender)
            && self.receiver.is_none_or(|r| Some(r) == receiver)
            && self.topic.as_ref().is_none_or(|t| t.as_str() == topic)
    }

    /// Whether `subscriber` may subscribe to this pattern: one or two of
    /// sender, receiver and topic named, else
    /// [`Error::InvalidSubscription`].
    pub fn validate(&self, subscriber: AgentId) -> Result<()> {
        match self.named() {
            1 | 2 => Ok(()),
            named => Err(Error::InvalidSubscription { subscriber, named }),
        }
    }
}

type Subscribers = Vec<AgentId>;

/// All subscriptions of one scheduler.
#[derive(Default)]
pub struct MailingList {
    sender: FxHashMap<AgentId, Subscribers>,
    receiver: FxHashMap<AgentId, Subscribers>,
    topic: FxHashMap<Topic, Subscribers>,
    sender_receiver: FxHashMap<(AgentId, AgentId), Subscribers>,
    sender_topic: FxHashMap<AgentId, FxHashMap<Topic, Subscribers>>,
    receiver_topic: FxHashMap<AgentId, FxHashMap<Topic, Subscribers>>,
    by_subscriber: FxHashMap<AgentId, Vec<Subscription>>,
    /// Subscriptions that name a topic; while zero, topics are never looked at.
    with_topic: usize,
    total: usize,
}

impl MailingList {
    /// An empty mailing list.
    pub fn new() -> MailingList {
        MailingList::default()
    }

    /// Whether nobody subscribes to anything.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The number of (subscriber, pattern) pairs.
    pub fn len(&self) -> usize {
        self.total
    }

    /// Adds `subscriber` to the pattern. Subscribing twice to the same pattern
    /// is the same as once.
    pub fn subscribe(&mut self, subscriber: AgentId, pattern: Subscription) -> Result<()> {
        pattern.validate(subscriber)?;
        let mine = self.by_subscriber.entry(subscriber).or_default();
        if mine.contains(&pattern) {
            return Ok(());
        }
        mine.push(pattern.clone());
        self.total += 1;
        if pattern.topic.is_some() {
            self.with_topic += 1;
        }
        self.list_mut(pattern).push(subscriber);
        Ok(())
    }

    /// Removes `subscriber` from the pattern; not being subscribed is fine.
    pub fn unsubscribe(&mut self, subscriber: AgentId, pattern: &Subscription) -> Result<()> {
        pattern.validate(subscriber)?;
        let Some(mine) = self.by_subscriber.get_mut(&subscriber) else {
            return Ok(());
        };
        let Some(pos) = mine.iter().position(|p| p == pattern) else {
            return Ok(());
        };
        mine.remove(pos);
        if mine.is_empty() {
            self.by_subscriber.remove(&subscriber);
        }
        self.forget(subscriber, pattern);
        Ok(())
    }

    /// Removes every subscription of `subscriber`; returns how many.
    pub fn unsubscribe_all(&mut self, subscriber: AgentId) -> usize {
        let Some(mine) = self.by_subscriber.remove(&subscriber) else { return 0 };
        for pattern in &mine {
            self.forget(subscriber, pattern);
        }
        mine.len()
    }

    /// The patterns `subscriber` is subscribed to, in the order subscribed.
    pub fn subscriptions(&self, subscriber: AgentId) -> Vec<Subscription> {
        self.by_subscriber.get(&subscriber).cloned().unwrap_or_default()
    }

    /// The subscribers of exactly this pattern, in the order they subscribed.
    pub fn subscribers(&self, pattern: &Subscription) -> Vec<AgentId> {
        let list = match (pattern.sender, pattern.receiver, &pattern.topic) {
            (Some(s), None, None) => self.sender.get(&s),
            (None, Some(r), None) => self.receiver.get(&r),
            (None, None, Some(t)) => self.topic.get(t),
            (Some(s), Some(r), None) => self.sender_receiver.get(&(s, r)),
            (Some(s), None, Some(t)) => self.sender_topic.get(&s).and_then(|m| m.get(t)),
            (None, Some(r), Some(t)) => self.receiver_topic.get(&r).and_then(|m| m.get(t)),
            _ => None,
        };
        list.cloned().unwrap_or_default()
    }

    /// The recipients of a message: the receiver (unless `None`) followed by
    /// the matching subscribers, each once. A direct message goes to its
    /// receiver only.
    pub fn recipients(
        &self,
        sender: AgentId,
        receiver: Option<AgentId>,
        topic: &str,
        direct: bool,
    ) -> Vec<AgentId> {
        let mut out: Vec<AgentId> = receiver.into_iter().collect();
        if direct {
            return out;
        }
        let mut seen: FxHashSet<AgentId> = out.iter().copied().collect();
        self.for_each_subscriber(
            sender,
            receiver,
            || topic,
            |id| {
                if seen.insert(id) {
                    out.push(id);
                }
            },
        );
        out
    }

    /// Calls `f` for each subscriber whose pattern matches, in the order
    /// (sender+receiver, sender+topic, sender, receiver+topic, receiver,
    /// topic), each list in subscription order. An agent subscribed by two
    /// matching patterns is seen twice: the caller removes duplicates. `topic`
    /// is called only if someone subscribes by topic.
    pub(crate) fn for_each_subscriber<'t>(
        &self,
        sender: AgentId,
        receiver: Option<AgentId>,
        topic: impl FnOnce() -> &'t str,
        mut f: impl FnMut(AgentId),
    ) {
        if self.total == 0 {
            return;
        }
        let topic = if self.with_topic > 0 { Some(topic()) } else { None };
        let mut each = |list: Option<&Subscribers>| {
            if let Some(list) = list {
                list.iter().copied().for_each(&mut f);
            }
        };
        if let Some(r) = receiver {
            each(self.sender_receiver.get(&(sender, r)));
        }
        if let Some(t) = topic {
            each(self.sender_topic.get(&sender).and_then(|m| m.get(t)));
        }
        each(self.sender.get(&sender));
        if let Some(r) = receiver {
            if let Some(t) = topic {
                each(self.receiver_topic.get(&r).and_then(|m| m.get(t)));
            }
            each(self.receiver.get(&r));
        }
        if let Some(t) = topic {
            each(self.topic.get(t));
        }
    }

    /// Every topic named by some subscription, sorted.
    pub fn topics(&self) -> Vec<Topic> {
        let mut topics: Vec<Topic> =
            self.by_subscriber.values().flatten().filter_map(|p| p.topic.clone()).collect();
        topics.sort();
        topics.dedup();
        topics
    }

    fn list_mut(&mut self, pattern: Subscription) -> &mut Subscribers {
        match (pattern.sender, pattern.receiver, pattern.topic) {
            (Some(s), None, None) => self.sender.entry(s).or_default(),
            (None, Some(r), None) => self.receiver.entry(r).or_default(),
            (None, None, Some(t)) => self.topic.entry(t).or_default(),
            (Some(s), Some(r), None) => self.sender_receiver.entry((s, r)).or_default(),
            (Some(s), None, Some(t)) => {
                self.sender_topic.entry(s).or_default().entry(t).or_default()
            }
            (None, Some(r), Some(t)) => {
                self.receiver_topic.entry(r).or_default().entry(t).or_default()
            }
            _ => unreachable!("patterns are validated before they are stored"),
        }
    }

    fn forget(&mut self, subscriber: AgentId, pattern: &Subscription) {
        self.total -= 1;
        if pattern.topic.is_some() {
            self.with_topic -= 1;
        }
        fn drop_from<K: std::hash::Hash + Eq>(
            map: &mut FxHashMap<K, Subscribers>,
            key: &K,
            id: AgentId,
        ) {
            if let Some(list) = map.get_mut(key) {
                list.retain(|&x| x != id);
                if list.is_empty() {
                    map.remove(key);
                }
            }
        }
        fn drop_nested(
            map: &mut FxHashMap<AgentId, FxHashMap<Topic, Subscribers>>,
            key: AgentId,
            topic: &Topic,
            id: AgentId,
        ) {
            if let Some(inner) = map.get_mut(&key) {
                drop_from(inner, topic, id);
                if inner.is_empty() {
                    map.remove(&key);
                }
            }
        }
        match (pattern.sender, pattern.receiver, &pattern.topic) {
            (Some(s), None, None) => drop_from(&mut self.sender, &s, subscriber),
            (None, Some(r), None) => drop_from(&mut self.receiver, &r, subscriber),
            (None, None, Some(t)) => drop_from(&mut self.topic, t, subscriber),
            (Some(s), Some(r), None) => drop_from(&mut self.sender_receiver, &(s, r), subscriber),
            (Some(s), None, Some(t)) => drop_nested(&mut self.sender_topic, s, t, subscriber),
            (None, Some(r), Some(t)) => drop_nested(&mut self.receiver_topic, r, t, subscriber),
            _ => unreachable!("patterns are validated before they are stored"),
        }
    }
}
