//! The bank's day is the same on one kernel and on 1-3 partitions, and its
//! figures add up: every customer is served or reneges, and a customer who
//! reneges waited exactly its patience.

use crate::bank::{self, Options};

#[test]
fn the_banks_day_is_the_same_everywhere_and_adds_up() {
    let o = Options { customers: 200, ..Options::default() };
    let (day, log) = bank::day(&o).unwrap();
    assert_eq!(day.served + day.reneged, 200);
    assert!(day.served > 20 && day.reneged > 20, "{day:?}");
    let reneged = log.iter().filter(|l| l.2 == "reneges").count() as u32;
    assert_eq!(reneged, day.reneged);
    for (_, _, what, waited) in &log {
        if *what == "reneges" {
            assert!((o.patience..=2.0 * o.patience).contains(waited), "{waited}");
        }
    }
    // Served customers waited less than their patience.
    let served_wait: f64 = log.iter().filter(|l| l.2 == "is served").map(|l| l.3).sum();
    let reneged_wait: f64 = log.iter().filter(|l| l.2 == "reneges").map(|l| l.3).sum();
    assert!((served_wait + reneged_wait - day.waited).abs() < 1e-9);
    for partitions in 1..=3 {
        let other = bank::day(&Options { partitions, ..o.clone() }).unwrap();
        assert_eq!(other, (day, log.clone()), "{partitions} partitions");
    }
    // Quiet: the same figures, no log.
    let (quiet, none) = bank::day(&Options { quiet: true, ..o.clone() }).unwrap();
    assert_eq!((quiet, none.len()), (day, 0));
}
