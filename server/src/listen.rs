//! Listeners (TCP, TLS over TCP, a Unix socket with mode 0600) and the graceful stop:
//! on SIGTERM or SIGINT the server stops accepting, answers every request in flight, and
//! returns (the caller then closes the sink, which signs the final checkpoint).

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::time::Duration;

use anyhow::Context;
use axum_server::tls_rustls::RustlsConfig;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::ServerConfig;
use crate::state::App;

/// How long in-flight requests may take to finish after a stop signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

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
    let tcp = match config.listen {
        Some(addr) => {
            let listener = std::net::TcpListener::bind(addr)
                .with_context(|| format!("cannot listen on {addr}"))?;
            listener.set_nonblocking(true)?;
            let tls = match &config.tls {
                Some(tls) => Some(
                    RustlsConfig::from_pem_file(&tls.cert, &tls.key)
                        .await
                        .with_context(|| {
                            format!(
                                "cannot load the TLS certificate {} and key {}",
                                tls.cert.display(),
                                tls.key.display()
                            )
                        })?,
                ),
                None => None,
            };
            Some((listener, tls))
        }
        None => None,
    };
    let unix = match &config.unix_socket {
        Some(path) => Some((bind_unix(path)?, path)),
        None => None,
    };

    let (stop, stopped) = watch::channel(false);
    let router = crate::router(app.clone());
    let mut servers = JoinSet::new();
    if let Some((listener, tls)) = tcp {
        let local = listener.local_addr()?;
        match tls {
            None => {
                let listener = TcpListener::from_std(listener)?;
                spawn_plain(&mut servers, listener, &router, &stopped, "TCP");
                ready(&format!("http://{local}"));
            }
            Some(rustls) => {
                let handle = axum_server::Handle::new();
                let server = axum_server::from_tcp_rustls(listener, rustls)?.handle(handle.clone());
                let router = router.clone();
                let stopped = stopped.clone();
                tokio::spawn(async move {
                    signalled(stopped).await;
                    handle.graceful_shutdown(Some(DRAIN_TIMEOUT));
                });
                servers.spawn(async move {
                    server
                        .serve(router.into_make_service())
                        .await
                        .context("the TLS listener failed")
                });
                ready(&format!("https://{local}"));
            }
        }
    }
    if let Some((listener, path)) = unix {
        spawn_plain(&mut servers, listener, &router, &stopped, "Unix socket");
        ready(&format!("unix:{}", path.display()));
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
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while let Some(result) = servers.join_next().await {
            result.context("a listener stopped")??;
        }
        anyhow::Ok(())
    })
    .await;
    match drained {
        Ok(result) => result,
        Err(_) => {
            anyhow::bail!("requests still in flight after {DRAIN_TIMEOUT:?}; stopping anyway")
        }
    }
}

/// Serves `router` on a plain (TCP or Unix) listener until the stop flag is set.
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

fn spawn_plain<L>(
    servers: &mut JoinSet<anyhow::Result<()>>,
    listener: L,
    router: &axum::Router,
    stopped: &watch::Receiver<bool>,
    what: &'static str,
) where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    let (router, stopped) = (router.clone(), stopped.clone());
    servers.spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(signalled(stopped))
            .await
            .with_context(|| format!("the {what} listener failed"))
    });
}

/// Resolves when the stop flag is set.
async fn signalled(mut stopped: watch::Receiver<bool>) {
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
