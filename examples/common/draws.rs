//! A small, seeded random source for the examples' models (splitmix64):
//! the same draws on every system and partition count, and easy to copy
//! into another language to compare runs draw for draw
//! (`maslite-bench/peers/simpy_bank.py` does).

/// splitmix64, drawn in a fixed order.
#[derive(Clone)]
pub struct Draws(pub u64);

#[allow(dead_code)] // each example uses the draws it needs
impl Draws {
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Exponential with mean `mean`.
    pub fn exponential(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.uniform()).ln()
    }

    /// Whole minutes in `lo..=hi`.
    pub fn minutes(&mut self, lo: f64, hi: f64) -> f64 {
        (lo + (self.uniform() * (hi - lo + 1.0)).floor()).min(hi)
    }
}
