//! The `[server]` table of a sink file: where to listen, who may call, and the limits.
//!
//! ```toml
//! [server]
//! listen = "127.0.0.1:7700"          # TCP; loopback by default
//! unix-socket = "/run/vellum.sock"    # optional, created with mode 0600
//! max-body-bytes = 4194304            # larger requests get 413 (gzip bodies once inflated)
//! max-concurrent-requests = 256       # more at once get 429
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
    /// Requests served at once (429 beyond).
    pub max_concurrent_requests: usize,
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
        if self.max_concurrent_requests == 0 {
            return Err("[server] max-concurrent-requests must be at least 1".into());
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
    }
}
