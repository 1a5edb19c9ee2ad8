//! A run's shared secret: what makes the hosts of a run trust each other
//! and nobody else on the NATS server.
//!
//! A NATS server is shared ground: anyone who may connect may publish on
//! a run's subjects and read them, unless the server's permissions say
//! otherwise. So every frame, beat and readiness answer of a run is
//! authenticated with keys derived from one secret that only the run's
//! hosts hold (see [`seal`](crate::seal)): a [`RunKey`], 32 random bytes.
//!
//! Give every host the same key, from a file ([`RunKey::from_file`]) or an
//! environment variable ([`RunKey::from_env`]), written as 64 hex digits.
//! [`RunKey::generate`] makes one (`cargo run -p maslite-nats --example
//! runkey -- run.key` writes it to a file only its owner may read).
//! The key is never printed: its `Debug` says only `RunKey(..)`.

use crate::error::{Error, Result};
use ring::rand::SecureRandom;
use std::path::Path;

/// The environment variable the examples read a run's key from.
pub const RUN_KEY_ENV: &str = "MASLITE_RUN_KEY";

/// A run's shared secret: 32 bytes (see the [module docs](self)).
#[derive(Clone, PartialEq, Eq)]
pub struct RunKey([u8; 32]);

impl std::fmt::Debug for RunKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RunKey(..)")
    }
}

impl RunKey {
    /// A new key from the operating system's random source.
    pub fn generate() -> Result<RunKey> {
        let mut bytes = [0u8; 32];
        ring::rand::SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| Error::Key("the system's random source failed".into()))?;
        Ok(RunKey(bytes))
    }

    /// The key written as 64 hex digits (surrounding whitespace ignored).
    /// The error never quotes the text.
    pub fn from_hex(text: &str) -> Result<RunKey> {
        let text = text.trim().as_bytes();
        if text.len() != 64 {
            return Err(Error::Key(format!(
                "a run key is 64 hex digits (32 bytes), not {} characters",
                text.len()
            )));
        }
        let digit = |c: u8| (c as char).to_digit(16);
        let mut bytes = [0u8; 32];
        for (i, pair) in text.chunks(2).enumerate() {
            match (digit(pair[0]), digit(pair[1])) {
                (Some(hi), Some(lo)) => bytes[i] = (hi * 16 + lo) as u8,
                _ => return Err(Error::Key("a run key holds hex digits only".into())),
            }
        }
        Ok(RunKey(bytes))
    }

    /// The key in the file at `path` (64 hex digits).
    pub fn from_file(path: impl AsRef<Path>) -> Result<RunKey> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Key(format!("cannot read the run key {}: {e}", path.display())))?;
        RunKey::from_hex(&text).map_err(|e| Error::Key(format!("{}: {e}", path.display())))
    }

    /// The key in environment variable `var` (64 hex digits); `Ok(None)`
    /// when it is not set.
    pub fn from_env(var: &str) -> Result<Option<RunKey>> {
        match std::env::var(var) {
            Ok(text) => {
                RunKey::from_hex(&text).map(Some).map_err(|e| Error::Key(format!("{var}: {e}")))
            }
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(e) => Err(Error::Key(format!("{var}: {e}"))),
        }
    }

    /// Writes a new key to a new file at `path`, readable by its owner
    /// only (on Unix); an existing file is never overwritten.
    pub fn create_file(path: impl AsRef<Path>) -> Result<RunKey> {
        use std::io::Write;
        let path = path.as_ref();
        let key = RunKey::generate()?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options
            .open(path)
            .map_err(|e| Error::Key(format!("cannot create {}: {e}", path.display())))?;
        writeln!(file, "{}", key.to_hex())
            .map_err(|e| Error::Key(format!("cannot write {}: {e}", path.display())))?;
        Ok(key)
    }

    /// The key as 64 hex digits, to store it (keep it secret).
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}
