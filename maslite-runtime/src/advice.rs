//! Placement advice: where to put each agent so that few messages cross
//! partitions and every partition has about the same work.
//!
//! # Why a module of its own, and why not a crate
//!
//! This is graph partitioning: agents are vertices weighted by their load
//! (updates), pairs that talk are edges weighted by their messages, and a
//! good placement cuts few edge weights while keeping the parts' weights
//! within a tolerance of the mean. The well-known partitioners (METIS,
//! KaHIP, KaMinPar) are C/C++; the pure-Rust ones on crates.io were either
//! geometric (mesh) partitioners with heavy dependencies (`coupe`) or young
//! ports with no track record (`metis-rs`). Our graphs are plain and the
//! heuristic below is short, so it lives here, deterministic and with no
//! dependency.
//!
//! # How: multilevel label propagation with balanced refinement
//!
//! 1. **Coarsen.** Size-constrained label propagation (as in KaHIP's
//!    SCLaP): each vertex, in index order, joins the neighbouring cluster
//!    it exchanges most messages with, if that cluster stays under a size
//!    bound (a sixteenth of a part). The clusters are contracted into one
//!    coarser graph; repeat until the graph is small or stops shrinking.
//!    Communities (a factory line, an order book and its traders) collapse
//!    into few heavy vertices.
//! 2. **Initial placement** of the coarsest graph: vertices by decreasing
//!    weight, each to the part it talks to most among those with room,
//!    else to the lightest part.
//! 3. **Uncoarsen and refine.** At each level the placement is projected
//!    to the finer graph, rebalanced if a part is over the bound (the
//!    moves that lose least), then refined: passes of greedy moves with a
//!    positive gain (Fiduccia–Mattheyses' gain, moves that keep the loads
//!    within bounds), until a pass moves nothing.
//! 4. When the advice is for the partition count the run had, the current
//!    placement is refined the same way too, and the better of the two
//!    (fewer crossings among balanced ones) is kept; parts are then
//!    renumbered to move as few agents as possible.
//!
//! Everything goes in index order (agents sorted by id) with ties broken by
//! the lower index: the same traffic gives the same advice. Cost: linear in
//! agents plus pairs per pass, the passes bound by cache misses on the
//! pairs that leave their community (prefetched ahead); 1 M agents and
//! 10 M pairs take about 2 s on the project's 2-core machines (the
//! `placement` bench case).

use crate::traffic::Traffic;
use maslite_core::AgentId;
use rustc_hash::FxHashMap;
use std::fmt;

/// The load tolerance of [`Traffic::suggest_placement`]: 10% of the mean.
pub const DEFAULT_TOLERANCE: f64 = 0.10;

/// Where agents go: a partition per agent. Made by advice
/// ([`PlacementAdvice::placement`]) or by hand, applied with
/// [`Runtime::apply_placement`](crate::Runtime::apply_placement).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentPlacement {
    /// Sorted by id, one entry per agent.
    entries: Vec<(AgentId, usize)>,
}

impl AgentPlacement {
    /// An empty placement.
    pub fn new() -> AgentPlacement {
        AgentPlacement::default()
    }

    /// Puts agent `id` on partition `partition` (replacing an earlier entry).
    pub fn set(&mut self, id: AgentId, partition: usize) {
        match self.entries.binary_search_by_key(&id, |e| e.0) {
            Ok(i) => self.entries[i].1 = partition,
            Err(i) => self.entries.insert(i, (id, partition)),
        }
    }

    /// The partition of agent `id`, if placed.
    pub fn get(&self, id: AgentId) -> Option<usize> {
        self.entries.binary_search_by_key(&id, |e| e.0).ok().map(|i| self.entries[i].1)
    }

    /// The agents placed.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no agent is placed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// (agent, partition), by agent id.
    pub fn iter(&self) -> impl Iterator<Item = (AgentId, usize)> + '_ {
        self.entries.iter().copied()
    }

    /// Keeps the entries for which `keep(agent, partition)` holds: to leave
    /// out, say, the agents [`Runtime::immovable`](crate::Runtime::immovable)
    /// names.
    pub fn retain(&mut self, mut keep: impl FnMut(AgentId, usize) -> bool) {
        self.entries.retain(|&(id, p)| keep(id, p));
    }
}

impl FromIterator<(AgentId, usize)> for AgentPlacement {
    /// The last entry for an agent wins.
    fn from_iter<I: IntoIterator<Item = (AgentId, usize)>>(iter: I) -> Self {
        let mut entries: Vec<(AgentId, usize)> = iter.into_iter().collect();
        // Stable: for equal ids the later entry stays later, and is kept.
        entries.sort_by_key(|e| e.0);
        entries.reverse();
        entries.dedup_by_key(|e| e.0);
        entries.reverse();
        AgentPlacement { entries }
    }
}

/// What [`Traffic::suggest_placement`] proposes: a placement of every
/// agent on `k` partitions, with its predicted crossing messages and loads
/// against those of the placement the run had.
#[derive(Clone, Debug, PartialEq)]
pub struct PlacementAdvice {
    /// The proposed placement (every agent measured).
    pub placement: AgentPlacement,
    /// The agents whose partition it changes, by id.
    pub moves: Vec<(AgentId, usize, usize)>,
    /// The number of partitions advised for.
    pub k: usize,
    /// The load tolerance asked for (0.1: within 10% of the mean).
    pub tolerance: f64,
    /// Messages that would have crossed partitions under the advice.
    pub crossing: u64,
    /// Messages that crossed partitions under the current placement.
    pub current_crossing: u64,
    /// All messages between two distinct agents counted.
    pub messages: u64,
    /// Load (updates) per partition under the advice.
    pub loads: Vec<u64>,
    /// Load per partition under the current placement.
    pub current_loads: Vec<u64>,
}

impl PlacementAdvice {
    /// The share of the current crossing messages the advice removes (0
    /// when none crossed; negative if it would add some).
    pub fn crossing_cut(&self) -> f64 {
        if self.current_crossing == 0 {
            return 0.0;
        }
        1.0 - self.crossing as f64 / self.current_crossing as f64
    }

    /// The largest distance of a partition's load from the mean, as a
    /// share of the mean (0.07: within 7%).
    pub fn imbalance(&self) -> f64 {
        imbalance(&self.loads)
    }

    /// [`imbalance`](Self::imbalance) of the current placement.
    pub fn current_imbalance(&self) -> f64 {
        imbalance(&self.current_loads)
    }

    /// Whether every partition's load is within the tolerance of the mean.
    pub fn balanced(&self) -> bool {
        self.imbalance() <= self.tolerance + 1e-9
    }
}

impl fmt::Display for PlacementAdvice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.moves.is_empty() {
            return write!(
                f,
                "placement advice: keep the placement: {} of {} messages cross partitions, \
                 loads within {:.0}% of the mean",
                self.current_crossing,
                self.messages,
                self.current_imbalance() * 100.0
            );
        }
        write!(
            f,
            "placement advice: moving these {} agents would cut crossing messages from {} to {} \
             ({:.0}% fewer, of {} messages), loads within {:.0}% of the mean (now {:.0}%)",
            self.moves.len(),
            self.current_crossing,
            self.crossing,
            self.crossing_cut() * 100.0,
            self.messages,
            self.imbalance() * 100.0,
            self.current_imbalance() * 100.0,
        )?;
        if !self.balanced() {
            write!(
                f,
                " (over the {:.0}% asked: some agents weigh too much)",
                self.tolerance * 100.0
            )?;
        }
        Ok(())
    }
}

fn imbalance(loads: &[u64]) -> f64 {
    let total: u64 = loads.iter().sum();
    if total == 0 || loads.is_empty() {
        return 0.0;
    }
    let mean = total as f64 / loads.len() as f64;
    loads.iter().map(|&l| (l as f64 - mean).abs() / mean).fold(0.0, f64::max)
}

// ----- the graph ---------------------------------------------------------------

/// Agent ids to vertex numbers: a table when the ids are dense (agents
/// added from outside are numbered 1, 2, 3...), a hash map otherwise.
enum Index {
    Dense { first: u64, table: Vec<u32> },
    Sparse(FxHashMap<AgentId, u32>),
}

impl Index {
    fn of(agents: &[(AgentId, u64, usize)]) -> Index {
        let (Some(first), Some(last)) = (agents.first(), agents.last()) else {
            return Index::Sparse(FxHashMap::default());
        };
        let span = last.0 .0 - first.0 .0;
        if span < 4 * agents.len() as u64 + 1024 {
            let mut table = vec![u32::MAX; span as usize + 1];
            for (i, a) in agents.iter().enumerate() {
                table[(a.0 .0 - first.0 .0) as usize] = i as u32;
            }
            Index::Dense { first: first.0 .0, table }
        } else {
            Index::Sparse(agents.iter().enumerate().map(|(i, a)| (a.0, i as u32)).collect())
        }
    }

    /// Asks the cache for `id`'s entry (dense tables only).
    #[inline(always)]
    fn prefetch(&self, id: AgentId) {
        if let Index::Dense { first, table } = self {
            prefetch(table, id.0.wrapping_sub(*first) as usize);
        }
    }

    #[inline]
    fn get(&self, id: AgentId) -> Option<u32> {
        match self {
            Index::Dense { first, table } => {
                let i = id.0.checked_sub(*first)?;
                table.get(i as usize).copied().filter(|&v| v != u32::MAX)
            }
            Index::Sparse(map) => map.get(&id).copied(),
        }
    }
}

/// Which vertices a pass looks at: all in the first, then those with a
/// neighbour that moved in the pass before.
struct Active {
    now: Vec<bool>,
    next: Vec<bool>,
}

impl Active {
    fn all(n: usize) -> Active {
        Active { now: vec![true; n], next: vec![false; n] }
    }

    /// `v` moved: its neighbours are looked at in the next pass.
    fn moved(&mut self, g: &Graph, v: usize) {
        for &u in g.row(v).0 {
            self.next[u as usize] = true;
        }
    }

    /// The next pass.
    fn turn(&mut self) {
        std::mem::swap(&mut self.now, &mut self.next);
        self.next.iter_mut().for_each(|x| *x = false);
    }
}

/// An undirected weighted graph in compressed rows.
struct Graph {
    /// Row `v` is `adj[xadj[v]..xadj[v + 1]]`.
    xadj: Vec<usize>,
    adj: Vec<u32>,
    ew: Vec<u64>,
    vw: Vec<u64>,
}

impl Graph {
    fn n(&self) -> usize {
        self.vw.len()
    }

    /// Asks the cache for `table[u]` of every neighbour `u` of `v` (if
    /// there is a `v`): the rows are read in order, the tables they index
    /// are not, and a vertex's look-ups wait on memory otherwise.
    #[inline(always)]
    fn prefetch_row(&self, v: usize, table: &[u32]) {
        if v < self.n() {
            for &u in self.row(v).0 {
                prefetch(table, u as usize);
            }
        }
    }

    fn row(&self, v: usize) -> (&[u32], &[u64]) {
        let r = self.xadj[v]..self.xadj[v + 1];
        (&self.adj[r.clone()], &self.ew[r])
    }

    /// The graph of `t`'s agents (in id order) and pairs, both directions of
    /// a pair merged; messages to oneself and to unknown agents left out.
    /// Also returns the messages that cross under `part` (by vertex;
    /// empty: none asked) and all messages, counted on the way.
    fn with_cut(t: &Traffic, part: &[u32]) -> (Graph, u64, u64) {
        let agents = t.agents();
        let n = agents.len();
        let index = Index::of(agents);
        // The pairs as vertex numbers, once (half the bytes of a pair).
        let pairs = t.pairs();
        let mut ends: Vec<(u32, u32, u64)> = Vec::with_capacity(pairs.len());
        for (i, p) in pairs.iter().enumerate() {
            if let Some(ahead) = pairs.get(i + 16) {
                index.prefetch(ahead.receiver);
            }
            let (Some(a), Some(b)) = (index.get(p.sender), index.get(p.receiver)) else {
                continue;
            };
            if a != b && p.messages > 0 {
                ends.push((a, b, p.messages));
            }
        }
        drop(index);
        let ends_vec = ends;
        let ends = || ends_vec.iter().copied();
        // The receivers' entries are far apart: asked for ahead of time.
        let receiver = |i: usize| ends_vec.get(i).map_or(usize::MAX, |e| e.1 as usize);
        let mut deg = vec![0usize; n + 1];
        let (mut cut, mut messages) = (0u64, 0u64);
        for (i, (a, b, w)) in ends().enumerate() {
            prefetch(&deg, receiver(i + 16));
            prefetch(part, receiver(i + 16));
            deg[a as usize] += 1;
            deg[b as usize] += 1;
            messages += w;
            if !part.is_empty() && part[a as usize] != part[b as usize] {
                cut += w;
            }
        }
        let mut xadj = vec![0usize; n + 1];
        for v in 0..n {
            xadj[v + 1] = xadj[v] + deg[v];
        }
        // Each row gets its out-neighbours, then its in-neighbours: the
        // pairs come sorted by (sender, receiver) and vertices are numbered
        // in id order, so both runs are sorted, and merging them adds up a
        // pair's two directions without a look-up table.
        let mut fill = xadj.clone();
        let mut adj = vec![0u32; xadj[n]];
        let mut ew = vec![0u64; xadj[n]];
        for (a, b, w) in ends() {
            let at = fill[a as usize];
            adj[at] = b;
            ew[at] = w;
            fill[a as usize] += 1;
        }
        let mid = fill.clone();
        for (i, (a, b, w)) in ends().enumerate() {
            prefetch(&fill, receiver(i + 32));
            if let Some(&ahead) = fill.get(receiver(i + 16)) {
                prefetch(&adj, ahead);
                prefetch(&ew, ahead);
            }
            let at = fill[b as usize];
            adj[at] = a;
            ew[at] = w;
            fill[b as usize] += 1;
        }
        drop(fill);
        let vw = agents.iter().map(|a| a.1).collect();
        let mut g = Graph { xadj, adj, ew, vw };
        g.merge_runs(&mid);
        (g, cut, messages)
    }

    /// Merges each row's two sorted runs (`xadj[v]..mid[v]`,
    /// `mid[v]..xadj[v + 1]`), adding up repeated neighbours, in place.
    fn merge_runs(&mut self, mid: &[usize]) {
        let n = self.n();
        let mut row: Vec<(u32, u64)> = Vec::new();
        let mut out = 0usize;
        for (v, &split) in mid.iter().enumerate().take(n) {
            let (start, end) = (self.xadj[v], self.xadj[v + 1]);
            row.clear();
            let (mut i, mut j) = (start, split);
            while i < split || j < end {
                let take_i = j >= end || (i < split && self.adj[i] <= self.adj[j]);
                let (u, w) = if take_i {
                    i += 1;
                    (self.adj[i - 1], self.ew[i - 1])
                } else {
                    j += 1;
                    (self.adj[j - 1], self.ew[j - 1])
                };
                match row.last_mut() {
                    Some(last) if last.0 == u => last.1 += w,
                    _ => row.push((u, w)),
                }
            }
            self.xadj[v] = out;
            for &(u, w) in &row {
                self.adj[out] = u;
                self.ew[out] = w;
                out += 1;
            }
        }
        self.xadj[n] = out;
        self.adj.truncate(out);
        self.ew.truncate(out);
    }

    /// Size-constrained label propagation: a cluster per vertex, its
    /// number in `0..clusters`.
    fn cluster(&self, max_weight: u64) -> (Vec<u32>, usize) {
        let n = self.n();
        let mut label: Vec<u32> = (0..n as u32).collect();
        let mut weight: Vec<u64> = self.vw.clone();
        let mut conn = vec![0u64; n];
        let mut touched: Vec<u32> = Vec::new();
        let mut active = Active::all(n);
        // Two passes on a big graph (its misses in the cache cost most; the
        // next level goes on clustering), three on a small one.
        let passes = if n > 200_000 { 2 } else { 3 };
        for pass in 0..passes {
            let mut moved = 0usize;
            for v in 0..n {
                let (adj, ew) = self.row(v);
                if adj.is_empty() || !active.now[v] {
                    continue;
                }
                // Two stages ahead: the labels of the row after next, then
                // (those in the cache by now) the next row's clusters.
                self.prefetch_row(v + 2, &label);
                if v + 1 < n {
                    for &u in self.row(v + 1).0 {
                        let c = label[u as usize] as usize;
                        prefetch(&conn, c);
                        prefetch(&weight, c);
                    }
                }
                for (&u, &w) in adj.iter().zip(ew) {
                    let c = label[u as usize];
                    if conn[c as usize] == 0 {
                        touched.push(c);
                    }
                    conn[c as usize] += w;
                }
                let cur = label[v];
                let vw = self.vw[v];
                let mut best = cur;
                let mut best_conn = conn[cur as usize];
                for &c in &touched {
                    let k = conn[c as usize];
                    if c != cur
                        && (k > best_conn || (k == best_conn && c < best))
                        && weight[c as usize] + vw <= max_weight
                    {
                        best = c;
                        best_conn = k;
                    }
                }
                for &c in &touched {
                    conn[c as usize] = 0;
                }
                touched.clear();
                if best != cur {
                    weight[cur as usize] -= vw;
                    weight[best as usize] += vw;
                    label[v] = best;
                    moved += 1;
                    if pass + 1 < passes {
                        active.moved(self, v);
                    }
                }
            }
            if moved == 0 {
                break;
            }
            active.turn();
        }
        // Numbered in order of first appearance.
        let mut number = vec![u32::MAX; n];
        let mut clusters = 0u32;
        for l in label.iter_mut() {
            if number[*l as usize] == u32::MAX {
                number[*l as usize] = clusters;
                clusters += 1;
            }
            *l = number[*l as usize];
        }
        (label, clusters as usize)
    }

    /// The graph of the clusters.
    fn contract(&self, cluster: &[u32], clusters: usize) -> Graph {
        let n = self.n();
        // Members of each cluster, by counting sort.
        let mut start = vec![0usize; clusters + 1];
        for &c in cluster {
            start[c as usize + 1] += 1;
        }
        for c in 0..clusters {
            start[c + 1] += start[c];
        }
        let mut members = vec![0u32; n];
        let mut fill = start.clone();
        for (v, &c) in cluster.iter().enumerate() {
            members[fill[c as usize]] = v as u32;
            fill[c as usize] += 1;
        }
        let mut vw = vec![0u64; clusters];
        let mut xadj = Vec::with_capacity(clusters + 1);
        xadj.push(0);
        let mut adj = Vec::with_capacity(self.adj.len());
        let mut ew = Vec::with_capacity(self.adj.len());
        let mut at = vec![u32::MAX; clusters];
        for c in 0..clusters {
            let row_start = adj.len();
            for (i, &v) in members[start[c]..start[c + 1]].iter().enumerate() {
                let ahead = members.get(start[c] + i + 2).map_or(usize::MAX, |&m| m as usize);
                self.prefetch_row(ahead, cluster);
                if let Some(&next) = members.get(start[c] + i + 1) {
                    for &u in self.row(next as usize).0 {
                        prefetch(&at, cluster[u as usize] as usize);
                    }
                }
                vw[c] += self.vw[v as usize];
                let (nbrs, ws) = self.row(v as usize);
                for (&u, &w) in nbrs.iter().zip(ws) {
                    let d = cluster[u as usize];
                    if d as usize == c {
                        continue;
                    }
                    let seen = at[d as usize];
                    if seen != u32::MAX && seen as usize >= row_start {
                        ew[seen as usize] += w;
                    } else {
                        at[d as usize] = adj.len() as u32;
                        adj.push(d);
                        ew.push(w);
                    }
                }
            }
            xadj.push(adj.len());
        }
        Graph { xadj, adj, ew, vw }
    }

    /// Messages between parts under `part`.
    fn cut(&self, part: &[u32]) -> u64 {
        let mut cut = 0;
        for v in 0..self.n() {
            let (adj, ew) = self.row(v);
            self.prefetch_row(v + 2, part);
            for (&u, &w) in adj.iter().zip(ew) {
                if part[u as usize] != part[v] {
                    cut += w;
                }
            }
        }
        cut / 2
    }

    fn loads(&self, part: &[u32], k: usize) -> Vec<u64> {
        let mut loads = vec![0u64; k];
        for (v, &p) in part.iter().enumerate() {
            loads[p as usize] += self.vw[v];
        }
        loads
    }
}

/// A hint to the CPU to bring `table[i]` into the cache (nothing if out of
/// bounds, nothing off x86-64).
#[inline(always)]
fn prefetch<T>(table: &[T], i: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(x) = table.get(i) {
        // SAFETY: a prefetch reads nothing and cannot fault; the address
        // is that of a live element.
        #[allow(unused_unsafe)]
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                (x as *const T).cast::<i8>(),
            );
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (table, i);
}

/// The bounds every part's load should keep.
#[derive(Clone, Copy)]
struct Bounds {
    lo: u64,
    hi: u64,
}

impl Bounds {
    fn of(total: u64, k: usize, tolerance: f64) -> Bounds {
        let mean = total as f64 / k as f64;
        Bounds {
            lo: (mean * (1.0 - tolerance)).ceil().max(0.0) as u64,
            hi: (mean * (1.0 + tolerance)).floor().max(mean.ceil()) as u64,
        }
    }
}

/// Scratch space for the per-part connections of one vertex.
struct Conn {
    to: Vec<u64>,
    touched: Vec<u32>,
}

impl Conn {
    fn new(k: usize) -> Conn {
        Conn { to: vec![0; k], touched: Vec::with_capacity(k) }
    }

    fn gather(&mut self, g: &Graph, part: &[u32], v: usize) {
        g.prefetch_row(v + 2, part);
        let (adj, ew) = g.row(v);
        for (&u, &w) in adj.iter().zip(ew) {
            let p = part[u as usize];
            if self.to[p as usize] == 0 {
                self.touched.push(p);
            }
            self.to[p as usize] += w;
        }
    }

    fn clear(&mut self) {
        for &p in &self.touched {
            self.to[p as usize] = 0;
        }
        self.touched.clear();
    }
}

/// Moves vertices out of parts over the upper bound (and into parts under
/// the lower one), those that lose least first.
fn rebalance(g: &Graph, part: &mut [u32], loads: &mut [u64], b: Bounds) {
    let k = loads.len();
    let mut conn = Conn::new(k);
    for _ in 0..4 {
        let within = |loads: &[u64]| loads.iter().all(|&l| l >= b.lo && l <= b.hi);
        if within(loads) {
            return;
        }
        // From the parts over the bound, or else the heaviest.
        let heaviest = (0..k).max_by_key(|&p| (loads[p], std::cmp::Reverse(p))).unwrap_or(0);
        let from: Vec<bool> =
            (0..k).map(|p| loads[p] > b.hi || (p == heaviest && loads[p] > b.lo)).collect();
        // (loss, vertex): what moving it to its best other part costs.
        let mut cands: Vec<(i64, u32)> = Vec::new();
        for v in 0..g.n() {
            if !from[part[v] as usize] || g.vw[v] == 0 {
                continue;
            }
            conn.gather(g, part, v);
            let own = conn.to[part[v] as usize] as i64;
            let other = conn
                .touched
                .iter()
                .filter(|&&p| p != part[v])
                .map(|&p| conn.to[p as usize] as i64)
                .max()
                .unwrap_or(0);
            conn.clear();
            cands.push((own - other, v as u32));
        }
        cands.sort_unstable();
        for (_, v) in cands {
            if within(loads) {
                return;
            }
            let v = v as usize;
            let p = part[v] as usize;
            let w = g.vw[v];
            let starved = (0..k).any(|q| loads[q] < b.lo);
            if loads[p] <= b.hi && !(starved && loads[p] >= b.lo + w) {
                continue;
            }
            // The part it talks to most among those with room, else the
            // lightest.
            conn.gather(g, part, v);
            let mut to: Option<usize> = None;
            for &q in &conn.touched {
                let q = q as usize;
                if q != p && loads[q] + w <= b.hi && to.is_none_or(|t| conn.to[q] > conn.to[t]) {
                    to = Some(q);
                }
            }
            conn.clear();
            let lightest = (0..k).filter(|&q| q != p).min_by_key(|&q| (loads[q], q));
            let Some(to) = to.or(lightest) else { return };
            if loads[to] + w < loads[p] {
                loads[p] -= w;
                loads[to] += w;
                part[v] = to as u32;
            }
        }
    }
}

/// Passes of greedy positive-gain moves that keep the loads within bounds.
fn refine(g: &Graph, part: &mut [u32], loads: &mut [u64], b: Bounds, passes: usize) {
    let k = loads.len();
    let mut conn = Conn::new(k);
    let mut active = Active::all(g.n());
    for _ in 0..passes {
        let mut moved = 0usize;
        for v in 0..g.n() {
            if !active.now[v] {
                continue;
            }
            let from = part[v] as usize;
            conn.gather(g, part, v);
            let own = conn.to[from];
            let w = g.vw[v];
            let mut best = from;
            let mut best_gain = 0i64;
            for &q in &conn.touched {
                let q = q as usize;
                if q == from {
                    continue;
                }
                let gain = conn.to[q] as i64 - own as i64;
                // Room there, and enough left here (or too much here).
                let fits = loads[q] + w <= b.hi && (loads[from] >= b.lo + w || loads[from] > b.hi);
                if fits && (gain > best_gain || (gain == best_gain && gain > 0 && q < best)) {
                    best = q;
                    best_gain = gain;
                }
            }
            conn.clear();
            if best != from {
                loads[from] -= w;
                loads[best] += w;
                part[v] = best as u32;
                moved += 1;
                active.moved(g, v);
            }
        }
        if moved == 0 {
            return;
        }
        active.turn();
    }
}

/// The initial placement of the coarsest graph (see the module docs).
fn initial(g: &Graph, k: usize, b: Bounds) -> Vec<u32> {
    let n = g.n();
    let mut order: Vec<u32> = (0..n as u32).collect();
    order.sort_by_key(|&v| (std::cmp::Reverse(g.vw[v as usize]), v));
    const NONE: u32 = u32::MAX;
    let mut part = vec![NONE; n];
    let mut loads = vec![0u64; k];
    let mut to = vec![0u64; k];
    for &v in &order {
        let v = v as usize;
        let (adj, ew) = g.row(v);
        for (&u, &w) in adj.iter().zip(ew) {
            let p = part[u as usize];
            if p != NONE {
                to[p as usize] += w;
            }
        }
        let w = g.vw[v];
        let lightest = (0..k).min_by_key(|&q| (loads[q], q)).unwrap_or(0);
        let mut best = None;
        for q in 0..k {
            if loads[q] + w <= b.hi && to[q] > 0 && best.is_none_or(|b: usize| to[q] > to[b]) {
                best = Some(q);
            }
        }
        let p = best.unwrap_or(lightest);
        part[v] = p as u32;
        loads[p] += w;
        to.iter_mut().for_each(|x| *x = 0);
    }
    part
}

/// Region growing: part after part, from a seed vertex, the vertex that
/// talks most to the part joins it, until the part has its share of the
/// load; `attempt` picks the seeds (the heaviest free vertex, the first, or
/// the last).
fn grown(g: &Graph, k: usize, b: Bounds, attempt: usize) -> Vec<u32> {
    use std::collections::BinaryHeap;
    let n = g.n();
    const NONE: u32 = u32::MAX;
    let mut part = vec![NONE; n];
    let mut conn = vec![0u64; n];
    let mut left: u64 = g.vw.iter().sum();
    let mut free = n;
    for p in 0..k {
        if free == 0 {
            break;
        }
        if p + 1 == k {
            part.iter_mut().filter(|x| **x == NONE).for_each(|x| *x = p as u32);
            break;
        }
        let target = left / (k - p) as u64;
        let mut load = 0u64;
        let mut heap: BinaryHeap<(u64, std::cmp::Reverse<u32>)> = BinaryHeap::new();
        let seed = |part: &[u32]| -> Option<usize> {
            let mut free_vs = (0..n).filter(|&v| part[v] == NONE);
            let mut last_free = (0..n).rev().filter(|&v| part[v] == NONE);
            match attempt {
                1 => free_vs.max_by_key(|&v| (g.vw[v], std::cmp::Reverse(v))),
                2 => free_vs.next(),
                _ => last_free.next(),
            }
        };
        while load < target.min(b.hi) {
            let v = match heap.pop() {
                Some((c, std::cmp::Reverse(v))) => {
                    let v = v as usize;
                    if part[v] != NONE || c != conn[v] {
                        continue;
                    }
                    v
                }
                None => match seed(&part) {
                    Some(v) => v,
                    None => break,
                },
            };
            if load + g.vw[v] > b.hi && load > 0 {
                // Too heavy for this part: left for the next ones.
                conn[v] = u64::MAX;
                continue;
            }
            part[v] = p as u32;
            free -= 1;
            load += g.vw[v];
            let (adj, ew) = g.row(v);
            for (&u, &w) in adj.iter().zip(ew) {
                let u = u as usize;
                if part[u] == NONE && conn[u] != u64::MAX {
                    conn[u] += w;
                    heap.push((conn[u], std::cmp::Reverse(u as u32)));
                }
            }
        }
        left -= load;
        conn.iter_mut().for_each(|c| *c = 0);
    }
    part
}

/// Places `g` on `k` parts: multilevel (see the module docs).
fn multilevel(g: &Graph, k: usize, b: Bounds) -> Vec<u32> {
    let total: u64 = g.vw.iter().sum();
    let max_vw = g.vw.iter().copied().max().unwrap_or(0);
    let cluster_bound = (total / (16 * k as u64).max(1)).max(max_vw).max(1);
    let small = (64 * k).max(256);
    // Coarsen: `coarse[i]` is made of the clusters `maps[i]` of the level
    // below it (`g` for the first).
    let mut coarse: Vec<Graph> = Vec::new();
    let mut maps: Vec<Vec<u32>> = Vec::new();
    loop {
        let now = coarse.last().unwrap_or(g);
        if now.n() <= small {
            break;
        }
        let (cluster, count) = now.cluster(cluster_bound);
        if count as f64 > 0.9 * now.n() as f64 {
            break;
        }
        let next = now.contract(&cluster, count);
        maps.push(cluster);
        coarse.push(next);
    }
    let coarsest = coarse.last().unwrap_or(g);
    // A few initial placements, each refined: the best is kept.
    type Scored = ((bool, u64), Vec<u32>, Vec<u64>);
    let mut best: Option<Scored> = None;
    let tries = if coarsest.n() <= 20_000 { 4 } else { 1 };
    for attempt in 0..tries {
        let mut part =
            if attempt == 0 { initial(coarsest, k, b) } else { grown(coarsest, k, b, attempt) };
        let mut loads = coarsest.loads(&part, k);
        rebalance(coarsest, &mut part, &mut loads, b);
        refine(coarsest, &mut part, &mut loads, b, 16);
        let score = (loads.iter().any(|&l| l > b.hi || l < b.lo), coarsest.cut(&part));
        if best.as_ref().is_none_or(|(s, ..)| score < *s) {
            best = Some((score, part, loads));
        }
    }
    let (_, mut part, mut loads) = best.expect("at least one try");
    // Uncoarsen: project, rebalance, refine, level by level.
    for i in (0..maps.len()).rev() {
        let finer = if i == 0 { g } else { &coarse[i - 1] };
        part = maps[i].iter().map(|&c| part[c as usize]).collect();
        rebalance(finer, &mut part, &mut loads, b);
        refine(finer, &mut part, &mut loads, b, if i == 0 { 4 } else { 8 });
    }
    part
}

/// The advice for `t` on `k` parts (arguments checked).
pub(crate) fn advise(t: &Traffic, k: usize, tolerance: f64) -> PlacementAdvice {
    let agents = t.agents();
    let current: Vec<u32> = agents.iter().map(|a| a.2 as u32).collect();
    let (g, current_crossing, messages) = Graph::with_cut(t, &current);
    let total: u64 = g.vw.iter().sum();
    let b = Bounds::of(total, k, tolerance);
    let current_k = t.partitions().max(current.iter().map(|&p| p as usize + 1).max().unwrap_or(1));
    let current_loads = g.loads(&current, current_k);
    let mut part = if k == 1 { vec![0; g.n()] } else { multilevel(&g, k, b) };
    let mut crossing = g.cut(&part);
    if k > 1 && current_k == k && current_crossing <= 2 * crossing {
        // The current placement, refined, may beat a fresh one when it is
        // about as good already (a placement refined by hand, or advised
        // before).
        let mut mine = current.clone();
        let mut loads = g.loads(&mine, k);
        rebalance(&g, &mut mine, &mut loads, b);
        refine(&g, &mut mine, &mut loads, b, 6);
        let over = |p: &[u32]| imbalance(&g.loads(p, k)) > tolerance + 1e-9;
        let mine_cut = g.cut(&mine);
        if (over(&mine), mine_cut) < (over(&part), crossing) {
            part = mine;
            crossing = mine_cut;
        }
    }
    // (Renumbering the parts changes no crossing.)
    relabel(&mut part, &current, k);
    let loads = g.loads(&part, k);
    let moves = agents
        .iter()
        .zip(&part)
        .filter(|(a, &p)| a.2 != p as usize)
        .map(|(a, &p)| (a.0, a.2, p as usize))
        .collect();
    PlacementAdvice {
        placement: agents.iter().zip(&part).map(|(a, &p)| (a.0, p as usize)).collect(),
        moves,
        k,
        tolerance,
        crossing,
        current_crossing,
        messages,
        loads,
        current_loads,
    }
}

/// Renumbers the parts so that as many agents as possible stay where they
/// are (greedy on the overlap of new and current parts).
fn relabel(part: &mut [u32], current: &[u32], k: usize) {
    let ck = current.iter().map(|&p| p as usize + 1).max().unwrap_or(0).max(k);
    let mut overlap = vec![vec![0u64; ck]; k];
    for (&p, &c) in part.iter().zip(current) {
        overlap[p as usize][c as usize] += 1;
    }
    let mut cells: Vec<(u64, usize, usize)> = Vec::new();
    for (p, row) in overlap.iter().enumerate() {
        for (c, &n) in row.iter().enumerate() {
            if c < k {
                cells.push((n, p, c));
            }
        }
    }
    cells.sort_by_key(|&(n, p, c)| (std::cmp::Reverse(n), p, c));
    let mut to = vec![usize::MAX; k];
    let mut taken = vec![false; k];
    for (_, p, c) in cells {
        if to[p] == usize::MAX && !taken[c] {
            to[p] = c;
            taken[c] = true;
        }
    }
    for x in part.iter_mut() {
        *x = to[*x as usize] as u32;
    }
}

#[cfg(test)]
mod tests {
    use crate::traffic::Traffic;
    use maslite_core::AgentId;

    #[test]
    fn odd_traffic_gets_advice_without_fuss() {
        // No agents at all.
        let none = Traffic::from_counts(2, [], []);
        let a = none.suggest_placement(3).unwrap();
        assert!(a.placement.is_empty() && a.moves.is_empty());
        assert_eq!(a.loads, [0, 0, 0]);
        // No load, no pairs: everyone stays.
        let idle = Traffic::from_counts(2, (1..=5).map(|i| (AgentId(i), 0, (i % 2) as usize)), []);
        let a = idle.suggest_placement(2).unwrap();
        assert_eq!(a.placement.len(), 5);
        assert_eq!((a.crossing, a.current_crossing), (0, 0));
        // One partition: nothing crosses.
        let pairs = [(AgentId(1), AgentId(2), 5), (AgentId(2), AgentId(3), 7)];
        let three =
            Traffic::from_counts(3, (1..=3).map(|i| (AgentId(i), 1, i as usize - 1)), pairs);
        let a = three.suggest_placement(1).unwrap();
        assert_eq!(a.crossing, 0);
        assert_eq!(a.current_crossing, 12);
        assert!(a.placement.iter().all(|(_, p)| p == 0));
        // More partitions than agents; a pair naming an unknown agent.
        let odd = Traffic::from_counts(2, [(AgentId(1), 3, 0)], [(AgentId(1), AgentId(9), 4)]);
        let a = odd.suggest_placement(4).unwrap();
        assert_eq!(a.placement.len(), 1);
        assert_eq!(a.messages, 0, "pairs with agents nobody measured are left out");
        // A tolerance that means nothing.
        assert!(odd.suggest_placement_within(2, f64::NAN).is_err());
        assert!(odd.suggest_placement_within(2, -0.1).is_err());
    }
}
