//! How a host proves itself to the NATS server, and checks the server:
//! user and password, token, nkey, credentials file, TLS with a custom CA
//! and a client certificate (mutual TLS).
//!
//! A run key ([`RunKey`](crate::RunKey)) makes frames unforgeable whatever
//! the server lets others do; the server's own authentication and
//! permissions keep outsiders off the run's subjects altogether (they
//! could otherwise flood them), and TLS keeps the traffic off the network.
//! Use both on a shared server (the README's "Several hosts" shows a
//! locked-down server configuration).
//!
//! Secrets are never logged nor put in an error: `Debug` shows which
//! options are set, not their values, and a URL's `user:password@` part is
//! taken as credentials and removed from the URL that errors quote (the
//! NATS client would ignore it).

use crate::error::{Error, Result};
use std::path::PathBuf;
use std::time::Duration;

/// A NATS connection's authentication and TLS (see the [module
/// docs](self)). Every host's connections (frames and heartbeats) use it.
#[derive(Clone, Default)]
pub struct NatsOptions {
    user: Option<(String, String)>,
    token: Option<String>,
    nkey: Option<String>,
    creds: Option<PathBuf>,
    ca: Option<PathBuf>,
    client_cert: Option<(PathBuf, PathBuf)>,
    tls: bool,
}

impl std::fmt::Debug for NatsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Which are set; never a secret.
        f.debug_struct("NatsOptions")
            .field("user", &self.user.as_ref().map(|(u, _)| u))
            .field("password", &self.user.as_ref().map(|_| "..."))
            .field("token", &self.token.as_ref().map(|_| "..."))
            .field("nkey", &self.nkey.as_ref().map(|_| "..."))
            .field("creds", &self.creds)
            .field("ca", &self.ca)
            .field("client_cert", &self.client_cert.as_ref().map(|(c, _)| c))
            .field("tls", &self.tls)
            .finish()
    }
}

impl NatsOptions {
    /// No authentication, TLS only if the URL says `tls://` or the server
    /// asks for it.
    pub fn new() -> NatsOptions {
        NatsOptions::default()
    }

    /// Authenticates with a user and password.
    pub fn user_and_password(mut self, user: &str, password: &str) -> NatsOptions {
        self.user = Some((user.into(), password.into()));
        self
    }

    /// Authenticates with a token.
    pub fn token(mut self, token: &str) -> NatsOptions {
        self.token = Some(token.into());
        self
    }

    /// Authenticates with an nkey seed (`SU…`).
    pub fn nkey(mut self, seed: &str) -> NatsOptions {
        self.nkey = Some(seed.into());
        self
    }

    /// Authenticates with a credentials file (a JWT and nkey seed, as
    /// `nsc` writes them); read when connecting.
    pub fn credentials_file(mut self, path: impl Into<PathBuf>) -> NatsOptions {
        self.creds = Some(path.into());
        self
    }

    /// Trusts the server certificates signed by the CA in this PEM file
    /// (and requires TLS).
    pub fn ca(mut self, pem: impl Into<PathBuf>) -> NatsOptions {
        self.ca = Some(pem.into());
        self.tls = true;
        self
    }

    /// Shows the server this client certificate and key (PEM files), for
    /// mutual TLS (and requires TLS).
    pub fn client_certificate(
        mut self,
        cert: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> NatsOptions {
        self.client_cert = Some((cert.into(), key.into()));
        self.tls = true;
        self
    }

    /// Requires TLS.
    pub fn require_tls(mut self) -> NatsOptions {
        self.tls = true;
        self
    }

    /// `url` without its `user:password@` part (safe to print), and the
    /// options with those credentials, if it had them.
    pub fn from_url(&self, url: &str) -> (String, NatsOptions) {
        let mut options = self.clone();
        let Some((scheme, rest)) = url.split_once("://") else { return (url.into(), options) };
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let Some((userinfo, host)) = authority.rsplit_once('@') else {
            return (url.into(), options);
        };
        match userinfo.split_once(':') {
            Some((user, password)) => options.user = Some((user.into(), password.into())),
            None => options.token = Some(userinfo.into()),
        }
        (format!("{scheme}://{host}{path}"), options)
    }

    /// The client's options: these, and `base`'s other settings.
    pub async fn apply(
        &self,
        mut base: async_nats::ConnectOptions,
    ) -> Result<async_nats::ConnectOptions> {
        if let Some((user, password)) = &self.user {
            base = base.user_and_password(user.clone(), password.clone());
        }
        if let Some(token) = &self.token {
            base = base.token(token.clone());
        }
        if let Some(seed) = &self.nkey {
            base = base.nkey(seed.clone());
        }
        if let Some(path) = &self.creds {
            base = base.credentials_file(path).await.map_err(|e| {
                Error::Nats(format!("cannot read the credentials file {}: {e}", path.display()))
            })?;
        }
        if let Some(ca) = &self.ca {
            base = base.add_root_certificates(ca.clone());
        }
        if let Some((cert, key)) = &self.client_cert {
            base = base.add_client_certificate(cert.clone(), key.clone());
        }
        if self.tls {
            base = base.require_tls(true);
        }
        Ok(base.connection_timeout(Duration::from_secs(5)))
    }

    /// Connects to `url` with these options on top of `base`. The error
    /// quotes neither a secret nor the URL's credentials; it is
    /// [`Error::Refused`] when the server refused them (no use trying
    /// again).
    pub async fn connect(
        &self,
        url: &str,
        base: async_nats::ConnectOptions,
    ) -> Result<async_nats::Client> {
        let (url, options) = self.from_url(url);
        let base = options.apply(base).await?;
        base.connect(url.as_str()).await.map_err(|e| {
            use async_nats::ConnectErrorKind as K;
            match e.kind() {
                K::AuthorizationViolation | K::Authentication => {
                    Error::Refused(format!("the server at {url} refused this host's credentials"))
                }
                K::Tls => Error::Refused(format!(
                    "TLS with the server at {url} failed (its certificate, the CA, or this host's \
                     certificate)"
                )),
                // A server that refuses a client certificate closes the
                // connection after the handshake: that looks like I/O.
                K::Io if self.tls || options.tls => Error::Nats(format!(
                    "cannot connect to {url} over TLS: {} (does the server accept this host's \
                     certificate?)",
                    e.kind()
                )),
                _ => Error::Nats(format!("cannot connect to {url}: {}", e.kind())),
            }
        })
    }
}
