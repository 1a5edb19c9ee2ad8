//! Waiting as a process does: for mail or a timeout, for the first message
//! that matches, until interrupted.
//!
//! These are the kernel's own futures, driven by the kernel's clock (simulated
//! or real) and woken by its deliveries, so they behave the same on one
//! kernel and on any number of partitions. tokio's timers are not: they
//! follow the wall clock, never the simulated one, and a process left
//! waiting on one in a simulated run waits for something the kernel does
//! not drive (the run report lists such agents, see
//! [`RunReport::waiting_outside`](crate::RunReport::waiting_outside)).
//!
//! `futures` combinators over the kernel's futures are fine: `select`,
//! `join`, `FuturesUnordered` of `cx.recv()`, `cx.sleep(..)` and the
//! futures below, in one agent, all wake it as they should.
//!
//! ```
//! use futures::{future, FutureExt};
//! use maslite_core::{Envelope, Scheduler};
//!
//! let mut s = Scheduler::simulated();
//! let log = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
//! let seen = log.clone();
//! let clerk = s.spawn(move |cx| async move {
//!     // Mail or a timeout, the kernel's way...
//!     let first = cx.recv_timeout(1.0).await;
//!     seen.borrow_mut().push((cx.now(), first.is_some()));
//!     // ...or with a combinator: whichever comes first.
//!     let second = future::select(cx.recv().boxed_local(), cx.sleep(5.0).boxed_local()).await;
//!     seen.borrow_mut().push((cx.now(), matches!(second, future::Either::Left(_))));
//! }).unwrap();
//! s.set_alarm(maslite_core::Alarm::after(3.0, Envelope::new("late").to(clerk))).unwrap();
//! s.run().unwrap();
//! assert_eq!(*log.borrow(), [(1.0, false), (3.0, true)]);
//! ```

use crate::context::{Cx, Recv, Sleep};
use crate::envelope::Envelope;
use crate::id::AgentId;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// The topic that marks an interrupt ([`Cx::interrupt`]).
pub const INTERRUPT: &str = "maslite.interrupt";

/// An interrupted wait: the interrupt's envelope (its payload is the cause,
/// its sender who interrupted).
#[derive(Debug)]
pub struct Interrupted(pub Envelope);

impl Cx {
    /// Takes the oldest message, if there is one (does not wait; see
    /// [`recv`](Self::recv) for the waiting one).
    #[inline]
    pub fn try_recv(&self) -> Option<Envelope> {
        self.shared.reg.borrow_mut().receive(self.index, self.id)
    }

    /// Waits for mail for at most `seconds` of the kernel's clock: the oldest
    /// message, or `None` once the time is up. Mail that comes at the very
    /// time the wait ends wins.
    pub fn recv_timeout(&self, seconds: f64) -> RecvTimeout<'_> {
        RecvTimeout { recv: self.recv(), sleep: self.sleep(seconds) }
    }

    /// Takes the oldest message that `matches`, if there is one, leaving the
    /// others in the inbox, in order (does not wait).
    pub fn try_recv_where(&self, mut matches: impl FnMut(&Envelope) -> bool) -> Option<Envelope> {
        self.shared.reg.borrow_mut().receive_where(self.index, self.id, &mut matches)
    }

    /// Waits for the first message that `matches` (by type, topic, sender,
    /// anything), leaving the others in the inbox, in order: a process
    /// waiting for one answer does not swallow the rest of its mail.
    ///
    /// ```
    /// # use maslite_core::{Envelope, Scheduler};
    /// let mut s = Scheduler::simulated();
    /// let car = s.spawn(|cx| async move {
    ///     let grant = cx.recv_where(|e| e.is::<u32>()).await;   // the u32, first
    ///     assert_eq!(grant.payload::<u32>(), Ok(&7));
    ///     assert_eq!(cx.try_recv().unwrap().payload::<&str>(), Ok(&"news"));
    /// }).unwrap();
    /// s.send(Envelope::new("news").to(car));
    /// s.send(Envelope::new(7u32).to(car));
    /// s.run().unwrap();
    /// ```
    pub fn recv_where<P: FnMut(&Envelope) -> bool + Unpin>(&self, matches: P) -> RecvWhere<'_, P> {
        RecvWhere { cx: self, matches, waited: 0 }
    }

    /// Waits for the first message from `sender` (see
    /// [`recv_where`](Self::recv_where)).
    pub fn recv_from(&self, sender: AgentId) -> RecvWhere<'_, impl FnMut(&Envelope) -> bool> {
        self.recv_where(move |e| e.sender() == sender)
    }

    /// Interrupts agent `id`: a wait of its wrapped in
    /// [`interruptible`](Self::interruptible) (a sleep, a receive) ends at
    /// once with [`Interrupted`], carrying `payload` (SimPy's
    /// `process.interrupt(cause)`). The interrupt is a message (topic
    /// [`INTERRUPT`]): it reaches the agent in the next round, at this
    /// simulated time, wherever the agent is; an agent not waiting
    /// interruptibly finds it in its inbox.
    pub fn interrupt<T: std::any::Any + Send + Clone>(&self, id: AgentId, payload: T) {
        self.send(Envelope::new(payload).to(id).topic_is(INTERRUPT));
    }

    /// Runs `wait` (a kernel wait: `cx.sleep(..)`, `cx.recv()`,
    /// `cx.recv_timeout(..)`...) until it ends or an interrupt comes (see
    /// [`interrupt`](Self::interrupt)), whichever is first.
    ///
    /// ```
    /// # use maslite_core::{Envelope, Scheduler};
    /// let mut s = Scheduler::simulated();
    /// let machine = s.spawn(|cx| async move {
    ///     match cx.interruptible(cx.sleep(10.0)).await {
    ///         Ok(()) => panic!("not interrupted"),
    ///         Err(broke) => assert_eq!(broke.0.payload::<&str>(), Ok(&"broken")),
    ///     }
    ///     assert_eq!(cx.now(), 4.0);
    /// }).unwrap();
    /// s.spawn(move |cx| async move {
    ///     cx.sleep(4.0).await;
    ///     cx.interrupt(machine, "broken");
    /// }).unwrap();
    /// s.run().unwrap();
    /// ```
    pub fn interruptible<F: Future + Unpin>(&self, wait: F) -> Interruptible<'_, F> {
        Interruptible { cx: self, wait, waited: 0 }
    }

    /// Takes an interrupt sent to this agent, if one is waiting.
    pub fn try_recv_interrupt(&self) -> Option<Interrupted> {
        self.try_recv_where(|e| e.explicit_topic() == Some(INTERRUPT)).map(Interrupted)
    }
}

/// Future of [`Cx::recv_timeout`].
#[must_use = "futures do nothing unless awaited"]
pub struct RecvTimeout<'a> {
    recv: Recv<'a>,
    sleep: Sleep<'a>,
}

impl Future for RecvTimeout<'_> {
    type Output = Option<Envelope>;
    fn poll(mut self: Pin<&mut Self>, task: &mut Context<'_>) -> Poll<Option<Envelope>> {
        if let Poll::Ready(env) = Pin::new(&mut self.recv).poll(task) {
            return Poll::Ready(Some(env));
        }
        Pin::new(&mut self.sleep).poll(task).map(|()| None)
    }
}

/// Future of [`Cx::recv_where`].
#[must_use = "futures do nothing unless awaited"]
pub struct RecvWhere<'a, P> {
    cx: &'a Cx,
    matches: P,
    /// The poll in which it last went pending (0: never).
    waited: u64,
}

impl<P: FnMut(&Envelope) -> bool + Unpin> Future for RecvWhere<'_, P> {
    type Output = Envelope;
    fn poll(mut self: Pin<&mut Self>, task: &mut Context<'_>) -> Poll<Envelope> {
        let this = &mut *self;
        this.cx.shared.unwait(std::mem::take(&mut this.waited));
        match this.cx.try_recv_where(&mut this.matches) {
            Some(env) => Poll::Ready(env),
            None => {
                this.waited = this.cx.shared.wait();
                this.cx.shared.note_waker(this.cx.index, task.waker());
                Poll::Pending
            }
        }
    }
}

impl<P> Drop for RecvWhere<'_, P> {
    fn drop(&mut self) {
        self.cx.shared.unwait(self.waited);
    }
}

/// Future of [`Cx::interruptible`].
#[must_use = "futures do nothing unless awaited"]
pub struct Interruptible<'a, F> {
    cx: &'a Cx,
    wait: F,
    /// The poll in which it last went pending (0: never).
    waited: u64,
}

impl<F: Future + Unpin> Future for Interruptible<'_, F> {
    type Output = Result<F::Output, Interrupted>;
    fn poll(mut self: Pin<&mut Self>, task: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        this.cx.shared.unwait(std::mem::take(&mut this.waited));
        if let Some(interrupt) = this.cx.try_recv_interrupt() {
            return Poll::Ready(Err(interrupt));
        }
        match Pin::new(&mut this.wait).poll(task) {
            Poll::Ready(v) => Poll::Ready(Ok(v)),
            Poll::Pending => {
                // Woken by the interrupt's delivery too (any mail wakes it).
                this.waited = this.cx.shared.wait();
                this.cx.shared.note_waker(this.cx.index, task.waker());
                Poll::Pending
            }
        }
    }
}

impl<F> Drop for Interruptible<'_, F> {
    fn drop(&mut self) {
        self.cx.shared.unwait(self.waited);
    }
}
