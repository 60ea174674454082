//! The `[server]` table of a sink file: where to listen, who may call, and the limits.
//!
//! ```toml
//! [server]
//! listen = "127.0.0.1:7700"          # TCP; loopback by default
//! unix-socket = "/run/vellum.sock"    # optional, created with mode 0600
//! max-body-bytes = 4194304            # larger requests get 413 (gzip bodies once inflated)
//! max-concurrent-requests = 256       # authenticated requests at once; more get 429
//! max-unauthenticated-requests = 32   # /metrics and /openapi.json at once; more get 429
//! max-connections = 1024              # open connections; more wait to be accepted
//! header-read-timeout-secs = 15       # a request's headers (and an idle keep-alive)
//! body-read-timeout-secs = 30         # a whole request body; 408 beyond
//! drain-timeout-secs = 30             # on SIGTERM: requests in flight, then cut
//! max-page-bytes = 4194304            # a page of /v1/entries ends past this
//! retry-after-secs = 1                # sent with 503 and 429
//! [server.tls]                        # optional: serve HTTPS on `listen`
//! cert = "cert.pem"
//! key = "key.pem"
//! [[server.token]]                    # one per producer; `vellum token new --tenant acme`
//! tenant = "acme"
//! sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
//! # admin = true                      # an operator's: may also POST /v1/verify
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::IgnoredAny;

/// The `[server]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct ServerConfig {
    /// The TCP address to listen on (`None` with a Unix socket: TCP off).
    pub listen: Option<SocketAddr>,
    /// A Unix socket to listen on (mode 0600), besides or instead of TCP.
    pub unix_socket: Option<PathBuf>,
    /// Serve HTTPS on the TCP address with this certificate.
    pub tls: Option<TlsConfig>,
    /// Largest request body, in bytes, after a gzip body is inflated (413 beyond).
    pub max_body_bytes: usize,
    /// Authenticated requests served at once (429 beyond). A request takes its slot only
    /// once its token is known, and before its body is read.
    pub max_concurrent_requests: usize,
    /// Requests to the routes that need no token (`/metrics`, `/openapi.json`) served at
    /// once, apart from the authenticated budget (429 beyond). `/healthz` and `/readyz`
    /// count against neither.
    pub max_unauthenticated_requests: usize,
    /// Connections open at once; more wait in the listen backlog until one closes.
    pub max_connections: usize,
    /// Time for a client to send a request's headers, and for an idle keep-alive
    /// connection to start its next request; the connection is closed beyond.
    pub header_read_timeout_secs: u64,
    /// Time for a client to send a whole request body (408 beyond).
    pub body_read_timeout_secs: u64,
    /// On SIGTERM or SIGINT, time for requests in flight to finish; connections still
    /// open then are cut (what they had not been answered was not acknowledged).
    pub drain_timeout_secs: u64,
    /// A page of `GET /v1/entries` ends once its entries reach this many bytes (it holds
    /// at least one entry); its cursor continues after it.
    pub max_page_bytes: usize,
    /// The `Retry-After` sent with 429 and 503 answers, in seconds.
    pub retry_after_secs: u64,
    /// The bearer tokens, each bound to one tenant.
    #[serde(rename = "token")]
    pub tokens: Vec<TokenConfig>,
}

/// `[server.tls]`: the certificate chain and private key, PEM files.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain (PEM).
    pub cert: PathBuf,
    /// The private key (PEM).
    pub key: PathBuf,
}

/// One `[[server.token]]`: the SHA-256 of a bearer token and the tenant it may write and
/// read. The token itself is never stored.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// The only tenant this token may write and read.
    pub tenant: String,
    /// Lower-case hex SHA-256 of the token.
    pub sha256: String,
    /// Whether the token may also run what reads the whole ledger, across tenants
    /// (`POST /v1/verify`): an operator's token, not a producer's. Default: no.
    #[serde(default)]
    pub admin: bool,
}

/// The default TCP address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7700";

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: None,
            unix_socket: None,
            tls: None,
            max_body_bytes: 4 << 20,
            max_concurrent_requests: 256,
            max_unauthenticated_requests: 32,
            max_connections: 1024,
            header_read_timeout_secs: 15,
            body_read_timeout_secs: 30,
            drain_timeout_secs: 30,
            max_page_bytes: 4 << 20,
            retry_after_secs: 1,
            tokens: Vec::new(),
        }
    }
}

/// A sink file as the server reads it: its own table, the others left to the library.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServeFile {
    #[serde(default)]
    server: ServerConfig,
    #[serde(default)]
    sink: Option<IgnoredAny>,
    #[serde(default)]
    ledger: Option<IgnoredAny>,
    #[serde(default)]
    chain: Option<IgnoredAny>,
}

impl ServerConfig {
    /// Reads the `[server]` table of sink TOML; relative paths are resolved against `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Self, String> {
        let file: ServeFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let _ = (file.sink, file.ledger, file.chain);
        let mut config = file.server;
        config.validate()?;
        let (cert, key) = match config.tls.as_mut() {
            Some(tls) => (Some(&mut tls.cert), Some(&mut tls.key)),
            None => (None, None),
        };
        for path in [config.unix_socket.as_mut(), cert, key]
            .into_iter()
            .flatten()
        {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
        if config.listen.is_none() && config.unix_socket.is_none() {
            config.listen = DEFAULT_LISTEN.parse().ok();
        }
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        if self.max_body_bytes < 1024 {
            return Err("[server] max-body-bytes must be at least 1024".into());
        }
        for (name, value) in [
            ("max-concurrent-requests", self.max_concurrent_requests),
            (
                "max-unauthenticated-requests",
                self.max_unauthenticated_requests,
            ),
            ("max-connections", self.max_connections),
            ("max-page-bytes", self.max_page_bytes),
        ] {
            if value == 0 {
                return Err(format!("[server] {name} must be at least 1"));
            }
        }
        for (name, value) in [
            ("header-read-timeout-secs", self.header_read_timeout_secs),
            ("body-read-timeout-secs", self.body_read_timeout_secs),
            ("drain-timeout-secs", self.drain_timeout_secs),
        ] {
            if !(1..=3600).contains(&value) {
                return Err(format!(
                    "[server] {name} must be between 1 and 3600 seconds, not {value}"
                ));
            }
        }
        if self.tokens.is_empty() {
            return Err(
                "[server] needs at least one [[server.token]]: every request is \
                        authenticated (create one with `vellum token new --tenant NAME`)"
                    .into(),
            );
        }
        for (i, token) in self.tokens.iter().enumerate() {
            if token.tenant.trim().is_empty() {
                return Err(format!(
                    "[[server.token]] #{}: tenant must not be empty",
                    i + 1
                ));
            }
            let hex_ok = token.sha256.len() == 64
                && token
                    .sha256
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if !hex_ok {
                return Err(format!(
                    "[[server.token]] #{} (tenant `{}`): sha256 must be 64 lower-case hex digits",
                    i + 1,
                    token.tenant
                ));
            }
        }
        if self.tls.is_some() && self.listen.is_none() {
            return Err("[server.tls] needs a TCP `listen` address".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "[[server.token]]\ntenant = \"acme\"\nsha256 = \"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"\n";

    #[test]
    fn defaults_to_loopback_and_resolves_paths() {
        let text =
            format!("[ledger]\npath = \"a.db\"\n[server]\nunix-socket = \"v.sock\"\n{TOKEN}");
        let config = ServerConfig::parse(&text, Path::new("/srv")).unwrap();
        assert_eq!(config.unix_socket.unwrap(), Path::new("/srv/v.sock"));
        assert!(config.listen.is_none());
        let config = ServerConfig::parse(TOKEN, Path::new("/srv")).unwrap();
        assert_eq!(config.listen.unwrap().to_string(), DEFAULT_LISTEN);
    }

    #[test]
    fn errors_name_the_key() {
        let err =
            ServerConfig::parse("[server]\nlisten = \"nowhere\"\n", Path::new(".")).unwrap_err();
        assert!(err.contains("listen"), "{err}");
        let err = ServerConfig::parse("[server]\nlisen = 1\n", Path::new(".")).unwrap_err();
        assert!(err.contains("lisen"), "{err}");
        let err = ServerConfig::parse("[server]\n", Path::new(".")).unwrap_err();
        assert!(err.contains("token"), "{err}");
        let err = ServerConfig::parse(
            "[[server.token]]\ntenant = \"a\"\nsha256 = \"abc\"\n",
            Path::new("."),
        )
        .unwrap_err();
        assert!(err.contains("sha256"), "{err}");
        let err = ServerConfig::parse(
            &format!("[server]\nbody-read-timeout-secs = 0\n{TOKEN}"),
            Path::new("."),
        )
        .unwrap_err();
        assert!(err.contains("body-read-timeout-secs"), "{err}");
        let err = ServerConfig::parse(
            &format!("[server]\nmax-connections = 0\n{TOKEN}"),
            Path::new("."),
        )
        .unwrap_err();
        assert!(err.contains("max-connections"), "{err}");
    }
}
