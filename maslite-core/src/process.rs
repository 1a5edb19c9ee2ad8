//! Processes that return a value, and waiting for one to end (SimPy's
//! `yield env.process(..)`).
//!
//! `cx.process(body)` starts a child as `cx.spawn` does; when its body
//! returns, the value goes to the creator by mail (an [`Ended`]), and
//! [`Process::join`] waits for it, leaving other mail queued. Being mail, it
//! is the same on one kernel and on any number of partitions
//! ([`Cx::process_on`] places the child elsewhere). Start children you will
//! not join with `cx.spawn`: an unjoined `Ended` stays in the creator's
//! inbox.
//!
//! A process started from outside (`Scheduler::process`,
//! `Runtime::process`) keeps its value in its kernel until read with
//! `take_result`, after the run.
//!
//! ```
//! use maslite_core::{Envelope, Scheduler};
//!
//! let mut s = Scheduler::simulated();
//! let boss = s.process(|cx| async move {
//!     let a = cx.process(|cx| async move { cx.sleep(2.0).await; 20 }).unwrap();
//!     let b = cx.process(|cx| async move { cx.sleep(1.0).await; 22 }).unwrap();
//!     let total: i32 = a.join(&cx).await + b.join(&cx).await;
//!     (total, cx.now())
//! }).unwrap();
//! s.run().unwrap();
//! assert_eq!(s.take_result::<(i32, f64)>(boss), Some((42, 2.0)));
//! ```

use crate::context::Cx;
use crate::envelope::Envelope;
use crate::error::Result;
use crate::id::AgentId;
use std::any::Any;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A child process's value, mailed to its creator when its body returns.
#[derive(Clone, Debug, PartialEq)]
pub struct Ended<T>(pub T);

/// A child process started with [`Cx::process`]: its id, and
/// [`join`](Self::join) to wait for its value.
#[derive(Debug)]
pub struct Process<T> {
    id: AgentId,
    value: PhantomData<fn() -> T>,
}

impl<T> Clone for Process<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Process<T> {}

impl<T: Any + Send + Clone> Process<T> {
    /// The child's id.
    pub fn id(&self) -> AgentId {
        self.id
    }

    /// Waits (in the creator, with its `cx`) until the child's body has
    /// returned, and gives its value; other mail stays queued. A child that
    /// never ends (or is removed) is never joined: combine with
    /// `cx.recv_timeout` or an interrupt if that may happen.
    pub fn join<'a>(&self, cx: &'a Cx) -> Join<'a, T> {
        Join { cx, child: self.id, value: PhantomData, waited: 0 }
    }

    /// The child's value, if it has ended (does not wait).
    pub fn try_join(&self, cx: &Cx) -> Option<T> {
        take_ended(cx, self.id)
    }
}

fn take_ended<T: Any + Send + Clone>(cx: &Cx, child: AgentId) -> Option<T> {
    let env = cx.try_recv_where(|e| e.sender() == child && e.is::<Ended<T>>())?;
    env.into_payload::<Ended<T>>().ok().map(|e| e.0)
}

/// Future of [`Process::join`].
#[must_use = "futures do nothing unless awaited"]
pub struct Join<'a, T> {
    cx: &'a Cx,
    child: AgentId,
    value: PhantomData<fn() -> T>,
    /// The poll in which it last went pending (0: never).
    waited: u64,
}

impl<T: Any + Send + Clone> Future for Join<'_, T> {
    type Output = T;
    fn poll(mut self: Pin<&mut Self>, task: &mut Context<'_>) -> Poll<T> {
        let this = &mut *self;
        this.cx.shared.unwait(std::mem::take(&mut this.waited));
        match take_ended::<T>(this.cx, this.child) {
            Some(v) => Poll::Ready(v),
            None => {
                this.waited = this.cx.shared.wait();
                this.cx.shared.note_waker(this.cx.index, task.waker());
                Poll::Pending
            }
        }
    }
}

impl<T> Drop for Join<'_, T> {
    fn drop(&mut self) {
        self.cx.shared.unwait(self.waited);
    }
}

impl Cx {
    /// Starts a child process whose body returns a value, which
    /// [`Process::join`] waits for (see the [module](crate::process)). It
    /// starts at once, nested in this update, as [`spawn`](Self::spawn)'s.
    pub fn process<F, Fut, T>(&self, body: F) -> Result<Process<T>>
    where
        F: FnOnce(Cx) -> Fut + 'static,
        Fut: Future<Output = T> + 'static,
        T: Any + Send + Clone,
    {
        let parent = self.id;
        let id = self.spawn(move |cx| reporting(cx, parent, body))?;
        Ok(Process { id, value: PhantomData })
    }

    /// [`process`](Self::process) on partition `partition`, started in the
    /// next round (see [`spawn_on`](Self::spawn_on)).
    pub fn process_on<F, Fut, T>(&self, partition: usize, body: F) -> Result<Process<T>>
    where
        F: FnOnce(Cx) -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
        T: Any + Send + Clone,
    {
        let parent = self.id;
        let id = self.spawn_on(partition, move |cx| reporting(cx, parent, body))?;
        Ok(Process { id, value: PhantomData })
    }
}

/// Runs `body`, then mails its value to `parent`.
async fn reporting<F, Fut, T>(cx: Cx, parent: AgentId, body: F)
where
    F: FnOnce(Cx) -> Fut,
    Fut: Future<Output = T>,
    T: Any + Send + Clone,
{
    let me = cx.clone();
    let value = body(cx).await;
    me.send(Envelope::new(Ended(value)).to(parent));
}

/// Runs `body` (a process started from outside), then keeps its value in
/// its kernel for `take_result`: the body of the agent that
/// `Scheduler::process` starts (and a runtime's `process` on a partition).
pub async fn keeping<F, Fut, T>(cx: Cx, body: F)
where
    F: FnOnce(Cx) -> Fut,
    Fut: Future<Output = T>,
    T: Any,
{
    let me = cx.clone();
    let value = body(cx).await;
    me.shared.results.borrow_mut().insert(me.id, Box::new(value));
}
