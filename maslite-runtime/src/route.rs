//! The router's logic inside a partition: resolving each outgoing message
//! to its recipients and their partitions, and delivering incoming batches
//! in the canonical order.
//!
//! Every partition holds the whole directory (which partition each agent is
//! on) and the whole mailing list, kept equal by the changes exchanged at
//! every step. So the sending partition resolves a message once — receiver
//! and subscribers, wherever they are — and ships one (recipient, envelope)
//! pair per recipient, in one batch per destination partition per step.
//!
//! The receiving partition merges its own mail with the batches from every
//! other partition and delivers it sorted by [`Origin`](maslite_core::Origin)
//! (the sender's ordering key, then the sender's count of sends): each
//! inbox gets its mail in one order, whatever the number of partitions and
//! whatever order the batches arrived in.

use crate::partition::Directory;
use crate::report::PairTraffic;
use crate::traffic::PairCounter;
use maslite_core::{AgentId, Driver, Envelope};
use rustc_hash::FxHashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// A partition's counters (see [`PartitionReport`](crate::PartitionReport)).
#[derive(Default, Clone)]
pub(crate) struct Counters {
    pub sent: u64,
    pub delivered: u64,
    pub dead: u64,
    pub cross: u64,
    /// Messages to each partition.
    pub row: Vec<u64>,
    /// Cross-partition traffic per (sender, receiver): the first
    /// [`TRACKED_PAIRS`] distinct pairs of a run, exactly.
    pub pairs: FxHashMap<(AgentId, AgentId), (u32, u64)>,
    /// Crossings of pairs beyond those.
    pub untracked: u64,
    /// The last pair counted and its crossings not yet added to `pairs`
    /// (streams repeat one pair: one comparison instead of a lookup).
    pub last: Option<((AgentId, AgentId), usize, u64)>,
    /// Every message per (sender, recipient), while traffic is measured
    /// (see [`traffic`](crate::traffic)); `None` otherwise.
    pub measure: Option<Box<PairCounter>>,
}

/// How many distinct crossing pairs a partition counts per run: enough to
/// show where agents talk across partitions most (heavy pairs show up
/// early), few enough to stay in cache when a model's crossings are all
/// different pairs (PHOLD's are).
pub(crate) const TRACKED_PAIRS: usize = 4096;

impl Counters {
    /// A run's counters for `partitions` partitions; `measure`: count
    /// every pair too.
    pub fn new(partitions: usize, measure: bool) -> Counters {
        Counters {
            row: vec![0; partitions],
            measure: measure.then(Box::default),
            ..Counters::default()
        }
    }

    /// Counts one message from `sender` to `receiver` on partition `to`.
    #[inline]
    pub fn crossing(&mut self, sender: AgentId, receiver: AgentId, to: usize) {
        self.row[to] += 1;
        self.cross += 1;
        match &mut self.last {
            Some((pair, _, n)) if *pair == (sender, receiver) => *n += 1,
            _ => {
                self.settle();
                self.last = Some(((sender, receiver), to, 1));
            }
        }
    }

    /// Adds the last pair's pending crossings to `pairs`.
    pub fn settle(&mut self) {
        let Some((pair, to, n)) = self.last.take() else { return };
        let full = self.pairs.len() >= TRACKED_PAIRS;
        match self.pairs.get_mut(&pair) {
            Some(e) => e.1 += n,
            None if full => self.untracked += n,
            None => {
                self.pairs.insert(pair, (to as u32, n));
            }
        }
    }
}

/// Where a resolved message goes.
pub(crate) enum Routed {
    /// Resolved: local pairs in `local`, the others in `batches`.
    Done,
    /// A recipient is on another partition and crossing is not allowed
    /// now (lookahead windows): (sender, receiver, partition).
    Crossing(AgentId, AgentId, usize),
}

/// Scratch space of the router, kept between steps.
#[derive(Default)]
pub(crate) struct Router {
    pub outbox: Vec<Envelope>,
    pub local: Vec<(AgentId, Envelope)>,
    pub batches: Vec<Vec<(AgentId, Envelope)>>,
    recipients: Vec<AgentId>,
}

impl Router {
    pub fn new(partitions: usize) -> Router {
        Router { batches: (0..partitions).map(|_| Vec::new()).collect(), ..Router::default() }
    }

    /// Takes a buffer given back by partition `q` for the next batch to it,
    /// unless the batch has one already.
    pub fn reuse(&mut self, q: usize, spare: Vec<(AgentId, Envelope)>) {
        if self.batches[q].capacity() < spare.capacity() && self.batches[q].is_empty() {
            self.batches[q] = spare;
        }
    }

    /// Resolves the outbox: pairs for this partition go to `local`, pairs for
    /// others to `batches` (unless `may_cross` is false: then the first such
    /// pair stops the routing with [`Routed::Crossing`]).
    pub fn route(
        &mut self,
        me: usize,
        kernel: &mut Driver,
        dir: &Directory,
        counters: &mut Counters,
        may_cross: bool,
    ) -> Routed {
        let mut outbox = std::mem::take(&mut self.outbox);
        let mut verdict = Routed::Done;
        // The last recipient's partition: a stream repeats it, and a lookup
        // in the directory costs more than a comparison. (Nothing moves
        // while the outbox is routed.)
        let mut last: Option<(AgentId, Option<usize>)> = None;
        let mut mail = outbox.drain(..);
        while let Some(env) = mail.next() {
            self.recipients.clear();
            kernel.recipients_into(&env, &mut self.recipients);
            if self.recipients.is_empty() {
                counters.sent += 1;
                counters.dead += 1;
                kernel.dead_letter(&env);
                continue;
            }
            if !may_cross {
                let far = self
                    .recipients
                    .iter()
                    .find_map(|&r| dir.get(r).filter(|&q| q != me).map(|q| (r, q)));
                if let Some((r, q)) = far {
                    verdict = Routed::Crossing(env.sender(), r, q);
                    // It and the rest stay unrouted: pending at the stop.
                    let rest: Vec<Envelope> = std::iter::once(env).chain(mail.by_ref()).collect();
                    drop(mail);
                    outbox.extend(rest);
                    self.outbox = outbox;
                    return verdict;
                }
            }
            let n = self.recipients.len();
            let mut env = Some(env);
            for i in 0..n {
                let r = self.recipients[i];
                let copy = if i + 1 == n {
                    env.take().expect("the last recipient takes the original")
                } else {
                    let original = env.as_ref().expect("kept for the last");
                    match catch_unwind(AssertUnwindSafe(|| original.clone())) {
                        Ok(copy) => copy,
                        Err(_) => {
                            counters.sent += 1;
                            counters.dead += 1;
                            kernel.dead_letter(original);
                            continue;
                        }
                    }
                };
                counters.sent += 1;
                if let Some(m) = counters.measure.as_deref_mut() {
                    m.count(copy.sender(), r);
                }
                // An agent added here since the last exchange (inside a
                // lookahead window) is not in the directory yet.
                let at = match last {
                    Some((id, at)) if id == r => at,
                    _ => {
                        let at = dir.get(r).or_else(|| kernel.contains(r).then_some(me));
                        last = Some((r, at));
                        at
                    }
                };
                match at {
                    None => {
                        counters.dead += 1;
                        kernel.dead_letter(&copy);
                    }
                    Some(q) if q == me => {
                        counters.row[me] += 1;
                        self.local.push((r, copy));
                    }
                    Some(q) => {
                        counters.crossing(copy.sender(), r, q);
                        self.batches[q].push((r, copy));
                    }
                }
            }
        }
        drop(mail);
        self.outbox = outbox;
        verdict
    }

    /// Delivers this partition's pairs and the incoming batches, merged in
    /// origin order.
    pub fn deliver(
        &mut self,
        kernel: &mut Driver,
        incoming: &mut Vec<(AgentId, Envelope)>,
        counters: &mut Counters,
    ) {
        let mail = &mut self.local;
        if mail.is_empty() {
            // No copy: `incoming` gets the empty buffer.
            std::mem::swap(mail, incoming);
        } else {
            mail.append(incoming);
        }
        if mail.len() > 1 {
            mail.sort_by_key(|(_, env)| env.origin());
        }
        for (r, env) in mail.drain(..) {
            match kernel.deliver_to(r, env) {
                Ok(()) => counters.delivered += 1,
                Err(env) => {
                    counters.dead += 1;
                    kernel.dead_letter(&env);
                }
            }
        }
    }
}

/// The `n` busiest cross-partition pairs of all partitions' counters.
pub(crate) fn top_pairs(parts: &[(usize, &Counters)], n: usize) -> Vec<PairTraffic> {
    let mut all: Vec<PairTraffic> = parts
        .iter()
        .flat_map(|(p, c)| {
            c.pairs.iter().map(move |(&(sender, receiver), &(to, messages))| PairTraffic {
                sender,
                receiver,
                from: *p,
                to: to as usize,
                messages,
            })
        })
        .collect();
    all.sort_by(|a, b| {
        b.messages.cmp(&a.messages).then(a.sender.cmp(&b.sender)).then(a.receiver.cmp(&b.receiver))
    });
    all.truncate(n);
    all
}
