//! Recycled letters: the blocks messages live in, kept per thread for the
//! next message.
//!
//! A simulation's events are messages made and read once: PHOLD makes one
//! per event and frees it when the event is read, a broadcast makes one
//! clone per subscriber. Each was a trip through the global allocator,
//! about 200 instructions a message with glibc's, and with mimalloc 3 a
//! page abandoned and reclaimed every few dozen messages. A letter's block
//! now goes, when its message is dropped, to a free list of this thread
//! for blocks of its size, and the next message of that size takes it from
//! there: a few instructions each way.
//!
//! - Blocks are kept by size class (multiples of 16 bytes up to 256) and
//!   allocated with the class's layout, so any block of a class serves any
//!   letter of it, on any thread. Larger letters, and letters aligned to
//!   more than 8 bytes (a header's alignment: a `u128` or SIMD payload), go
//!   straight to the allocator, as does every letter when its shelf is
//!   empty: an allocator serves a layout of 8-byte alignment on its fastest
//!   path.
//! - A thread keeps at most [`KEEP_BYTES`] per class; beyond that a freed
//!   block goes back to the allocator. A one-way stream between threads
//!   (made on one, read on another) fills the reader's shelf and then frees
//!   as before.
//! - A thread's shelves are freed when it ends; a letter dropped after that
//!   (by another thread-local's destructor) goes to the allocator.

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::cell::Cell;
use std::ptr::NonNull;

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

/// A free block: its first word links to the next.
struct Free {
    next: *mut Free,
}

/// The free blocks of one class.
struct Shelf {
    head: Cell<*mut Free>,
    count: Cell<u32>,
}

/// A thread's shelves.
struct Shelves([Shelf; CLASSES]);

impl Drop for Shelves {
    fn drop(&mut self) {
        for (class, shelf) in self.0.iter().enumerate() {
            let mut at = shelf.head.replace(std::ptr::null_mut());
            while !at.is_null() {
                // SAFETY: every block on the shelf is a free block of this
                // class, allocated with `block(class)`, linked through its
                // first word by `put_back`.
                unsafe {
                    let next = (*at).next;
                    dealloc(at.cast(), block(class));
                    at = next;
                }
            }
            shelf.count.set(0);
        }
    }
}

thread_local! {
    static SHELVES: Shelves = const {
        Shelves([const { Shelf { head: Cell::new(std::ptr::null_mut()), count: Cell::new(0) } }; CLASSES])
    };
}

/// The class of a letter's layout, if its blocks are kept.
#[inline(always)]
fn class_of(layout: Layout) -> Option<usize> {
    (layout.size() <= LARGEST && layout.align() <= ALIGN).then(|| layout.size().div_ceil(STEP))
}

/// The layout every block of a class is allocated with.
#[inline(always)]
fn block(class: usize) -> Layout {
    // A multiple of 16 up to 256, aligned to 8: always a valid layout.
    Layout::from_size_align(class * STEP, ALIGN).expect("a valid block layout")
}

/// The most blocks a shelf of this class holds.
#[inline(always)]
fn keeps(class: usize) -> u32 {
    (KEEP_BYTES / (class * STEP)) as u32
}

impl Shelf {
    /// Takes a block off the shelf, if it has one.
    #[inline(always)]
    fn pop(&self) -> Option<NonNull<u8>> {
        let head = NonNull::new(self.head.get())?;
        // SAFETY: `head` is a free block on this shelf (see `push`); its
        // first word links to the next one.
        self.head.set(unsafe { head.as_ref().next });
        self.count.set(self.count.get() - 1);
        Some(head.cast())
    }

    /// Puts a free block of this shelf's class on it, unless it is full.
    ///
    /// # Safety
    /// `p` is a block of this shelf's class that nothing uses any more.
    #[inline(always)]
    unsafe fn push(&self, p: NonNull<u8>, most: u32) -> bool {
        let count = self.count.get();
        if count >= most {
            return false;
        }
        let free = p.as_ptr().cast::<Free>();
        // SAFETY: the block is at least 80 bytes and 8-aligned, and no
        // longer in use: its first word can hold the link.
        unsafe { free.write(Free { next: self.head.get() }) };
        self.head.set(free);
        self.count.set(count + 1);
        true
    }
}

/// A block for a letter of this layout (whose size is never 0): from this
/// thread's shelf if it has one, else from the allocator.
#[inline]
pub(crate) fn take(layout: Layout) -> NonNull<u8> {
    debug_assert!(layout.size() > 0);
    let layout = match class_of(layout) {
        Some(class) => {
            if let Some(p) = SHELVES.try_with(|s| s.0[class].pop()).ok().flatten() {
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
    // SAFETY: `p` is a block of this class that nothing uses any more.
    let kept = SHELVES.try_with(|s| unsafe { s.0[class].push(p, keeps(class)) }).unwrap_or(false);
    if !kept {
        // SAFETY: blocks of a class are allocated with `block(class)`.
        unsafe { dealloc(p.as_ptr(), block(class)) };
    }
}

/// How many blocks this thread keeps for letters of this layout (for tests).
#[cfg(test)]
pub(crate) fn kept(layout: Layout) -> usize {
    class_of(layout).map_or(0, |c| SHELVES.with(|s| s.0[c].count.get() as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_freed_block_serves_the_next_letter_of_its_class() {
        let small = Layout::from_size_align(80, 8).unwrap();
        let same_class = Layout::from_size_align(76, 4).unwrap();
        let before = kept(small);
        let a = take(small);
        // SAFETY: `a` came from `take(small)` and is not used again.
        unsafe { put_back(a, small) };
        assert_eq!(kept(small), before + 1);
        let b = take(same_class);
        assert_eq!(a, b, "the block on the shelf is reused");
        assert_eq!(kept(small), before);
        // SAFETY: as above.
        unsafe { put_back(b, same_class) };
    }

    #[test]
    fn large_and_overaligned_letters_are_not_kept() {
        for layout in [
            Layout::from_size_align(LARGEST + 8, 8).unwrap(),
            Layout::from_size_align(128, 16).unwrap(),
        ] {
            let p = take(layout);
            assert_eq!(p.as_ptr() as usize % layout.align(), 0);
            // SAFETY: `p` came from `take(layout)`.
            unsafe { put_back(p, layout) };
            assert_eq!(kept(layout), 0);
        }
    }

    #[test]
    fn a_shelf_keeps_at_most_its_share() {
        let layout = Layout::from_size_align(96, 8).unwrap();
        let cap = keeps(class_of(layout).unwrap()) as usize;
        let blocks: Vec<_> = (0..cap + 10).map(|_| take(layout)).collect();
        for b in blocks {
            // SAFETY: each came from `take(layout)`.
            unsafe { put_back(b, layout) };
        }
        assert_eq!(kept(layout), cap);
    }

    #[test]
    fn blocks_freed_on_another_thread_stay_there() {
        let layout = Layout::from_size_align(112, 8).unwrap();
        let blocks: Vec<usize> = (0..50).map(|_| take(layout).as_ptr() as usize).collect();
        let here = kept(layout);
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
        assert_eq!(kept(layout), here);
    }
}
