//! Repeated runs and the one JSON line per case: medians, not single runs,
//! because the machines here are noisy.

use serde_json::{json, Map, Value};

/// Runs `f` `warmup` times unmeasured, then `runs` times; returns what each
/// measured run gave.
pub fn repeat(runs: usize, warmup: usize, mut f: impl FnMut() -> f64) -> Vec<f64> {
    for _ in 0..warmup {
        f();
    }
    (0..runs.max(1)).map(|_| f()).collect()
}

/// The median (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// One case's result line: `{"case", "params", "unit", "median", "min",
/// "max", "runs"}` and any `extra` fields (a hash, a memory peak).
pub fn line(
    case: &str,
    params: Value,
    unit: &str,
    values: &[f64],
    extra: Map<String, Value>,
) -> String {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut out = json!({
        "case": case,
        "params": params,
        "unit": unit,
        "median": median(values),
        "min": min,
        "max": max,
        "runs": values.len(),
        "allocator": if cfg!(feature = "mimalloc") { "mimalloc" } else { "system" },
    });
    if let Value::Object(o) = &mut out {
        o.extend(extra);
    }
    out.to_string()
}

/// The peak resident memory of this process so far, in bytes (Linux; 0
/// elsewhere).
pub fn peak_rss_bytes() -> u64 {
    status_bytes("VmHWM:")
}

/// The resident memory of this process now, in bytes (Linux; 0 elsewhere).
pub fn rss_bytes() -> u64 {
    status_bytes("VmRSS:")
}

/// A size in kB from /proc/self/status, in bytes.
fn status_bytes(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn a_line_has_the_fields_and_the_extras() {
        let mut extra = Map::new();
        extra.insert("hash".into(), json!("ab"));
        let l = line("x", json!({"n": 1}), "ops/s", &[1.0, 3.0, 2.0], extra);
        let v: Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["case"], "x");
        assert_eq!(v["median"], 2.0);
        assert_eq!(v["min"], 1.0);
        assert_eq!(v["max"], 3.0);
        assert_eq!(v["runs"], 3);
        assert_eq!(v["hash"], "ab");
        assert_eq!(v["params"]["n"], 1);
    }

    #[test]
    fn warm_up_runs_are_not_measured() {
        let mut calls = 0;
        let v = repeat(3, 2, || {
            calls += 1;
            calls as f64
        });
        assert_eq!(v, [3.0, 4.0, 5.0]);
    }
}
