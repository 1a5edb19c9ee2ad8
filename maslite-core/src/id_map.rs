//! Agent id → a number: the look-up done for every delivered message (the
//! kernel's id → slot index) and every message routed between partitions
//! (the runtime's id → partition).
//!
//! Ids are usually small integers (allocated from 1, or chosen as 1..N), so
//! ids below [`DENSE_LIMIT`] are looked up in a plain table — an index and a
//! compare, no hashing — and larger ones in a hash map. The table costs 4
//! bytes per id up to the largest small id in use.

use crate::id::AgentId;
use rustc_hash::FxHashMap;

/// Ids below this are kept in the table (at most 8 MiB of it).
pub const DENSE_LIMIT: u64 = 1 << 21;
const EMPTY: u32 = u32::MAX;

/// A map from agent ids to `u32`s (any but `u32::MAX`), dense for small
/// ids (see the [module](self)).
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
}

impl IdMap {
    /// The number kept for `id`, if any.
    #[inline]
    pub fn get(&self, id: &AgentId) -> Option<&u32> {
        if id.0 < DENSE_LIMIT {
            self.dense.get(id.0 as usize).filter(|&&i| i != EMPTY)
        } else {
            self.sparse.get(id)
        }
    }

    /// Whether a number is kept for `id`.
    pub fn contains_key(&self, id: &AgentId) -> bool {
        self.get(id).is_some()
    }

    /// Keeps `index` for `id` (in place of what was kept).
    ///
    /// # Panics
    ///
    /// If `index` is `u32::MAX` (it marks the table's empty places).
    pub fn insert(&mut self, id: AgentId, index: u32) {
        assert_ne!(index, EMPTY, "u32::MAX is not a number an IdMap keeps");
        if id.0 < DENSE_LIMIT {
            let i = id.0 as usize;
            if i >= self.dense.len() {
                let want = (i + 1).max(self.dense.len() * 2).min(DENSE_LIMIT as usize);
                self.dense.resize(want, EMPTY);
            }
            self.dense[i] = index;
        } else {
            self.sparse.insert(id, index);
        }
    }

    /// Forgets `id`'s number.
    pub fn remove(&mut self, id: &AgentId) {
        if id.0 < DENSE_LIMIT {
            if let Some(slot) = self.dense.get_mut(id.0 as usize) {
                *slot = EMPTY;
            }
        } else {
            self.sparse.remove(id);
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
    }
}
