//! Resources as SimPy users know them: a [`Resource`] with a capacity and a
//! queue of requests, served first come, first served (or by priority).
//!
//! A resource is an agent, and requesting it is a conversation by mail:
//! `cx.request(res).await` sends a request and waits for the grant; the
//! [`Grant`] sends the release when it is dropped. Being mail, it behaves the
//! same on one kernel and on any number of partitions, wherever the resource
//! and its users are placed, and it costs what mail costs. A request at a
//! free resource is granted at the same simulated time (two rounds later:
//! the request's and the grant's deliveries).
//!
//! A request given up before its grant (a `select` that timed out, an
//! interrupt, an agent removed) is cancelled: the resource forgets it, or,
//! if it granted it meanwhile, takes the unit back; a grant already on its
//! way is dropped where it arrives. No capacity leaks.
//!
//! ```
//! use maslite_core::{Resource, Scheduler};
//! use std::{cell::RefCell, rc::Rc};
//!
//! let mut s = Scheduler::simulated();
//! let washer = s.add(Resource::new(1)).unwrap();   // one washing machine
//! let log = Rc::new(RefCell::new(Vec::new()));
//! for car in 0..3 {
//!     let log = log.clone();
//!     s.spawn(move |cx| async move {
//!         let machine = cx.request(washer).await;  // queue for it
//!         cx.sleep(5.0).await;                     // wash
//!         log.borrow_mut().push((car, cx.now()));
//!         drop(machine);                           // the next car's turn
//!     }).unwrap();
//! }
//! s.run().unwrap();
//! assert_eq!(*log.borrow(), [(0, 5.0), (1, 10.0), (2, 15.0)]);
//! ```

use crate::agent::Agent;
use crate::context::Cx;
use crate::envelope::Envelope;
use crate::id::AgentId;
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// What a user asks of a resource (mail to it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResourceCall {
    /// One unit, please; `seq` names the request, `priority` orders the
    /// queue (lower first; equal ones first come, first served).
    Request {
        /// The request's number (unique per requester).
        seq: u64,
        /// Lower is served first.
        priority: i64,
    },
    /// The unit granted to request `seq` comes back.
    Release {
        /// The request.
        seq: u64,
    },
    /// Request `seq` is given up.
    Cancel {
        /// The request.
        seq: u64,
    },
}

/// A resource's answer: the unit asked for by request `seq` is yours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Granted {
    /// The request.
    pub seq: u64,
}

/// A resource with `capacity` units (see the [module](self)): add it as an
/// agent, then `cx.request(its_id).await` from any agent.
#[derive(Debug)]
pub struct Resource {
    capacity: usize,
    /// Who holds a unit: (user, request).
    users: Vec<(AgentId, u64)>,
    /// Waiting requests by (priority, arrival).
    queue: BTreeMap<(i64, u64), (AgentId, u64)>,
    /// Where each waiting request is in `queue`.
    waiting: FxHashMap<(AgentId, u64), (i64, u64)>,
    arrivals: u64,
    /// Requests served so far.
    granted: u64,
}

impl Resource {
    /// A resource with `capacity` units (at least 1).
    pub fn new(capacity: usize) -> Resource {
        Resource {
            capacity: capacity.max(1),
            users: Vec::new(),
            queue: BTreeMap::new(),
            waiting: FxHashMap::default(),
            arrivals: 0,
            granted: 0,
        }
    }

    /// Its units.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Units held now.
    pub fn in_use(&self) -> usize {
        self.users.len()
    }

    /// Requests waiting now.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Requests granted so far.
    pub fn granted(&self) -> u64 {
        self.granted
    }

    fn grant_waiting(&mut self, cx: &Cx) {
        while self.users.len() < self.capacity {
            let Some((_, (user, seq))) = self.queue.pop_first() else { return };
            self.waiting.remove(&(user, seq));
            self.grant(cx, user, seq);
        }
    }

    fn grant(&mut self, cx: &Cx, user: AgentId, seq: u64) {
        self.users.push((user, seq));
        self.granted += 1;
        cx.send(Envelope::new(Granted { seq }).to(user));
    }

    fn give_back(&mut self, user: AgentId, seq: u64) -> bool {
        match self.users.iter().position(|&u| u == (user, seq)) {
            Some(at) => {
                self.users.remove(at);
                true
            }
            None => false,
        }
    }
}

impl Agent for Resource {
    async fn update(&mut self, cx: &Cx) {
        while let Some(env) = cx.try_recv() {
            let user = env.sender();
            let Ok(&call) = env.payload::<ResourceCall>() else {
                tracing::warn!(
                    resource = %cx.id(),
                    from = %user,
                    payload = env.payload_type(),
                    "a resource got mail that is no request: ignored"
                );
                continue;
            };
            match call {
                ResourceCall::Request { seq, priority } => {
                    if self.users.len() < self.capacity && self.queue.is_empty() {
                        self.grant(cx, user, seq);
                    } else {
                        let key = (priority, self.arrivals);
                        self.arrivals += 1;
                        self.queue.insert(key, (user, seq));
                        self.waiting.insert((user, seq), key);
                    }
                }
                ResourceCall::Release { seq } => {
                    self.give_back(user, seq);
                }
                ResourceCall::Cancel { seq } => {
                    // Still waiting: forgotten; granted meanwhile (the grant
                    // crossed the cancel): the unit comes back.
                    match self.waiting.remove(&(user, seq)) {
                        Some(key) => {
                            self.queue.remove(&key);
                        }
                        None => {
                            self.give_back(user, seq);
                        }
                    }
                }
            }
            self.grant_waiting(cx);
        }
    }
}

impl Cx {
    /// Asks `resource` (a [`Resource`]'s id) for a unit and waits for it:
    /// the [`Grant`] gives it back when dropped. Dropping the request before
    /// the grant (a timeout, an interrupt) cancels it.
    pub fn request(&self, resource: AgentId) -> Request<'_> {
        self.request_with_priority(resource, 0)
    }

    /// Like [`request`](Self::request), served by `priority` (lower first;
    /// equal ones in the order they were made).
    pub fn request_with_priority(&self, resource: AgentId, priority: i64) -> Request<'_> {
        Request { cx: self, resource, priority, seq: None, granted: false, waited: 0 }
    }
}

/// Future of [`Cx::request`]: the request is sent when first polled.
#[must_use = "a request is made when awaited: write `cx.request(res).await`"]
pub struct Request<'a> {
    cx: &'a Cx,
    resource: AgentId,
    priority: i64,
    seq: Option<u64>,
    granted: bool,
    /// The poll in which it last went pending (0: never).
    waited: u64,
}

impl Request<'_> {
    fn take_grant(&self, seq: u64) -> Option<Envelope> {
        let resource = self.resource;
        self.cx.try_recv_where(|e| {
            e.sender() == resource && e.payload::<Granted>().is_ok_and(|g| g.seq == seq)
        })
    }
}

impl Future for Request<'_> {
    type Output = Grant;
    fn poll(mut self: Pin<&mut Self>, task: &mut Context<'_>) -> Poll<Grant> {
        let this = &mut *self;
        this.cx.shared.unwait(std::mem::take(&mut this.waited));
        let seq = match this.seq {
            Some(seq) => seq,
            None => {
                let seq = this.cx.shared.next_request.get();
                this.cx.shared.next_request.set(seq + 1);
                this.seq = Some(seq);
                let call = ResourceCall::Request { seq, priority: this.priority };
                this.cx.send(Envelope::new(call).to(this.resource));
                seq
            }
        };
        if this.take_grant(seq).is_some() {
            this.granted = true;
            let cx = this.cx.clone();
            return Poll::Ready(Grant { cx, resource: this.resource, seq, released: false });
        }
        this.waited = this.cx.shared.wait();
        this.cx.shared.note_waker(this.cx.index, task.waker());
        Poll::Pending
    }
}

impl Drop for Request<'_> {
    fn drop(&mut self) {
        self.cx.shared.unwait(self.waited);
        let Some(seq) = self.seq.filter(|_| !self.granted) else { return };
        if self.take_grant(seq).is_some() {
            // Granted and delivered, not yet taken: give the unit back.
            self.cx.send(Envelope::new(ResourceCall::Release { seq }).to(self.resource));
        } else {
            // A grant on its way is dropped where it arrives; the resource
            // takes the unit back when the cancel reaches it.
            self.cx.shared.reg.borrow_mut().screen(self.cx.index, self.resource, seq);
            self.cx.send(Envelope::new(ResourceCall::Cancel { seq }).to(self.resource));
        }
    }
}

/// A unit of a [`Resource`], held until dropped (or
/// [`release`](Self::release)d).
#[must_use = "a grant is given back when dropped: keep it while using the resource"]
pub struct Grant {
    cx: Cx,
    resource: AgentId,
    seq: u64,
    released: bool,
}

impl Grant {
    /// The resource it is a unit of.
    pub fn resource(&self) -> AgentId {
        self.resource
    }

    /// Gives the unit back now (as dropping the grant does).
    pub fn release(mut self) {
        self.give_back();
    }

    fn give_back(&mut self) {
        if !self.released {
            self.released = true;
            let release = ResourceCall::Release { seq: self.seq };
            self.cx.send(Envelope::new(release).to(self.resource));
        }
    }
}

impl Drop for Grant {
    fn drop(&mut self) {
        self.give_back();
    }
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grant").field("resource", &self.resource).field("seq", &self.seq).finish()
    }
}
