//! One loaded plugin: a [`PluginTemplate`] (the compiled component, linked once, shared by
//! every thread) and [`Plugin`], one user's live instance of it, which serves calls until it
//! fails. A failed instance is discarded, never re-entered: the next call gets a fresh,
//! freshly configured instance.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use wasmtime::Store;
use wasmtime::component::types::ComponentItem;

use super::bindings::{self, PluginPre};
use super::engine::{EpochTicker, PluginEngine, deadline_ticks};
use super::error::{PluginError, PluginFailure};
use super::host_api::{PseudonymKey, StoreState};
use super::limits::{Limits, StoreLimiter};
use super::verdict::{self, Verdict};
use crate::event::{Attestation, AttestedVerdict, AuditEvent};

/// The interfaces a plugin may import: everything the host links.
pub const PROVIDED_IMPORTS: &[&str] = &["vellum:audit/types@0.1.0", "vellum:audit/host@0.1.0"];

/// Bytes of data a guest may move to the host in one call, as a multiple of the output
/// cap: a backstop, enforced by wasmtime while lifting, against outputs that alias the same
/// guest memory many times to make the host allocate far more than the guest holds.
const LIFT_BUDGET_FACTOR: usize = 4;

/// What a plugin is made of, before loading.
#[derive(Debug, Clone)]
pub struct PluginSpec {
    /// Name used in messages and attestations.
    pub name: String,
    /// The component's bytes.
    pub component: Vec<u8>,
    /// Configuration text passed to `configure`.
    pub config: String,
    /// Resource limits.
    pub limits: Limits,
}

/// A compiled, linked and checked plugin: everything its instances share. `Send + Sync`;
/// each thread makes its own instances with [`PluginTemplate::instance`].
pub struct PluginTemplate {
    name: Arc<str>,
    digest: Arc<str>,
    config_digest: Arc<str>,
    config: String,
    limits: Limits,
    fuel_metered: bool,
    key: Option<PseudonymKey>,
    pre: PluginPre<StoreState>,
    _ticker: Arc<EpochTicker>,
}

/// A plugin instance owner: applies the plugin, replacing its instance whenever it fails.
/// One `Plugin` is used by one thread at a time.
pub struct Plugin {
    template: Arc<PluginTemplate>,
    live: Option<Live>,
    /// The pseudonym key of the tenant these instances serve.
    key: Option<PseudonymKey>,
}

/// An instance that has not failed yet.
struct Live {
    store: Store<StoreState>,
    bindings: bindings::Plugin,
}

/// `sha256:<hex>` of some bytes.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

impl PluginTemplate {
    /// Compiles (or loads from cache) and links the component, then instantiates and
    /// configures it once so a bad component or configuration fails here, not on the first
    /// event.
    pub fn load(
        engine: &PluginEngine,
        spec: PluginSpec,
        key: Option<PseudonymKey>,
    ) -> Result<Arc<Self>, PluginError> {
        Plugin::load(engine, spec, key).map(|plugin| plugin.template)
    }

    /// A new owner of instances of this plugin for events without a tenant; its first
    /// instance is made on first use.
    pub fn instance(self: &Arc<Self>) -> Plugin {
        self.instance_for(None)
    }

    /// A new owner of instances serving `tenant`: their `pseudonymize` uses the tenant's
    /// own key (see [`PseudonymKey::for_tenant`]).
    pub fn instance_for(self: &Arc<Self>, tenant: Option<&str>) -> Plugin {
        Plugin {
            template: self.clone(),
            live: None,
            key: self.key.as_ref().map(|k| k.for_tenant(tenant)),
        }
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `sha256:<hex>` of the component.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// `sha256:<hex>` of the configuration text.
    pub fn config_digest(&self) -> &str {
        &self.config_digest
    }

    /// The plugin's limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The attestation of this plugin having decided `verdict`.
    pub fn attestation(&self, verdict: AttestedVerdict) -> Attestation {
        Attestation {
            plugin: self.name.clone(),
            component_digest: self.digest.clone(),
            config_digest: self.config_digest.clone(),
            verdict,
        }
    }

    fn instantiate(&self, key: Option<PseudonymKey>) -> Result<Live, PluginFailure> {
        let limits = &self.limits;
        let mut store = sandbox_store(&self.pre, &self.name, limits, key);
        prepare_call(&mut store, limits, self.fuel_metered);
        let classify = |e| PluginFailure::from_call_error(e, limits.deadline_ms, limits.fuel);
        let bindings = self.pre.instantiate(&mut store).map_err(classify)?;
        prepare_call(&mut store, limits, self.fuel_metered);
        bindings
            .vellum_audit_filter()
            .call_configure(&mut store, &self.config)
            .map_err(classify)?
            .map_err(PluginFailure::ConfigRejected)?;
        Ok(Live { store, bindings })
    }

    fn error(&self, failure: PluginFailure, event_id: Option<&str>) -> PluginError {
        PluginError {
            plugin: self.name.to_string(),
            digest: self.digest.to_string(),
            event_id: event_id.map(str::to_string),
            failure,
        }
    }
}

impl Plugin {
    /// Loads a plugin (see [`PluginTemplate::load`]) and keeps the instance made while
    /// checking it.
    pub fn load(
        engine: &PluginEngine,
        spec: PluginSpec,
        key: Option<PseudonymKey>,
    ) -> Result<Self, PluginError> {
        let digest = sha256_digest(&spec.component);
        let error = |failure| PluginError {
            plugin: spec.name.clone(),
            digest: digest.clone(),
            event_id: None,
            failure,
        };
        spec.limits
            .validate()
            .map_err(|e| error(PluginFailure::Load(format!("invalid limits: {e}"))))?;
        if spec.limits.fuel.is_some() && !engine.fuel_enabled() {
            let message = "a fuel limit needs an engine with fuel enabled";
            return Err(error(PluginFailure::Load(message.into())));
        }
        let component = engine
            .load_component(&spec.component, &digest)
            .map_err(|e| error(PluginFailure::Load(format!("{e:#}"))))?;
        let pre = link(engine, &component).map_err(|e| error(PluginFailure::Load(e)))?;
        let template = Arc::new(PluginTemplate {
            name: spec.name.as_str().into(),
            config_digest: sha256_digest(spec.config.as_bytes()).into(),
            config: spec.config,
            limits: spec.limits,
            fuel_metered: engine.fuel_enabled(),
            key,
            pre,
            _ticker: engine.ticker(),
            digest: digest.into(),
        });
        let mut plugin = template.instance();
        if let Err(failure) = plugin.live() {
            return Err(plugin.template.error(failure, None));
        }
        Ok(plugin)
    }

    /// The shared template this instance owner was made from.
    pub fn template(&self) -> &Arc<PluginTemplate> {
        &self.template
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        self.template.name()
    }

    /// `sha256:<hex>` of the component.
    pub fn digest(&self) -> &str {
        self.template.digest()
    }

    /// `sha256:<hex>` of the configuration text.
    pub fn config_digest(&self) -> &str {
        self.template.config_digest()
    }

    /// The plugin's limits.
    pub fn limits(&self) -> &Limits {
        self.template.limits()
    }

    /// Applies the plugin to a batch; the result has one entry per event, in order.
    ///
    /// If the batch call fails as a whole (a trap, a deadline, malformed output), the events
    /// are retried one at a time on fresh instances so that the failure is pinned to the
    /// event that causes it and the other events are still served.
    pub fn apply(&mut self, events: &[AuditEvent]) -> Vec<Result<Verdict, PluginError>> {
        match self.call(events) {
            Ok(verdicts) => verdicts.into_iter().map(Ok).collect(),
            Err(failure) if events.len() == 1 => {
                vec![Err(self.template.error(failure, Some(&events[0].id)))]
            }
            // The instance misbehaved, so none of the batch's verdicts is trusted.
            Err(_) => events.iter().map(|e| self.apply_one(e)).collect(),
        }
    }

    /// Applies the plugin to one event on its own.
    fn apply_one(&mut self, event: &AuditEvent) -> Result<Verdict, PluginError> {
        let batch = std::slice::from_ref(event);
        match self.call(batch) {
            Ok(mut verdicts) => Ok(verdicts.remove(0)),
            Err(failure) => Err(self.template.error(failure, Some(&event.id))),
        }
    }

    /// One call into the guest with all checks; any failure discards the instance.
    fn call(&mut self, events: &[AuditEvent]) -> Result<Vec<Verdict>, PluginFailure> {
        let limits = self.template.limits;
        let fuel_metered = self.template.fuel_metered;
        let live = self.live()?;
        prepare_call(&mut live.store, &limits, fuel_metered);
        let labels: Vec<_> = events.iter().map(bindings::wit_labels).collect();
        let wit_events: Vec<_> = events
            .iter()
            .zip(&labels)
            .map(|(event, labels)| bindings::to_wit(event, labels))
            .collect();
        let result = live
            .bindings
            .vellum_audit_filter()
            .call_apply(&mut live.store, &wit_events);
        let checked = match result {
            Ok(outputs) => verdict::check(events, outputs, limits.max_output_bytes),
            Err(e) => Err(PluginFailure::from_call_error(
                e,
                limits.deadline_ms,
                limits.fuel,
            )),
        };
        if checked.is_err() {
            self.live = None;
        }
        checked
    }

    /// The live instance, creating and configuring a fresh one if needed.
    fn live(&mut self) -> Result<&mut Live, PluginFailure> {
        if self.live.is_none() {
            self.live = Some(self.template.instantiate(self.key.clone())?);
        }
        Ok(self.live.as_mut().expect("just set"))
    }
}

/// A store for one instance: the deny-everything WASI context, the memory and table caps,
/// deadlines that trap.
fn sandbox_store(
    pre: &PluginPre<StoreState>,
    name: &Arc<str>,
    limits: &Limits,
    key: Option<PseudonymKey>,
) -> Store<StoreState> {
    let state = StoreState {
        wasi: super::wasi::sandbox_ctx(name),
        table: wasmtime::component::ResourceTable::new(),
        plugin: name.clone(),
        limiter: StoreLimiter::new(limits),
        key,
        log_lines: 0,
    };
    let mut store = Store::new(pre.engine(), state);
    store.limiter(|state| &mut state.limiter);
    store.epoch_deadline_trap();
    store
}

/// Instantiates a linked component once, under the default limits and without configuring
/// it, as loading does before `configure`: this is where the exports' signatures are
/// checked against the WIT.
pub(crate) fn check_instantiates(
    engine: &PluginEngine,
    pre: &PluginPre<StoreState>,
) -> Result<(), String> {
    // The deadline is only enforced while the engine's epoch ticker runs.
    let _ticker = engine.ticker();
    let fuel_metered = engine.fuel_enabled();
    let limits = Limits::default();
    let mut store = sandbox_store(pre, &Arc::from("inspect"), &limits, None);
    prepare_call(&mut store, &limits, fuel_metered);
    pre.instantiate(&mut store)
        .map(|_| ())
        .map_err(|e| format!("{e:#}"))
}

/// Resets the per-call budgets: deadline, fuel, lifting budget and log quota.
fn prepare_call(store: &mut Store<StoreState>, limits: &Limits, fuel_metered: bool) {
    store.set_epoch_deadline(deadline_ticks(limits.deadline_ms));
    if fuel_metered {
        // Fuel is only on when some plugin asked for it; the others get an unlimited tank.
        let _ = store.set_fuel(limits.fuel.unwrap_or(u64::MAX));
    }
    store.set_hostcall_fuel(limits.max_output_bytes.saturating_mul(LIFT_BUDGET_FACTOR));
    store.data_mut().log_lines = 0;
}

/// Links a component as a plugin, as loading does: its imports must be ones the host
/// provides (by name and kind) with the host's signatures, and it must export the filter
/// interface with the WIT's signatures. The error says what does not fit.
pub(crate) fn link(
    engine: &PluginEngine,
    component: &wasmtime::component::Component,
) -> Result<PluginPre<StoreState>, String> {
    check_imports(engine, component)?;
    engine
        .linker()
        .instantiate_pre(component)
        .and_then(PluginPre::new)
        .map_err(|e| format!("{e:#}"))
}

/// Refuses components that import anything the host does not provide, listing all of them.
fn check_imports(
    engine: &PluginEngine,
    component: &wasmtime::component::Component,
) -> Result<(), String> {
    let ty = component.component_type();
    let missing: Vec<String> = ty
        .imports(engine.engine())
        .filter(|(name, item)| {
            let provided = PROVIDED_IMPORTS.contains(name) || super::wasi::is_provided_wasi(name);
            !(provided && matches!(item.ty, ComponentItem::ComponentInstance(_)))
        })
        .map(|(name, _)| name.to_string())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "it imports what the host does not provide: {} (the host provides {} and WASI 0.2: {})",
            missing.join(", "),
            PROVIDED_IMPORTS.join(", "),
            super::wasi::PROVIDED_WASI.join(", ")
        ))
    }
}
