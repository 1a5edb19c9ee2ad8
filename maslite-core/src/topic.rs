//! Topics: the name a message is filed under.
//!
//! A topic is a string. By default it is the short name of the payload's type
//! (`Ball` for `pingpong::Ball`), as maslite uses the message class name. It
//! is computed only when someone looks at it (a topic subscription, a log
//! line), so plain point-to-point mail never pays for it.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// The topic of a message or of a subscription.
///
/// Built from a `&'static str` (free), a `String` or an `Arc<str>` (shared,
/// cloned by reference count when a subscriber gets a copy).
#[derive(Clone)]
pub struct Topic(Repr);

/// Two words: a shared topic is a thin `Arc<String>` (an `Arc<str>` is two
/// words itself, and the enum would need a third for its tag), which keeps
/// every message's header 16 bytes smaller.
#[derive(Clone)]
enum Repr {
    Static(&'static str),
    Shared(Arc<String>),
}

#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<Topic>() == 16, "a topic is two words");

impl Topic {
    /// A topic from a string literal; no allocation.
    pub const fn from_static(name: &'static str) -> Topic {
        Topic(Repr::Static(name))
    }

    /// The default topic of payloads of type `T`: its short type name (the
    /// last path segment, without generic arguments, so two types of the same
    /// name in different modules share it).
    pub fn of<T: ?Sized>() -> Topic {
        Topic(Repr::Static(short_type_name(std::any::type_name::<T>())))
    }

    /// The topic as text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Static(s) => s,
            Repr::Shared(s) => s.as_str(),
        }
    }
}

/// `my_crate::orders::Order<u8>` → `Order`: the last path segment before any
/// generic arguments.
pub(crate) fn short_type_name(full: &'static str) -> &'static str {
    let base = match full.find('<') {
        Some(i) => &full[..i],
        None => full,
    };
    match base.rfind("::") {
        Some(i) => &base[i + 2..],
        None => base,
    }
}

impl From<&'static str> for Topic {
    fn from(value: &'static str) -> Self {
        Topic::from_static(value)
    }
}

impl From<String> for Topic {
    fn from(value: String) -> Self {
        Topic(Repr::Shared(Arc::new(value)))
    }
}

impl From<Arc<str>> for Topic {
    fn from(value: Arc<str>) -> Self {
        Topic(Repr::Shared(Arc::new(String::from(&*value))))
    }
}

impl PartialEq for Topic {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Topic {}

impl PartialEq<str> for Topic {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Topic {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Hash for Topic {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl PartialOrd for Topic {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Topic {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Borrow<str> for Topic {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Order<T>(T);

    #[test]
    fn default_topic_is_the_short_type_name() {
        assert_eq!(Topic::of::<Order<u8>>().as_str(), "Order");
        assert_eq!(Topic::of::<u64>().as_str(), "u64");
        assert_eq!(Topic::of::<String>().as_str(), "String");
        let _ = Order(1u8).0;
    }

    #[test]
    fn topics_compare_by_text_whatever_their_storage() {
        assert_eq!(Topic::from("fish"), Topic::from(String::from("fish")));
        assert_ne!(Topic::from("fish"), Topic::from("chips"));
    }
}
