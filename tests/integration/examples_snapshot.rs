//! The snapshot example: a market saved at t = 100 on two partitions and
//! resumed on one and on four makes the uninterrupted run's trades; a
//! branch with a tax makes others.

use crate::snapshot::story;

#[test]
fn the_resumed_market_trades_as_the_uninterrupted_one() {
    let dir = std::env::temp_dir().join(format!("maslite-snapshot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let [whole, one, four, taxed] = story(12, &dir).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(whole.len() > 50, "{} trades", whole.len());
    assert!(whole.iter().any(|t| t.at < 100) && whole.iter().any(|t| t.at >= 100));
    assert_eq!(one, whole);
    assert_eq!(four, whole);
    // The branch shares the first half, and differs after the tax.
    let before = |t: &[crate::snapshot::Trade]| t.iter().filter(|t| t.at < 100).count();
    assert_eq!(before(&taxed), before(&whole));
    assert_ne!(taxed, whole);
}
