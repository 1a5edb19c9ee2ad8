//! The suite's global allocator: mimalloc or the system's, wrapped to count
//! the heap bytes in use while asked to — how `phold-1m` weighs a pending
//! event without the allocator's retained pages blurring the figure, as the
//! RSS does. Off, the count costs one relaxed load per allocation.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering::Relaxed};

#[cfg(feature = "mimalloc")]
type Inner = mimalloc::MiMalloc;
#[cfg(not(feature = "mimalloc"))]
type Inner = std::alloc::System;

/// The allocator (see the [module](self)).
pub struct Counting(Inner);

impl Counting {
    pub const fn new() -> Counting {
        #[cfg(feature = "mimalloc")]
        return Counting(mimalloc::MiMalloc);
        #[cfg(not(feature = "mimalloc"))]
        return Counting(std::alloc::System);
    }
}

static ON: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicIsize = AtomicIsize::new(0);

/// Counts from now on, from zero: bytes allocated minus bytes freed.
pub fn start() {
    LIVE.store(0, Relaxed);
    ON.store(true, Relaxed);
}

/// Stops counting; returns the count.
pub fn stop() -> isize {
    ON.store(false, Relaxed);
    LIVE.load(Relaxed)
}

#[inline]
fn count(bytes: isize) {
    if ON.load(Relaxed) {
        LIVE.fetch_add(bytes, Relaxed);
    }
}

// SAFETY: every call is passed to the inner allocator unchanged; the count
// only reads the layouts.
unsafe impl GlobalAlloc for Counting {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = self.0.alloc(layout);
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = self.0.alloc_zeroed(layout);
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.0.dealloc(ptr, layout);
        count(-(layout.size() as isize));
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = self.0.realloc(ptr, layout, new_size);
        if !p.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[cfg(test)]
mod tests {
    /// What is allocated while counting shows, and what is freed goes.
    #[test]
    fn counts_what_is_held() {
        super::start();
        let held: Vec<u64> = Vec::with_capacity(1 << 20);
        let gone: Vec<u64> = Vec::with_capacity(1 << 18);
        drop(gone);
        let n = super::stop();
        // Other tests' threads may allocate and free meanwhile, but far less
        // than the 2 MiB freed here or the 8 MiB held.
        assert!((n - (8 << 20)).abs() < 512 << 10, "{n}");
        drop(held);
    }
}
