//! Recycled letters: the blocks messages live in, kept per thread for the
//! next message.
//!
//! A simulation's events are messages made and read once: PHOLD makes one
//! per event and frees it when the event is read, a broadcast makes one
//! clone per subscriber. Each was a trip through the global allocator:
//! about 200 instructions a message with glibc's; with mimalloc 3 a page
//! abandoned and reclaimed every few dozen messages; and between
//! partitions, where messages are made on one thread and freed on another,
//! a quarter of the sender's time in mimalloc collecting the other
//! thread's frees. A letter's block now goes, when its message is dropped,
//! to this thread's shelf for blocks of its size, and the next message of
//! that size takes it from there: a few instructions each way.
//!
//! - Blocks are kept by size class (multiples of 16 bytes up to 256) and
//!   allocated with the class's layout, so any block of a class serves any
//!   letter of it, on any thread. Larger letters, and letters aligned to
//!   more than 8 bytes (a header's alignment: a `u128` or SIMD payload), go
//!   straight to the allocator.
//! - A shelf holds two magazines: stacks of addresses, not lists linked
//!   through the blocks. A free block is not written, so a block read on
//!   one core and reused on another moves between their caches once, to
//!   its next writer.
//! - A thread keeps at most [`KEEP_BYTES`] per class on its shelf, half in
//!   each magazine. When both are full, the older one goes to the
//!   process's depot for its class; when both are empty, the thread takes
//!   a full one from there before it asks the allocator (see [`Shelf`]).
//!   So a one-way stream between threads (made on one partition, read on
//!   another) sends its blocks back some 800 at a time: the depot's lock is
//!   taken once per magazine, not per message, and its count is read
//!   without the lock; and traffic that swings across a magazine's edge
//!   goes to the depot once per magazine's worth, not every few messages.
//!   The depot keeps at most [`DEPOT_BATCHES`] magazines per class; one
//!   beyond that goes back to the allocator (some 800 frees at once).
//! - A thread's shelves are freed when it ends; a letter dropped after that
//!   (by another thread-local's destructor) goes to the allocator.
//! - The cost: a thread holds up to 128 KiB of blocks per size class it
//!   has used, and its magazines' addresses (13 KiB for the 80-byte
//!   class), until it ends: about 1.6 MiB if it used all twelve classes.
//!   The depot holds up to 512 KiB per class until the process ends. A
//!   memory checker (valgrind, ASan) no longer sees a message's block
//!   freed, so it cannot catch a use after free of one in unsafe code.
//! - The global allocator must not drop messages (it would find a shelf
//!   half updated: nothing unsound, but blocks could leak).
//!
//! The figures (BENCHMARKS.md, "Recycled letters"): PHOLD with 16 K events
//! pending on one partition 3.8 → 5.4 M events/s on the suite's mimalloc,
//! `xstream` 8 → 24 M messages/s.

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::cell::Cell;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Bytes per size class step.
const STEP: usize = 16;
/// The alignment of every block kept: a header's.
const ALIGN: usize = 8;
/// The largest block kept.
const LARGEST: usize = 256;
/// Number of classes (class `c` holds blocks of `c * STEP` bytes; class 0
/// is never used: a letter is at least its 72-byte header).
const CLASSES: usize = LARGEST / STEP + 1;
/// The most bytes of blocks a thread keeps on the shelf of one class.
pub(crate) const KEEP_BYTES: usize = 128 * 1024;
/// The most magazines the depot keeps per class.
pub(crate) const DEPOT_BATCHES: usize = 8;

// A magazine of the largest class holds at least one block (else `push`
// would write past an empty buffer).
const _: () = assert!(KEEP_BYTES / 2 / LARGEST >= 1, "a magazine holds a block");

/// A magazine's free blocks, handed between threads: their addresses.
struct Batch(Vec<NonNull<u8>>);

// SAFETY: a batch owns its free blocks, plain allocations of the global
// allocator that any thread may use or free.
unsafe impl Send for Batch {}

impl Batch {
    /// Gives every block back to the allocator.
    fn free(self, class: usize) {
        for p in self.0 {
            // SAFETY: every block of a batch is a free block of this class,
            // allocated with `block(class)`.
            unsafe { dealloc(p.as_ptr(), block(class)) };
        }
    }
}

/// A stack of free blocks' addresses in a buffer of [`holds`] entries
/// (three cells rather than a `RefCell<Vec>`: a free and a take are each a
/// few instructions). With no buffer yet, all three are null.
struct Magazine {
    /// The buffer's start.
    base: Cell<*mut NonNull<u8>>,
    /// One past the top entry.
    top: Cell<*mut NonNull<u8>>,
    /// The buffer's end.
    end: Cell<*mut NonNull<u8>>,
}

impl Magazine {
    /// A magazine without a buffer.
    const fn empty() -> Magazine {
        Magazine {
            base: Cell::new(std::ptr::null_mut()),
            top: Cell::new(std::ptr::null_mut()),
            end: Cell::new(std::ptr::null_mut()),
        }
    }

    /// How many blocks it holds.
    #[cfg(test)]
    fn len(&self) -> usize {
        // SAFETY: `top` and `base` point into (or one past) one buffer, or
        // are both null.
        unsafe { self.top.get().offset_from(self.base.get()) as usize }
    }

    #[inline(always)]
    fn is_empty(&self) -> bool {
        self.top.get() == self.base.get()
    }

    /// Full, or without a buffer.
    #[inline(always)]
    fn is_full(&self) -> bool {
        self.top.get() == self.end.get()
    }

    /// Takes its buffer out as a `Vec`, leaving it without one.
    fn take(&self) -> Vec<NonNull<u8>> {
        let base = self.base.replace(std::ptr::null_mut());
        let top = self.top.replace(std::ptr::null_mut());
        let end = self.end.replace(std::ptr::null_mut());
        if base.is_null() {
            return Vec::new();
        }
        // SAFETY: the buffer was a `Vec`'s (see `load`): `base` its
        // pointer, `end - base` its capacity, `top - base` entries written.
        unsafe {
            let (len, cap) = (top.offset_from(base) as usize, end.offset_from(base) as usize);
            Vec::from_raw_parts(base, len, cap)
        }
    }

    /// Makes a `Vec`'s buffer the magazine's (which has none).
    fn load(&self, blocks: Vec<NonNull<u8>>) {
        debug_assert!(self.base.get().is_null());
        let mut blocks = std::mem::ManuallyDrop::new(blocks);
        let base = blocks.as_mut_ptr();
        // SAFETY: `len` and `capacity` are within the buffer.
        unsafe {
            self.top.set(base.add(blocks.len()));
            self.end.set(base.add(blocks.capacity()));
        }
        self.base.set(base);
    }

    /// Swaps two magazines' buffers.
    fn swap(&self, other: &Magazine) {
        self.base.swap(&other.base);
        self.top.swap(&other.top);
        self.end.swap(&other.end);
    }
}

/// The free blocks of one class on one thread: two magazines, the one in
/// use (`loaded`) and the one before it (`spare`), as in Bonwick and
/// Adams' magazine allocator (USENIX 2001). A take pops from `loaded`; when
/// it is empty, a full `spare` takes its place, and only when both are
/// empty does the thread take a full magazine from the depot. A free is the
/// mirror image. So after a trip to the depot the thread holds one full
/// magazine and one empty one: traffic that swings across an edge goes to
/// the depot once per magazine's worth, not every few messages.
struct Shelf {
    loaded: Magazine,
    spare: Magazine,
}

impl Shelf {
    /// How many blocks it holds.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.loaded.len() + self.spare.len()
    }

    /// Takes a block off the shelf, else from the depot.
    #[inline(always)]
    fn pop(&self, class: usize) -> Option<NonNull<u8>> {
        if self.loaded.is_empty() {
            return self.reload(class);
        }
        let top = self.loaded.top.get();
        // SAFETY: the magazine is not empty: the entry below `top` holds
        // a free block.
        unsafe {
            let top = top.sub(1);
            self.loaded.top.set(top);
            Some(top.read())
        }
    }

    /// Puts a free block of this class on the shelf.
    #[inline(always)]
    fn push(&self, p: NonNull<u8>, class: usize) {
        if self.loaded.is_full() {
            self.make_room(class);
        }
        let top = self.loaded.top.get();
        // SAFETY: `make_room` left room: `top` is inside the buffer.
        unsafe {
            top.write(p);
            self.loaded.top.set(top.add(1));
        }
    }

    /// `loaded` is empty: the spare if it is full, else a full magazine
    /// from the depot (the empty spare is freed).
    #[cold]
    #[inline(never)]
    fn reload(&self, class: usize) -> Option<NonNull<u8>> {
        // The spare is only ever a swapped-out magazine: full or empty.
        debug_assert!(self.spare.is_empty() || self.spare.is_full());
        if self.spare.is_full() && !self.spare.is_empty() {
            self.loaded.swap(&self.spare);
        } else {
            let Batch(blocks) = DEPOT[class].take()?;
            // loaded (empty) becomes the spare; the empty spare goes.
            let empty = self.spare.take();
            self.spare.swap(&self.loaded);
            self.loaded.load(blocks);
            Batch(empty).free(class);
        }
        self.pop(class)
    }

    /// `loaded` is full (or has no buffer yet): the spare if it is empty,
    /// else the full spare goes to the depot and a new magazine comes in.
    #[cold]
    #[inline(never)]
    fn make_room(&self, class: usize) {
        debug_assert!(self.spare.is_empty() || self.spare.is_full());
        if self.spare.is_empty() && !self.spare.base.get().is_null() {
            self.loaded.swap(&self.spare);
            return;
        }
        let fresh = Vec::with_capacity(holds(class));
        let full = self.spare.take();
        self.spare.swap(&self.loaded);
        self.loaded.load(fresh);
        if !full.is_empty() {
            if let Err(batch) = DEPOT[class].give(Batch(full)) {
                batch.free(class);
            }
        }
    }

    /// Frees its blocks and buffers.
    fn free(&self, class: usize) {
        Batch(self.loaded.take()).free(class);
        Batch(self.spare.take()).free(class);
    }
}

/// A thread's shelves.
struct Shelves([Shelf; CLASSES]);

impl Drop for Shelves {
    fn drop(&mut self) {
        for (class, shelf) in self.0.iter().enumerate() {
            shelf.free(class);
        }
    }
}

thread_local! {
    static SHELVES: Shelves = const {
        Shelves(
            [const { Shelf { loaded: Magazine::empty(), spare: Magazine::empty() } }; CLASSES],
        )
    };
}

/// Full magazines of one class, for any thread to take.
struct Depot {
    /// How many batches `batches` holds (read without the lock).
    len: AtomicUsize,
    batches: Mutex<Vec<Batch>>,
}

impl Depot {
    /// A batch, if the depot has one.
    fn take(&self) -> Option<Batch> {
        if self.len.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let mut batches = self.batches.lock().unwrap_or_else(|e| e.into_inner());
        let batch = batches.pop();
        self.len.store(batches.len(), Ordering::Relaxed);
        batch
    }

    /// Keeps a batch, or gives it back if the depot is full.
    fn give(&self, batch: Batch) -> Result<(), Batch> {
        let mut batches = self.batches.lock().unwrap_or_else(|e| e.into_inner());
        if batches.len() >= DEPOT_BATCHES {
            return Err(batch);
        }
        batches.push(batch);
        self.len.store(batches.len(), Ordering::Relaxed);
        Ok(())
    }
}

static DEPOT: [Depot; CLASSES] =
    [const { Depot { len: AtomicUsize::new(0), batches: Mutex::new(Vec::new()) } }; CLASSES];

/// The class of a letter's layout, if its blocks are kept.
#[inline(always)]
fn class_of(layout: Layout) -> Option<usize> {
    let size = layout.size();
    (size > 0 && size <= LARGEST && layout.align() <= ALIGN).then(|| size.div_ceil(STEP))
}

/// The layout every block of a class is allocated with.
#[inline(always)]
fn block(class: usize) -> Layout {
    // A multiple of 16 up to 256, aligned to 8: always a valid layout.
    Layout::from_size_align(class * STEP, ALIGN).expect("a valid block layout")
}

/// The most blocks a shelf of this class holds.
#[inline(always)]
#[cfg(test)]
fn keeps(class: usize) -> usize {
    2 * holds(class)
}

/// The blocks a magazine of this class holds: half a shelf's.
#[inline(always)]
fn holds(class: usize) -> usize {
    KEEP_BYTES / 2 / (class * STEP)
}

/// A block for a letter of this layout (whose size is never 0): from this
/// thread's shelf, else from the depot, else from the allocator.
#[inline]
pub(crate) fn take(layout: Layout) -> NonNull<u8> {
    debug_assert!(layout.size() > 0);
    let layout = match class_of(layout) {
        Some(class) => {
            let kept = SHELVES.try_with(|s| s.0[class].pop(class));
            if let Ok(Some(p)) = kept {
                return p;
            }
            block(class)
        }
        None => layout,
    };
    // SAFETY: the layout's size is not 0 (a letter holds its header).
    let p = unsafe { alloc(layout) };
    NonNull::new(p).unwrap_or_else(|| handle_alloc_error(layout))
}

/// Gives back the block of a letter of this layout, whose contents have
/// been dropped or moved out.
///
/// # Safety
/// `p` came from [`take`] with the same `layout`, and nothing uses it
/// after this call.
#[inline]
pub(crate) unsafe fn put_back(p: NonNull<u8>, layout: Layout) {
    let Some(class) = class_of(layout) else {
        // SAFETY: `take` allocated it with this very layout.
        unsafe { dealloc(p.as_ptr(), layout) };
        return;
    };
    let kept = SHELVES.try_with(|s| s.0[class].push(p, class));
    if kept.is_err() {
        // SAFETY: blocks of a class are allocated with `block(class)`.
        unsafe { dealloc(p.as_ptr(), block(class)) };
    }
}

/// How many blocks this thread keeps for letters of this layout (for tests).
#[cfg(test)]
pub(crate) fn kept(layout: Layout) -> usize {
    class_of(layout).map_or(0, |c| SHELVES.with(|s| s.0[c].len()))
}

/// How many batches the depot keeps for letters of this layout (for tests).
#[cfg(test)]
fn in_depot(layout: Layout) -> usize {
    class_of(layout).map_or(0, |c| DEPOT[c].len.load(Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    //! Each test uses a class of its own: the depot is the process's, and
    //! tests run at once on several threads.
    use super::*;
    use std::alloc::{GlobalAlloc, System};

    /// The test binary's allocator: counts the frees of blocks of each
    /// class's layout (by any test: a test owning a class reads a floor).
    struct CountFrees;

    static FREED: [AtomicUsize; CLASSES] = [const { AtomicUsize::new(0) }; CLASSES];
    /// Allocations by exact size (align 8, up to `LARGEST`).
    static ALLOCS: [AtomicUsize; LARGEST + 1] = [const { AtomicUsize::new(0) }; LARGEST + 1];
    thread_local! {
        /// This thread's allocations and frees of 256-byte blocks.
        static MINE_256: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
    }

    // SAFETY: passes every call to `System` unchanged.
    unsafe impl GlobalAlloc for CountFrees {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            if layout.align() == ALIGN && layout.size() <= LARGEST {
                ALLOCS[layout.size()].fetch_add(1, Ordering::Relaxed);
            }
            if layout.align() == ALIGN && layout.size() == 256 {
                let _ = MINE_256.try_with(|m| m.set((m.get().0 + 1, m.get().1)));
            }
            // SAFETY: as the caller promised.
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            if layout.align() == ALIGN
                && layout.size().is_multiple_of(STEP)
                && layout.size() <= LARGEST
            {
                FREED[layout.size() / STEP].fetch_add(1, Ordering::Relaxed);
            }
            if layout.align() == ALIGN && layout.size() == 256 {
                let _ = MINE_256.try_with(|m| m.set((m.get().0, m.get().1 + 1)));
            }
            // SAFETY: as the caller promised.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    #[global_allocator]
    static ALLOCATOR: CountFrees = CountFrees;

    fn freed(layout: Layout) -> usize {
        FREED[class_of(layout).unwrap()].load(Ordering::Relaxed)
    }

    fn layout(size: usize) -> Layout {
        Layout::from_size_align(size, 8).unwrap()
    }

    #[test]
    fn a_freed_block_serves_the_next_letter_of_its_class() {
        let (a_size, same_class) = (layout(176), layout(164));
        let a = take(a_size);
        // SAFETY: `a` came from `take(a_size)` and is not used again.
        unsafe { put_back(a, a_size) };
        assert_eq!(kept(a_size), 1);
        let b = take(same_class);
        assert_eq!(a, b, "the block on the shelf is reused");
        assert_eq!(kept(a_size), 0);
        // SAFETY: as above.
        unsafe { put_back(b, same_class) };
    }

    #[test]
    fn large_and_overaligned_letters_are_not_kept() {
        for layout in [layout(LARGEST + 8), Layout::from_size_align(128, 16).unwrap()] {
            let p = take(layout);
            assert_eq!(p.as_ptr() as usize % layout.align(), 0);
            // SAFETY: `p` came from `take(layout)`.
            unsafe { put_back(p, layout) };
            assert_eq!(kept(layout), 0);
        }
        assert_eq!(class_of(Layout::from_size_align(0, 1).unwrap()), None);
    }

    #[test]
    fn a_full_shelf_sends_its_older_magazine_and_another_thread_takes_it() {
        let layout = layout(240);
        let cap = keeps(class_of(layout).unwrap());
        let mag = holds(class_of(layout).unwrap());
        let blocks: Vec<_> = (0..cap + 10).map(|_| take(layout)).collect();
        let first = blocks[0].as_ptr() as usize;
        let last = blocks[cap + 9];
        for b in blocks {
            // SAFETY: each came from `take(layout)`.
            unsafe { put_back(b, layout) };
        }
        assert_eq!(kept(layout), cap - mag + 10, "the older magazine left");
        assert_eq!(in_depot(layout), 1);
        let reused = std::thread::spawn(move || {
            let got: Vec<usize> = (0..mag).map(|_| take(layout).as_ptr() as usize).collect();
            assert_eq!(in_depot(layout), 0);
            assert_eq!(kept(layout), 0);
            let found = got.contains(&first);
            for b in got {
                // SAFETY: each came from `take(layout)`.
                unsafe { put_back(NonNull::new(b as *mut u8).unwrap(), layout) };
            }
            found
        })
        .join()
        .unwrap();
        assert!(reused, "the other thread took the older magazine, with the first block freed");
        let top = take(layout);
        assert_eq!(top, last, "the newest block stayed on top here");
        // SAFETY: `top` came from `take(layout)`.
        unsafe { put_back(top, layout) };
    }

    #[test]
    fn the_depot_keeps_at_most_its_share_and_frees_the_rest() {
        let layout = layout(224);
        let cap = keeps(class_of(layout).unwrap());
        let mag = holds(class_of(layout).unwrap());
        let n = cap + mag * (DEPOT_BATCHES + 2);
        let blocks: Vec<_> = (0..n).map(|_| take(layout)).collect();
        let freed_before = freed(layout);
        for b in blocks {
            // SAFETY: each came from `take(layout)`.
            unsafe { put_back(b, layout) };
        }
        assert_eq!(in_depot(layout), DEPOT_BATCHES);
        assert!(freed(layout) >= freed_before + 2 * mag, "two magazines freed");
        assert_eq!(kept(layout), cap);
        // Empty the depot again (the blocks taken go to the allocator).
        while in_depot(layout) > 0 || kept(layout) > 0 {
            let p = take(layout);
            // SAFETY: blocks of a class are allocated with its layout.
            unsafe { dealloc(p.as_ptr(), block(class_of(layout).unwrap())) };
        }
    }

    #[test]
    fn a_thread_that_ends_frees_its_shelf() {
        let layout = layout(192);
        let blocks: Vec<usize> = (0..50).map(|_| take(layout).as_ptr() as usize).collect();
        let freed_before = freed(layout);
        std::thread::spawn(move || {
            for b in blocks {
                // SAFETY: each came from `take(layout)` on the parent thread;
                // blocks are plain allocations of the class's layout.
                unsafe { put_back(NonNull::new(b as *mut u8).unwrap(), layout) };
            }
            assert_eq!(kept(layout), 50);
        })
        .join()
        .unwrap();
        assert!(freed(layout) >= freed_before + 50, "the thread's end freed its 50 blocks");
        assert_eq!(kept(layout), 0);
        assert_eq!(in_depot(layout), 0);
    }

    #[test]
    fn traffic_swinging_across_a_shelfs_edge_does_not_go_to_the_depot_each_time() {
        // From the review: a shelf that sent all its blocks away when full
        // and took a full one back when empty went to the depot twice per
        // swing of two messages at its edge. (Start with a magazine in the
        // depot, the shelf at the edge of needing it.)
        let layout = layout(208);
        let cap = keeps(class_of(layout).unwrap());
        let blocks: Vec<_> = (0..cap + 1).map(|_| take(layout)).collect();
        for b in blocks {
            // SAFETY: each came from `take(layout)`.
            unsafe { put_back(b, layout) };
        }
        let mut trips = 0;
        let mut depot = in_depot(layout);
        for swing in [2, 3, 50, 200] {
            for _ in 0..1000 {
                let taken: Vec<_> = (0..swing).map(|_| take(layout)).collect();
                trips += usize::from(in_depot(layout) != depot);
                depot = in_depot(layout);
                for b in taken {
                    // SAFETY: each came from `take(layout)`.
                    unsafe { put_back(b, layout) };
                }
                trips += usize::from(in_depot(layout) != depot);
                depot = in_depot(layout);
            }
        }
        assert!(trips <= 2, "{trips} trips to the depot in 4 000 swings");
    }

    #[test]
    fn a_thread_that_ends_frees_both_magazines() {
        let layout = layout(144);
        let mag = holds(class_of(layout).unwrap());
        let n = mag + 50;
        let blocks: Vec<usize> = (0..n).map(|_| take(layout).as_ptr() as usize).collect();
        let freed_before = freed(layout);
        std::thread::spawn(move || {
            for b in blocks {
                // SAFETY: blocks of a class are plain allocations of its layout.
                unsafe { put_back(NonNull::new(b as *mut u8).unwrap(), layout) };
            }
            assert_eq!(kept(layout), n, "a full spare and 50 loaded");
        })
        .join()
        .unwrap();
        assert!(freed(layout) >= freed_before + n, "the thread's end freed all {n} blocks");
    }

    #[test]
    fn a_block_given_back_after_the_shelves_ended_goes_to_the_allocator() {
        struct Late(std::cell::RefCell<Vec<usize>>);
        impl Drop for Late {
            fn drop(&mut self) {
                for b in self.0.borrow_mut().drain(..) {
                    // SAFETY: each came from `take(layout(160))`.
                    unsafe { put_back(NonNull::new(b as *mut u8).unwrap(), layout(160)) };
                }
            }
        }
        thread_local! {
            static LATE: Late = const { Late(std::cell::RefCell::new(Vec::new())) };
        }
        let freed_before = freed(layout(160));
        std::thread::spawn(|| {
            // Touched before the shelves: destroyed after them.
            LATE.with(|_| {});
            touch_shelves();
            for _ in 0..20 {
                let p = take(layout(160)).as_ptr() as usize;
                LATE.with(|l| l.0.borrow_mut().push(p));
            }
        })
        .join()
        .unwrap();
        assert!(freed(layout(160)) >= freed_before + 20, "the late blocks were freed");
    }

    /// Touches this thread's shelves.
    fn touch_shelves() {
        let p = take(layout(160));
        // SAFETY: `p` came from `take(layout(160))`.
        unsafe { put_back(p, layout(160)) };
    }

    #[test]
    fn blocks_of_a_class_are_allocated_with_the_class_layout() {
        // A block allocated for a 121-byte letter would be too small for the
        // 128-byte letter of its class that reuses it.
        let (odd, full) = (layout(121), layout(128));
        let before = (ALLOCS[121].load(Ordering::Relaxed), ALLOCS[128].load(Ordering::Relaxed));
        let p = std::thread::spawn(move || take(odd).as_ptr() as usize).join().unwrap();
        assert_eq!(ALLOCS[121].load(Ordering::Relaxed), before.0, "no 121-byte block");
        assert!(ALLOCS[128].load(Ordering::Relaxed) > before.1, "a 128-byte block");
        // SAFETY: it came from `take` for this class.
        unsafe { dealloc(p as *mut u8, block(class_of(full).unwrap())) };
    }

    #[test]
    fn swings_within_a_full_shelf_never_reach_the_allocator() {
        std::thread::spawn(|| {
            let layout = layout(256);
            let class = class_of(layout).unwrap();
            let (cap, mag) = (keeps(class), holds(class));
            let blocks: Vec<_> = (0..cap).map(|_| take(layout)).collect();
            for b in blocks {
                // SAFETY: each came from `take(layout)`.
                unsafe { put_back(b, layout) };
            }
            let bases = || {
                SHELVES.with(|s| {
                    let mut b = [s.0[class].loaded.base.get(), s.0[class].spare.base.get()];
                    b.sort();
                    b
                })
            };
            let (traffic, buffers) = (MINE_256.get(), bases());
            for swing in [1, 2, 3, 50, mag - 1, mag, mag + 1, cap - 1, cap] {
                for _ in 0..20 {
                    let taken: Vec<_> = (0..swing).map(|_| take(layout)).collect();
                    for b in taken {
                        // SAFETY: each came from `take(layout)`.
                        unsafe { put_back(b, layout) };
                    }
                    assert_eq!(bases(), buffers, "swing {swing}: the same two buffers");
                }
            }
            assert_eq!(MINE_256.get(), traffic, "no block allocated or freed");
            assert_eq!(kept(layout), cap);
            assert_eq!(in_depot(layout), 0);
        })
        .join()
        .unwrap();
    }
}
