//! Partitions spread over hosts, the hosts being runtimes of one process
//! (`InProcess`), each on a thread of its own and running the same program:
//! the same results as on one process (phold, conveyor), the placement
//! errors, a host that goes away or fails mid-run, and messages from
//! outside. Every host runs under a watchdog: a hang fails the test.

use crate::{conveyor, phold};

use maslite::prelude::{Agent, AgentId, Alarm, Cx, Envelope, Runtime, Subscription};
use maslite::runtime::transport::{InProcess, Placement, Transport};
use maslite::runtime::{Error, StopReason};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// How long a host may take before the test calls it hung.
const WATCHDOG: Duration = Duration::from_secs(20);

/// Runs `program` once per host of the placement `host_of`, each on a
/// thread of its own, and returns what each returned, in host order. A
/// host that panics fails the test at once; one that does not finish in
/// time fails it after [`WATCHDOG`].
fn on_hosts<T: Send + 'static>(
    host_of: Vec<u16>,
    program: impl Fn(InProcess) -> T + Send + Sync + 'static,
) -> Vec<T> {
    let program = Arc::new(program);
    let (tx, rx) = mpsc::channel();
    let hosts = InProcess::hosts(host_of).unwrap();
    let n = hosts.len();
    for (h, host) in hosts.into_iter().enumerate() {
        let (tx, program) = (tx.clone(), program.clone());
        std::thread::spawn(move || {
            let out = catch_unwind(AssertUnwindSafe(|| program(host)));
            let _ = tx.send((h, out));
        });
    }
    let mut out: Vec<Option<T>> = (0..n).map(|_| None).collect();
    for _ in 0..n {
        let (h, result) = rx.recv_timeout(WATCHDOG).unwrap_or_else(|_| {
            let done: Vec<usize> = (0..n).filter(|&h| out[h].is_some()).collect();
            panic!("a host hung (hosts done: {done:?})")
        });
        out[h] = Some(result.unwrap_or_else(|panic| resume_unwind(panic)));
    }
    out.into_iter().map(Option::unwrap).collect()
}

/// This host's runtime, with as many partitions as its placement.
fn runtime_on(host: InProcess) -> Runtime {
    let partitions = host.placement().partitions();
    Runtime::builder().partitions(partitions).transport(host).build().unwrap()
}

/// What a node got: (time, payload).
type Log = Vec<(f64, u32)>;

/// Logs what it gets (time, payload); with a peer, answers each message
/// with an alarm for the peer 1 s later; a bomb panics on its first one.
struct Node {
    peer: Option<AgentId>,
    bomb: bool,
    log: Log,
}

fn node(peer: Option<u64>, bomb: bool) -> Node {
    Node { peer: peer.map(AgentId), bomb, log: Vec::new() }
}

impl Agent for Node {
    async fn update(&mut self, cx: &Cx) {
        while let Some(env) = cx.try_recv() {
            let n = env.payload::<u32>().map_or(0, |n| *n);
            self.log.push((cx.now(), n));
            assert!(!self.bomb, "boom on message {n}");
            if let Some(peer) = self.peer {
                cx.set_alarm(Alarm::after(1.0, Envelope::new(n + 1).to(peer))).unwrap();
            }
        }
    }
}

// --- The same results as on one process ---

fn small(partitions: usize, window: Option<f64>) -> phold::Params {
    phold::Params {
        agents: 96,
        events: 3,
        remote: 0.5,
        lookahead: 0.1,
        mean: 1.0,
        end: 15.0,
        partitions,
        seed: 7,
        window,
        ..phold::Params::default()
    }
}

#[test]
fn hosts_save_their_shares_and_the_run_resumes_in_one_process_or_on_three_hosts() {
    use maslite::prelude::RunOptions;
    let base = phold::run(&small(1, None)).unwrap();
    let types = phold::types();
    let keep = || RunOptions::new().clear_alarms_at_end(false);
    // Two hosts run to t = 6, and each saves its share.
    let params = small(2, None);
    let shares = on_hosts(vec![0, 1], move |host| {
        let mut rt = phold::build(&params, Some(Box::new(host))).unwrap();
        rt.run_with(keep().until(6.0)).unwrap();
        rt.image(&phold::types()).unwrap()
    });
    assert!(shares.iter().all(|s| s.agents().count() == 48), "each host saved its half");
    // A share twice is refused.
    let twice = maslite::Image::combine(vec![shares[0].clone(), shares[0].clone()]);
    assert!(twice.unwrap_err().to_string().contains("two shares hold agent"));
    let whole = Arc::new(maslite::Image::combine(shares).unwrap());
    assert_eq!(whole.agents().count(), 96);

    // In one process, on one partition.
    let one = small(1, None);
    let builder = Runtime::builder().partitions(1).lookahead(0.1);
    let mut rt = Runtime::from_image(builder, &types, whole.clone(), |_| 0).unwrap();
    rt.run_with(keep().until(one.end)).unwrap();
    assert_eq!(phold::totals(&mut rt, &one).unwrap(), (base.events, base.hash));

    // On three hosts, the agents placed as phold places them there.
    let three = small(3, None);
    let outcomes = on_hosts(vec![0, 1, 2], move |host| {
        let layout = three.layout();
        let builder = Runtime::builder().partitions(3).lookahead(0.1).transport(host);
        let place = |id: AgentId| layout[id.0 as usize];
        let mut rt = Runtime::from_image(builder, &phold::types(), whole.clone(), place).unwrap();
        rt.run_with(keep().until(three.end)).unwrap();
        phold::totals(&mut rt, &three).unwrap()
    });
    let events: u64 = outcomes.iter().map(|o| o.0).sum();
    let hash = outcomes.iter().fold(0u64, |h, o| h.wrapping_add(o.1));
    assert_eq!((events, hash), (base.events, base.hash));
}

#[test]
fn phold_on_hosts_gives_the_one_process_events_and_hash() {
    let base = phold::run(&small(1, None)).unwrap();
    assert!(base.events > 96 * 3 * 10, "{} events", base.events);
    let cases = [(vec![0, 1], None), (vec![0, 0, 1, 1], None), (vec![0, 1, 2], None)];
    for (host_of, window) in cases.into_iter().chain([(vec![0, 1], Some(0.0))]) {
        let params = small(host_of.len(), window);
        let outcomes = on_hosts(host_of.clone(), move |host| {
            phold::run_hosted(&params, Some(Box::new(host)), |_| {}).unwrap()
        });
        let case = format!("placement {host_of:?}, window {window:?}");
        let events: u64 = outcomes.iter().map(|o| o.events).sum();
        let hash = outcomes.iter().fold(0u64, |h, o| h.wrapping_add(o.hash));
        assert_eq!((events, hash), (base.events, base.hash), "{case}");
        let placement = Placement::new(host_of.clone(), 0).unwrap();
        for (h, o) in outcomes.iter().enumerate() {
            // Each host reports its own partitions only, and its agents
            // processed events and sent some to other hosts.
            let mine: Vec<usize> = o.report.partitions.iter().map(|p| p.partition).collect();
            let expected: Vec<usize> = placement.partitions_of(h as u16).collect();
            assert_eq!(mine, expected, "{case}, host {h}");
            assert!(o.events > 0 && o.events < base.events, "{case}, host {h}");
            assert!(o.report.cross_partition() > 0, "{case}, host {h}");
            // The traffic matrix is partitions × partitions, with rows only
            // for this host's partitions.
            let n = placement.partitions();
            assert_eq!(o.report.traffic.len(), n, "{case}");
            for (p, row) in o.report.traffic.iter().enumerate() {
                assert_eq!(row.len(), n);
                let sent: u64 = row.iter().sum();
                assert_eq!(sent > 0, expected.contains(&p), "{case}, host {h}, row {p}");
            }
            assert_eq!((o.report.reason, o.report.end_time), (StopReason::TimeLimit, 15.0));
        }
    }
}

#[test]
fn conveyor_on_two_hosts_tells_the_one_process_story() {
    let mut one = conveyor::build(2).unwrap();
    let report = one.run().unwrap();
    assert_eq!((report.reason, report.end_time), (StopReason::Idle, 4.75));
    let whole = conveyor::local_logs(&mut one).unwrap();
    assert_eq!(whole.len(), 4);
    let hosts = on_hosts(vec![0, 1], |host| {
        let mut rt = conveyor::build_on(2, Some(Box::new(host))).unwrap();
        let report = rt.run().unwrap();
        (report, conveyor::local_logs(&mut rt).unwrap())
    });
    let ids: Vec<Vec<u64>> =
        hosts.iter().map(|(_, l)| l.iter().map(|(i, _)| *i).collect()).collect();
    assert_eq!(ids, [vec![1, 2], vec![3, 4]]);
    let traces: Vec<u64> = hosts.iter().map(|(_, logs)| conveyor::trace_hash(logs)).collect();
    assert_eq!(traces[0].wrapping_add(traces[1]), conveyor::trace_hash(&whole));
    let joined: Vec<_> = hosts.iter().flat_map(|(_, logs)| logs.clone()).collect();
    assert_eq!(joined, whole);
    for (report, _) in &hosts {
        assert_eq!((report.reason, report.end_time), (StopReason::Idle, 4.75));
    }
    // Notify and transfer go from host 0 to host 1, accept back.
    let crossed: Vec<u64> = hosts.iter().map(|(r, _)| r.cross_partition()).collect();
    assert_eq!(crossed, [2, 1]);
}

// --- Errors ---

/// The message of an `Error::Config`, or a panic.
fn config_error<T>(result: Result<T, Error>) -> String {
    match result {
        Err(Error::Config(message)) => message,
        Err(e) => panic!("not a configuration error: {e}"),
        Ok(_) => panic!("accepted"),
    }
}

#[test]
fn bad_placements_and_remote_partitions_are_refused() {
    config_error(Placement::new(vec![0, 0], 1));
    config_error(Placement::blocks(1, 2, 0));
    let mut hosts = InProcess::hosts(vec![0, 1]).unwrap().into_iter();
    let three = Runtime::builder().partitions(3).transport(hosts.next().unwrap()).build();
    assert!(config_error(three).contains("placement has 2 partitions"));
    let real_time = Runtime::builder().partitions(2).real_time().transport(hosts.next().unwrap());
    assert!(config_error(real_time.build()).contains("simulated clock only"));

    let host0 = InProcess::hosts(vec![0, 1]).unwrap().remove(0);
    let mut rt = runtime_on(host0);
    rt.add_with_id(0, AgentId(1), node(None, false)).unwrap();
    rt.add_with_id(1, AgentId(2), node(None, false)).unwrap();
    assert!(rt.is_local(0) && !rt.is_local(1));
    assert_eq!(rt.partition_of(AgentId(2)), Some(1));
    let not_local = Some(Error::NotLocal { partition: 1, host: 1 });
    assert_eq!(rt.with_partition(1, |s| s.agent_ids()).err(), not_local);
    assert_eq!(rt.with_agent(AgentId(2), |n: &Node| n.log.len()).err(), not_local);
    // An endpoint elsewhere claims its id here, as every host must, and
    // its stream here is empty and closed.
    let mut far = rt.endpoint(1, AgentId(9)).unwrap();
    assert!(far.recv_blocking().is_none());
    assert_eq!(rt.partition_of(AgentId(9)), Some(1));
    // Here, all is well.
    assert_eq!(rt.with_partition(0, |s| s.agent_ids()).unwrap(), [AgentId(1)]);
    assert_eq!(rt.with_agent(AgentId(1), |n: &Node| n.log.len()).unwrap(), 0);
}

// --- Hosts that go away or fail ---

/// Two nodes ping-ponging through alarms forever, across hosts.
fn ping_pong(rt: &mut Runtime) {
    rt.add_with_id(0, AgentId(1), node(Some(2), false)).unwrap();
    rt.add_with_id(1, AgentId(2), node(Some(1), false)).unwrap();
    rt.send(Envelope::new(0u32).to(AgentId(1)));
}

fn left(e: &Error) -> bool {
    matches!(e, Error::Transport { message } if message.contains("left"))
}

#[test]
fn a_host_that_cancels_and_leaves_mid_run_does_not_hang_the_other() {
    let results = on_hosts(vec![0, 1], |host| {
        let me = host.placement().me();
        let mut rt = runtime_on(host);
        ping_pong(&mut rt);
        if me == 1 {
            let token = rt.cancel_token();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                token.cancel();
            });
        }
        let first = rt.run();
        // Host 1 is gone now; host 0 tries once more.
        let second = (me == 0).then(|| rt.run());
        (first, second)
    });
    let (first, _) = &results[1];
    let cancelled = first.as_ref().map(|r| (r.reason, r.end_time));
    assert_eq!(cancelled.map(|c| c.0), Ok(StopReason::Cancelled));
    let (first, second) = &results[0];
    match first {
        Ok(report) => {
            // The cancel reached host 0 too, on the same clock.
            assert_eq!(Ok((report.reason, report.end_time)), cancelled);
            let second = second.as_ref().expect("host 0 ran twice");
            assert!(second.as_ref().is_err_and(left), "{second:?}");
        }
        Err(e) => assert!(left(e), "{e}"),
    }
}

#[test]
fn a_host_that_leaves_before_its_run_fails_the_others_run() {
    let results = on_hosts(vec![0, 1], |host| {
        let me = host.placement().me();
        let mut rt = runtime_on(host);
        ping_pong(&mut rt);
        (me == 0).then(|| rt.run().map(|r| r.reason))
    });
    let run = results[0].as_ref().unwrap();
    assert!(matches!(run, Err(Error::Transport { message }) if message.contains("host 1 left")));
}

#[test]
fn a_host_whose_build_fails_does_not_hang_the_others_run() {
    let results = on_hosts(vec![0, 1], |host| {
        let me = host.placement().me();
        if me == 1 {
            // The wrong partition count: its transport never starts.
            let built = Runtime::builder().partitions(3).transport(host).build();
            return built.err().map(Err);
        }
        let mut rt = runtime_on(host);
        ping_pong(&mut rt);
        Some(rt.run().map(|r| r.reason))
    });
    let (host0, host1) = (results[0].as_ref().unwrap(), results[1].as_ref().unwrap());
    assert!(matches!(host1, Err(Error::Config(_))), "{host1:?}");
    assert!(
        matches!(host0, Err(Error::Transport { message }) if message.contains("host 1 left")),
        "{host0:?}"
    );
}

#[test]
fn bad_alarms_and_subscriptions_get_the_same_answer_on_every_host() {
    let results = on_hosts(vec![0, 1], |host| {
        let mut rt = runtime_on(host);
        rt.add_with_id(0, AgentId(1), node(None, false)).unwrap();
        rt.add_with_id(1, AgentId(2), node(None, false)).unwrap();
        let past = Alarm::at(-1.0, Envelope::new(1u32).to(AgentId(2)));
        let everything = Subscription::new();
        (rt.set_alarm(past).err(), rt.subscribe(AgentId(2), everything).err())
    });
    assert_eq!(results[0], results[1]);
    let (alarm, subscription) = &results[0];
    assert!(matches!(alarm, Some(Error::AlarmInPast { .. })), "{alarm:?}");
    assert!(matches!(subscription, Some(Error::InvalidSubscription { .. })), "{subscription:?}");
}

#[test]
fn hosts_running_different_programs_fail_at_once_saying_so() {
    let results = on_hosts(vec![0, 1], |host| {
        let me = host.placement().me();
        let mut rt = runtime_on(host);
        ping_pong(&mut rt);
        // Host 1 asks for another end time: its steps would differ.
        let end = if me == 0 { 10.0 } else { 20.0 };
        rt.run_with(maslite::prelude::RunOptions::new().seconds(end)).map(|r| r.reason)
    });
    for (h, r) in results.iter().enumerate() {
        let said = |m: &str| m.contains("another run") && m.contains("same program");
        assert!(matches!(r, Err(Error::Config(m)) if said(m)), "host {h}: {r:?}");
    }
}

#[test]
fn an_agent_panicking_on_one_host_fails_the_run_on_both() {
    let results = on_hosts(vec![0, 1], |host| {
        let mut rt = runtime_on(host);
        rt.add_with_id(0, AgentId(1), node(Some(2), false)).unwrap();
        rt.add_with_id(1, AgentId(2), node(None, true)).unwrap();
        rt.send(Envelope::new(0u32).to(AgentId(1)));
        rt.run().map(|r| r.reason)
    });
    let (host0, host1) = (&results[0], &results[1]);
    let agent = AgentId(2);
    let panicked = |e: &Error| matches!(e, Error::AgentPanicked { agent: a, .. } if *a == agent);
    assert!(matches!(host1, Err(e) if panicked(e)), "host 1: {host1:?}");
    let failed = |m: &str| m.contains("on another host, failed");
    assert!(
        matches!(host0, Err(Error::Transport { message }) if failed(message)),
        "host 0: {host0:?}"
    );
}

// --- Messages from outside ---

/// Nodes 1 (partition 0) and 2 (partition 1) hear "news"; node 2 gets a
/// message and an alarm from outside: what the local nodes got, by id,
/// and the messages delivered here.
fn outside_mail(mut rt: Runtime) -> (Vec<(u64, Log)>, u64) {
    for (p, id) in [(0, 1), (1, 2)] {
        rt.add_with_id(p, AgentId(id), node(None, false)).unwrap();
        rt.subscribe(AgentId(id), Subscription::new().topic("news")).unwrap();
    }
    rt.send(Envelope::new(1u32).to(AgentId(2)));
    rt.send(Envelope::new(2u32).topic_is("news"));
    rt.set_alarm(Alarm::at(1.0, Envelope::new(3u32).to(AgentId(2)))).unwrap();
    let report = rt.run().unwrap();
    assert_eq!((report.reason, report.end_time), (StopReason::Idle, 1.0));
    let mut logs = Vec::new();
    for id in [1, 2] {
        if rt.is_local(rt.partition_of(AgentId(id)).unwrap()) {
            logs.push((id, rt.with_agent(AgentId(id), |n: &Node| n.log.clone()).unwrap()));
        }
    }
    (logs, report.delivered())
}

#[test]
fn messages_from_outside_are_delivered_once_across_hosts() {
    let (whole, delivered) = outside_mail(Runtime::new(2).unwrap());
    let expected = vec![(1, vec![(0.0, 2)]), (2, vec![(0.0, 1), (0.0, 2), (1.0, 3)])];
    assert_eq!((whole.clone(), delivered), (expected, 4));
    let hosts = on_hosts(vec![0, 1], |host| outside_mail(runtime_on(host)));
    assert_eq!(hosts[0].0, whole[..1]);
    assert_eq!(hosts[1].0, whole[1..]);
    assert_eq!((hosts[0].1, hosts[1].1), (1, 3));
}

/// On its first message, adds node 50 to its own partition.
struct Maker;

impl Agent for Maker {
    async fn update(&mut self, cx: &Cx) {
        while cx.try_recv().is_some() {
            cx.add_with_id(AgentId(50), node(None, false)).unwrap();
        }
    }
}

/// Fails on the runtime as it is: a host's handle learns only of the agents
/// its own partitions added or removed during a run (`Runtime::run_async`
/// updates `dir` from the local outcomes' `joined`). Host 0 does not know
/// node 50, so it posts the message itself (on partition 0, the default),
/// and host 1, which knows it, posts it too: node 50 gets it twice. (On
/// one process it gets it once.)
#[test]
fn mail_from_outside_to_an_agent_added_at_run_time_on_another_host_comes_once() {
    let hosts = on_hosts(vec![0, 1], |host| {
        let mut rt = runtime_on(host);
        rt.add_with_id(0, AgentId(1), node(None, false)).unwrap();
        rt.add_with_id(1, AgentId(2), Maker).unwrap();
        rt.send(Envelope::new(0u32).to(AgentId(2)));
        rt.run().unwrap();
        let at = rt.partition_of(AgentId(50));
        rt.send(Envelope::new(7u32).to(AgentId(50)));
        rt.run().unwrap();
        let log = rt.is_local(1).then(|| rt.with_agent(AgentId(50), |n: &Node| n.log.clone()));
        (at, log.map(Result::unwrap))
    });
    assert_eq!(hosts[1], (Some(1), Some(vec![(0.0, 7)])), "host 1");
    assert_eq!(hosts[0], (Some(1), None), "host 0");
}

// --- Children placed across hosts ---

/// An agent on partition 0 (host 0) places a child on partition 1 (host 1)
/// with `cx.spawn_on`: a body cannot cross hosts, so host 0's run fails
/// saying so, and host 1 hears that host 0 failed; on partitions of one
/// host the same child is fine (host 0 holds partitions 0 and 2).
#[test]
fn a_child_placed_on_another_host_fails_the_run_saying_why() {
    let results = on_hosts(vec![0, 1, 0], |host| {
        let mut rt = runtime_on(host);
        let boss = rt
            .spawn(0, |cx| async move {
                loop {
                    let env = cx.recv().await;
                    let to = *env.payload::<u32>().unwrap() as usize;
                    cx.spawn_on(to, |cx| async move {
                        cx.recv().await;
                    })
                    .unwrap();
                }
            })
            .unwrap();
        rt.send(Envelope::new(2u32).to(boss));
        let same_host = rt.run().map(|r| r.reason);
        rt.send(Envelope::new(1u32).to(boss));
        let other_host = rt.run().map(|r| r.reason);
        (same_host, other_host)
    });
    for (h, (same_host, _)) in results.iter().enumerate() {
        assert_eq!(same_host, &Ok(StopReason::Idle), "host {h}");
    }
    let crossed = |m: &str| m.contains("cannot cross hosts");
    assert!(
        matches!(&results[0].1, Err(Error::Transport { message }) if crossed(message)),
        "host 0: {:?}",
        results[0].1
    );
    assert!(results[1].1.is_err(), "host 1: {:?}", results[1].1);
}

#[test]
fn each_hosts_progress_shows_the_real_clock() {
    // Before: the other host's partitions, never published here, held
    // the clock at 0 ("sim 0.0/…, ratio 0x").
    let samples = on_hosts(vec![0, 1], |host| {
        let mut rt = runtime_on(host);
        ping_pong(&mut rt);
        let mut progress = rt.progress(Duration::from_millis(1));
        let reader = std::thread::spawn(move || {
            std::iter::from_fn(|| progress.next_blocking()).map(|s| s.now).collect::<Vec<_>>()
        });
        rt.run_with(maslite::RunOptions::new().seconds(2000.0)).unwrap();
        drop(rt); // the stream ends with the runtime
        reader.join().unwrap()
    });
    for (h, clocks) in samples.iter().enumerate() {
        let last = clocks.iter().copied().fold(0.0, f64::max);
        assert!(last > 0.0, "host {h}'s progress: {clocks:?}");
    }
}
