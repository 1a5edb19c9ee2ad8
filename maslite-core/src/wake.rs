//! Wakers: how an agent waiting on something other than the kernel (a
//! channel fed by another thread, tokio I/O in the runtime) gets polled
//! again.
//!
//! The kernel polls agents itself, so the usual case — an agent waiting for
//! mail or for an alarm — needs no waker at all. Each poll lends the agent a
//! borrowed waker that points at the kernel's [`PollSite`]; only if the
//! future *stores* it (clones it, to be woken later from elsewhere) is an
//! owned, thread-safe waker allocated for that agent. Wake-ups land in a
//! [`WakeQueue`] shared with the kernel, which polls those agents in its next
//! round and, if it is parked, is woken through the queue's notifier.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{RawWaker, RawWakerVTable, Wake, Waker};

/// Slot indices of agents woken from outside the kernel.
#[derive(Default)]
pub(crate) struct WakeQueue {
    woken: Mutex<Vec<u32>>,
    any: AtomicBool,
    notify: Mutex<Option<Waker>>,
}

impl WakeQueue {
    pub fn push(&self, index: u32) {
        self.woken.lock().unwrap_or_else(|e| e.into_inner()).push(index);
        self.any.store(true, Ordering::Release);
        let notify = self.notify.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(w) = notify {
            w.wake();
        }
    }

    pub fn has_any(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }

    /// Moves the woken indices into `out`.
    pub fn drain_into(&self, out: &mut Vec<u32>) {
        if !self.has_any() {
            return;
        }
        let mut woken = self.woken.lock().unwrap_or_else(|e| e.into_inner());
        self.any.store(false, Ordering::Release);
        out.append(&mut woken);
    }

    /// Who to wake when an agent is woken while the kernel waits.
    pub fn set_notify(&self, waker: Option<Waker>) {
        *self.notify.lock().unwrap_or_else(|e| e.into_inner()) = waker;
    }
}

/// An owned waker for one agent.
struct AgentWaker {
    index: u32,
    queue: Arc<WakeQueue>,
}

impl Wake for AgentWaker {
    fn wake(self: Arc<Self>) {
        self.queue.push(self.index);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.queue.push(self.index);
    }
}

/// The agent being polled; lent to it as a borrowed waker.
pub(crate) struct PollSite {
    pub index: u32,
    pub queue: Arc<WakeQueue>,
    /// The waker was cloned during this poll: a future kept it, to be woken
    /// from outside the kernel (tokio I/O or a timer, a channel).
    pub kept: AtomicBool,
}

impl PollSite {
    /// A waker borrowing this site. It must not outlive `self`: the kernel
    /// only puts it in the `Context` of one poll.
    pub fn waker(&self) -> std::mem::ManuallyDrop<Waker> {
        let raw = RawWaker::new(self as *const PollSite as *const (), &SITE_VTABLE);
        // SAFETY: the vtable functions below uphold the RawWaker contract for
        // a data pointer to a live PollSite: clone makes an independent owned
        // waker, wake_by_ref only reads the site, drop does nothing. The
        // waker is only used while the site is alive (for one poll); a
        // future that keeps it clones it first.
        std::mem::ManuallyDrop::new(unsafe { Waker::from_raw(raw) })
    }
}

/// Whether `waker` is the kernel's own (lent for a poll): a future inside a
/// combinator that hands out wakers of its own (`FuturesUnordered`) gets a
/// different one, which the kernel must wake to have that future polled.
pub(crate) fn is_kernel_waker(waker: &Waker) -> bool {
    std::ptr::eq(waker.vtable(), &SITE_VTABLE)
}

static SITE_VTABLE: RawWakerVTable =
    RawWakerVTable::new(site_clone, site_wake, site_wake_by_ref, site_drop);

unsafe fn site(data: *const ()) -> &'static PollSite {
    // SAFETY: see PollSite::waker: the pointer is a live PollSite during the
    // poll that lent it.
    unsafe { &*(data as *const PollSite) }
}

unsafe fn site_clone(data: *const ()) -> RawWaker {
    // SAFETY: called during the poll, while the site is alive.
    let site = unsafe { site(data) };
    site.kept.store(true, Ordering::Relaxed);
    let owned = Waker::from(Arc::new(AgentWaker { index: site.index, queue: site.queue.clone() }));
    let owned = std::mem::ManuallyDrop::new(owned);
    // Hand over the owned waker's raw parts; ManuallyDrop keeps its refcount.
    RawWaker::new(owned.data(), owned.vtable())
}

unsafe fn site_wake(data: *const ()) {
    // SAFETY: as site_wake_by_ref; the site waker is never owned, so waking
    // by value is the same as by reference.
    unsafe { site_wake_by_ref(data) }
}

unsafe fn site_wake_by_ref(data: *const ()) {
    // SAFETY: called during the poll, while the site is alive.
    let site = unsafe { site(data) };
    site.queue.push(site.index);
}

unsafe fn site_drop(_: *const ()) {}

/// A waker that unparks a thread: the blocking `run` loop parks on it.
pub(crate) struct ThreadWaker(pub std::thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}
