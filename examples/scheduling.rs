//! # scheduling — two machines agree on a job sequence, with no planner
//!
//! The scheduling demo of Bjorn Madsen's PhD thesis
//! (<https://oro.open.ac.uk/61375/>), ported from maslite's
//! `demos/scheduling.py`. A customer orders one each of products A..G from
//! machine M2. M2 makes each product from a part that machine M1 makes (A
//! from M1A, B from M1B, ...), and M1 makes its parts from raw material held
//! by a stock agent. Nobody plans for the others; each machine sequences its
//! own jobs and the two talk it out:
//!
//! 1. M2 puts its jobs in shortest-run-time-first order and orders the parts
//!    from M1 in that order; M1 does the same with the stock agent.
//! 2. The stock agent has everything at t=0 and says so in a
//!    `SupplySchedule`. M1 plans its jobs and sends M2 its own supply
//!    schedule: when each part will be ready.
//! 3. M2 sorts its jobs by when their parts arrive and plans them. Where a
//!    job after the first has to wait for its part (idle time), M2 asks M1,
//!    with `JobsWithIdleTime`, to make that part one place earlier.
//! 4. M1 swaps, replans and sends a new supply schedule. The talk ends when
//!    M2 has no idle time left after its first job.
//!
//! Run it: `cargo run --example scheduling`. It prints M2's plan; the last
//! line reads `M2 job sequence: A E B D G F C`.

use maslite::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Simulated time, in whole seconds as in the thesis.
pub type Time = i64;

/// An order: SKUs and quantities, in the order given.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Order {
    items: Vec<(String, u32)>,
}

impl Order {
    /// An order behaves like the Python dict it replaces: a SKU named twice
    /// keeps its first place and takes the last quantity.
    pub fn new<S: Into<String>>(items: impl IntoIterator<Item = (S, u32)>) -> Order {
        let mut order = Order { items: Vec::new() };
        for (sku, qty) in items {
            let sku = sku.into();
            match order.items.iter_mut().find(|(known, _)| *known == sku) {
                Some(item) => item.1 = qty,
                None => order.items.push((sku, qty)),
            }
        }
        order
    }
}

/// One line of a supply schedule: `qty` of `sku` is available at `time`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupplyLine {
    pub time: Time,
    pub sku: String,
    pub qty: u32,
}

/// When a supplier will deliver what was ordered from it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SupplySchedule(pub Vec<SupplyLine>);

/// From a customer to its supplier: the positions in the customer's job
/// sequence where a job waits for its supply. The supplier moves the job at
/// each position one place earlier in its own sequence — which matches the
/// customer's, since the customer sorts its jobs by the supplier's finish
/// times.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JobsWithIdleTime(pub Vec<usize>);

/// One product to make, and its plan once the supply is known.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Job {
    pub order_sku: String,
    /// The part this product is made from.
    pub resource_sku: String,
    pub run_time: Time,
    pub quantity: u32,
    /// When the part arrives; `None` until the supplier has said.
    pub supply_time: Option<Time>,
    pub start_time: Option<Time>,
    /// Time the machine stands still before this job starts.
    pub idle_time: Option<Time>,
    pub finish_time: Option<Time>,
}

/// A machine: turns parts into products, one job at a time.
#[derive(Serialize, Deserialize)]
pub struct Machine {
    pub name: String,
    run_times: BTreeMap<String, Time>,
    /// Product SKU -> the SKU of the part it is made from.
    transformations: BTreeMap<String, String>,
    /// Who gets this machine's supply schedule (M2 for M1; M2 has none).
    pub customer: Option<AgentId>,
    /// Who supplies this machine's parts.
    pub supplier: Option<AgentId>,
    pub jobs: Vec<Job>,
    /// When the last job finishes, the figure the user watches; -1 until known.
    pub finish_time: Time,
}

impl Machine {
    pub fn new(name: &str, run_times: &[(&str, Time)], transformations: &[(&str, &str)]) -> Self {
        Machine {
            name: name.to_string(),
            run_times: run_times.iter().map(|&(sku, t)| (sku.to_string(), t)).collect(),
            transformations: transformations
                .iter()
                .map(|&(sku, part)| (sku.to_string(), part.to_string()))
                .collect(),
            customer: None,
            supplier: None,
            jobs: Vec::new(),
            finish_time: -1,
        }
    }

    /// New jobs for each item; then the parts are ordered. (A SKU the
    /// machine cannot make is a bug in the model: the agent panics, and the
    /// run stops with `Error::AgentPanicked` naming it.)
    fn process_order(&mut self, cx: &Cx, order: &Order) {
        for (sku, qty) in &order.items {
            let (Some(&run_time), Some(part)) =
                (self.run_times.get(sku), self.transformations.get(sku))
            else {
                panic!("{} cannot make {sku}", self.name);
            };
            self.jobs.push(Job {
                order_sku: sku.clone(),
                resource_sku: part.clone(),
                run_time,
                quantity: *qty,
                supply_time: None,
                start_time: None,
                idle_time: None,
                finish_time: None,
            });
        }
        if self.jobs.iter().any(|j| j.supply_time.is_none()) {
            self.shortest_run_time_first();
        }
        self.order_materials(cx);
    }

    /// Orders the part of every job, in job order.
    fn order_materials(&self, cx: &Cx) {
        let parts = Order::new(self.jobs.iter().map(|j| (j.resource_sku.clone(), j.quantity)));
        let supplier = self.supplier.expect("a machine needs a supplier before it gets orders");
        cx.send(Envelope::new(parts).to(supplier));
    }

    // Both sorts are stable sorts by a pair of keys. On equal pairs Python's
    // sort of tuples would go on to compare the jobs themselves (and fail);
    // here such jobs keep their order.
    fn shortest_run_time_first(&mut self) {
        self.jobs.sort_by(|a, b| (a.run_time, &a.order_sku).cmp(&(b.run_time, &b.order_sku)));
    }

    /// Earliest supply first. A job still waiting for its supply sorts
    /// first (Python would refuse to compare `None` with a number).
    fn by_supply_time(&mut self) {
        self.jobs.sort_by_key(|j| (j.supply_time, j.run_time));
    }

    fn take_supply_schedule(&mut self, cx: &Cx, schedule: &SupplySchedule) {
        for line in &schedule.0 {
            for job in self.jobs.iter_mut().filter(|j| j.resource_sku == line.sku) {
                job.supply_time = Some(line.time);
            }
        }
        self.by_supply_time();
        self.plan(cx);
    }

    /// Moves each job with idle time one place earlier, then replans.
    fn deal_with_idle_time(&mut self, cx: &Cx, idle: &JobsWithIdleTime) {
        for &index in &idle.0 {
            if index > 0 {
                self.jobs.swap(index - 1, index);
            }
        }
        self.plan(cx);
    }

    /// Plans the jobs back to back in their current order, each starting
    /// when both the machine and its part are ready; then tells the peers.
    /// Nothing to plan while a supply time is unknown.
    fn plan(&mut self, cx: &Cx) {
        if self.jobs.iter().any(|j| j.supply_time.is_none()) {
            return;
        }
        let mut machine_free: Option<Time> = None;
        for job in &mut self.jobs {
            let supply = job.supply_time.expect("checked above");
            let (start, idle) = match machine_free {
                None => (supply.max(0), supply.max(0)),
                Some(free) => (free.max(supply), free.max(supply) - free),
            };
            let finish = start + job.run_time;
            job.start_time = Some(start);
            job.idle_time = Some(idle);
            job.finish_time = Some(finish);
            machine_free = Some(finish);
        }
        self.communicate_to_peers(cx);
    }

    fn communicate_to_peers(&self, cx: &Cx) {
        let waiting: Vec<usize> =
            (0..self.jobs.len()).filter(|&i| self.jobs[i].idle_time != Some(0)).collect();
        // Idle time before the first job cannot be helped: only positions
        // after 0 are worth a message.
        if waiting.iter().sum::<usize>() > 0 {
            let mut env = Envelope::new(JobsWithIdleTime(waiting));
            if let Some(supplier) = self.supplier {
                env = env.to(supplier);
            } // else a broadcast, as a message to `None` is in maslite
            cx.send(env);
        }
        if let Some(customer) = self.customer {
            if !self.jobs.is_empty() {
                let lines = self.jobs.iter().map(|j| SupplyLine {
                    time: j.finish_time.expect("planned"),
                    sku: j.order_sku.clone(),
                    qty: j.quantity,
                });
                cx.send(Envelope::new(SupplySchedule(lines.collect())).to(customer));
            }
        }
    }

    fn update_finish_time(&mut self) {
        // As in the original, a finish time of 0 counts as "not known".
        if let Some(t) = self.jobs.last().and_then(|j| j.finish_time).filter(|&t| t != 0) {
            self.finish_time = t;
        }
    }
}

impl Agent for Machine {
    async fn update(&mut self, cx: &Cx) {
        while let Some(env) = cx.try_recv() {
            if let Ok(order) = env.payload::<Order>() {
                self.process_order(cx, order);
            } else if let Ok(schedule) = env.payload::<SupplySchedule>() {
                self.take_supply_schedule(cx, schedule);
            } else if let Ok(idle) = env.payload::<JobsWithIdleTime>() {
                self.deal_with_idle_time(cx, idle);
            } // anything else is ignored
        }
        self.update_finish_time();
    }
}

/// The stock agent: has every raw material now.
#[derive(Default, Serialize, Deserialize)]
pub struct StockAgent {
    pub customer: Option<AgentId>,
}

impl Agent for StockAgent {
    async fn update(&mut self, cx: &Cx) {
        while let Some(env) = cx.try_recv() {
            let Ok(order) = env.payload::<Order>() else {
                continue;
            };
            let lines = order.items.iter().map(|(sku, qty)| SupplyLine {
                time: 0,
                sku: sku.clone(),
                qty: *qty,
            });
            let mut reply = Envelope::new(SupplySchedule(lines.collect()));
            if let Some(customer) = self.customer {
                reply = reply.to(customer);
            }
            cx.send(reply);
        }
    }
}

/// The plant's types, for snapshots: its messages and its agents.
pub fn types() -> Types {
    let mut types = Types::new();
    types.register::<Order>().unwrap().register::<SupplySchedule>().unwrap();
    types.register::<JobsWithIdleTime>().unwrap();
    types.register_agent::<Machine>().unwrap().register_agent::<StockAgent>().unwrap();
    types
}

/// The plant of the thesis: stock -> M1 -> M2, and the customer's order for
/// A..G in M2's mail. Returns the scheduler, ready to run, and M2's id.
pub fn build() -> Result<(Scheduler, AgentId), Error> {
    let m1 = Machine::new(
        "M1",
        &[("M1A", 2), ("M1B", 5), ("M1C", 10), ("M1D", 8), ("M1E", 4), ("M1F", 12), ("M1G", 9)],
        &[
            ("M1A", "rawA"),
            ("M1B", "rawB"),
            ("M1C", "rawC"),
            ("M1D", "rawD"),
            ("M1E", "rawE"),
            ("M1F", "rawF"),
            ("M1G", "rawG"),
        ],
    );
    let m2 = Machine::new(
        "M2",
        &[("A", 14), ("B", 7), ("C", 3), ("D", 10), ("E", 5), ("F", 6), ("G", 6)],
        &[
            ("A", "M1A"),
            ("B", "M1B"),
            ("C", "M1C"),
            ("D", "M1D"),
            ("E", "M1E"),
            ("F", "M1F"),
            ("G", "M1G"),
        ],
    );

    let mut s = Scheduler::simulated();
    let m1 = s.add(m1)?;
    let m2 = s.add(m2)?;
    let stock = s.add(StockAgent::default())?;
    // Who supplies whom: ids exist once the agents are added, so the links
    // are set afterwards, on the agents the scheduler now holds.
    s.agent_mut::<StockAgent>(stock)?.customer = Some(m1);
    {
        let mut m1 = s.agent_mut::<Machine>(m1)?;
        m1.customer = Some(m2);
        m1.supplier = Some(stock);
    }
    s.agent_mut::<Machine>(m2)?.supplier = Some(m1);

    let order = Order::new(["A", "B", "C", "D", "E", "F", "G"].map(|sku| (sku, 1)));
    s.send(Envelope::new(order).to(m2));
    Ok((s, m2))
}

/// M2's jobs, by product, in the order it will make them.
pub fn m2_sequence(s: &Scheduler, m2: AgentId) -> Result<Vec<String>, Error> {
    Ok(s.agent::<Machine>(m2)?.jobs.iter().map(|j| j.order_sku.clone()).collect())
}

pub fn main() -> Result<(), Error> {
    // Show the kernel's warnings (a dead letter, say) on stderr.
    // Logs on stderr: warnings (a dead letter, say) by default; more with
    // RUST_LOG, e.g. `RUST_LOG=maslite_runtime=debug`.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_thread_names(true)
        .with_writer(std::io::stderr)
        .try_init();
    let (mut s, m2) = build()?;
    let report = s.run()?;
    println!(
        "{} messages; all agreed after {} rounds.",
        report.stats.messages, report.stats.rounds
    );
    {
        let m2 = s.agent::<Machine>(m2)?;
        println!("{} plan:  job  part  supply  start  idle  finish", m2.name);
        for j in &m2.jobs {
            let t = |t: Option<Time>| t.map_or("-".to_string(), |t| t.to_string());
            println!(
                "           {:>3}  {:>4}  {:>6}  {:>5}  {:>4}  {:>6}",
                j.order_sku,
                j.resource_sku,
                t(j.supply_time),
                t(j.start_time),
                t(j.idle_time),
                t(j.finish_time)
            );
        }
        println!("{} finishes at t={}", m2.name, m2.finish_time);
    }
    println!("M2 job sequence: {}", m2_sequence(&s, m2)?.join(" "));
    Ok(())
}
