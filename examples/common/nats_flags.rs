//! The flags the examples that run on several hosts share: the run's key
//! and the NATS server's authentication and TLS (a module of each such
//! example, not an example of its own).

use maslite_nats::{NatsOptions, NatsTransport, RunKey};
use std::path::PathBuf;

/// The environment variable a NATS password is read from (never a flag:
/// a command line is visible to every user of the machine).
pub const PASSWORD_ENV: &str = "MASLITE_NATS_PASSWORD";

/// Who may talk to the run, and how this host reaches the server.
#[derive(clap::Args, Clone, Debug, Default, PartialEq, Eq)]
pub struct NatsFlags {
    /// The run's key: a file of 64 hex digits, the same on every host
    /// (`cargo run -p maslite-nats --example runkey -- FILE` writes one)
    /// [default: $MASLITE_RUN_KEY].
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// Encrypt the frames too (ChaCha20-Poly1305), not only authenticate
    /// them.
    #[arg(long)]
    pub encrypt: bool,
    /// Run without a key: anyone who can publish on the NATS server can
    /// change the run's results. Only on a server nobody else reaches.
    #[arg(long, conflicts_with = "key_file")]
    pub insecure: bool,
    /// A NATS credentials file (JWT and nkey seed).
    #[arg(long, value_name = "FILE")]
    pub nats_creds: Option<PathBuf>,
    /// A NATS user; the password is read from $MASLITE_NATS_PASSWORD.
    #[arg(long, value_name = "USER")]
    pub nats_user: Option<String>,
    /// Trust the server certificates signed by this CA (PEM); requires
    /// TLS.
    #[arg(long, value_name = "PEM")]
    pub tls_ca: Option<PathBuf>,
    /// This host's certificate, for mutual TLS (PEM; with --tls-key).
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// This host's private key, for mutual TLS (PEM; with --tls-cert).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

fn config(e: impl std::fmt::Display) -> maslite::Error {
    maslite::Error::Config(e.to_string())
}

impl NatsFlags {
    /// The server's options these flags say.
    pub fn options(&self) -> Result<NatsOptions, maslite::Error> {
        let mut options = NatsOptions::new();
        if let Some(creds) = &self.nats_creds {
            options = options.credentials_file(creds);
        }
        if let Some(user) = &self.nats_user {
            let password = std::env::var(PASSWORD_ENV).map_err(|_| {
                config(format!("--nats-user {user}: set its password in ${PASSWORD_ENV}"))
            })?;
            options = options.user_and_password(user, &password);
        }
        if let Some(ca) = &self.tls_ca {
            options = options.ca(ca);
        }
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            options = options.client_certificate(cert, key);
        }
        Ok(options)
    }

    /// `nats` with the run's key (or insecure, if asked) and the server's
    /// options.
    pub fn apply(&self, nats: NatsTransport) -> Result<NatsTransport, maslite::Error> {
        let mut nats = nats.options(self.options()?);
        let key = match &self.key_file {
            Some(file) => Some(RunKey::from_file(file).map_err(config)?),
            None => RunKey::from_env(maslite_nats::key::RUN_KEY_ENV).map_err(config)?,
        };
        match key {
            Some(key) if !self.insecure => nats = nats.key(key),
            _ if self.insecure => nats = nats.insecure(),
            _ => {
                return Err(config(format!(
                    "no run key: give every host the same --key-file (or ${}); \
                     `cargo run -p maslite-nats --example runkey -- FILE` writes one \
                     (or --insecure, on a server nobody else reaches)",
                    maslite_nats::key::RUN_KEY_ENV
                )))
            }
        }
        if self.encrypt {
            nats = nats.encrypted();
        }
        Ok(nats)
    }
}
