//! Agent id → a number: the look-up done for every delivered message (the
//! kernel's id → slot index) and every message routed between partitions
//! (the runtime's id → partition).
//!
//! Ids are usually small integers (allocated from 1, or chosen as 1..N), so
//! they are looked up in a plain table — an index and a compare, no hashing
//! — and the others in a hash map. The table grows to hold an id only while
//! it stays within 4 places per id kept (and below [`DENSE_LIMIT`]): at
//! most 16 bytes per id, so one agent with a large id costs a hash entry,
//! not a table up to its id — in every partition's directory, which holds
//! every agent of the runtime. An id is in the table if it is below the
//! table's length, else in the hash map; when the table grows, the ids it
//! now covers move into it.

use crate::id::AgentId;
use rustc_hash::FxHashMap;

/// The table never grows past this many places (8 MiB).
const DENSE_LIMIT: u64 = 1 << 21;
/// A table of this many places is always allowed (16 KiB).
const DENSE_FLOOR: usize = 4096;
/// Places allowed in the table per id kept.
const PLACES_PER_ID: usize = 4;
const EMPTY: u32 = u32::MAX;

/// A map from agent ids to `u32`s (any but `u32::MAX`): a plain table for
/// small ids (an index and a compare, no hashing), a hash map for the
/// others. The table grows to hold an id only while it stays within 4
/// places per id kept (at most 16 bytes per id) and below 2^21 places: one
/// agent with a large id costs a hash entry, not a table up to its id.
/// The table does not shrink when ids are removed.
///
/// ```
/// use maslite_core::{AgentId, IdMap};
///
/// let mut m = IdMap::default();
/// m.insert(AgentId(7), 1);
/// m.insert(AgentId(u64::MAX - 1), 2); // a large id: hashed
/// assert_eq!(m.get(&AgentId(7)), Some(&1));
/// assert_eq!(m.get(&AgentId(u64::MAX - 1)), Some(&2));
/// m.remove(&AgentId(7));
/// assert!(!m.contains_key(&AgentId(7)));
/// ```
#[derive(Clone, Debug, Default)]
pub struct IdMap {
    dense: Vec<u32>,
    sparse: FxHashMap<AgentId, u32>,
    /// Ids kept (in the table and in the hash map).
    len: usize,
}

impl IdMap {
    /// The number kept for `id`, if any.
    #[inline]
    pub fn get(&self, id: &AgentId) -> Option<&u32> {
        if id.0 < self.dense.len() as u64 {
            self.dense.get(id.0 as usize).filter(|&&i| i != EMPTY)
        } else if self.sparse.is_empty() {
            None
        } else {
            self.sparse.get(id)
        }
    }

    /// Whether a number is kept for `id`.
    pub fn contains_key(&self, id: &AgentId) -> bool {
        self.get(id).is_some()
    }

    /// How many ids are kept.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no id is kept.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Keeps `index` for `id` (in place of what was kept).
    ///
    /// # Panics
    ///
    /// If `index` is `u32::MAX` (it marks the table's empty places).
    pub fn insert(&mut self, id: AgentId, index: u32) {
        assert_ne!(index, EMPTY, "u32::MAX is not a number an IdMap keeps");
        if id.0 >= self.dense.len() as u64 {
            self.grow_for(id.0);
        }
        if id.0 < self.dense.len() as u64 {
            let slot = &mut self.dense[id.0 as usize];
            self.len += usize::from(*slot == EMPTY);
            *slot = index;
        } else if self.sparse.insert(id, index).is_none() {
            self.len += 1;
        }
    }

    /// Forgets `id`'s number.
    pub fn remove(&mut self, id: &AgentId) {
        if id.0 < self.dense.len() as u64 {
            let slot = &mut self.dense[id.0 as usize];
            self.len -= usize::from(*slot != EMPTY);
            *slot = EMPTY;
        } else if self.sparse.remove(id).is_some() {
            self.len -= 1;
        }
    }

    /// Grows the table to cover `id` if the table may be that long,
    /// moving the ids it now covers out of the hash map; otherwise leaves
    /// it.
    fn grow_for(&mut self, id: u64) {
        let allowed =
            DENSE_FLOOR.max(PLACES_PER_ID * (self.len + 1)).min(DENSE_LIMIT as usize) as u64;
        if id >= allowed {
            return;
        }
        let want = ((id + 1) as usize).max(self.dense.len() * 2).min(allowed as usize);
        self.dense.resize(want, EMPTY);
        let covered: Vec<AgentId> =
            self.sparse.keys().copied().filter(|k| k.0 < want as u64).collect();
        for k in covered {
            let index = self.sparse.remove(&k).expect("listed");
            self.dense[k.0 as usize] = index;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_and_large_ids_map_alike() {
        let mut m = IdMap::default();
        for id in [0, 1, 7, DENSE_LIMIT - 1, DENSE_LIMIT, u64::MAX - 1] {
            assert!(m.get(&AgentId(id)).is_none());
            m.insert(AgentId(id), 5);
            assert_eq!(m.get(&AgentId(id)), Some(&5));
            m.remove(&AgentId(id));
            assert!(!m.contains_key(&AgentId(id)));
        }
        assert!(m.is_empty());
    }

    #[test]
    fn one_large_small_id_costs_no_table_up_to_it() {
        let mut m = IdMap::default();
        m.insert(AgentId(DENSE_LIMIT - 1), 3);
        assert!(m.dense.len() <= DENSE_FLOOR, "a table of {} places", m.dense.len());
        assert_eq!(m.get(&AgentId(DENSE_LIMIT - 1)), Some(&3));
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn ids_counted_from_one_are_all_in_the_table() {
        let mut m = IdMap::default();
        for id in 1..=100_000u64 {
            m.insert(AgentId(id), id as u32);
        }
        assert!(m.sparse.is_empty());
        assert!(m.dense.len() > 100_000 && m.dense.len() <= 4 * 100_001);
        assert_eq!(m.get(&AgentId(77_777)), Some(&77_777));
        assert_eq!(m.len(), 100_000);
    }

    #[test]
    fn a_growing_table_takes_the_ids_it_now_covers_from_the_hash_map() {
        let mut m = IdMap::default();
        m.insert(AgentId(10_000), 1);
        assert!(m.sparse.contains_key(&AgentId(10_000)), "beyond the table at first");
        for id in 1..=3_000u64 {
            m.insert(AgentId(id), 2);
            assert_eq!(m.get(&AgentId(10_000)), Some(&1), "after {id}");
        }
        // 3 001 ids allow 12 004 places: a table grown to hold 11 000
        // covers 10 000 too.
        m.insert(AgentId(11_000), 3);
        assert!(m.dense.len() > 10_000, "a table of {}", m.dense.len());
        assert!(m.sparse.is_empty(), "moved into the table as it grew");
        assert_eq!(m.get(&AgentId(10_000)), Some(&1));
        assert_eq!(m.len(), 3_002);
    }

    proptest::proptest! {
        /// Any sequence of inserts and removes gives what a hash map gives.
        #[test]
        fn it_keeps_what_a_hash_map_keeps(
            ops in proptest::collection::vec(
                (proptest::prop_oneof![0u64..20_000, (DENSE_LIMIT - 5)..(DENSE_LIMIT + 5),
                                       (u64::MAX - 5)..u64::MAX],
                 0u32..1_000, proptest::bool::ANY),
                0..400,
            )
        ) {
            let mut m = IdMap::default();
            let mut model = std::collections::HashMap::new();
            let mut most = 0;
            for (id, index, insert) in ops {
                let id = AgentId(id);
                if insert {
                    m.insert(id, index);
                    model.insert(id, index);
                } else {
                    m.remove(&id);
                    model.remove(&id);
                }
                most = most.max(model.len());
                proptest::prop_assert_eq!(m.len(), model.len());
                proptest::prop_assert_eq!(m.get(&id), model.get(&id));
            }
            for (id, index) in &model {
                proptest::prop_assert_eq!(m.get(id), Some(index));
            }
            // At most 4 places per id, counted when the table last grew.
            proptest::prop_assert!(m.dense.len() <= DENSE_FLOOR.max(PLACES_PER_ID * (most + 1)));
        }
    }
}
