//! The car wash tells the same story on one kernel and on 1-3 partitions:
//! four cars at the opening share two machines first come, first served;
//! later cars find a machine free.

use crate::carwash::{self, Options};

#[test]
fn the_car_wash_serves_first_come_first_served_on_any_partition_count() {
    let on = |partitions| carwash::story(&Options { partitions, ..Options::default() }).unwrap();
    let story = on(0);
    let at = |car: u32, what: &str| {
        story.iter().find(|(_, c, w)| *c == car && *w == what).map(|(t, ..)| *t)
    };
    // Two machines, five minutes a wash: cars 0 and 1 at once, 2 and 3 at 5.
    assert_eq!((at(0, "enters a machine"), at(1, "enters a machine")), (Some(0.0), Some(0.0)));
    assert_eq!((at(2, "enters a machine"), at(3, "enters a machine")), (Some(5.0), Some(5.0)));
    assert_eq!(at(3, "leaves, clean"), Some(10.0));
    // Nobody enters before arriving or leaves before its wash is done.
    for (t, car, what) in &story {
        if *what == "leaves, clean" {
            assert_eq!(at(*car, "enters a machine").map(|e| e + 5.0), Some(*t));
        }
    }
    for partitions in 1..=3 {
        assert_eq!(on(partitions), story, "{partitions} partitions");
    }
}
