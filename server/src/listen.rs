//! Listeners (TCP, TLS over TCP, a Unix socket with mode 0600), the connections they accept,
//! and the graceful stop.
//!
//! Every connection is served by hyper's HTTP/1 server with a deadline for each request's
//! headers (which also ends an idle keep-alive connection), and at most `max-connections`
//! are open at once: more wait in the listen backlog. On SIGTERM or SIGINT the server stops
//! accepting, lets the requests in flight finish until the drain deadline, then cuts every
//! connection still open, so a stalled client cannot hold the stop (the caller then closes
//! the sink, which signs the final checkpoint). A request cut that way was never answered,
//! so nothing it carried was acknowledged.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::config::ServerConfig;
use crate::state::App;

/// How long and how many: the limits every accepted connection is served under.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Time for a request's headers (and for an idle connection's next request).
    pub header_read_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
    /// Time for requests in flight to finish once stopping; then connections are cut.
    pub drain_timeout: Duration,
}

impl ConnectionLimits {
    /// The limits of a `[server]` table.
    pub fn of(config: &ServerConfig) -> Self {
        Self {
            header_read_timeout: Duration::from_secs(config.header_read_timeout_secs),
            max_connections: config.max_connections,
            drain_timeout: Duration::from_secs(config.drain_timeout_secs),
        }
    }
}

impl Default for ConnectionLimits {
    /// The `[server]` table's defaults.
    fn default() -> Self {
        Self::of(&ServerConfig::default())
    }
}

/// A bound listener.
pub enum Listener {
    /// Plain HTTP over TCP.
    Tcp(TcpListener),
    /// HTTPS over TCP.
    Tls(TcpListener, TlsAcceptor),
    /// Plain HTTP over a Unix socket.
    Unix(UnixListener),
}

/// Serves `app` on every configured listener until SIGTERM or SIGINT, then drains.
/// `ready` is told each address once it accepts connections (`http://…`, `https://…` or
/// `unix:…`).
pub async fn serve_until_signal(
    app: App,
    config: &ServerConfig,
    ready: &mut dyn FnMut(&str),
) -> anyhow::Result<()> {
    // Every listener is bound (and the certificate loaded) before any serves: a bad address,
    // certificate or socket path fails the start with nothing announced as listening.
    let mut listeners = Vec::new();
    if let Some(addr) = config.listen {
        let listener = std::net::TcpListener::bind(addr)
            .with_context(|| format!("cannot listen on {addr}"))?;
        listener.set_nonblocking(true)?;
        let local = listener.local_addr()?;
        let listener = TcpListener::from_std(listener)?;
        match &config.tls {
            None => listeners.push((Listener::Tcp(listener), format!("http://{local}"))),
            Some(tls) => {
                let acceptor = tls_acceptor(&tls.cert, &tls.key).with_context(|| {
                    format!(
                        "cannot load the TLS certificate {} and key {}",
                        tls.cert.display(),
                        tls.key.display()
                    )
                })?;
                listeners.push((
                    Listener::Tls(listener, acceptor),
                    format!("https://{local}"),
                ));
            }
        }
    }
    if let Some(path) = &config.unix_socket {
        let listener = Listener::Unix(bind_unix(path)?);
        listeners.push((listener, format!("unix:{}", path.display())));
    }

    let limits = ConnectionLimits::of(config);
    let (stop, stopped) = watch::channel(false);
    let router = crate::router(app.clone());
    let mut servers = JoinSet::new();
    for (listener, address) in listeners {
        servers.spawn(serve(listener, router.clone(), limits, stopped.clone()));
        ready(&address);
    }
    let failed = tokio::select! {
        () = stop_signal() => None,
        Some(result) = servers.join_next() => Some(result),
    };
    tracing::info!("stopping: draining requests in flight");
    app.start_draining();
    let _ = stop.send(true);
    if let Some(result) = failed {
        result.context("a listener stopped")??;
    }
    // Each listener cuts its own connections at the drain deadline.
    while let Some(result) = servers.join_next().await {
        result.context("a listener stopped")??;
    }
    Ok(())
}

/// Accepts connections on `listener` and serves `router` on each under `limits`, until
/// `stopped` is set; then drains and cuts (see the module's documentation).
pub async fn serve(
    listener: Listener,
    router: axum::Router,
    limits: ConnectionLimits,
    stopped: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut connections = JoinSet::new();
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.context("the connection limit closed")?,
            () = signalled(stopped.clone()) => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept(&graceful, &router, limits) => accepted,
            () = signalled(stopped.clone()) => break,
        };
        match accepted {
            Ok(connection) => {
                connections.spawn(async move {
                    connection.await;
                    drop(slot);
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: wait rather than spin.
                tracing::warn!("accepting a connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    if tokio::time::timeout(limits.drain_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "{} connection(s) still open after {:?}; cutting them (their unanswered requests \
             were not acknowledged)",
            connections.len(),
            limits.drain_timeout
        );
    }
    connections.shutdown().await;
    Ok(())
}

impl Listener {
    /// Accepts one connection: the future that serves it.
    async fn accept(
        &self,
        graceful: &GracefulShutdown,
        router: &axum::Router,
        limits: ConnectionLimits,
    ) -> std::io::Result<Pin<Box<dyn Future<Output = ()> + Send>>> {
        let watcher = graceful.watcher();
        let router = router.clone();
        Ok(match self {
            Listener::Tcp(listener) => {
                let (stream, _) = listener.accept().await?;
                Box::pin(serve_connection(stream, router, watcher, limits))
            }
            Listener::Unix(listener) => {
                let (stream, _) = listener.accept().await?;
                Box::pin(serve_connection(stream, router, watcher, limits))
            }
            Listener::Tls(listener, acceptor) => {
                let (stream, _) = listener.accept().await?;
                let acceptor = acceptor.clone();
                Box::pin(async move {
                    // The handshake has the headers' deadline: a client that stalls in it
                    // holds a connection slot no longer than one that stalls in its headers.
                    let handshake =
                        tokio::time::timeout(limits.header_read_timeout, acceptor.accept(stream));
                    match handshake.await {
                        Ok(Ok(tls)) => serve_connection(tls, router, watcher, limits).await,
                        Ok(Err(e)) => tracing::debug!("TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                })
            }
        })
    }
}

/// Serves HTTP/1 on one connection until it closes, it errs, or a graceful stop ends it.
async fn serve_connection<I>(
    io: I,
    router: axum::Router,
    watcher: Watcher,
    limits: ConnectionLimits,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = TowerToHyperService::new(router);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let connection = http.serve_connection(TokioIo::new(io), service);
    if let Err(e) = watcher.watch(connection).await {
        tracing::debug!("connection ended: {e}");
    }
}

/// A TLS acceptor for the PEM certificate chain and private key (HTTP/1.1 by ALPN).
fn tls_acceptor(cert: &std::path::Path, key: &std::path::Path) -> anyhow::Result<TlsAcceptor> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("cannot read {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{} is not a PEM certificate chain", cert.display()))?;
    anyhow::ensure!(!chain.is_empty(), "{} holds no certificate", cert.display());
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("{} is not a PEM private key", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Binds the Unix socket at `path` with mode 0600, replacing a socket left by an earlier
/// run but never anything else.
fn bind_unix(path: &std::path::Path) -> anyhow::Result<UnixListener> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        anyhow::ensure!(
            meta.file_type().is_socket(),
            "{} exists and is not a socket; refusing to replace it",
            path.display()
        );
        std::fs::remove_file(path)
            .with_context(|| format!("cannot replace the old socket {}", path.display()))?;
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("cannot listen on {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot restrict {} to mode 0600", path.display()))?;
    Ok(listener)
}

/// Resolves when the stop flag is set.
pub(crate) async fn signalled(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

/// Resolves on SIGTERM or SIGINT.
pub(crate) async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(term) => term,
        Err(e) => {
            tracing::error!("cannot watch for SIGTERM: {e}");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
