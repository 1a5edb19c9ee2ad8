//! The runtime's tokio tasks, named for tokio-console when built with the
//! `console` feature and `--cfg tokio_unstable` (tokio's task builder needs
//! both); plain spawns otherwise.
//!
//! There are three kinds: each partition's main task,
//! `maslite-partition-N`, which runs the kernel, its agents and the routing
//! of its outbox (there is no separate router task); a service's task,
//! `maslite-service`, which runs [`Runtime::serve`](crate::Runtime::serve)'s
//! run on the application's runtime; and the application's tasks hosted on
//! partition N, `maslite-hosted-N` ([`Service::host`](crate::Service::host)).

use std::future::Future;
use tokio::runtime::{Handle, Runtime};
use tokio::task::{JoinHandle, LocalSet};

/// Runs partition `me`'s main future to its end on `local`, as the task
/// `maslite-partition-{me}`. A panic in it goes on unwinding here (the
/// partition's thread dies, as without the name).
#[track_caller]
pub(crate) fn run_partition<F>(local: &LocalSet, rt: &Runtime, me: usize, body: F)
where
    F: Future<Output = ()> + 'static,
{
    #[cfg(all(feature = "console", tokio_unstable))]
    {
        let name = format!("maslite-partition-{me}");
        let task = tokio::task::Builder::new()
            .name(&name)
            .spawn_local_on(body, local)
            .expect("tokio's task builder never fails to spawn");
        if let Err(e) = local.block_on(rt, task) {
            if e.is_panic() {
                std::panic::resume_unwind(e.into_panic());
            }
        }
    }
    #[cfg(not(all(feature = "console", tokio_unstable)))]
    {
        let _ = me;
        local.block_on(rt, body);
    }
}

/// Spawns a service's run on `handle`, as the task `maslite-service`.
#[track_caller]
pub(crate) fn spawn_service<F>(handle: &Handle, run: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    #[cfg(all(feature = "console", tokio_unstable))]
    {
        tokio::task::Builder::new()
            .name("maslite-service")
            .spawn_on(run, handle)
            .expect("tokio's task builder never fails to spawn")
    }
    #[cfg(not(all(feature = "console", tokio_unstable)))]
    {
        handle.spawn(run)
    }
}

/// Spawns a task hosted on partition `partition` (see
/// [`Service::host`](crate::Service::host)) on its `LocalSet`, as the task
/// `maslite-hosted-{partition}`. Called on the partition's thread.
#[track_caller]
pub(crate) fn spawn_hosted<F>(partition: usize, task: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    #[cfg(all(feature = "console", tokio_unstable))]
    {
        tokio::task::Builder::new()
            .name(&format!("maslite-hosted-{partition}"))
            .spawn_local(task)
            .expect("tokio's task builder never fails to spawn")
    }
    #[cfg(not(all(feature = "console", tokio_unstable)))]
    {
        let _ = partition;
        tokio::task::spawn_local(task)
    }
}
