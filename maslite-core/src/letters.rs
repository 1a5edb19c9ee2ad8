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
//! - A shelf is a stack of addresses, not a list linked through the blocks:
//!   a free block is not written, so a block read on one core and reused
//!   on another moves between their caches once, to its next writer.
//! - A thread keeps at most [`KEEP_BYTES`] per class on its shelf. A full
//!   shelf goes whole to the process's depot for its class, and a thread
//!   whose shelf is empty takes one from there before it asks the
//!   allocator. So a one-way stream between threads (made on one partition,
//!   read on another) sends its blocks back about 1 600 at a time: the
//!   depot's lock is taken once per shelf, not per message, and its count
//!   is read without the lock. The depot keeps at most [`DEPOT_BATCHES`]
//!   shelves per class; one beyond that goes back to the allocator.
//! - A thread's shelves are freed when it ends; a letter dropped after that
//!   (by another thread-local's destructor) goes to the allocator.
//! - The cost: a thread holds up to 128 KiB per size class it has used
//!   (about 1.5 MiB if it used all twelve) until it ends, and a memory
//!   checker (valgrind, ASan) no longer sees a message's block freed, so it
//!   cannot catch a use after free of one in unsafe code.

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
/// The most bytes a thread keeps on the shelf of one class.
pub(crate) const KEEP_BYTES: usize = 128 * 1024;
/// The most full shelves the depot keeps per class.
pub(crate) const DEPOT_BATCHES: usize = 4;

/// Free blocks of one class, a full shelf's: their addresses.
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

/// The free blocks of one class on one thread: a stack of their addresses
/// in a buffer of [`keeps`] entries, made at the first block kept. (Three
/// cells rather than a `RefCell<Vec>`: a free and a take are each a few
/// instructions, and every state between them is one the cells can hold.)
struct Shelf {
    /// The buffer's start (null until a block is kept).
    base: Cell<*mut NonNull<u8>>,
    /// One past the top entry.
    top: Cell<*mut NonNull<u8>>,
    /// The buffer's end.
    end: Cell<*mut NonNull<u8>>,
}

impl Shelf {
    /// How many blocks it holds.
    #[cfg(test)]
    fn len(&self) -> usize {
        // SAFETY: `top` and `base` point into (or one past) one buffer, or
        // are both null.
        unsafe { self.top.get().offset_from(self.base.get()) as usize }
    }

    /// Takes a block off the shelf, else from the depot.
    #[inline(always)]
    fn pop(&self, class: usize) -> Option<NonNull<u8>> {
        let top = self.top.get();
        if top == self.base.get() {
            return self.refill(class);
        }
        // SAFETY: the shelf is not empty: the entry below `top` holds a
        // free block.
        unsafe {
            let top = top.sub(1);
            self.top.set(top);
            Some(top.read())
        }
    }

    /// Puts a free block of this class on the shelf; a full shelf goes to
    /// the depot first.
    #[inline(always)]
    fn push(&self, p: NonNull<u8>, class: usize) {
        if self.top.get() == self.end.get() {
            self.make_room(class);
        }
        let top = self.top.get();
        // SAFETY: `make_room` left room: `top` is inside the buffer.
        unsafe {
            top.write(p);
            self.top.set(top.add(1));
        }
    }

    /// Takes the buffer out, leaving the shelf empty and bufferless.
    fn take_all(&self) -> Vec<NonNull<u8>> {
        let base = self.base.replace(std::ptr::null_mut());
        let top = self.top.replace(std::ptr::null_mut());
        let end = self.end.replace(std::ptr::null_mut());
        if base.is_null() {
            return Vec::new();
        }
        // SAFETY: the buffer was a `Vec`'s (see `put`): `base` its pointer,
        // `end - base` its capacity, `top - base` entries written.
        unsafe {
            let (len, cap) = (top.offset_from(base) as usize, end.offset_from(base) as usize);
            Vec::from_raw_parts(base, len, cap)
        }
    }

    /// Makes a `Vec`'s buffer the shelf (which holds none).
    fn put(&self, blocks: Vec<NonNull<u8>>) {
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

    /// Fills the empty shelf from the depot, then takes a block.
    #[cold]
    #[inline(never)]
    fn refill(&self, class: usize) -> Option<NonNull<u8>> {
        let Batch(blocks) = DEPOT[class].take()?;
        let empty = self.take_all();
        self.put(blocks);
        drop(empty);
        self.pop(class)
    }

    /// A full shelf (or none yet): sends its blocks to the depot and takes a
    /// new buffer.
    #[cold]
    #[inline(never)]
    fn make_room(&self, class: usize) {
        let full = self.take_all();
        let fresh = Vec::with_capacity(keeps(class));
        if !full.is_empty() {
            if let Err(batch) = DEPOT[class].give(Batch(full)) {
                batch.free(class);
            }
        }
        self.put(fresh);
    }
}

/// A thread's shelves.
struct Shelves([Shelf; CLASSES]);

impl Drop for Shelves {
    fn drop(&mut self) {
        for (class, shelf) in self.0.iter().enumerate() {
            Batch(shelf.take_all()).free(class);
        }
    }
}

thread_local! {
    static SHELVES: Shelves = const {
        Shelves(
            [const {
                Shelf {
                    base: Cell::new(std::ptr::null_mut()),
                    top: Cell::new(std::ptr::null_mut()),
                    end: Cell::new(std::ptr::null_mut()),
                }
            }; CLASSES],
        )
    };
}

/// Full shelves of one class, for any thread to take.
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
fn keeps(class: usize) -> usize {
    KEEP_BYTES / (class * STEP)
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
    }

    #[test]
    fn a_full_shelf_goes_to_the_depot_and_another_thread_takes_it() {
        let layout = layout(240);
        let cap = keeps(class_of(layout).unwrap());
        let blocks: Vec<_> = (0..cap + 10).map(|_| take(layout)).collect();
        let first = blocks[0].as_ptr() as usize;
        for b in blocks {
            // SAFETY: each came from `take(layout)`.
            unsafe { put_back(b, layout) };
        }
        assert_eq!(kept(layout), 10, "the full shelf left, the rest stayed");
        assert_eq!(in_depot(layout), 1);
        let reused = std::thread::spawn(move || {
            let mut got: Vec<usize> = (0..cap).map(|_| take(layout).as_ptr() as usize).collect();
            assert_eq!(in_depot(layout), 0);
            assert_eq!(kept(layout), 0);
            got.sort_unstable();
            let found = got.binary_search(&first).is_ok();
            for b in got {
                // SAFETY: each came from `take(layout)`.
                unsafe { put_back(NonNull::new(b as *mut u8).unwrap(), layout) };
            }
            found
        })
        .join()
        .unwrap();
        assert!(reused, "the other thread took the full shelf's blocks");
    }

    #[test]
    fn the_depot_keeps_at_most_its_share() {
        let layout = layout(224);
        let cap = keeps(class_of(layout).unwrap());
        let n = cap * (DEPOT_BATCHES + 2);
        let blocks: Vec<_> = (0..n).map(|_| take(layout)).collect();
        for b in blocks {
            // SAFETY: each came from `take(layout)`.
            unsafe { put_back(b, layout) };
        }
        assert_eq!(in_depot(layout), DEPOT_BATCHES);
        assert!(kept(layout) <= cap);
        // Empty the depot again (the blocks taken go to the allocator).
        for _ in 0..(DEPOT_BATCHES + 1) * cap + kept(layout) {
            let p = take(layout);
            // SAFETY: blocks of a class are allocated with its layout.
            unsafe { dealloc(p.as_ptr(), block(class_of(layout).unwrap())) };
        }
        assert_eq!(in_depot(layout), 0);
    }

    #[test]
    fn blocks_freed_on_another_thread_stay_on_its_shelf_until_it_ends() {
        let layout = layout(192);
        let blocks: Vec<usize> = (0..50).map(|_| take(layout).as_ptr() as usize).collect();
        std::thread::spawn(move || {
            for b in blocks {
                // SAFETY: each came from `take(layout)` on the parent thread;
                // blocks are plain allocations of the class's layout.
                unsafe { put_back(NonNull::new(b as *mut u8).unwrap(), layout) };
            }
            assert_eq!(kept(layout), 50);
            // The thread's end frees its shelf.
        })
        .join()
        .unwrap();
        assert_eq!(kept(layout), 0);
        assert_eq!(in_depot(layout), 0);
    }
}
