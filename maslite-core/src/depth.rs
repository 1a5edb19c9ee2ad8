//! A bound on how deeply a value from outside nests: a payload from the
//! network, a payload or an agent's state read back from a snapshot.
//!
//! serde decodes a nested value by recursion, one stack frame (or a few)
//! per level, and postcard has no limit: a user's recursive payload type
//! (`enum Tree { Leaf, Node(Vec<Tree>) }`) sent 50 000 levels deep, a few
//! bytes per level, overflows the decoding thread's stack, and a stack
//! overflow aborts the whole process. So every payload is decoded through
//! a deserializer (`Bounded`) that wraps postcard's and counts the levels
//! (each option, newtype, sequence, tuple, struct, map and enum is one):
//! past [`MAX_DEPTH`] the decode fails with an error instead, and the frame
//! that brought it fails the run, naming the link (it came from a host
//! with the run's key, or from anyone on a server without one), or the
//! snapshot is refused.
//!
//! 128 levels, as serde_json's default: far more than a payload of a model
//! nests, far less than the stack holds (a level costs a few kilobytes in
//! a debug build).

use serde::de::{self, DeserializeOwned, DeserializeSeed, Deserializer, Visitor};
use std::cell::Cell;

/// The deepest a payload from another host (or a snapshot) may nest.
pub const MAX_DEPTH: usize = 128;

/// Decodes a `T` from postcard bytes, nested at most [`MAX_DEPTH`] levels;
/// the error says why not (the bound's, or postcard's, message).
///
/// ```
/// use maslite_core::depth::{decode, MAX_DEPTH};
/// let bytes = postcard::to_allocvec(&vec![1u32, 2, 3]).unwrap();
/// assert_eq!(decode::<Vec<u32>>(&bytes).unwrap(), [1, 2, 3]);
/// assert!(decode::<Vec<u32>>(&bytes[..2]).is_err());
/// # let _ = MAX_DEPTH;
/// ```
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let budget = Budget::new(MAX_DEPTH);
    let mut de = postcard::Deserializer::from_bytes(bytes);
    match T::deserialize(Bounded { de: &mut de, budget: &budget }) {
        Ok(value) => Ok(value),
        Err(_) if budget.met() => {
            Err(format!("nested deeper than {MAX_DEPTH} levels (the decoder's bound)"))
        }
        Err(e) => Err(e.to_string()),
    }
}

/// The levels left, and whether the bound was met.
#[derive(Debug)]
pub(crate) struct Budget {
    left: Cell<usize>,
    met: Cell<bool>,
}

impl Budget {
    pub(crate) fn new(depth: usize) -> Budget {
        Budget { left: Cell::new(depth), met: Cell::new(false) }
    }

    /// Whether a decode failed on the bound.
    pub(crate) fn met(&self) -> bool {
        self.met.get()
    }

    fn enter<E: de::Error>(&self) -> Result<(), E> {
        match self.left.get() {
            0 => {
                self.met.set(true);
                Err(E::custom(format_args!("nested deeper than {MAX_DEPTH} levels")))
            }
            n => {
                self.left.set(n - 1);
                Ok(())
            }
        }
    }

    fn leave(&self) {
        self.left.set(self.left.get() + 1);
    }
}

/// A deserializer that counts nesting levels against a [`Budget`].
pub(crate) struct Bounded<'b, D> {
    pub(crate) de: D,
    pub(crate) budget: &'b Budget,
}

/// Wraps a visitor so that what it is handed is bounded too.
struct Wrap<'b, X> {
    inner: X,
    budget: &'b Budget,
}

macro_rules! forward_deserialize {
    ($($method:ident),*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
            self.de.$method(Wrap { inner: visitor, budget: self.budget })
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Bounded<'_, D> {
    type Error = D::Error;

    forward_deserialize!(
        deserialize_any,
        deserialize_bool,
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64,
        deserialize_i128,
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64,
        deserialize_u128,
        deserialize_f32,
        deserialize_f64,
        deserialize_char,
        deserialize_str,
        deserialize_string,
        deserialize_bytes,
        deserialize_byte_buf,
        deserialize_option,
        deserialize_unit,
        deserialize_seq,
        deserialize_map,
        deserialize_identifier,
        deserialize_ignored_any
    );

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.de.deserialize_unit_struct(name, Wrap { inner: visitor, budget: self.budget })
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.de.deserialize_newtype_struct(name, Wrap { inner: visitor, budget: self.budget })
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.de.deserialize_tuple(len, Wrap { inner: visitor, budget: self.budget })
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.de.deserialize_tuple_struct(name, len, Wrap { inner: visitor, budget: self.budget })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.de.deserialize_struct(name, fields, Wrap { inner: visitor, budget: self.budget })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.de.deserialize_enum(name, variants, Wrap { inner: visitor, budget: self.budget })
    }

    fn is_human_readable(&self) -> bool {
        self.de.is_human_readable()
    }
}

macro_rules! forward_visit {
    ($($method:ident: $ty:ty),*) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<X::Value, E> {
            self.inner.$method(v)
        }
    )*};
}

impl<'de, X: Visitor<'de>> Visitor<'de> for Wrap<'_, X> {
    type Value = X::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.expecting(f)
    }

    forward_visit!(
        visit_bool: bool,
        visit_i8: i8,
        visit_i16: i16,
        visit_i32: i32,
        visit_i64: i64,
        visit_i128: i128,
        visit_u8: u8,
        visit_u16: u16,
        visit_u32: u32,
        visit_u64: u64,
        visit_u128: u128,
        visit_f32: f32,
        visit_f64: f64,
        visit_char: char,
        visit_str: &str,
        visit_borrowed_str: &'de str,
        visit_string: String,
        visit_bytes: &[u8],
        visit_borrowed_bytes: &'de [u8],
        visit_byte_buf: Vec<u8>
    );

    fn visit_none<E: de::Error>(self) -> Result<X::Value, E> {
        self.inner.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<X::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, de: D) -> Result<X::Value, D::Error> {
        self.budget.enter()?;
        let v = self.inner.visit_some(Bounded { de, budget: self.budget });
        self.budget.leave();
        v
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, de: D) -> Result<X::Value, D::Error> {
        self.budget.enter()?;
        let v = self.inner.visit_newtype_struct(Bounded { de, budget: self.budget });
        self.budget.leave();
        v
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<X::Value, A::Error> {
        self.budget.enter()?;
        let v = self.inner.visit_seq(Wrap { inner: seq, budget: self.budget });
        self.budget.leave();
        v
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<X::Value, A::Error> {
        self.budget.enter()?;
        let v = self.inner.visit_map(Wrap { inner: map, budget: self.budget });
        self.budget.leave();
        v
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<X::Value, A::Error> {
        self.budget.enter()?;
        let v = self.inner.visit_enum(Wrap { inner: data, budget: self.budget });
        self.budget.leave();
        v
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Wrap<'_, S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<S::Value, D::Error> {
        self.inner.deserialize(Bounded { de, budget: self.budget })
    }
}

impl<'de, A: de::SeqAccess<'de>> de::SeqAccess<'de> for Wrap<'_, A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        self.inner.next_element_seed(Wrap { inner: seed, budget: self.budget })
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, A: de::MapAccess<'de>> de::MapAccess<'de> for Wrap<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.inner.next_key_seed(Wrap { inner: seed, budget: self.budget })
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.inner.next_value_seed(Wrap { inner: seed, budget: self.budget })
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'b, 'de, A: de::EnumAccess<'de>> de::EnumAccess<'de> for Wrap<'b, A> {
    type Error = A::Error;
    type Variant = Wrap<'b, A::Variant>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), A::Error> {
        let budget = self.budget;
        let (v, variant) = self.inner.variant_seed(Wrap { inner: seed, budget })?;
        Ok((v, Wrap { inner: variant, budget }))
    }
}

impl<'de, A: de::VariantAccess<'de>> de::VariantAccess<'de> for Wrap<'_, A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.inner.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        self.inner.newtype_variant_seed(Wrap { inner: seed, budget: self.budget })
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        self.inner.tuple_variant(len, Wrap { inner: visitor, budget: self.budget })
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.inner.struct_variant(fields, Wrap { inner: visitor, budget: self.budget })
    }
}
