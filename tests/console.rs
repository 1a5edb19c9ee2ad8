//! tokio-console sees the runtime's tasks by name: the console example's
//! market is served with the console's server on a free port, and a real
//! console client (console-api's gRPC `InstrumentClient`, as tokio-console
//! uses) watches its updates until the tasks `maslite-partition-0`,
//! `maslite-partition-1` and `maslite-service` have appeared.
//!
//! Needs the feature `console` and tokio's unstable instrumentation
//! (`.ci/run` runs it so):
//! `RUSTFLAGS="--cfg tokio_unstable" CARGO_TARGET_DIR=target/console cargo test --features console --test console`.

#![cfg(all(feature = "console", tokio_unstable))]

#[path = "../examples/console.rs"]
#[allow(dead_code)] // its `main` is not run here
mod console_example;

use console_api::field::Name;
use console_api::instrument::instrument_client::InstrumentClient;
use console_api::instrument::InstrumentRequest;
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The runtime's tasks, as named for the console.
const TASKS: [&str; 3] = ["maslite-partition-0", "maslite-partition-1", "maslite-service"];

/// Watches the console's updates at `addr` until every task in `missing`
/// has appeared (by its `task.name` field), taking each out as it does.
async fn watch_for(addr: SocketAddr, missing: &mut BTreeSet<&str>) -> Result<(), BoxError> {
    let url = format!("http://{addr}");
    // The server starts listening on a thread of its own, soon after
    // `init`: until then, connecting is refused. (The caller's timeout
    // bounds the whole watch.)
    let mut client = loop {
        match InstrumentClient::connect(url.clone()).await {
            Ok(client) => break client,
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    let mut updates = client.watch_updates(InstrumentRequest {}).await?.into_inner();
    // Field names sent by index refer to the metadata sent before them.
    let mut field_names: HashMap<u64, Vec<String>> = HashMap::new();
    while !missing.is_empty() {
        let update = updates.message().await?.ok_or("the console's update stream ended")?;
        for new in update.new_metadata.into_iter().flat_map(|m| m.metadata) {
            if let (Some(id), Some(meta)) = (new.id, new.metadata) {
                field_names.insert(id.id, meta.field_names);
            }
        }
        for task in update.task_update.into_iter().flat_map(|u| u.new_tasks) {
            for field in &task.fields {
                let name = match &field.name {
                    Some(Name::StrName(name)) => Some(name.as_str()),
                    Some(Name::NameIdx(i)) => field
                        .metadata_id
                        .and_then(|m| field_names.get(&m.id))
                        .and_then(|names| names.get(*i as usize))
                        .map(String::as_str),
                    None => None,
                };
                if let (Some("task.name"), Some(value)) = (name, &field.value) {
                    missing.remove(value.to_string().as_str());
                }
            }
        }
    }
    Ok(())
}

#[test]
fn tokio_console_sees_the_partitions_and_the_service_by_name() {
    // A free port: bound by the OS, released for the console's server.
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    // Before any runtime is built, so every task is seen.
    maslite::runtime::console::init(addr).unwrap();
    let app =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    app.block_on(async {
        let (seen, seen_rx) = tokio::sync::oneshot::channel::<()>();
        let market = tokio::spawn(console_example::market(
            async move {
                let _ = seen_rx.await;
            },
            Duration::from_secs(3600),
        ));
        let mut missing: BTreeSet<&str> = TASKS.into_iter().collect();
        let watched = tokio::time::timeout(Duration::from_secs(60), watch_for(addr, &mut missing));
        match watched.await {
            Ok(answered) => answered.expect("the console's server answers"),
            Err(_) => panic!("after 60 s, the console has not shown {missing:?}"),
        }
        seen.send(()).unwrap();
        let summary = market.await.unwrap().unwrap();
        // The market itself worked while watched: every order sent was
        // filled (the stop is graceful), and quotes crossed partitions.
        assert!(summary.orders > 0);
        assert_eq!(summary.fills, summary.orders);
        assert!(summary.report.traffic[0][1] > 0);
    });
}
