//! A chain of plugins applied in order to batches of events. An event leaves the chain
//! kept (as the last plugin left it), dropped or rejected; a failing plugin is handled by
//! its `on-error` policy, fail-closed by default, and unredacted content never passes a
//! plugin that failed on it.
//!
//! A chain is compiled once into a [`ChainTemplate`] (engine, linked components, digests,
//! configurations) that any number of threads share; each thread runs it through its own
//! [`Chain`]. The runners of one template share a pool of plugin instances kept apart per
//! tenant (see `tenants.rs`).

mod config;
mod outcome;
mod tenants;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

pub use config::{
    ChainConfig, ConfigError, LimitsPatch, MAX_BATCH_SIZE, OnError, PluginConfig, ProtectedField,
};
pub use outcome::Outcome;
pub use tenants::DEFAULT_TENANT_CAPACITY;

use crate::event::{Attestation, AttestedVerdict, AuditEvent};
use crate::plugin::{
    ComponentCache, EngineError, EngineOptions, Plugin, PluginEngine, PluginError, PluginSpec,
    PluginTemplate, PseudonymKey, Verdict,
};
use tenants::InstancePool;

/// Why a chain could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The chain configuration is invalid or names a file that cannot be read.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A plugin could not be compiled, linked, instantiated or configured.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// The plugin engine could not be set up.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// How to load a chain.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Do not read or write the compiled-component cache.
    pub no_cache: bool,
    /// Components built into the program, named in chain files as `builtin:NAME`.
    pub builtins: Builtins,
}

/// Components built into the program (the `vellum` binary carries the shipped plugins): a
/// chain file names one as `component = "builtin:NAME"`.
#[derive(Clone, Copy, Default)]
pub struct Builtins(pub &'static [(&'static str, &'static [u8])]);

impl Builtins {
    /// The prefix of a built-in component's name in a chain file.
    pub const PREFIX: &'static str = "builtin:";

    /// The built-in component `name` (without the prefix).
    pub fn get(&self, name: &str) -> Option<&'static [u8]> {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, bytes)| *bytes)
    }

    /// The names, in order.
    pub fn names(&self) -> impl Iterator<Item = &'static str> {
        self.0.iter().map(|(name, _)| *name)
    }

    /// The bytes of `component`: a built-in one when it is `builtin:NAME`, else the file.
    pub fn read(&self, component: &Path) -> Result<Vec<u8>, String> {
        match component
            .to_str()
            .and_then(|c| c.strip_prefix(Self::PREFIX))
        {
            Some(name) => self.get(name).map(<[u8]>::to_vec).ok_or_else(|| {
                let known: Vec<_> = self.names().collect();
                match known.is_empty() {
                    true => format!("there is no built-in plugin `{name}` (this program has none)"),
                    false => format!(
                        "there is no built-in plugin `{name}`; built in: {}",
                        known.join(", ")
                    ),
                }
            }),
            None => std::fs::read(component)
                .map_err(|e| format!("cannot read component {}: {e}", component.display())),
        }
    }
}

impl std::fmt::Debug for Builtins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

/// A compiled chain: its plugins' templates in order with their `on-error` policies.
/// `Send + Sync`; share it in an `Arc` and give each thread a [`Chain`] of its own.
pub struct ChainTemplate {
    /// The protected fields replaced by pseudonyms before the first plugin, and the key.
    pseudonymized: Option<(Vec<ProtectedField>, PseudonymKey)>,
    plugins: Vec<Arc<PluginTemplate>>,
    on_error: Vec<OnError>,
    batch_size: usize,
    engine: PluginEngine,
}

impl ChainTemplate {
    /// Loads every plugin of `config`: compiles (or loads from cache), links, instantiates
    /// and configures each once, failing on the first plugin that cannot be loaded.
    pub fn load(config: &ChainConfig, options: &LoadOptions) -> Result<Arc<Self>, ChainError> {
        let fuel = config
            .plugins
            .iter()
            .any(|p| config.limits_for(p).fuel.is_some());
        let cache_dir = match options.no_cache {
            true => None,
            false => config
                .cache_dir
                .clone()
                .or_else(ComponentCache::default_dir),
        };
        let engine = PluginEngine::new(EngineOptions { fuel, cache_dir })?;
        let key = config
            .pseudonym_key_file
            .as_deref()
            .map(PseudonymKey::from_hex_file)
            .transpose()
            .map_err(ConfigError::new)?;
        let mut plugins = Vec::with_capacity(config.plugins.len());
        for plugin in &config.plugins {
            let component = options
                .builtins
                .read(&plugin.component)
                .map_err(|e| ConfigError::new(format!("plugin `{}`: {e}", plugin.name)))?;
            let spec = PluginSpec {
                name: plugin.name.clone(),
                component,
                config: ChainConfig::config_text(plugin)?,
                limits: config.limits_for(plugin),
            };
            plugins.push(PluginTemplate::load(&engine, spec, key.clone())?);
        }
        let pseudonymized = match (&config.pseudonymize_protected[..], key) {
            ([], _) | (_, None) => None,
            (fields, Some(key)) => Some((fields.to_vec(), key)),
        };
        Ok(Arc::new(Self {
            pseudonymized,
            plugins,
            on_error: config.plugins.iter().map(|p| p.on_error).collect(),
            batch_size: config.batch_size,
            engine,
        }))
    }

    /// The plugins, in order.
    pub fn plugins(&self) -> &[Arc<PluginTemplate>] {
        &self.plugins
    }

    /// The engine the plugins run on.
    pub fn engine(&self) -> &PluginEngine {
        &self.engine
    }

    /// Events per plugin call.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Runners of this chain, one per thread, sharing a pool of plugin instances that keeps
    /// up to `tenant_capacity` idle instance sets (one per tenant).
    pub fn runners(self: &Arc<Self>, count: usize, tenant_capacity: usize) -> Vec<Chain> {
        let pool = InstancePool::new(tenant_capacity);
        (0..count)
            .map(|_| Chain {
                template: self.clone(),
                pool: pool.clone(),
            })
            .collect()
    }
}

/// One thread's runner of a chain: applies it with plugin instances that serve one tenant
/// each.
pub struct Chain {
    template: Arc<ChainTemplate>,
    pool: Arc<InstancePool>,
}

impl Chain {
    /// Loads a chain (see [`ChainTemplate::load`]) and makes one runner of it.
    pub fn load(config: &ChainConfig, options: &LoadOptions) -> Result<Self, ChainError> {
        let template = ChainTemplate::load(config, options)?;
        Ok(Chain {
            pool: InstancePool::new(DEFAULT_TENANT_CAPACITY),
            template,
        })
    }

    /// The shared template.
    pub fn template(&self) -> &Arc<ChainTemplate> {
        &self.template
    }

    /// Applies the chain; returns one outcome per event, in input order. The events of each
    /// tenant go through that tenant's own plugin instances.
    pub fn apply(&mut self, mut events: Vec<AuditEvent>) -> Vec<Outcome> {
        let template = &self.template;
        if let Some((fields, key)) = &template.pseudonymized {
            let mut tenant_keys: std::collections::HashMap<Option<String>, PseudonymKey> =
                std::collections::HashMap::new();
            for event in &mut events {
                let key = tenant_keys
                    .entry(event.tenant.clone())
                    .or_insert_with(|| key.for_tenant(event.tenant.as_deref()));
                pseudonymize_protected(event, fields, key);
            }
        }
        if template.plugins.is_empty() {
            return events.into_iter().map(Outcome::kept).collect();
        }
        let total = events.len();
        let mut done: Vec<Option<Outcome>> = (0..total).map(|_| None).collect();
        for (tenant, group) in by_tenant(events) {
            let mut plugins = self.pool.check_out(tenant.as_deref(), &template.plugins);
            let (on_error, batch_size) = (&template.on_error, template.batch_size);
            run(&mut plugins, on_error, batch_size, group, &mut done);
            self.pool.check_in(tenant, plugins);
        }
        done.into_iter().flatten().collect()
    }
}

impl Outcome {
    /// The outcome of an event that passed a chain of no plugins.
    fn kept(event: AuditEvent) -> Self {
        Self::Keep {
            event,
            attestations: Vec::new(),
        }
    }
}

/// Replaces `fields` of `event` with keyed pseudonyms (the field's name is the domain),
/// under its tenant's key.
fn pseudonymize_protected(event: &mut AuditEvent, fields: &[ProtectedField], key: &PseudonymKey) {
    for field in fields {
        let value = match field {
            ProtectedField::CorrelationId => &mut event.correlation_id,
            ProtectedField::ChainId => &mut event.chain_id,
        };
        if let Some(v) = value.as_mut() {
            *v = key.pseudonym(field.name(), v);
        }
    }
}

/// One tenant's events with their input positions, in input order.
type TenantGroup = (Option<String>, Vec<(usize, AuditEvent)>);

/// Splits events by tenant, keeping their input positions and, within a tenant, their order.
fn by_tenant(events: Vec<AuditEvent>) -> Vec<TenantGroup> {
    let mut groups: Vec<TenantGroup> = Vec::new();
    let mut index: HashMap<Option<String>, usize> = HashMap::new();
    for (i, event) in events.into_iter().enumerate() {
        let slot = match index.get(&event.tenant) {
            Some(&slot) => slot,
            None => {
                index.insert(event.tenant.clone(), groups.len());
                groups.push((event.tenant.clone(), Vec::new()));
                groups.len() - 1
            }
        };
        groups[slot].1.push((i, event));
    }
    groups
}

/// Runs one tenant's events through the plugins, writing each final outcome at the event's
/// input position.
fn run(
    plugins: &mut [Plugin],
    on_error: &[OnError],
    batch_size: usize,
    events: Vec<(usize, AuditEvent)>,
    done: &mut [Option<Outcome>],
) {
    let mut alive: Vec<(usize, AuditEvent, Vec<Attestation>)> = events
        .into_iter()
        .map(|(i, e)| (i, e, Vec::with_capacity(plugins.len())))
        .collect();
    for (plugin, on_error) in plugins.iter_mut().zip(on_error) {
        let mut survivors = Vec::with_capacity(alive.len());
        let mut pending = alive.into_iter();
        loop {
            let (meta, batch): (Vec<_>, Vec<_>) = pending
                .by_ref()
                .take(batch_size)
                .map(|(i, event, stamps)| ((i, stamps), event))
                .unzip();
            if batch.is_empty() {
                break;
            }
            let results = plugin.apply(&batch);
            for (((i, mut stamps), event), result) in meta.into_iter().zip(batch).zip(results) {
                let verdict = result.as_ref().map_or(AttestedVerdict::Error, attested);
                stamps.push(plugin.template().attestation(verdict));
                match decide(plugin.name(), *on_error, event, result, stamps) {
                    Step::Next(event, stamps) => survivors.push((i, event, stamps)),
                    Step::Done(outcome) => done[i] = Some(outcome),
                }
            }
        }
        alive = survivors;
    }
    for (i, event, attestations) in alive {
        done[i] = Some(Outcome::Keep {
            event,
            attestations,
        });
    }
}

/// The attested form of a verdict.
fn attested(verdict: &Verdict) -> AttestedVerdict {
    match verdict {
        Verdict::Keep(_) | Verdict::Pass => AttestedVerdict::Keep,
        Verdict::Drop(_) => AttestedVerdict::Drop,
        Verdict::Reject(_) => AttestedVerdict::Reject,
    }
}

/// Where an event goes after one plugin.
enum Step {
    /// On to the next plugin, as rewritten.
    Next(AuditEvent, Vec<Attestation>),
    /// Out of the chain with a final outcome.
    Done(Outcome),
}

/// Turns one plugin result into the event for the next plugin, or a final outcome.
fn decide(
    plugin: &str,
    on_error: OnError,
    event: AuditEvent,
    result: Result<Verdict, PluginError>,
    attestations: Vec<Attestation>,
) -> Step {
    // Only an event that leaves the chain here needs the plugin's name in its outcome.
    let plugin = || plugin.to_string();
    match result {
        Ok(Verdict::Keep(rewritten)) => Step::Next(rewritten, attestations),
        Ok(Verdict::Pass) => Step::Next(event, attestations),
        Ok(Verdict::Drop(reason)) => Step::Done(Outcome::Drop {
            marker: event.without_content(),
            plugin: plugin(),
            reason,
            attestations,
        }),
        Ok(Verdict::Reject(reason)) => Step::Done(Outcome::Reject {
            event_id: event.id,
            plugin: plugin(),
            reason,
            error: None,
            attestations,
        }),
        Err(error) => Step::Done(match on_error {
            OnError::Reject => Outcome::Reject {
                event_id: event.id,
                plugin: plugin(),
                reason: error.to_string(),
                error: Some(error),
                attestations,
            },
            OnError::Drop => Outcome::Drop {
                marker: event.without_content(),
                plugin: plugin(),
                reason: error.to_string(),
                attestations,
            },
        }),
    }
}
