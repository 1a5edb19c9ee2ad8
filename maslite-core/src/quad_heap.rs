//! A 4-ary min-heap of small keys, for the alarm queue: the heap of the
//! current time bucket in front of the [`calendar`](crate::calendar), and
//! the whole queue when the times cannot be spread.
//!
//! PHOLD-like models spend most of their time popping alarms: with the
//! alarms themselves (envelope, origin, flags: 72 bytes) in a
//! `BinaryHeap`, every sift moved them and every comparison read two
//! origins. Here the heap holds only (time, slot) — 16 bytes, four to a
//! cache line — and the alarms stay put in a slab; equal times, rare with
//! real-valued delays, are broken by a comparison the caller supplies
//! (the alarms' origins). A 4-ary heap halves the depth of a binary one,
//! at the price of three comparisons per level instead of one: fewer cache
//! misses on large heaps.

/// A heap entry: the time's order-preserving bits, and the slot of the item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Key {
    pub time: u64,
    pub slot: u32,
}

/// The bits of `t` as an unsigned number that sorts as `f64::total_cmp`
/// sorts the times.
#[inline]
pub(crate) fn time_bits(t: f64) -> u64 {
    let b = t.to_bits();
    if b >> 63 == 1 {
        !b
    } else {
        b | (1 << 63)
    }
}

/// The time whose bits [`time_bits`] gave.
#[inline]
pub(crate) fn time_of(bits: u64) -> f64 {
    if bits >> 63 == 1 {
        f64::from_bits(bits & !(1 << 63))
    } else {
        f64::from_bits(!bits)
    }
}

/// A 4-ary min-heap (see the [module](self)).
#[derive(Default)]
pub(crate) struct QuadHeap {
    keys: Vec<Key>,
}

impl QuadHeap {
    pub fn peek(&self) -> Option<Key> {
        self.keys.first().copied()
    }

    /// The least of the root's children by time alone: most often the key
    /// that comes after the top (a hint: ties and keys pushed meanwhile
    /// may change that).
    #[inline]
    pub fn peek_second(&self) -> Option<Key> {
        let kids = self.keys.get(1..self.keys.len().min(5))?;
        kids.iter().copied().min_by_key(|k| k.time)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Key> {
        self.keys.iter()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Gives back room beyond `keep` keys (the heap is empty).
    pub fn shrink(&mut self, keep: usize) {
        self.keys.shrink_to(keep);
    }

    /// Takes every key out, in no order.
    pub fn drain(&mut self) -> std::vec::Drain<'_, Key> {
        self.keys.drain(..)
    }

    /// Pushes `key`; `less(a, b)` orders two slots of equal time.
    #[inline(always)]
    pub fn push(&mut self, key: Key, less: impl Fn(u32, u32) -> bool) {
        self.keys.push(key);
        let mut at = self.keys.len() - 1;
        while at > 0 {
            let parent = (at - 1) / 4;
            if !before(&key, &self.keys[parent], &less) {
                break;
            }
            self.keys[at] = self.keys[parent];
            at = parent;
        }
        self.keys[at] = key;
    }

    /// Pops the least key.
    #[inline]
    pub fn pop(&mut self, less: impl Fn(u32, u32) -> bool) -> Option<Key> {
        let last = self.keys.pop()?;
        if self.keys.is_empty() {
            return Some(last);
        }
        let top = self.keys[0];
        self.sift_down(0, last, &less);
        Some(top)
    }

    /// Places `key` at the hole `at`, moving it down to its place.
    ///
    /// A level with four children picks the least of them by time alone,
    /// without branches (the comparisons of a heap are coin flips to a
    /// branch predictor); a tie at the least time, or with `key`, takes the
    /// general path with the caller's order.
    #[inline]
    fn sift_down(&mut self, mut at: usize, key: Key, less: &impl Fn(u32, u32) -> bool) {
        let keys = &mut self.keys[..];
        let n = keys.len();
        loop {
            let first = 4 * at + 1;
            if first + 4 <= n {
                let base = keys.as_mut_ptr();
                // SAFETY: `first + 3 < n` and `at < first`: every index read
                // or written below is inside `keys`, which nothing else
                // borrows meanwhile.
                let (least, best) = unsafe {
                    let kids = base.add(first);
                    let t0 = (*kids).time;
                    let t1 = (*kids.add(1)).time;
                    let t2 = (*kids.add(2)).time;
                    let t3 = (*kids.add(3)).time;
                    let (i01, m01) = if t1 < t0 { (1, t1) } else { (0, t0) };
                    let (i23, m23) = if t3 < t2 { (3, t3) } else { (2, t2) };
                    let (best, least) = if m23 < m01 { (i23, m23) } else { (i01, m01) };
                    let tie = (t0 == t1) | (t2 == t3) | (m01 == m23) | (least == key.time);
                    (if tie { None } else { Some(least) }, best)
                };
                if let Some(least) = least {
                    if least > key.time {
                        break;
                    }
                    // SAFETY: as above.
                    unsafe { *base.add(at) = *base.add(first + best) };
                    at = first + best;
                    continue;
                }
            }
            if first >= n {
                break;
            }
            // Fewer than four children, or a tie: the general comparison.
            let kids = &keys[first..(first + 4).min(n)];
            let mut best = 0;
            for (i, kid) in kids.iter().enumerate().skip(1) {
                if before(kid, &kids[best], less) {
                    best = i;
                }
            }
            let child = kids[best];
            if !before(&child, &key, less) {
                break;
            }
            keys[at] = child;
            at = first + best;
        }
        keys[at] = key;
    }

    /// Keeps only the keys `keep` accepts, then restores the heap.
    pub fn retain(&mut self, keep: impl FnMut(&Key) -> bool, less: impl Fn(u32, u32) -> bool) {
        self.keys.retain(keep);
        for at in (0..self.keys.len() / 4 + 1).rev() {
            if at < self.keys.len() {
                let key = self.keys[at];
                self.sift_down(at, key, &less);
            }
        }
    }
}

#[inline(always)]
fn before(a: &Key, b: &Key, less: &impl Fn(u32, u32) -> bool) -> bool {
    a.time < b.time || (a.time == b.time && less(a.slot, b.slot))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pops come out in (time, then slot-order) order, whatever the pushes.
    #[test]
    fn pops_in_order_with_ties_by_the_callers_order() {
        let mut h = QuadHeap::default();
        let mut state = 12345u64;
        let mut want = Vec::new();
        for slot in 0..2000u32 {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let t = ((state >> 33) % 50) as f64 - 10.0; // negative times too, many ties
            let key = Key { time: time_bits(t), slot };
            // Ties: higher slots first.
            h.push(key, |a, b| a > b);
            want.push((t, std::cmp::Reverse(slot)));
        }
        want.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut got = Vec::new();
        while let Some(k) = h.pop(|a, b| a > b) {
            got.push((time_of(k.time), std::cmp::Reverse(k.slot)));
        }
        assert_eq!(got, want);
        // Retain, then the order holds.
        for slot in 0..100u32 {
            h.push(Key { time: time_bits(f64::from(slot % 7)), slot }, |a, b| a < b);
        }
        h.retain(|k| k.slot % 3 != 0, |a, b| a < b);
        let mut last = (f64::NEG_INFINITY, 0);
        let mut n = 0;
        while let Some(k) = h.pop(|a, b| a < b) {
            let now = (time_of(k.time), k.slot);
            assert!(
                now.0 > last.0 || (now.0 == last.0 && now.1 > last.1),
                "{now:?} after {last:?}"
            );
            assert_ne!(k.slot % 3, 0);
            last = now;
            n += 1;
        }
        assert_eq!(n, 66);
    }

    #[test]
    fn time_bits_sort_as_times() {
        let times = [f64::NEG_INFINITY, -3.5, -0.0, 0.0, 1e-300, 2.0, 1e300, f64::INFINITY];
        for w in times.windows(2) {
            assert!(time_bits(w[0]) <= time_bits(w[1]), "{w:?}");
            assert_eq!(time_of(time_bits(w[0])).to_bits(), w[0].to_bits());
        }
    }
}
