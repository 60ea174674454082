//! The WASI context of plugins made by other languages' toolchains (componentize-py, jco),
//! whose language runtimes import WASI. It grants nothing: no preopened directories, no
//! environment variables or arguments, no network, a closed stdin, and frozen clocks (a
//! plugin cannot observe time); stdout and stderr go to the host's log. Rust plugins import
//! no WASI at all.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder};

use super::host_api::MAX_LOG_MESSAGE_BYTES;

/// The WASI 0.2 interfaces the host links (any 0.2.x version of them). They are all backed
/// by the deny-everything context built for each plugin instance.
pub const PROVIDED_WASI: &[&str] = &[
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:clocks/monotonic-clock",
    "wasi:clocks/wall-clock",
    "wasi:filesystem/types",
    "wasi:filesystem/preopens",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:sockets/network",
    "wasi:sockets/instance-network",
    "wasi:sockets/udp",
    "wasi:sockets/udp-create-socket",
    "wasi:sockets/tcp",
    "wasi:sockets/tcp-create-socket",
    "wasi:sockets/ip-name-lookup",
];

/// Whether an import name (`wasi:cli/stdout@0.2.9`) is one of [`PROVIDED_WASI`].
pub fn is_provided_wasi(name: &str) -> bool {
    match name.split_once('@') {
        Some((interface, version)) => {
            version.starts_with("0.2.") && PROVIDED_WASI.contains(&interface)
        }
        None => false,
    }
}

/// A WASI context that grants nothing; output is logged under the plugin's name.
pub fn sandbox_ctx(plugin: &Arc<str>) -> WasiCtx {
    let mut builder = WasiCtxBuilder::new();
    builder
        .stdout(LogStream {
            plugin: plugin.clone(),
            stream: "stdout",
        })
        .stderr(LogStream {
            plugin: plugin.clone(),
            stream: "stderr",
        })
        .wall_clock(FrozenClock)
        .monotonic_clock(FrozenClock)
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    builder.build()
}

/// A clock stopped at the epoch: plugins must not depend on time.
struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// A guest's stdout or stderr, written to the host log line by line (each write is one
/// log record, truncated like `host.log` messages).
#[derive(Clone)]
struct LogStream {
    plugin: Arc<str>,
    stream: &'static str,
}

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl tokio::io::AsyncWrite for LogStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let text = String::from_utf8_lossy(&buf[..buf.len().min(MAX_LOG_MESSAGE_BYTES)]);
        let text = text.trim_end();
        if !text.is_empty() {
            tracing::info!(plugin = %self.plugin, stream = self.stream, "{text}");
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_wasi_0_2_interfaces_the_host_links_are_provided() {
        assert!(is_provided_wasi("wasi:cli/stdout@0.2.9"));
        assert!(is_provided_wasi("wasi:io/streams@0.2.0"));
        assert!(!is_provided_wasi("wasi:cli/stdout@0.3.0"));
        assert!(!is_provided_wasi("wasi:http/outgoing-handler@0.2.9"));
        assert!(!is_provided_wasi("wasi:cli/stdout"));
    }
}
