//! Messages' blocks are recycled per thread (`letters.rs`): whatever the
//! payload's size and alignment, a message reads back what was put in it,
//! across clones, downcasts, panics, threads and thread-local destructors.
//! (From the review of the change; memcheck ran clean on each.)

use maslite_core::{AgentId, Envelope};
use std::cell::RefCell;

#[derive(Clone, Debug, PartialEq)]
#[repr(align(16))]
struct A16(u64);
#[derive(Clone, Debug, PartialEq)]
#[repr(align(4096))]
struct A4096(u8);
#[derive(Clone, Debug, PartialEq)]
struct Zst;
#[derive(Clone, Debug, PartialEq)]
#[repr(align(16))]
struct Zst16;
/// 72 header bytes + 184 = 256, the largest block kept.
#[derive(Clone, Debug, PartialEq)]
struct B184([u8; 184]);
/// One byte more: not kept.
#[derive(Clone, Debug, PartialEq)]
struct B185([u8; 185]);
#[derive(Clone, Debug, PartialEq)]
struct Big([u64; 100]);

fn round_trip<T: Clone + Send + PartialEq + std::fmt::Debug + 'static>(v: T) {
    for _ in 0..3 {
        let e = Envelope::new(v.clone()).to(AgentId(3)).topic_is(String::from("heap topic"));
        let at = e.payload::<T>().unwrap() as *const T as usize;
        assert_eq!(at % std::mem::align_of::<T>(), 0);
        let c = e.clone();
        let c2 = c.clone();
        drop(c);
        assert_eq!(e.into_payload::<T>().unwrap(), v);
        let c2 = c2.downcast::<(u8, i16)>().unwrap_err();
        assert_eq!(c2.topic(), "heap topic");
        assert_eq!(c2.downcast::<T>().unwrap(), v);
    }
}

#[test]
fn payloads_of_every_size_and_alignment_read_back() {
    round_trip(Zst);
    round_trip(Zst16);
    round_trip(A16(5));
    round_trip(A4096(7));
    round_trip(B184([1; 184]));
    round_trip(B185([2; 185]));
    round_trip(Big([3; 100]));
    round_trip(String::from("hello"));
    round_trip(1u8);
    round_trip(u128::MAX);
}

#[derive(Debug)]
struct CloneBomb(String);

impl Clone for CloneBomb {
    fn clone(&self) -> Self {
        panic!("clone bomb")
    }
}

#[test]
fn a_clone_that_panics_leaves_the_original_whole() {
    let e = Envelope::new(CloneBomb("x".into())).topic_is(String::from("t"));
    for _ in 0..10 {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| e.clone()));
        assert!(r.is_err());
    }
    assert_eq!(e.into_payload::<CloneBomb>().unwrap().0, "x");
}

/// Makes and drops messages while it is dropped.
#[derive(Clone)]
struct Nested(#[allow(dead_code)] Option<Envelope>);

impl Drop for Nested {
    fn drop(&mut self) {
        let _a = Envelope::new(7u32).clone();
        let _b = Envelope::new(5u64).clone();
    }
}

#[test]
fn messages_made_and_dropped_inside_a_payloads_drop() {
    for _ in 0..100 {
        let inner = Envelope::new(Nested(Some(Envelope::new(1u64))));
        let outer = Envelope::new(Nested(Some(inner)));
        let c = outer.clone();
        drop(outer);
        drop(c.into_payload::<Nested>().unwrap());
    }
}

#[test]
fn messages_made_on_one_thread_are_read_on_another() {
    let (tx, rx) = std::sync::mpsc::channel::<Envelope>();
    let reader = std::thread::spawn(move || {
        let mut n = 0;
        for e in rx {
            n += *e.payload::<u64>().unwrap();
        }
        n
    });
    for i in 0..20_000u64 {
        tx.send(Envelope::new(i)).unwrap();
    }
    drop(tx);
    assert_eq!(reader.join().unwrap(), (0..20_000u64).sum::<u64>());
    // And back: made there, dropped here, then this thread makes more.
    let v: Vec<Envelope> =
        std::thread::spawn(|| (0..5000u64).map(Envelope::new).collect()).join().unwrap();
    assert_eq!(v.iter().map(|e| *e.payload::<u64>().unwrap()).sum::<u64>(), (0..5000).sum());
    drop(v);
    for i in 0..5000u64 {
        assert_eq!(Envelope::new(i).into_payload::<u64>().unwrap(), i);
    }
}

/// Holds messages in a thread-local, dropped (and more made) when the
/// thread ends.
struct Holder(RefCell<Vec<Envelope>>);

impl Drop for Holder {
    fn drop(&mut self) {
        drop(std::mem::take(&mut *self.0.borrow_mut()));
        for i in 0..100u64 {
            let e = Envelope::new(i);
            let c = e.clone();
            drop(e);
            assert_eq!(c.into_payload::<u64>().unwrap(), i);
        }
    }
}

thread_local! {
    static EARLY: Holder = const { Holder(RefCell::new(Vec::new())) };
    static LATE: Holder = const { Holder(RefCell::new(Vec::new())) };
}

#[test]
fn messages_dropped_by_other_thread_locals_destructors() {
    for _ in 0..20 {
        std::thread::spawn(|| {
            // Touched before the thread's shelves are.
            EARLY.with(|h| h.0.borrow_mut().push(Envelope::new(1u64)));
            drop(Envelope::new(2u64));
            for _ in 0..51 {
                LATE.with(|h| h.0.borrow_mut().push(Envelope::new(3u64)));
                EARLY.with(|h| h.0.borrow_mut().push(Envelope::new(3u64)));
            }
        })
        .join()
        .unwrap();
        // A thread whose only messages are made in a destructor.
        std::thread::spawn(|| EARLY.with(|_| {})).join().unwrap();
    }
}
