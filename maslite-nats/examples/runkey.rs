//! # runkey — a new key for a run across hosts
//!
//! `cargo run -p maslite-nats --example runkey -- run.key` writes a new
//! random key (64 hex digits) to `run.key`, readable by its owner only,
//! and never overwrites a file; without an argument it prints one. Give
//! every host of the run the same key: `--key-file run.key` in the
//! examples, or `MASLITE_RUN_KEY=$(cat run.key)`, or
//! `NatsTransport::key(RunKey::from_file("run.key")?)` in a program.

use maslite_nats::RunKey;

fn main() -> Result<(), maslite_nats::Error> {
    match std::env::args_os().nth(1) {
        Some(path) => {
            RunKey::create_file(&path)?;
            eprintln!("runkey: a new key in {} (keep it secret)", path.to_string_lossy());
        }
        None => println!("{}", RunKey::generate()?.to_hex()),
    }
    Ok(())
}
