//! Checkpoints survive a kill: `phold` started as a child process with
//! checkpoints, killed (SIGKILL) mid-run, resumed from its last checkpoint
//! on another partition count, gives the uninterrupted run's events and
//! hash.
//!
//! Its own `main` (no test harness): the binary is also the `phold` it
//! starts (`MASLITE_EXAMPLE=phold`), as `hosts_nats` does.

#[path = "../examples/phold.rs"]
mod phold;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// The model both runs share (small: the test runs in a debug build).
const MODEL: [&str; 10] =
    ["--agents", "1024", "--events", "4", "--end", "40", "--remote", "0.25", "--seed", "5"];

fn params(extra: &[&str]) -> phold::Params {
    let args = ["phold"].iter().chain(MODEL.iter()).chain(extra.iter());
    phold::Params::from_args(args).expect("valid flags")
}

/// This binary, started as `phold` with `args`.
fn phold(args: &[&str]) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("the test binary"));
    cmd.env("MASLITE_EXAMPLE", "phold").args(MODEL).args(args);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd
}

/// "events N hash H" of a `phold:` result line.
fn result_of(out: &str) -> (u64, String) {
    let line = out.lines().find(|l| l.starts_with("phold:")).unwrap_or_else(|| panic!("{out}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let after = |w: &str| words[words.iter().position(|x| *x == w).expect(w) + 1];
    (after("events").parse().expect("a count"), after("hash").to_string())
}

fn killed_mid_run_resumes_to_the_uninterrupted_hash(dir: &Path) {
    let whole = phold::run(&params(&["--partitions", "2"])).expect("the uninterrupted run");
    let expected = (whole.events, format!("{:016x}", whole.hash));

    let snap = dir.join("phold.snap");
    let snap_arg = snap.to_str().expect("a UTF-8 path");
    let mut child =
        phold(&["--partitions", "2", "--checkpoint-every", "4", "--checkpoint", snap_arg])
            .spawn()
            .expect("phold starts");
    // Waits for the first checkpoint (an outside event: polled, bounded).
    let start = Instant::now();
    while !snap.exists() {
        assert!(start.elapsed() < Duration::from_secs(120), "no checkpoint within 2 minutes");
        if let Some(status) = child.try_wait().expect("a child") {
            panic!("phold ended ({status}) before its first checkpoint");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("reaped");
    assert!(!status.success(), "killed mid-run, not finished: {status}");

    // The last checkpoint is whole (written beside, then renamed): resume
    // it on one partition, then on three with a random placement.
    for extra in [&["--partitions", "1"][..], &["--partitions", "3", "--placement", "random"]] {
        let mut args = vec!["--resume", snap_arg];
        args.extend_from_slice(extra);
        let out = phold(&args).output().expect("phold resumes");
        let said = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{said}");
        assert_eq!(result_of(&said), expected, "{extra:?}: {said}");
    }
}

fn bad_snapshot_files_are_named_errors(dir: &Path) {
    let cases: [(&str, &[u8], &str); 3] = [
        ("empty.snap", b"", "truncated"),
        ("text.snap", b"not a snapshot at all, just some text", "magic"),
        ("missing.snap", b"", "opening"),
    ];
    for (name, bytes, said) in cases {
        let path = dir.join(name);
        if name != "missing.snap" {
            std::fs::write(&path, bytes).expect("written");
        }
        let out = phold(&["--resume", path.to_str().expect("UTF-8")]).output().expect("runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}");
        assert!(err.contains(said), "{name}: {err}");
    }
}

fn main() -> ExitCode {
    if std::env::var("MASLITE_EXAMPLE").as_deref() == Ok("phold") {
        // The example's own `main`: it reads this process's arguments.
        return phold::main();
    }
    let dir: PathBuf =
        std::env::temp_dir().join(format!("maslite-checkpoints-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    type Test = fn(&Path);
    let tests: [(&str, Test); 2] = [
        (
            "killed_mid_run_resumes_to_the_uninterrupted_hash",
            killed_mid_run_resumes_to_the_uninterrupted_hash,
        ),
        ("bad_snapshot_files_are_named_errors", bad_snapshot_files_are_named_errors),
    ];
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let mut failed = 0;
    for (name, test) in tests {
        if filter.as_deref().is_some_and(|f| !name.contains(f)) {
            continue;
        }
        let outcome = std::panic::catch_unwind(|| test(&dir));
        println!("test {name} ... {}", if outcome.is_ok() { "ok" } else { "FAILED" });
        failed += outcome.is_err() as usize;
    }
    let _ = std::fs::remove_dir_all(&dir);
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
