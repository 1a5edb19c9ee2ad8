//! Host links through a real `nats-server`, started here on 127.0.0.1 with a
//! free port and killed at the end (`apt-get install -y nats-server`;
//! without it these tests are skipped, saying so: see `common.rs`).

use maslite_core::{AgentId, Envelope};
use maslite_nats::link::HostLink;
use maslite_nats::packet::{Arrival, PacketReader, PacketWriter};
use maslite_nats::{Codec, Error};
use maslite_runtime::transport::{Packet, Sent};
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

/// Publishes a packet's frames and flushes; returns how many.
async fn send(link: &HostLink, w: &mut PacketWriter, c: &Codec, to: u16, sent: Sent) -> usize {
    let mut frames = Vec::new();
    w.packet(c, sent, &mut frames).unwrap();
    let n = frames.len();
    for f in frames {
        link.publish(to, f).await.unwrap();
    }
    link.flush().await.unwrap();
    n
}

/// The next whole packet (its mail).
async fn recv(link: &mut HostLink, r: &mut PacketReader, c: &Codec) -> Vec<(AgentId, Envelope)> {
    loop {
        let frame = link.next_frame().await.unwrap();
        match r.read(c, &frame).unwrap() {
            Arrival::Partial => continue,
            Arrival::Packet { packet: Packet::Mail(m), .. } => return m,
            other => panic!("{other:?}"),
        }
    }
}

fn mail(envs: Vec<Envelope>) -> Sent {
    let m = envs.into_iter().map(|e| (e.receiver().unwrap_or(AgentId(7)), e)).collect();
    Sent { from: 0, to: 1, packet: Packet::Mail(m) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packets_cross_hosts_whole_in_order_and_split_under_max_payload() {
    let server = server_or_skip!(packets_cross_hosts_whole_in_order_and_split_under_max_payload);
    let c = codec();
    let mut a = server.link("t1", 0, 2).await;
    let mut b = server.link("t1", 1, 2).await;
    let (ra, rb) = tokio::join!(a.ready(Duration::from_secs(10)), b.ready(Duration::from_secs(10)));
    ra.unwrap();
    rb.unwrap();
    let max = a.max_payload();
    let (mut wa, mut wb) = (PacketWriter::new(0, 1, max), PacketWriter::new(1, 0, max));
    let (mut ra, mut rb) = (PacketReader::new(0, 2), PacketReader::new(1, 2));
    // Three packets: small, over the server's limit (split), empty.
    let small: Vec<Envelope> = (0..1000u64).map(|i| Envelope::new(i).to(AgentId(i))).collect();
    assert_eq!(send(&a, &mut wa, &c, 1, mail(small)).await, 1);
    let big: Vec<Envelope> = (0..5u8).map(|i| Envelope::new(Blob(vec![i; max / 3]))).collect();
    let n = send(&a, &mut wa, &c, 1, mail(big)).await;
    assert!(n >= 2, "{n} frames for {} bytes over a {max}-byte limit", 5 * (max / 3));
    send(&a, &mut wa, &c, 1, mail(Vec::new())).await;
    let got = recv(&mut b, &mut rb, &c).await;
    assert_eq!(got.len(), 1000);
    for (i, (r, env)) in got.iter().enumerate() {
        assert_eq!((*r, *env.payload::<u64>().unwrap()), (AgentId(i as u64), i as u64));
    }
    let got = recv(&mut b, &mut rb, &c).await;
    assert_eq!(got.len(), 5);
    for (i, (_, env)) in got.iter().enumerate() {
        assert_eq!(env.payload::<Blob>().unwrap().0, vec![i as u8; max / 3]);
    }
    assert!(recv(&mut b, &mut rb, &c).await.is_empty());
    // And back the other way.
    let back = Sent { from: 1, to: 0, ..mail(vec![Envelope::new(99u64).to(AgentId(1))]) };
    send(&b, &mut wb, &c, 0, back).await;
    let got = recv(&mut a, &mut ra, &c).await;
    assert_eq!(*got[0].1.payload::<u64>().unwrap(), 99);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_frame_is_a_gap_naming_the_link() {
    let server = server_or_skip!(a_lost_frame_is_a_gap_naming_the_link);
    let c = codec();
    let a = server.link("t3", 0, 2).await;
    let mut b = server.link("t3", 1, 2).await;
    a.ready(Duration::from_secs(10)).await.unwrap();
    // Frames 0 and 2 of link 0 -> 1 arrive; 1 never does.
    let mut w = PacketWriter::new(0, 1, a.max_payload());
    let mut frames = Vec::new();
    for _ in 0..3 {
        w.packet(&c, mail(vec![Envelope::new(5u64).to(AgentId(1))]), &mut frames).unwrap();
    }
    a.publish(1, frames[0].clone()).await.unwrap();
    a.publish(1, frames[2].clone()).await.unwrap();
    a.flush().await.unwrap();
    let mut r = PacketReader::new(1, 2);
    assert_eq!(recv(&mut b, &mut r, &c).await.len(), 1);
    let frame = b.next_frame().await.unwrap();
    let err = r.read(&c, &frame).unwrap_err();
    assert!(matches!(err, Error::Gap { from: 0, to: 1, expected: 1, got: 2 }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_never_comes_is_named_by_the_handshake() {
    let server = server_or_skip!(a_host_that_never_comes_is_named_by_the_handshake);
    let a = server.link("t4", 0, 3).await;
    let _b = server.link("t4", 1, 3).await;
    let err = a.ready(Duration::from_millis(500)).await.unwrap_err();
    match err {
        Error::NotReady { missing, .. } => assert_eq!(missing, [2]),
        e => panic!("{e}"),
    }
}
