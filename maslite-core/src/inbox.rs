//! An agent's inbox: a queue of envelopes that needs no buffer of its own
//! while it holds at most one.
//!
//! Most agents of a large model hold one message at a time (an alarm's, a
//! reply), and read it in their next update. A `VecDeque` makes a buffer
//! of four envelopes at the first message and keeps it: 64 bytes per agent
//! that ever had mail, and a cache line the kernel touches at each delivery
//! and each read, apart from the agent's record. This queue keeps a lone
//! envelope in the record itself, in the 32 bytes a `VecDeque` takes, and
//! makes the buffer only when a second envelope arrives before the first is
//! read; from then on it keeps that buffer, as a `VecDeque` does, so an
//! agent that often gets bursts does not make and free one each time.

use crate::envelope::Envelope;
use std::collections::{vec_deque, VecDeque};

/// An agent's inbox (see the [module](self)): first in, first out.
#[derive(Debug)]
pub(crate) enum Inbox {
    /// No buffer: empty, or one envelope.
    Lone(Option<Envelope>),
    /// A buffer, kept once made.
    Queue(VecDeque<Envelope>),
}

#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<Inbox>() == 32, "as small as a VecDeque");

impl Default for Inbox {
    fn default() -> Self {
        Inbox::Lone(None)
    }
}

impl Inbox {
    /// Adds `env` at the back.
    #[inline]
    pub fn push_back(&mut self, env: Envelope) {
        match self {
            Inbox::Lone(slot @ None) => *slot = Some(env),
            Inbox::Queue(queue) => queue.push_back(env),
            Inbox::Lone(Some(_)) => self.grow(env),
        }
    }

    /// The second envelope while one is held: the buffer is made.
    #[cold]
    fn grow(&mut self, second: Envelope) {
        let mut queue = VecDeque::with_capacity(4);
        queue.extend(self.pop_front());
        queue.push_back(second);
        *self = Inbox::Queue(queue);
    }

    /// Takes the envelope at the front.
    #[inline]
    pub fn pop_front(&mut self) -> Option<Envelope> {
        match self {
            Inbox::Lone(slot) => slot.take(),
            Inbox::Queue(queue) => queue.pop_front(),
        }
    }

    /// Takes the envelope at `at` (0 is the front), the others keeping
    /// their order.
    pub fn remove(&mut self, at: usize) -> Option<Envelope> {
        match self {
            Inbox::Lone(slot) if at == 0 => slot.take(),
            Inbox::Lone(_) => None,
            Inbox::Queue(queue) => queue.remove(at),
        }
    }

    #[inline]
    pub fn len(&self) -> usize {
        match self {
            Inbox::Lone(slot) => usize::from(slot.is_some()),
            Inbox::Queue(queue) => queue.len(),
        }
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The envelopes, front first.
    pub fn iter(&self) -> Iter<'_> {
        match self {
            Inbox::Lone(slot) => Iter::Lone(slot.iter()),
            Inbox::Queue(queue) => Iter::Queue(queue.iter()),
        }
    }

    /// Takes every envelope, front first; the buffer, if any, is kept.
    pub fn drain(&mut self) -> Vec<Envelope> {
        match self {
            Inbox::Lone(slot) => slot.take().into_iter().collect(),
            Inbox::Queue(queue) => queue.drain(..).collect(),
        }
    }
}

impl FromIterator<Envelope> for Inbox {
    fn from_iter<I: IntoIterator<Item = Envelope>>(envs: I) -> Self {
        let mut inbox = Inbox::default();
        for env in envs {
            inbox.push_back(env);
        }
        inbox
    }
}

impl IntoIterator for Inbox {
    type Item = Envelope;
    type IntoIter = IntoIter;
    fn into_iter(self) -> IntoIter {
        match self {
            Inbox::Lone(slot) => IntoIter::Lone(slot.into_iter()),
            Inbox::Queue(queue) => IntoIter::Queue(queue.into_iter()),
        }
    }
}

/// [`Inbox::iter`].
pub(crate) enum Iter<'a> {
    Lone(std::option::Iter<'a, Envelope>),
    Queue(vec_deque::Iter<'a, Envelope>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a Envelope;
    #[inline]
    fn next(&mut self) -> Option<&'a Envelope> {
        match self {
            Iter::Lone(it) => it.next(),
            Iter::Queue(it) => it.next(),
        }
    }
}

/// [`Inbox`]'s `into_iter`.
pub(crate) enum IntoIter {
    Lone(std::option::IntoIter<Envelope>),
    Queue(vec_deque::IntoIter<Envelope>),
}

impl Iterator for IntoIter {
    type Item = Envelope;
    #[inline]
    fn next(&mut self) -> Option<Envelope> {
        match self {
            IntoIter::Lone(it) => it.next(),
            IntoIter::Queue(it) => it.next(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn numbered(n: u32) -> Envelope {
        Envelope::new(n)
    }

    fn number(env: &Envelope) -> u32 {
        *env.payload::<u32>().expect("a number")
    }

    #[derive(Clone, Debug)]
    enum Op {
        Push,
        Pop,
        Remove(usize),
        Drain,
        Take,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => Just(Op::Push),
            3 => Just(Op::Pop),
            1 => (0usize..6).prop_map(Op::Remove),
            1 => Just(Op::Drain),
            1 => Just(Op::Take),
        ]
    }

    proptest! {
        /// Every sequence of operations gives what a `VecDeque` gives.
        #[test]
        fn it_is_a_fifo_queue(ops in proptest::collection::vec(op(), 0..60)) {
            let (mut inbox, mut model) = (Inbox::default(), VecDeque::new());
            let mut next = 0u32;
            for op in ops {
                match op {
                    Op::Push => {
                        inbox.push_back(numbered(next));
                        model.push_back(next);
                        next += 1;
                    }
                    Op::Pop => {
                        prop_assert_eq!(inbox.pop_front().map(|e| number(&e)), model.pop_front());
                    }
                    Op::Remove(at) => {
                        prop_assert_eq!(inbox.remove(at).map(|e| number(&e)), model.remove(at));
                    }
                    Op::Drain => {
                        let drained: Vec<u32> = inbox.drain().iter().map(number).collect();
                        prop_assert_eq!(drained, model.drain(..).collect::<Vec<_>>());
                    }
                    Op::Take => {
                        let taken: Vec<u32> =
                            std::mem::take(&mut inbox).into_iter().map(|e| number(&e)).collect();
                        prop_assert_eq!(taken, model.drain(..).collect::<Vec<_>>());
                    }
                }
                prop_assert_eq!(inbox.len(), model.len());
                prop_assert_eq!(inbox.is_empty(), model.is_empty());
                let seen: Vec<u32> = inbox.iter().map(number).collect();
                prop_assert_eq!(seen, model.iter().copied().collect::<Vec<_>>());
            }
        }
    }

    #[test]
    fn a_lone_envelope_needs_no_buffer_and_a_second_makes_one_that_stays() {
        let mut inbox = Inbox::default();
        inbox.push_back(numbered(1));
        assert!(matches!(inbox, Inbox::Lone(Some(_))));
        assert_eq!(inbox.pop_front().map(|e| number(&e)), Some(1));
        inbox.push_back(numbered(2));
        inbox.push_back(numbered(3));
        assert!(matches!(inbox, Inbox::Queue(_)));
        let _ = inbox.drain();
        inbox.push_back(numbered(4));
        assert!(matches!(&inbox, Inbox::Queue(q) if q.capacity() >= 4), "the buffer is kept");
        let collected: Inbox = (5..8).map(numbered).collect();
        assert_eq!(collected.iter().map(number).collect::<Vec<_>>(), vec![5, 6, 7]);
    }
}
