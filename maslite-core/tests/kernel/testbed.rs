//! The TestBed: one agent alone, given mail by hand, its output read back.

use maslite_core::{Agent, AgentId, Alarm, Cx, Envelope, Error, Subscription, TestBed};

#[derive(Clone, Debug, PartialEq)]
struct Order {
    qty: u32,
}

#[derive(Clone, Debug, PartialEq)]
struct Invoice {
    amount: u32,
}

#[derive(Clone, Debug, PartialEq)]
struct Reminder;

/// Announces itself in setup, subscribes to "orders", invoices every order
/// and sets a reminder for itself; stocks up on "restock".
#[derive(Default)]
struct Shop {
    orders: u32,
    updates: u32,
    price: u32,
}

impl Agent for Shop {
    async fn setup(&mut self, cx: &Cx) {
        cx.subscribe(Subscription::new().topic("orders")).unwrap();
        cx.send(Envelope::new("open").topic_is("announcement"));
        self.price = 3;
    }
    async fn update(&mut self, cx: &Cx) {
        self.updates += 1;
        while let Some(env) = cx.try_recv() {
            if let Ok(order) = env.payload::<Order>() {
                self.orders += 1;
                let invoice = Invoice { amount: order.qty * self.price };
                cx.send(Envelope::new(invoice).to(env.sender()));
                let at = cx.now() + 5.0;
                cx.set_alarm(Alarm::at(at, Envelope::new(Reminder).to(cx.id()))).unwrap();
            }
        }
    }
}

#[test]
fn setup_runs_and_its_output_is_held() {
    let mut bed = TestBed::new(Shop::default()).unwrap();
    assert_eq!(bed.id(), AgentId(1));
    assert_eq!(bed.agent().unwrap().price, 3);
    assert_eq!(bed.subscriptions(), [Subscription::new().topic("orders")]);
    let sent = bed.take_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].topic(), "announcement");
    assert_eq!(sent[0].sender(), AgentId(1));
    assert!(bed.take_sent().is_empty(), "taken once");
}

#[test]
fn given_mail_is_read_in_one_update_and_replies_are_held() {
    let mut bed = TestBed::with_id(AgentId(10), Shop::default()).unwrap();
    bed.take_sent();
    bed.give(Envelope::new(Order { qty: 2 }).from(AgentId(7))).unwrap();
    bed.give(Envelope::new(Order { qty: 5 }).from(AgentId(8))).unwrap();
    assert_eq!(bed.inbox_len(), 2);
    bed.update().unwrap();
    assert_eq!(bed.inbox_len(), 0);

    let sent = bed.take_sent();
    let summary: Vec<(AgentId, Option<AgentId>, u32)> = sent
        .iter()
        .map(|e| (e.sender(), e.receiver(), e.payload::<Invoice>().unwrap().amount))
        .collect();
    assert_eq!(summary, [(AgentId(10), Some(AgentId(7)), 6), (AgentId(10), Some(AgentId(8)), 15)]);
    let shop = bed.agent().unwrap();
    assert_eq!((shop.orders, shop.updates), (2, 1));
}

#[test]
fn given_mail_without_receiver_is_addressed_to_the_agent() {
    struct Mirror {
        receivers: Vec<Option<AgentId>>,
    }
    impl Agent for Mirror {
        async fn update(&mut self, cx: &Cx) {
            while let Some(env) = cx.try_recv() {
                self.receivers.push(env.receiver());
            }
        }
    }
    let mut bed = TestBed::with_id(AgentId(4), Mirror { receivers: vec![] }).unwrap();
    bed.give(Envelope::new(Reminder)).unwrap();
    bed.give(Envelope::new(Reminder).to(AgentId(9))).unwrap();
    bed.update().unwrap();
    assert_eq!(bed.agent().unwrap().receivers, [Some(AgentId(4)), Some(AgentId(9))]);
}

#[test]
fn update_runs_even_with_an_empty_inbox() {
    let mut bed = TestBed::new(Shop::default()).unwrap();
    bed.update().unwrap();
    bed.update().unwrap();
    assert_eq!(bed.agent().unwrap().updates, 2);
    assert_eq!(bed.agent().unwrap().orders, 0);
}

#[test]
fn alarms_set_by_the_agent_are_listed_at_the_beds_clock() {
    let mut bed = TestBed::new(Shop::default()).unwrap();
    assert_eq!(bed.now(), 0.0);
    bed.give(Envelope::new(Order { qty: 1 }).from(AgentId(7))).unwrap();
    bed.update().unwrap();
    bed.advance_to(2.5).unwrap();
    assert_eq!(bed.now(), 2.5);
    bed.give(Envelope::new(Order { qty: 1 }).from(AgentId(7))).unwrap();
    bed.update().unwrap();
    let alarms = bed.alarms();
    let times: Vec<f64> = alarms.iter().map(|a| a.at).collect();
    assert_eq!(times, [5.0, 7.5]);
    assert!(alarms.iter().all(|a| a.receiver == Some(AgentId(1)) && a.topic == "Reminder"));
}

#[test]
fn the_agent_can_be_changed_between_updates() {
    let mut bed = TestBed::new(Shop::default()).unwrap();
    bed.take_sent();
    bed.agent_mut().unwrap().price = 100;
    bed.give(Envelope::new(Order { qty: 2 }).from(AgentId(7))).unwrap();
    bed.update().unwrap();
    let sent = bed.take_sent();
    assert_eq!(sent[0].payload::<Invoice>(), Ok(&Invoice { amount: 200 }));
}

#[test]
fn held_mail_goes_nowhere() {
    let mut bed = TestBed::new(Shop::default()).unwrap();
    bed.give(Envelope::new(Order { qty: 1 }).from(AgentId(404))).unwrap();
    bed.update().unwrap();
    // The reply to a missing agent is held, not a dead letter.
    assert_eq!(bed.scheduler().stats().dead_letters, 0);
    assert_eq!(bed.take_sent().len(), 2, "the announcement and the invoice");
}

#[test]
fn a_panicking_update_is_reported_by_the_bed() {
    struct Fragile;
    impl Agent for Fragile {
        async fn update(&mut self, _cx: &Cx) {
            panic!("cracked");
        }
    }
    let mut bed = TestBed::new(Fragile).unwrap();
    match bed.update() {
        Err(Error::AgentPanicked { agent, phase, message }) => {
            assert_eq!(agent, AgentId(1));
            assert_eq!(phase, maslite_core::Phase::Update);
            assert_eq!(message, "cracked");
        }
        other => panic!("expected a panic report, got {other:?}"),
    }
}

#[test]
fn advancing_the_bed_fires_alarms_into_the_inbox_and_resumes_sleepers() {
    #[derive(Clone)]
    struct Tick;
    /// On mail: sets an alarm for itself at +2, then sleeps 1 inside update.
    struct Timer {
        ticks: u32,
        woke_at: Vec<f64>,
    }
    impl Agent for Timer {
        async fn update(&mut self, cx: &Cx) {
            while let Some(env) = cx.try_recv() {
                if env.is::<Tick>() {
                    self.ticks += 1;
                } else {
                    cx.set_alarm(Alarm::after(2.0, Envelope::new(Tick).to(cx.id()))).unwrap();
                    cx.sleep(1.0).await;
                    self.woke_at.push(cx.now());
                }
            }
        }
    }
    let mut bed = TestBed::new(Timer { ticks: 0, woke_at: vec![] }).unwrap();
    bed.give(Envelope::new(0u8)).unwrap();
    bed.update().unwrap();
    assert!(bed.in_update(), "asleep inside its update");
    assert_eq!(bed.alarms().len(), 1);

    bed.advance_to(1.0).unwrap();
    bed.update().unwrap(); // resumes the sleep
    assert!(!bed.in_update());
    assert_eq!(bed.agent().unwrap().woke_at, [1.0]);

    bed.advance_to(2.0).unwrap();
    assert_eq!(bed.inbox_len(), 1, "the alarm's tick is in the inbox");
    bed.update().unwrap();
    assert_eq!(bed.agent().unwrap().ticks, 1);
    assert!(bed.alarms().is_empty());

    assert!(bed.advance_to(1.5).is_err(), "time does not go back");
}
