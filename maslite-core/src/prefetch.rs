//! Asking the CPU for a cache line before the kernel reads it.
//!
//! With a million alarms pending, the next alarm's slab item and its
//! message are far from anything touched lately: reading them was two cache
//! misses, one after the other, for every event. The queue knows the next
//! alarms an event ahead, so the kernel asks for their lines while it works
//! on the current one (see `AlarmQueue::prefetch_ahead`). A prefetch is
//! only a hint: a wrong guess costs a load the program never sees. Only
//! x86_64 gets the hint (aarch64's prefetch intrinsic is not stable Rust
//! yet); elsewhere this does nothing.

/// Asks for the cache line holding `p`.
#[inline(always)]
pub(crate) fn prefetch<T: ?Sized>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads nothing the program sees and never faults,
    // whatever the address.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
