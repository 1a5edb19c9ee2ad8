//! Envelopes: a typed payload with its addressing.
//!
//! Any `Clone + Send + 'static` value can be mailed. The payload travels in
//! one block with its header (a *letter*) that moves from the sender's
//! outbox to the receiver's inbox and can be sent on again: a ping-pong
//! ball bounced a million times is allocated once. Subscribers get clones;
//! the receiver gets the original. A dropped letter's block is kept by its
//! thread for the next message of its size (see `letters`).
//!
//! Reading a payload as the wrong type gives [`Error::WrongPayload`], never a
//! panic.

use crate::error::{Error, Result};
use crate::id::AgentId;
use crate::topic::{short_type_name, Topic};
use std::alloc::Layout;
use std::any::Any;
use std::fmt;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;

/// The object-safe face of a payload: cloneable, typed at run time.
pub(crate) trait Payload: Any + Send {
    fn clone_letter(&self, header: &Header) -> NonNull<Letter<dyn Payload>>;
    fn type_name(&self) -> &'static str;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<T: Any + Send + Clone> Payload for T {
    fn clone_letter(&self, header: &Header) -> NonNull<Letter<dyn Payload>> {
        post(Letter { header: header.clone(), payload: self.clone() })
    }
    fn type_name(&self) -> &'static str {
        std::any::type_name::<T>()
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// The addressing of a message: 72 bytes. The receiver's and the topic's
/// presence and the direct flag are bits of `flags` rather than `Option`s
/// and a `bool` (which made it 88): with an 8-byte payload a message is 80
/// bytes, an allocator's size class below 96.
#[derive(Clone)]
pub(crate) struct Header {
    sender: AgentId,
    /// The receiver, if `flags` has [`RECEIVER`].
    receiver: AgentId,
    /// The topic set, if `flags` has [`TOPIC`] (else the payload's short
    /// type name is the topic).
    topic: Topic,
    origin: Origin,
    flags: u8,
}

/// `Header::flags`: it has a receiver.
const RECEIVER: u8 = 1;
/// `Header::flags`: a topic was set.
const TOPIC: u8 = 2;
/// `Header::flags`: the message is direct.
const DIRECT: u8 = 4;

#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<Header>() == 72, "a message's header is 72 bytes");

impl Header {
    #[inline]
    fn receiver(&self) -> Option<AgentId> {
        (self.flags & RECEIVER != 0).then_some(self.receiver)
    }

    #[inline]
    fn set_receiver(&mut self, receiver: Option<AgentId>) {
        match receiver {
            Some(r) => {
                self.receiver = r;
                self.flags |= RECEIVER;
            }
            None => self.flags &= !RECEIVER,
        }
    }

    #[inline]
    fn topic(&self) -> Option<&Topic> {
        (self.flags & TOPIC != 0).then_some(&self.topic)
    }

    fn set_topic(&mut self, topic: Topic) {
        self.topic = topic;
        self.flags |= TOPIC;
    }
}

/// Where a message comes from in the canonical order: when it was sent (or
/// its alarm set), and by whom in that round.
///
/// One order, defined here, decides everywhere who reads what first: mail
/// delivered together is sorted by origin, and alarms due at one time fire
/// in origin order. Fields compare in this order:
///
/// 1. `when`: the clock when the message was sent or its alarm set (the
///    bits of a non-negative `f64`, which sort as the times do), with
///    [`Origin::FIRED`] set once its alarm has fired — so a step's mail
///    from alarms comes after the mail its agents sent, as on one kernel,
///    where released alarms join the outbox after the round's sends;
/// 2. `round`: the round at that time (rounds since the clock last moved):
///    same-time alarms fire in the order they were set, as in maslite;
/// 3. `key`: the ordering key of the agent whose update was running (the
///    agents it added and removed act on its account: their setups and
///    teardowns run inside its update), `0` for the outside world;
/// 4. `seq`: that agent's count of sends and alarms.
///
/// On one kernel rounds update agents in key order and an agent's sends
/// keep their order, so this order is the order of sending and setting; a
/// multi-partition runtime gets the same order by sorting, whatever the
/// number of partitions. The kernel stamps every alarm; sends only in
/// [`Driver`](crate::Driver) (a lone kernel's
/// outbox is already in this order).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Origin {
    /// The clock's bits when sent or set, [`FIRED`](Origin::FIRED) added
    /// once the alarm carrying the message has fired.
    pub when: u64,
    /// The round at that time (rounds since the clock last moved).
    pub round: u64,
    /// The ordering key of the agent on whose account it was sent (`0`:
    /// from outside).
    pub key: u64,
    /// That agent's count of sends and alarms, this one included.
    pub seq: u64,
}

impl Origin {
    /// The bit of [`when`](Origin::when) that marks mail of a fired alarm.
    pub const FIRED: u64 = 1 << 63;

    /// The bits `when` takes for the clock reading `now` (never negative).
    #[inline]
    pub fn when_of(now: f64) -> u64 {
        // `+ 0.0` turns -0.0 into 0.0; times are never negative.
        (now + 0.0).to_bits() & !Origin::FIRED
    }

    /// The clock when it was sent or set.
    pub fn time(&self) -> f64 {
        f64::from_bits(self.when & !Origin::FIRED)
    }

    /// Whether it is the mail of an alarm that fired.
    pub fn fired(&self) -> bool {
        self.when & Origin::FIRED != 0
    }
}

/// Header and payload in one allocation.
pub(crate) struct Letter<P: ?Sized> {
    header: Header,
    payload: P,
}

/// Puts a letter in a block (a recycled one if this thread has one).
#[inline]
fn post<T: Payload>(letter: Letter<T>) -> NonNull<Letter<dyn Payload>> {
    let block = crate::letters::take(Layout::new::<Letter<T>>()).cast::<Letter<T>>();
    // SAFETY: the block is fresh, and sized and aligned for a `Letter<T>`.
    unsafe { block.as_ptr().write(letter) };
    block
}

/// A message: sender, receiver (none = broadcast), topic, direct flag and a
/// typed payload.
///
/// The header and the payload live in one heap block, made by
/// [`Envelope::new`]; the envelope itself is a pointer, so moving it from
/// outbox to inbox copies two words whatever the payload's size.
///
/// ```
/// use maslite_core::{AgentId, Envelope};
///
/// #[derive(Clone)]
/// struct Order { qty: u32 }
///
/// let env = Envelope::new(Order { qty: 3 }).from(AgentId(1)).to(AgentId(2));
/// assert_eq!(env.topic(), "Order");
/// assert_eq!(env.payload::<Order>().unwrap().qty, 3);
/// assert!(env.payload::<String>().is_err());
/// ```
pub struct Envelope(NonNull<Letter<dyn Payload>>);

// SAFETY: the envelope owns its letter (as a `Box` would), and the payload
// is `Send`.
unsafe impl Send for Envelope {}

impl Drop for Envelope {
    fn drop(&mut self) {
        let layout = Layout::for_value(self.letter());
        /// Gives the block back even if the payload's drop panics.
        struct GiveBack(NonNull<u8>, Layout);
        impl Drop for GiveBack {
            fn drop(&mut self) {
                // SAFETY: the block came from `letters::take` with this
                // layout (see `post`), and its letter has been dropped.
                unsafe { crate::letters::put_back(self.0, self.1) };
            }
        }
        let _block = GiveBack(self.0.cast(), layout);
        // SAFETY: the envelope owns the letter, dropped once here.
        unsafe { std::ptr::drop_in_place(self.0.as_ptr()) };
    }
}

impl Envelope {
    /// A broadcast from [`AgentId::OUTSIDE`] with the payload's default topic.
    /// Agents' sends are stamped with the agent's id by the kernel.
    ///
    /// The default topic is the *short* type name, as maslite uses the
    /// class name: `orders::Order` and `billing::Order` are both `"Order"`,
    /// `Vec<u8>` is `"Vec"` and a `&str` payload is `"&str"`. Set a topic with
    /// [`topic_is`](Self::topic_is) where that matters.
    pub fn new<T: Any + Send + Clone>(payload: T) -> Envelope {
        Envelope(post(Letter {
            header: Header {
                sender: AgentId::OUTSIDE,
                receiver: AgentId(0),
                topic: Topic::from_static(""),
                origin: Origin::default(),
                flags: 0,
            },
            payload,
        }))
    }

    /// The letter.
    #[inline(always)]
    fn letter(&self) -> &Letter<dyn Payload> {
        // SAFETY: the envelope owns a live letter.
        unsafe { self.0.as_ref() }
    }

    /// The letter, to change it.
    #[inline(always)]
    fn letter_mut(&mut self) -> &mut Letter<dyn Payload> {
        // SAFETY: the envelope owns a live letter, borrowed mutably here.
        unsafe { self.0.as_mut() }
    }

    /// Sets the sender.
    pub fn from(mut self, sender: AgentId) -> Envelope {
        self.letter_mut().header.sender = sender;
        self
    }

    /// Sets the receiver.
    pub fn to(mut self, receiver: AgentId) -> Envelope {
        self.letter_mut().header.set_receiver(Some(receiver));
        self
    }

    /// Sets the topic (default: the payload's short type name).
    pub fn topic_is(mut self, topic: impl Into<Topic>) -> Envelope {
        self.letter_mut().header.set_topic(topic.into());
        self
    }

    /// Makes the message direct: it goes to its receiver only and
    /// subscriptions are ignored. Fails if there is no receiver.
    pub fn direct(mut self) -> Result<Envelope> {
        if self.letter().header.receiver().is_none() {
            return Err(Error::DirectWithoutReceiver);
        }
        self.letter_mut().header.flags |= DIRECT;
        Ok(self)
    }

    /// The canonical origin stamp (see [`Origin`]).
    pub fn origin(&self) -> Origin {
        self.letter().header.origin
    }

    /// Sets the origin stamp: for runtimes that order mail from outside.
    pub fn set_origin(&mut self, origin: Origin) {
        self.letter_mut().header.origin = origin;
    }

    /// Asks for the cache lines of the message (its header and the start
    /// of its payload) before they are read (see [`prefetch`](crate::prefetch)).
    #[inline]
    pub(crate) fn prefetch(&self) {
        let at: *const u8 = self.0.as_ptr().cast_const().cast();
        crate::prefetch::prefetch(at);
        crate::prefetch::prefetch(at.wrapping_add(64));
    }

    /// Marks the envelope as the mail of a fired alarm (see [`Origin`]).
    #[inline]
    pub(crate) fn mark_fired(&mut self) {
        self.letter_mut().header.origin.when |= Origin::FIRED;
    }

    /// Sets the sender in place.
    pub fn set_sender(&mut self, sender: AgentId) {
        self.letter_mut().header.sender = sender;
    }

    /// Sets or clears the receiver in place. Clearing the receiver of a direct
    /// message is refused.
    pub fn set_receiver(&mut self, receiver: Option<AgentId>) -> Result<()> {
        if receiver.is_none() && self.is_direct() {
            return Err(Error::DirectWithoutReceiver);
        }
        self.letter_mut().header.set_receiver(receiver);
        Ok(())
    }

    /// Sets the topic in place.
    pub fn set_topic(&mut self, topic: impl Into<Topic>) {
        self.letter_mut().header.set_topic(topic.into());
    }

    /// Swaps sender and receiver, to send a message back where it came from.
    /// A broadcast has no receiver to swap with and is refused.
    pub fn reply(&mut self) -> Result<()> {
        let h = &mut self.letter_mut().header;
        let Some(receiver) = h.receiver() else {
            return Err(Error::NoReceiver);
        };
        h.receiver = h.sender;
        h.sender = receiver;
        Ok(())
    }

    /// The sender.
    #[inline]
    pub fn sender(&self) -> AgentId {
        self.letter().header.sender
    }

    /// The receiver; `None` for a broadcast.
    #[inline]
    pub fn receiver(&self) -> Option<AgentId> {
        self.letter().header.receiver()
    }

    /// The topic: the one set, or the payload's short type name.
    pub fn topic(&self) -> &str {
        match self.letter().header.topic() {
            Some(t) => t.as_str(),
            None => short_type_name(self.letter().payload.type_name()),
        }
    }

    /// The topic given with [`topic_is`](Self::topic_is), if any (`None`:
    /// the payload's short type name is the topic).
    pub fn explicit_topic(&self) -> Option<&str> {
        self.letter().header.topic().map(|t| t.as_str())
    }

    /// The topic as a [`Topic`] value.
    pub fn topic_value(&self) -> Topic {
        match self.letter().header.topic() {
            Some(t) => t.clone(),
            None => Topic::from_static(short_type_name(self.letter().payload.type_name())),
        }
    }

    /// Whether the message is direct.
    #[inline]
    pub fn is_direct(&self) -> bool {
        self.letter().header.flags & DIRECT != 0
    }

    /// The full type name of the payload.
    pub fn payload_type(&self) -> &'static str {
        self.letter().payload.type_name()
    }

    /// Whether the payload is a `T`.
    pub fn is<T: Any>(&self) -> bool {
        self.letter().payload.as_any().is::<T>()
    }

    /// The payload as a `T`.
    pub fn payload<T: Any>(&self) -> Result<&T> {
        // The error (and the payload's type name) only when it is one: this
        // is on every reader's path.
        let payload = &self.letter().payload;
        payload.as_any().downcast_ref::<T>().ok_or_else(|| Error::WrongPayload {
            expected: std::any::type_name::<T>(),
            found: payload.type_name(),
        })
    }

    /// The payload as a mutable `T`.
    pub fn payload_mut<T: Any>(&mut self) -> Result<&mut T> {
        if !self.letter().payload.as_any().is::<T>() {
            let found = self.letter().payload.type_name();
            return Err(Error::WrongPayload { expected: std::any::type_name::<T>(), found });
        }
        Ok(self.letter_mut().payload.as_any_mut().downcast_mut::<T>().expect("checked above"))
    }

    /// Takes the payload out as a `T`, or gives the envelope back unchanged
    /// (to try another type), like `Box<dyn Any>::downcast`.
    pub fn downcast<T: Any>(self) -> std::result::Result<T, Envelope> {
        if self.is::<T>() {
            let me = ManuallyDrop::new(self);
            let block = me.0.cast::<Letter<T>>();
            // SAFETY: the payload is a `T` (checked above), so this block
            // holds a `Letter<T>` unsized to `Letter<dyn Payload>`; it is
            // read out once (the envelope is not dropped) and its block
            // given back with the layout `post` took it with.
            let letter = unsafe { block.as_ptr().read() };
            unsafe { crate::letters::put_back(block.cast(), Layout::new::<Letter<T>>()) };
            Ok(letter.payload)
        } else {
            Err(self)
        }
    }

    /// Takes the payload out as a `T`; a wrong type is an error.
    pub fn into_payload<T: Any>(self) -> Result<T> {
        self.downcast::<T>().map_err(|env| Error::WrongPayload {
            expected: std::any::type_name::<T>(),
            found: env.letter().payload.type_name(),
        })
    }
}

impl Clone for Envelope {
    fn clone(&self) -> Self {
        let letter = self.letter();
        Envelope(letter.payload.clone_letter(&letter.header))
    }
}

impl fmt::Debug for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Envelope")
            .field("sender", &self.sender())
            .field("receiver", &self.receiver())
            .field("topic", &self.topic())
            .field("direct", &self.is_direct())
            .field("payload", &self.payload_type())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq)]
    struct Ping(u32);

    #[test]
    fn direct_without_receiver_is_an_error() {
        assert_eq!(Envelope::new(Ping(1)).direct().err(), Some(Error::DirectWithoutReceiver));
        assert!(Envelope::new(Ping(1)).to(AgentId(2)).direct().unwrap().is_direct());
    }

    #[test]
    fn clearing_the_receiver_of_a_direct_message_is_refused() {
        let mut env = Envelope::new(Ping(1)).to(AgentId(2)).direct().unwrap();
        assert_eq!(env.set_receiver(None), Err(Error::DirectWithoutReceiver));
        assert_eq!(env.receiver(), Some(AgentId(2)));
    }

    #[test]
    fn wrong_payload_type_is_an_error_value() {
        let mut env = Envelope::new(Ping(1));
        assert!(matches!(env.payload::<u32>(), Err(Error::WrongPayload { .. })));
        assert!(env.payload_mut::<String>().is_err());
        let env = env.downcast::<u8>().unwrap_err();
        assert_eq!(env.into_payload::<Ping>().unwrap(), Ping(1));
        let err = Envelope::new(Ping(1)).into_payload::<u8>().unwrap_err();
        assert_eq!(
            err,
            Error::WrongPayload { expected: "u8", found: std::any::type_name::<Ping>() }
        );
    }

    #[test]
    fn topic_defaults_to_the_payload_type_and_can_be_set() {
        let env = Envelope::new(Ping(1));
        assert_eq!(env.topic(), "Ping");
        let env = env.topic_is("pong");
        assert_eq!(env.topic(), "pong");
    }

    #[test]
    fn clone_copies_the_payload() {
        let env = Envelope::new(Ping(1)).from(AgentId(1)).to(AgentId(2));
        let mut copy = env.clone();
        copy.payload_mut::<Ping>().unwrap().0 = 9;
        assert_eq!(env.payload::<Ping>().unwrap(), &Ping(1));
        assert_eq!(copy.receiver(), Some(AgentId(2)));
    }

    #[test]
    fn reply_swaps_sender_and_receiver() {
        let mut env = Envelope::new(Ping(1)).from(AgentId(1)).to(AgentId(2));
        env.reply().unwrap();
        assert_eq!((env.sender(), env.receiver()), (AgentId(2), Some(AgentId(1))));
        assert!(Envelope::new(Ping(1)).reply().is_err());
    }
}

#[cfg(test)]
mod header_tests {
    use super::*;
    use crate::topic::Topic;
    use std::collections::{BTreeSet, HashMap, HashSet};
    use std::sync::Arc;

    #[derive(Clone, Debug, PartialEq)]
    struct Ping(u32);

    #[test]
    fn a_cleared_receiver_is_gone_everywhere() {
        let mut env = Envelope::new(Ping(1)).from(AgentId(5)).to(AgentId(7));
        env.set_receiver(None).unwrap();
        assert_eq!(env.receiver(), None);
        assert_eq!(env.clone().receiver(), None);
        assert!(format!("{env:?}").contains("receiver: None"), "{env:?}");
        assert_eq!(env.reply(), Err(Error::NoReceiver));
        assert_eq!((env.sender(), env.receiver()), (AgentId(5), None));
        let env = env.direct();
        assert_eq!(env.as_ref().err(), Some(&Error::DirectWithoutReceiver));
        let mut env = Envelope::new(Ping(1)).from(AgentId(5)).to(AgentId(7));
        env.set_receiver(None).unwrap();
        let mut env = env.to(AgentId(8));
        assert_eq!(env.receiver(), Some(AgentId(8)));
        env.reply().unwrap();
        assert_eq!((env.sender(), env.receiver()), (AgentId(8), Some(AgentId(5))));
        env.reply().unwrap();
        assert_eq!((env.sender(), env.receiver()), (AgentId(5), Some(AgentId(8))));
    }

    #[test]
    fn a_fresh_envelope_has_no_receiver_or_topic() {
        let env = Envelope::new(Ping(1));
        assert_eq!(env.receiver(), None);
        assert_eq!(env.explicit_topic(), None);
        assert_eq!(env.topic(), "Ping");
        assert_eq!(env.topic_value(), Topic::from("Ping"));
        assert!(!env.is_direct());
        let shown = format!("{env:?}");
        assert!(shown.contains("receiver: None") && shown.contains("direct: false"), "{shown}");
        let c = env.clone();
        assert_eq!((c.receiver(), c.explicit_topic(), c.is_direct()), (None, None, false));
        // A receiver of 0 (the placeholder's value) is a receiver.
        let env = Envelope::new(Ping(1)).to(AgentId(0));
        assert_eq!(env.receiver(), Some(AgentId(0)));
        assert!(env.clone().direct().unwrap().is_direct());
        // An empty explicit topic is a topic.
        let env = Envelope::new(Ping(1)).topic_is("");
        assert_eq!(env.explicit_topic(), Some(""));
        assert_eq!(env.topic(), "");
        assert_eq!(env.clone().explicit_topic(), Some(""));
    }

    #[test]
    fn direct_keeps_its_receiver() {
        let mut env = Envelope::new(Ping(1)).to(AgentId(2)).direct().unwrap();
        assert_eq!(env.set_receiver(None), Err(Error::DirectWithoutReceiver));
        assert_eq!(env.receiver(), Some(AgentId(2)));
        assert!(env.is_direct());
        env.set_receiver(Some(AgentId(3))).unwrap();
        assert_eq!(env.receiver(), Some(AgentId(3)));
        assert!(env.is_direct());
        let mut c = env.clone();
        assert!(c.is_direct());
        assert_eq!(c.set_receiver(None), Err(Error::DirectWithoutReceiver));
        c.reply().unwrap();
        assert!(c.is_direct());
        assert_eq!(c.receiver(), Some(AgentId::OUTSIDE));
        // Topics and flags are independent.
        let env = env.topic_is("t");
        assert!(env.is_direct());
        assert_eq!(env.receiver(), Some(AgentId(3)));
        let mut env = env;
        env.set_topic(String::from("u"));
        assert_eq!(
            (env.explicit_topic(), env.is_direct(), env.receiver()),
            (Some("u"), true, Some(AgentId(3)))
        );
    }

    #[test]
    fn topics_of_every_storage_agree() {
        let a = Topic::from("fish");
        let b = Topic::from(String::from("fish"));
        let c = Topic::from(Arc::<str>::from("fish"));
        assert!(a == b && b == c && a == c);
        assert_eq!(c.as_str(), "fish");
        assert_eq!(format!("{c:?}|{c}"), "\"fish\"|fish");
        let mut set = HashSet::new();
        set.insert(a.clone());
        assert!(set.contains(&b) && set.contains(&c) && set.contains("fish"));
        let mut map: HashMap<Topic, u32> = HashMap::new();
        map.insert(c.clone(), 1);
        assert_eq!(map.get("fish"), Some(&1));
        let tree: BTreeSet<Topic> =
            [Topic::from(String::from("b")), Topic::from("a"), Topic::from(Arc::<str>::from("c"))]
                .into_iter()
                .collect();
        assert_eq!(tree.iter().map(Topic::as_str).collect::<Vec<_>>(), ["a", "b", "c"]);
        assert!(tree.contains("b"));
        assert_eq!(Topic::from(String::new()), Topic::from(""));
        // Cloned topics share text and outlive the original.
        let d = {
            let s = Topic::from(String::from("x"));
            s.clone()
        };
        assert_eq!(d.as_str(), "x");
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Topic>();
    }
}

#[cfg(test)]
mod recycling {
    use super::*;

    #[test]
    fn a_dropped_letter_block_serves_the_next_message() {
        let layout = Layout::new::<Letter<u64>>();
        let a = Envelope::new(7u64).to(AgentId(1));
        let at = a.0.as_ptr().cast::<u8>();
        let kept = crate::letters::kept(layout);
        drop(a);
        assert_eq!(crate::letters::kept(layout), kept + 1);
        let copies: Vec<Envelope> = (0..3).map(|_| Envelope::new(8u64)).collect();
        assert_eq!(copies[0].0.as_ptr().cast::<u8>(), at);
        let b = copies[1].clone();
        // (Measured next to the drops: a take from an empty shelf may fill
        // it from the depot, which other tests share.)
        let kept = crate::letters::kept(layout);
        drop(copies);
        assert_eq!(b.into_payload::<u64>().unwrap(), 8);
        assert_eq!(crate::letters::kept(layout), kept + 4);
    }

    #[derive(Clone)]
    struct Grenade(#[allow(dead_code)] u64);

    impl Drop for Grenade {
        fn drop(&mut self) {
            panic!("a payload's drop panicked");
        }
    }

    #[test]
    fn a_payload_whose_drop_panics_still_gives_its_block_back() {
        let layout = Layout::new::<Letter<Grenade>>();
        let env = Envelope::new(Grenade(1));
        let kept = crate::letters::kept(layout);
        let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(env)));
        assert!(dropped.is_err());
        assert_eq!(crate::letters::kept(layout), kept + 1);
    }

    #[test]
    fn letters_the_shelves_do_not_keep_work_the_same() {
        #[derive(Clone, Debug, PartialEq)]
        struct Big([u64; 40]);
        let wide = Envelope::new(u128::MAX - 3).to(AgentId(2));
        assert_eq!(wide.0.as_ptr().cast::<u8>() as usize % 16, 0);
        let copy = wide.clone();
        assert_eq!(wide.into_payload::<u128>().unwrap(), u128::MAX - 3);
        assert_eq!(*copy.payload::<u128>().unwrap(), u128::MAX - 3);
        let big = Envelope::new(Big([7; 40]));
        let copy = big.clone();
        drop(big);
        assert_eq!(copy.downcast::<Big>().unwrap(), Big([7; 40]));
        assert_eq!(crate::letters::kept(Layout::new::<Letter<u128>>()), 0);
        assert_eq!(crate::letters::kept(Layout::new::<Letter<Big>>()), 0);
    }
}
