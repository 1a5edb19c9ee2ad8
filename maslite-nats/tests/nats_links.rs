//! Host links through a real `nats-server`, started here on 127.0.0.1 with a
//! free port and killed at the end (`.ci/run` installs it:
//! `apt-get install -y nats-server`).

mod common;
use common::Server;

use maslite_core::{AgentId, Envelope};
use maslite_nats::frame::Framer;
use maslite_nats::{Codec, Error};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Blob(Vec<u8>);

fn codec() -> Codec {
    let mut c = Codec::new();
    c.register::<Blob>().unwrap();
    c.register::<u64>().unwrap();
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_cross_hosts_whole_in_order_and_split_under_max_payload() {
    let server = Server::start();
    let c = codec();
    let mut a = server.link("t1", 0, 2).await;
    let mut b = server.link("t1", 1, 2).await;
    let (ra, rb) = tokio::join!(a.ready(Duration::from_secs(10)), b.ready(Duration::from_secs(10)));
    ra.unwrap();
    rb.unwrap();
    let max = a.max_payload();
    // Three batches: small, over the server's limit (split), empty.
    let small: Vec<Envelope> = (0..1000u64).map(|i| Envelope::new(i).to(AgentId(i))).collect();
    let big: Vec<Envelope> =
        (0..5u8).map(|i| Envelope::new(Blob(vec![i; max / 3])).to(AgentId(7))).collect();
    let n = a.send_batch(&c, 1, small.iter().map(|e| (e.receiver().unwrap(), e))).await.unwrap();
    assert_eq!(n, 1);
    let n = a.send_batch(&c, 1, big.iter().map(|e| (AgentId(7), e))).await.unwrap();
    assert!(n >= 2, "{n} frames for {} bytes over a {max}-byte limit", 5 * (max / 3));
    a.send_batch(&c, 1, std::iter::empty()).await.unwrap();
    let mut got = Vec::new();
    assert_eq!(b.recv_batch(&c, &mut got).await.unwrap(), 0);
    assert_eq!(got.len(), 1000);
    for (i, (r, env)) in got.iter().enumerate() {
        assert_eq!((*r, *env.payload::<u64>().unwrap()), (AgentId(i as u64), i as u64));
    }
    got.clear();
    b.recv_batch(&c, &mut got).await.unwrap();
    assert_eq!(got.len(), 5);
    for (i, (_, env)) in got.iter().enumerate() {
        assert_eq!(env.payload::<Blob>().unwrap().0, vec![i as u8; max / 3]);
    }
    got.clear();
    b.recv_batch(&c, &mut got).await.unwrap();
    assert!(got.is_empty());
    // And back the other way.
    let back = Envelope::new(99u64).to(AgentId(1));
    b.send_batch(&c, 0, [(AgentId(1), &back)]).await.unwrap();
    assert_eq!(a.recv_batch(&c, &mut got).await.unwrap(), 1);
    assert_eq!(*got[0].1.payload::<u64>().unwrap(), 99);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payload_over_the_limit_and_an_unregistered_type_are_refused_before_sending() {
    let server = Server::start();
    let c = codec();
    let mut a = server.link("t2", 0, 2).await;
    let mut b = server.link("t2", 1, 2).await;
    let huge = Envelope::new(Blob(vec![0; a.max_payload() + 1])).to(AgentId(1));
    let err = a.send_batch(&c, 1, [(AgentId(1), &huge)]).await.unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    let odd = Envelope::new("text").to(AgentId(1));
    let err = a.send_batch(&c, 1, [(AgentId(1), &odd)]).await.unwrap_err();
    assert!(matches!(err, Error::Unregistered { type_name: "&str" }), "{err}");
    // Nothing was sent: the next batch is the first the other host sees.
    a.ready(Duration::from_secs(10)).await.unwrap();
    let ok = Envelope::new(1u64).to(AgentId(1));
    a.send_batch(&c, 1, [(AgentId(1), &ok)]).await.unwrap();
    let mut got = Vec::new();
    b.recv_batch(&c, &mut got).await.unwrap();
    assert_eq!(got.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_frame_is_a_gap_naming_the_link() {
    let server = Server::start();
    let c = codec();
    let a = server.link("t3", 0, 2).await;
    let mut b = server.link("t3", 1, 2).await;
    a.ready(Duration::from_secs(10)).await.unwrap();
    // Frames 0 and 2 of link 0 -> 1 arrive; 1 never does.
    let mut framer = Framer::new(0, 1, a.max_payload());
    let env = Envelope::new(5u64).to(AgentId(1));
    let f0 = framer.frames(&c, [(AgentId(1), &env)]).unwrap();
    let _f1 = framer.frames(&c, [(AgentId(1), &env)]).unwrap();
    let f2 = framer.frames(&c, [(AgentId(1), &env)]).unwrap();
    a.publish_raw(1, f0[0].clone()).await.unwrap();
    a.publish_raw(1, f2[0].clone()).await.unwrap();
    let mut got = Vec::new();
    b.recv_batch(&c, &mut got).await.unwrap();
    let err = b.recv_batch(&c, &mut got).await.unwrap_err();
    assert!(matches!(err, Error::Gap { from: 0, to: 1, expected: 1, got: 2 }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_never_comes_is_named_by_the_handshake() {
    let server = Server::start();
    let a = server.link("t4", 0, 3).await;
    let _b = server.link("t4", 1, 3).await;
    let err = a.ready(Duration::from_millis(500)).await.unwrap_err();
    match err {
        Error::NotReady { missing, .. } => assert_eq!(missing, [2]),
        e => panic!("{e}"),
    }
}
