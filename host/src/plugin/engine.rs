//! A narrow wrapper around `wasmtime::Engine`: one engine configured once for running
//! untrusted plugins, the epoch ticker that enforces deadlines, and the compiled-component
//! cache.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine};

use super::bindings;
use super::cache::ComponentCache;
use super::host_api::StoreState;

/// How often the engine's epoch advances. Deadlines are rounded up to whole ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Engine options for [`PluginEngine::new`].
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    /// Enable fuel metering (needed when any plugin sets a `fuel` limit). Fuel makes every
    /// plugin on this engine slower, so it is off unless asked for.
    pub fuel: bool,
    /// Directory for precompiled components; `None` disables the on-disk cache.
    pub cache_dir: Option<PathBuf>,
}

/// The plugin engine could not be set up, or a component could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EngineError(pub String);

impl EngineError {
    /// `error` with what was being done.
    pub(crate) fn context(doing: &str, error: impl std::fmt::Display) -> Self {
        Self(format!("{doing}: {error:#}"))
    }
}

/// The engine every plugin of a chain runs on.
pub struct PluginEngine {
    engine: Engine,
    linker: Linker<StoreState>,
    cache: ComponentCache,
    fuel: bool,
    ticker: Arc<EpochTicker>,
}

impl PluginEngine {
    /// Builds the engine, its linker (the host interface, nothing else) and starts the epoch
    /// ticker thread.
    pub fn new(options: EngineOptions) -> Result<Self, EngineError> {
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .consume_fuel(options.fuel)
            // Async component calls are not used; leaving this on slows synchronous calls.
            .concurrency_support(false)
            .cranelift_opt_level(wasmtime::OptLevel::Speed);
        let engine = Engine::new(&config)
            .map_err(|e| EngineError::context("configuring the wasmtime engine", e))?;
        let mut linker = Linker::new(&engine);
        bindings::Plugin::add_to_linker::<_, wasmtime::component::HasSelf<StoreState>>(
            &mut linker,
            |state| state,
        )
        .map_err(|e| EngineError::context("linking the host interface", e))?;
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| EngineError::context("linking the sandboxed WASI interfaces", e))?;
        Ok(Self {
            cache: ComponentCache::new(options.cache_dir, &engine),
            ticker: Arc::new(EpochTicker::start(engine.clone())?),
            engine,
            linker,
            fuel: options.fuel,
        })
    }

    /// The underlying engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The linker holding the host's imports.
    pub(crate) fn linker(&self) -> &Linker<StoreState> {
        &self.linker
    }

    /// The epoch ticker; every plugin holds it so deadlines stay enforced for as long as
    /// any plugin of this engine lives.
    pub(crate) fn ticker(&self) -> Arc<EpochTicker> {
        self.ticker.clone()
    }

    /// Whether fuel metering is on.
    pub fn fuel_enabled(&self) -> bool {
        self.fuel
    }

    /// Compiles a component, or loads its precompiled form from the cache.
    pub fn load_component(&self, bytes: &[u8], digest: &str) -> Result<Component, EngineError> {
        self.cache
            .load(&self.engine, bytes, digest)
            .map_err(|e| EngineError(format!("{e:#}")))
    }
}

/// A thread that advances the engine's epoch every [`EPOCH_TICK`] until dropped.
pub(crate) struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    /// Starts the ticker; without it deadlines would not be enforced, so a failed spawn is
    /// an error.
    fn start(engine: Engine) -> Result<Self, EngineError> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("vellum-epoch".to_string())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .map_err(|e| EngineError::context("starting the deadline (epoch) thread", e))?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Number of epoch ticks that covers `deadline_ms`, plus one so a call never gets less
/// than its full deadline when it starts just before a tick.
pub(crate) fn deadline_ticks(deadline_ms: u64) -> u64 {
    let tick = EPOCH_TICK.as_millis() as u64;
    deadline_ms.div_ceil(tick) + 1
}
