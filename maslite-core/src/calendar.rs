//! The alarm queue's order: a calendar of time buckets in front of a small
//! heap.
//!
//! A simulation's pending alarms are many (thousands to millions), and
//! nearly every event pops one and pushes one. A heap pays `log n` levels
//! for each pop — ~330 instructions at 16 K pending, and a cache miss a
//! level at a million. Here only the alarms of the current time bucket are
//! in a heap ([`QuadHeap`], a handful of keys); the later ones wait,
//! unsorted, in buckets of equal width over the range the queue spread
//! itself over last, each a list threaded through per-slot links (no
//! allocation per alarm), and those past that range in one unsorted list.
//! When the current bucket is spent, the next non-empty one moves into the
//! heap; when the range is spent, the far list is spread over a new range,
//! its width fitted to hold a few alarms a bucket where the next pops are.
//! An alarm is thus moved a few times on average and compared only with its
//! bucket's company.
//!
//! A key pushed into an empty queue goes straight into the heap, so a lone
//! sleeper's alarm, popped and pushed again and again, costs about what it
//! did in a heap.
//!
//! The order is the heap's: by time, then by the caller's order for equal
//! times. A bucket's index never decreases as the time grows, equal times
//! always share a place, and every alarm in the heap comes before every
//! alarm in a bucket, which comes before every far one: so the heap's top
//! is the least of all, whatever the distribution of times. Times a
//! calendar cannot spread (all at one time, or a bunch much denser than
//! the front it was fitted to) end up in the heap: then the queue is the
//! heap, at the heap's cost.
//! Spreading again is rationed (at most once per half as many pushes and
//! pops as there were alarms, and ever less often while it leaves the heap
//! full), so a queue never spends more than a constant per alarm on it.

use crate::quad_heap::{time_bits, time_of, Key, QuadHeap};

/// No slot: the end of a bucket's list, or an empty bucket.
const NONE: u32 = u32::MAX;

/// The alarms a bucket is fitted to hold when the queue spreads.
const PER_BUCKET: usize = 4;

/// The most buckets (4 bytes each).
const MAX_BUCKETS: usize = 1 << 20;

/// The heap holds at most this many before the queue asks to spread again
/// (a bucket this full moving into the heap asks too).
const NEAR_LIMIT: usize = 64;

/// The pending keys in time order (see the [module](self)).
pub(crate) struct Calendar {
    /// The current bucket's keys (and any earlier than the range).
    near: QuadHeap,
    /// The first slot of each bucket's list; buckets up to `cur` are spent.
    heads: Vec<u32>,
    /// The bucket whose keys are in `near`.
    cur: usize,
    /// Per slot: the next slot in its bucket's list.
    next: Vec<u32>,
    /// Per slot: its key's time bits, while it waits in a bucket or far.
    times: Vec<u64>,
    /// The slots of the keys past the range (time bits `> top`), unsorted:
    /// their times are in `times`, so a far key costs 4 bytes here, not a
    /// 16-byte key (half of a million pending alarms can be far).
    far: Vec<u32>,
    /// The range: its start, its last time's bits (compared as bits, so
    /// that every key, NaN too, sorts as in the heap), and buckets per unit.
    lo: f64,
    top: u64,
    scale: f64,
    len: usize,
    /// Pushes and pops since the last spread, and how many were pending
    /// then (the ration of spreads).
    ops: usize,
    spread_len: usize,
    /// Doubles while spreading everything again leaves the heap full (ties
    /// or a bunch no width separates), so that it is tried ever less often.
    ration: usize,
}

impl Default for Calendar {
    fn default() -> Self {
        Calendar {
            near: QuadHeap::default(),
            heads: Vec::new(),
            cur: 0,
            next: Vec::new(),
            times: Vec::new(),
            far: Vec::new(),
            lo: 0.0,
            top: 0,
            scale: 0.0,
            len: 0,
            ops: 0,
            spread_len: 0,
            ration: 1,
        }
    }
}

impl Calendar {
    /// The least key.
    #[inline]
    pub fn peek(&self) -> Option<Key> {
        self.near.peek()
    }

    /// Most often the key after the least (see [`QuadHeap::peek_second`]);
    /// `None` where it would be in a bucket.
    #[inline]
    pub fn peek_second(&self) -> Option<Key> {
        self.near.peek_second()
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Every key, in no order.
    pub fn iter(&self) -> impl Iterator<Item = Key> + '_ {
        let bucketed = self.heads.iter().skip(self.cur + 1).flat_map(|&head| self.list(head));
        let far = self.far.iter().map(|&slot| self.key(slot));
        self.near.iter().copied().chain(bucketed).chain(far)
    }

    /// The key of a slot waiting in a bucket or far.
    #[inline]
    fn key(&self, slot: u32) -> Key {
        Key { time: self.times[slot as usize], slot }
    }

    /// Notes `key`'s time in its slot's place.
    #[inline]
    fn note_time(&mut self, key: Key) {
        let slot = key.slot as usize;
        if slot >= self.times.len() {
            self.times.resize(slot + 1, 0);
            self.next.resize(slot + 1, NONE);
        }
        self.times[slot] = key.time;
    }

    /// The keys of the list starting at `head`.
    fn list(&self, head: u32) -> impl Iterator<Item = Key> + '_ {
        let mut at = head;
        std::iter::from_fn(move || {
            if at == NONE {
                return None;
            }
            let slot = at;
            at = self.next[slot as usize];
            Some(self.key(slot))
        })
    }

    /// The bucket of time `t` (in the range or before it).
    #[inline]
    fn bucket(&self, t: f64) -> usize {
        // Saturating: before the range (or NaN, at its start) is bucket 0.
        (((t - self.lo) * self.scale) as usize).min(self.heads.len().saturating_sub(1))
    }

    /// Pushes `key`; `less(a, b)` orders two slots of equal time.
    #[inline]
    pub fn push(&mut self, key: Key, less: impl Fn(u32, u32) -> bool) {
        self.len += 1;
        self.ops += 1;
        if self.len == 1 {
            // Into an empty queue (a lone sleeper's alarm, again and
            // again): a range of this one time, the key in the heap.
            (self.top, self.scale, self.cur) = (key.time, 0.0, 0);
            (self.ops, self.spread_len) = (0, 1);
            self.heads.clear();
            self.near.push(key, &less);
            return;
        }
        if key.time > self.top {
            // (Never into an empty heap: the queue was not empty.)
            self.note_time(key);
            self.far.push(key.slot);
            return;
        }
        let b = if self.heads.len() > 1 { self.bucket(time_of(key.time)) } else { 0 };
        if b <= self.cur {
            self.near.push(key, &less);
            if self.near.len() > NEAR_LIMIT && self.may_spread() {
                self.spread_all(&less);
            }
        } else {
            self.link(key, b);
        }
    }

    /// Puts `key` into bucket `b`'s list.
    #[inline]
    fn link(&mut self, key: Key, b: usize) {
        self.note_time(key);
        self.thread(key.slot, b);
    }

    /// Puts a slot whose time is noted into bucket `b`'s list.
    #[inline]
    fn thread(&mut self, slot: u32, b: usize) {
        self.next[slot as usize] = self.heads[b];
        self.heads[b] = slot;
    }

    /// Pops the least key.
    #[inline]
    pub fn pop(&mut self, less: impl Fn(u32, u32) -> bool) -> Option<Key> {
        let key = self.near.pop(&less)?;
        self.len -= 1;
        self.ops += 1;
        if self.near.is_empty() && self.len > 0 {
            self.refill(&less);
        }
        Some(key)
    }

    /// Keeps only the keys `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(&Key) -> bool, less: impl Fn(u32, u32) -> bool) {
        self.near.retain(&mut keep, &less);
        let mut len = self.near.len();
        for b in self.cur + 1..self.heads.len() {
            let (mut at, mut kept) = (self.heads[b], NONE);
            while at != NONE {
                let following = self.next[at as usize];
                if keep(&self.key(at)) {
                    self.next[at as usize] = kept;
                    kept = at;
                    len += 1;
                }
                at = following;
            }
            self.heads[b] = kept;
        }
        let mut far = std::mem::take(&mut self.far);
        far.retain(|&slot| keep(&self.key(slot)));
        self.far = far;
        self.len = len + self.far.len();
        if self.near.is_empty() {
            self.refill(&less);
        }
    }

    /// Whether a spread is due its ration (see the [module](self)).
    #[inline]
    fn may_spread(&self) -> bool {
        // (Or the queue has doubled since: its growth pays for it.)
        2 * self.ops >= self.spread_len.saturating_mul(self.ration)
            || self.len >= 2 * self.spread_len
    }

    /// With the heap empty: moves the next bucket in, or spreads the far
    /// keys over a new range; an empty queue forgets its range.
    #[cold]
    fn refill(&mut self, less: &impl Fn(u32, u32) -> bool) {
        if self.len == 0 {
            self.heads.clear();
            self.cur = 0;
            self.top = 0;
            return;
        }
        self.cur += 1;
        while self.cur < self.heads.len() {
            let head = std::mem::replace(&mut self.heads[self.cur], NONE);
            if head != NONE {
                let mut at = head;
                while at != NONE {
                    self.near.push(self.key(at), less);
                    at = self.next[at as usize];
                }
                if self.near.len() > NEAR_LIMIT && self.may_spread() {
                    self.spread_all(less);
                }
                return;
            }
            self.cur += 1;
        }
        self.spread(less);
    }

    /// Spreads every key over a new range.
    #[cold]
    fn spread_all(&mut self, less: &impl Fn(u32, u32) -> bool) {
        let mut near = std::mem::take(&mut self.near);
        for key in near.drain() {
            self.note_time(key);
            self.far.push(key.slot);
        }
        near.shrink(4 * NEAR_LIMIT);
        self.near = near;
        for b in self.cur + 1..self.heads.len() {
            let mut at = std::mem::replace(&mut self.heads[b], NONE);
            while at != NONE {
                self.far.push(at);
                at = self.next[at as usize];
            }
        }
        self.spread(less);
        self.ration = if self.near.len() > NEAR_LIMIT { (self.ration * 2).min(1 << 16) } else { 1 };
    }

    /// Spreads the far keys (every key left: the heap and the buckets are
    /// empty) over a new range from the least; the first bucket's keys go
    /// into the heap.
    ///
    /// The width fits [`PER_BUCKET`] keys a bucket at the front, where the
    /// pops come next: the times of a simulation's pending events bunch up
    /// near the clock, so a width fitted to the whole span (least to
    /// greatest) would put most of them in its first buckets. The density
    /// at the front comes from a sample: the time below which an eighth of
    /// it lies. The range ends where its buckets run out (one per two keys:
    /// two bytes a key); later keys stay far, spread next time.
    fn spread(&mut self, less: &impl Fn(u32, u32) -> bool) {
        debug_assert!(self.near.is_empty() && !self.far.is_empty());
        let n = self.far.len();
        let (mut lo_bits, mut top_bits) = (u64::MAX, 0);
        for &slot in &self.far {
            let time = self.times[slot as usize];
            lo_bits = lo_bits.min(time);
            top_bits = top_bits.max(time);
        }
        let (lo, top) = (time_of(lo_bits), time_of(top_bits));
        let span = top - lo;
        let (scale, buckets, top) = if n <= 2 * PER_BUCKET || !(span > 0.0 && span.is_finite()) {
            // Few keys, or a span that cannot be cut (one time, or an
            // infinite one): one bucket, the heap.
            (0.0, 1, top_bits)
        } else {
            let samples = n.min(64);
            let mut sample: Vec<f64> = (0..samples)
                .map(|i| time_of(self.times[self.far[i * n / samples] as usize]))
                .collect();
            sample.sort_unstable_by(f64::total_cmp);
            let eighth = sample[samples / 8] - lo;
            let width = if eighth > 0.0 {
                eighth / (n as f64 / 8.0) * PER_BUCKET as f64
            } else {
                span / n as f64 * PER_BUCKET as f64
            };
            let fit = (span / width).ceil();
            let most = (n / 2).clamp(16, MAX_BUCKETS);
            let end = lo + most as f64 * width;
            if !(1.0 / width).is_finite() || end <= lo {
                // A width too fine for f64 (subnormal times): the whole
                // span in `most` buckets, or one.
                let width = span / most as f64;
                if (1.0 / width).is_finite() {
                    (1.0 / width, most, top_bits)
                } else {
                    (0.0, 1, top_bits)
                }
            } else if fit.is_finite() && fit <= most as f64 {
                (1.0 / width, (fit as usize).max(1), top_bits)
            } else {
                (1.0 / width, most, time_bits(end))
            }
        };
        self.scale = if scale.is_finite() { scale } else { 0.0 };
        self.lo = lo;
        self.top = top;
        self.heads.clear();
        self.heads.resize(buckets, NONE);
        self.cur = 0;
        self.ops = 0;
        self.spread_len = n;
        let mut far = std::mem::take(&mut self.far);
        far.retain(|&slot| {
            let key = self.key(slot);
            if key.time > top {
                return true;
            }
            let b = self.bucket(time_of(key.time));
            if b == 0 {
                self.near.push(key, less);
            } else {
                self.thread(slot, b);
            }
            false
        });
        if far.capacity() > 2 * far.len() + 1024 {
            // Most far keys were spread: give their room back.
            far.shrink_to(far.len() + far.len() / 4);
        }
        self.far = far;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What the queues are asked to do.
    #[derive(Clone, Debug)]
    enum Op {
        Push(f64),
        Pop,
        Retain(u32),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            // Times: few distinct (ties), spread wide, clustered, far outliers.
            4 => (0u32..20).prop_map(|t| Op::Push(f64::from(t))),
            4 => (0.0f64..1000.0).prop_map(Op::Push),
            1 => (-1e6f64..1e6).prop_map(Op::Push),
            1 => prop_oneof![
                Just(1e300),
                Just(f64::INFINITY),
                Just(-0.0),
                Just(5e-324),
                Just(f64::NAN),
                Just(-f64::NAN),
            ]
            .prop_map(Op::Push),
            // Subnormal times: widths too fine for f64.
            1 => (0u32..40).prop_map(|k| Op::Push(f64::from(k) * 5e-324)),
            6 => Just(Op::Pop),
            1 => (2u32..7).prop_map(Op::Retain),
        ]
    }

    /// Runs `ops` on a calendar and on the heap beside it: every pop and
    /// peek agrees, ties broken by the slots' order (the greater first).
    /// Returns the most keys its heap and the most buckets it held.
    fn agree(ops: &[Op], clocked: bool) -> (usize, usize) {
        let (mut most_near, mut most_buckets, mut step) = (0, 0, 0u64);
        let less = |a: u32, b: u32| a > b;
        let (mut cal, mut heap) = (Calendar::default(), QuadHeap::default());
        let (mut slots, mut free) = (0u32, Vec::new());
        // The clock: with `clocked`, pushes never go before the last pop,
        // as alarms; without, anywhere (the order holds all the same).
        let mut now = f64::NEG_INFINITY;
        for op in ops {
            match *op {
                Op::Push(t) => {
                    let t = if clocked { t.max(now) } else { t };
                    let slot = free.pop().unwrap_or_else(|| {
                        slots += 1;
                        slots - 1
                    });
                    let key = Key { time: time_bits(t), slot };
                    cal.push(key, less);
                    heap.push(key, less);
                }
                Op::Pop => {
                    let got = cal.pop(less);
                    assert_eq!(got, heap.pop(less));
                    if let Some(k) = got {
                        now = time_of(k.time);
                        free.push(k.slot);
                    }
                }
                Op::Retain(m) => {
                    let keep = |k: &Key| !k.slot.is_multiple_of(m);
                    let gone: Vec<u32> = heap.iter().filter(|k| !keep(k)).map(|k| k.slot).collect();
                    cal.retain(keep, less);
                    heap.retain(keep, less);
                    free.extend(gone);
                }
            }
            assert_eq!(cal.peek(), heap.peek());
            assert_eq!(cal.len(), heap.len());
            most_near = most_near.max(cal.near.len());
            most_buckets = most_buckets.max(cal.heads.len());
            step += 1;
            if heap.len() > 100 && step % 499 != 0 {
                continue;
            }
            let mut a: Vec<_> = cal.iter().map(|k| (k.time, k.slot)).collect();
            let mut b: Vec<_> = heap.iter().map(|k| (k.time, k.slot)).collect();
            a.sort_unstable();
            b.sort_unstable();
            assert_eq!(a, b);
        }
        while let Some(k) = heap.pop(less) {
            assert_eq!(cal.pop(less), Some(k));
        }
        assert_eq!(cal.pop(less), None);
        (most_near, most_buckets)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn pops_as_the_heap_does(
            ops in proptest::collection::vec(op(), 0..400),
            clocked in any::<bool>(),
        ) {
            let _ = agree(&ops, clocked);
        }
    }

    /// A hold model (pop one, push one later), as PHOLD: thousands pending,
    /// the range spent and spread again many times.
    #[test]
    fn a_hold_model_pops_as_the_heap_does() {
        let mut state = 7u64;
        let mut draw = move || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut ops = Vec::new();
        for _ in 0..5000 {
            ops.push(Op::Push(-draw().ln()));
        }
        let mut now = 0.0f64;
        for i in 0..40_000 {
            ops.push(Op::Pop);
            now += 0.0002;
            // Mostly ahead by an exponential delay; sometimes at once, or a
            // tie with a round time.
            let t = match i % 50 {
                0 => now,
                1 => (now * 4.0).ceil() / 4.0,
                _ => now + 0.1 - draw().ln(),
            };
            ops.push(Op::Push(t));
        }
        let (near, buckets) = agree(&ops, true);
        // It ran as a calendar, not as one big heap.
        assert!(buckets >= 1000, "{buckets} buckets");
        assert!(near <= NEAR_LIMIT + 1, "{near} keys in the heap");
    }

    /// Times a calendar cannot spread well (a thousand subnormal values, a
    /// few integers tied a thousand times each) still pop in order.
    #[test]
    fn ties_and_subnormal_times_pop_as_the_heap_does() {
        let mut ops = Vec::new();
        for i in 0..3000u32 {
            ops.push(Op::Push(f64::from(i % 1000) * 5e-324));
            ops.push(Op::Push(f64::from(i % 3)));
        }
        for i in 0..6000u32 {
            ops.push(Op::Pop);
            if i % 2 == 0 {
                ops.push(Op::Push(f64::from(3 + i % 5)));
            }
        }
        let _ = agree(&ops, true);
    }
}
