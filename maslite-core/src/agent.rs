//! Agents, written two ways.
//!
//! 1. A type implementing [`Agent`]: `setup` when added, `update` whenever
//!    its inbox is non-empty (or it is kept awake), `teardown` when removed —
//!    maslite's model.
//! 2. An async fn or closure taking a [`Cx`]: a process that loops on
//!    `cx.recv().await` and `cx.sleep(dt).await`, as SimPy users write them.
//!
//! Both become one future per agent, boxed once when the agent is added and
//! polled by the kernel with its own wakers, so an update costs a poll, not
//! an allocation. A trait agent's future is a loop that waits for the
//! kernel's "update due" signal and then awaits `update`; its struct lives
//! in a `RefCell` beside the future so the scheduler can lend it out for
//! inspection between runs.
//!
//! # Why native `async fn` in the trait, not `async-trait`
//!
//! `async-trait` boxes every returned future: one allocation per update, per
//! message on the ping-pong path. Native `async fn` in traits (Rust 1.75)
//! returns an unboxed future whose type the kernel knows when the agent is
//! added, so it is compiled into the agent's loop and polled in place. The
//! kernel never needs `dyn Agent`, so the trait's lack of object safety costs
//! nothing. The futures carry no `Send` bound on purpose: an agent lives on
//! one thread (one partition) and may hold `Rc`s or `!Send` handles.

use crate::context::{signal, Cx, Event, NextEvent, Shared};
use crate::error::Phase;
use crate::id::AgentId;
use std::any::Any;
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

/// An agent in maslite's style.
///
/// ```
/// use maslite_core::{Agent, Cx, Envelope, Scheduler};
///
/// #[derive(Clone)]
/// struct Hello;
///
/// #[derive(Default)]
/// struct Greeter { greeted: u32 }
///
/// impl Agent for Greeter {
///     async fn update(&mut self, cx: &Cx) {
///         while let Some(_hello) = cx.try_recv() {
///             self.greeted += 1;
///         }
///     }
/// }
///
/// let mut s = Scheduler::simulated();
/// let id = s.add(Greeter::default()).unwrap();
/// s.send(Envelope::new(Hello).to(id));
/// s.run().unwrap();
/// assert_eq!(s.agent::<Greeter>(id).unwrap().greeted, 1);
/// ```
#[allow(async_fn_in_trait)] // deliberately no Send bound: agents stay on one thread
pub trait Agent: 'static {
    /// Runs when the agent is added (also when added by another agent).
    async fn setup(&mut self, cx: &Cx) {
        let _ = cx;
    }

    /// Runs in a round in which the inbox is non-empty (or every round while
    /// kept awake). Take the mail with [`Cx::receive`].
    async fn update(&mut self, cx: &Cx);

    /// Runs when the agent is removed. An update (or setup) that is
    /// suspended at that moment is cancelled — its future dropped, as
    /// dropping a task cancels it — and teardown runs at once.
    async fn teardown(&mut self, cx: &Cx) {
        let _ = cx;
    }
}

/// The struct of a trait agent, shared between its future and the
/// scheduler (which lends it out for inspection).
pub(crate) trait Inspect: Any {
    fn type_name(&self) -> &'static str;
    fn as_any(&self) -> &dyn Any;
    /// A future that runs only `teardown`, for an agent whose setup or
    /// update was cancelled by its removal.
    fn teardown(self: Rc<Self>, cx: Cx) -> Pin<Box<dyn Future<Output = ()>>>;
}

impl<A: Agent> Inspect for RefCell<A> {
    fn type_name(&self) -> &'static str {
        std::any::type_name::<A>()
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    #[allow(clippy::await_holding_refcell_ref)] // see agent_loop
    fn teardown(self: Rc<Self>, cx: Cx) -> Pin<Box<dyn Future<Output = ()>>> {
        Box::pin(async move { self.borrow_mut().teardown(&cx).await })
    }
}

/// A new agent's future, made once the id and slot are known.
pub(crate) struct Installed {
    /// The `RefCell<A>` of a trait agent (`None` for an async fn agent,
    /// whose state lives in its future).
    pub agent: Option<Rc<dyn Inspect>>,
    pub future: Pin<Box<dyn Future<Output = ()>>>,
    /// What its first poll runs.
    pub phase: Phase,
    /// How to take the agent's struct back out to move it to another
    /// kernel: only for agents added through a `Send`-aware installer
    /// ([`Installer::movable`]); see `scheduler::moving`.
    pub mover: Option<Mover>,
}

/// Takes a trait agent's struct out of its (no longer shared) cell and
/// packs it to be installed again elsewhere, resting between updates; gives
/// the cell back if it is still shared.
pub(crate) type Mover = fn(Rc<dyn Inspect>) -> Result<Resume, Rc<dyn Inspect>>;

/// A moving agent's struct, packed: installs it again, resting (its setup
/// is not run again). `Send`, so it can cross to another partition's thread.
pub(crate) type Resume = Box<dyn FnOnce() -> Installer + Send>;

/// Makes an agent's future for a given id and slot.
pub(crate) struct Installer(Box<MakeAgent>);

type MakeAgent = dyn FnOnce(&Rc<Shared>, AgentId, u32) -> Installed;

impl Installer {
    pub fn agent<A: Agent>(agent: A) -> Installer {
        Installer(Box::new(move |shared, id, index| {
            let agent = Rc::new(RefCell::new(agent));
            let cx = Cx { shared: shared.clone(), index, id };
            Installed {
                agent: Some(agent.clone()),
                future: Box::pin(agent_loop(agent, cx)),
                phase: Phase::Setup,
                mover: None,
            }
        }))
    }

    /// As [`agent`](Self::agent), for a `Send` agent: the kernel can take
    /// its struct back out, between updates, to move it elsewhere.
    pub fn movable<A: Agent + Send>(agent: A) -> Installer {
        Installer(Box::new(move |shared, id, index| {
            let mut installed = Installer::agent(agent).install(shared, id, index);
            installed.mover = Some(take_out::<A>);
            installed
        }))
    }

    /// A moved agent, or one read back from a snapshot, installed again
    /// resting between updates: its future starts in the loop that waits
    /// for the next update (no setup), and it can move again.
    pub fn resumed<A: Agent + Send>(agent: A) -> Installer {
        Installer(Box::new(move |shared, id, index| {
            let agent = Rc::new(RefCell::new(agent));
            let cx = Cx { shared: shared.clone(), index, id };
            Installed {
                agent: Some(agent.clone()),
                future: Box::pin(resting_loop(agent, cx)),
                phase: Phase::Update,
                mover: Some(take_out::<A>),
            }
        }))
    }

    pub fn process<F, Fut>(body: F) -> Installer
    where
        F: FnOnce(Cx) -> Fut + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        Installer(Box::new(move |shared, id, index| {
            let cx = Cx { shared: shared.clone(), index, id };
            Installed {
                agent: None,
                future: Box::pin(body(cx)),
                phase: Phase::Process,
                mover: None,
            }
        }))
    }

    pub fn install(self, shared: &Rc<Shared>, id: AgentId, index: u32) -> Installed {
        (self.0)(shared, id, index)
    }
}

// The RefCell is borrowed across awaits on purpose: between polls the
// scheduler only lends the agent out through `try_borrow`, which reports
// `AgentBusy` while an update is suspended.
#[allow(clippy::await_holding_refcell_ref, clippy::manual_async_fn)]
fn agent_loop<A: Agent>(cell: Rc<RefCell<A>>, cx: Cx) -> impl Future<Output = ()> {
    // An async block, not an async fn: its captures are not copied again
    // into the future's locals, which keeps every agent 32 bytes smaller.
    async move {
        cell.borrow_mut().setup(&cx).await;
        cx.shared.signal.set(cx.shared.signal.get() | signal::SETUP_DONE);
        loop {
            match NextEvent(&cx).await {
                Event::Update => cell.borrow_mut().update(&cx).await,
                Event::Teardown => return cell.borrow_mut().teardown(&cx).await,
            }
        }
    }
}

/// The [`Mover`] of agents of type `A`.
fn take_out<A: Agent + Send>(agent: Rc<dyn Inspect>) -> Result<Resume, Rc<dyn Inspect>> {
    if !agent.as_any().is::<RefCell<A>>() || Rc::strong_count(&agent) != 1 {
        return Err(agent);
    }
    let any: Rc<dyn Any> = agent;
    let cell = any.downcast::<RefCell<A>>().expect("checked above");
    let value = Rc::try_unwrap(cell).ok().expect("the only owner").into_inner();
    Ok(Box::new(move || Installer::resumed(value)))
}

/// [`agent_loop`] after its setup: a moved agent rests until its next update.
#[allow(clippy::await_holding_refcell_ref, clippy::manual_async_fn)]
fn resting_loop<A: Agent>(cell: Rc<RefCell<A>>, cx: Cx) -> impl Future<Output = ()> {
    async move {
        loop {
            match NextEvent(&cx).await {
                Event::Update => cell.borrow_mut().update(&cx).await,
                Event::Teardown => return cell.borrow_mut().teardown(&cx).await,
            }
        }
    }
}
