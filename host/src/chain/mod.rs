//! A chain of plugins applied in order to batches of events. An event leaves the chain
//! kept (as the last plugin left it), dropped or rejected; a failing plugin is handled by
//! its `on-error` policy, fail-closed by default, and unredacted content never passes a
//! plugin that failed on it.

mod config;
mod outcome;

use anyhow::{Context, Result};

pub use config::{ChainConfig, LimitsPatch, MAX_BATCH_SIZE, OnError, PluginConfig};
pub use outcome::{Attestation, Outcome};

use crate::event::AuditEvent;
use crate::plugin::{
    ComponentCache, EngineOptions, Plugin, PluginEngine, PluginError, PluginSpec, PseudonymKey,
    Verdict,
};

/// A loaded chain, ready to apply.
pub struct Chain {
    // Plugins hold stores of this engine, so they are declared (and dropped) first.
    plugins: Vec<(Plugin, OnError)>,
    engine: PluginEngine,
    batch_size: usize,
}

/// How to load a chain.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Do not read or write the compiled-component cache.
    pub no_cache: bool,
}

impl Chain {
    /// Loads every plugin of `config`: compiles (or loads from cache), links and configures
    /// each, failing on the first plugin that cannot be loaded.
    pub fn load(config: &ChainConfig, options: &LoadOptions) -> Result<Self> {
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
            .map_err(anyhow::Error::msg)?;
        let mut plugins = Vec::with_capacity(config.plugins.len());
        for plugin in &config.plugins {
            let component = std::fs::read(&plugin.component).with_context(|| {
                format!(
                    "plugin `{}`: cannot read component {}",
                    plugin.name,
                    plugin.component.display()
                )
            })?;
            let spec = PluginSpec {
                name: plugin.name.clone(),
                component,
                config: ChainConfig::config_text(plugin)?,
                limits: config.limits_for(plugin),
            };
            plugins.push((Plugin::load(&engine, spec, key.clone())?, plugin.on_error));
        }
        Ok(Self {
            plugins,
            engine,
            batch_size: config.batch_size,
        })
    }

    /// The loaded plugins, in order.
    pub fn plugins(&self) -> impl Iterator<Item = &Plugin> {
        self.plugins.iter().map(|(p, _)| p)
    }

    /// The engine the plugins run on.
    pub fn engine(&self) -> &PluginEngine {
        &self.engine
    }

    /// Applies the chain; returns one outcome per event, in input order.
    pub fn apply(&mut self, events: Vec<AuditEvent>) -> Vec<Outcome> {
        let mut done: Vec<Option<Outcome>> = (0..events.len()).map(|_| None).collect();
        let mut alive: Vec<(usize, AuditEvent, Vec<Attestation>)> = events
            .into_iter()
            .enumerate()
            .map(|(i, e)| (i, e, Vec::new()))
            .collect();
        for (plugin, on_error) in &mut self.plugins {
            let mut survivors = Vec::with_capacity(alive.len());
            let mut pending = alive.into_iter();
            loop {
                let (meta, batch): (Vec<_>, Vec<_>) = pending
                    .by_ref()
                    .take(self.batch_size)
                    .map(|(i, event, stamps)| ((i, stamps), event))
                    .unzip();
                if batch.is_empty() {
                    break;
                }
                let results = plugin.apply(&batch);
                for (((i, mut stamps), event), result) in meta.into_iter().zip(batch).zip(results) {
                    stamps.push(Attestation::new(plugin, &result));
                    match decide(plugin, *on_error, event, result, stamps) {
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
        done.into_iter().flatten().collect()
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
    plugin: &Plugin,
    on_error: OnError,
    event: AuditEvent,
    result: Result<Verdict, PluginError>,
    attestations: Vec<Attestation>,
) -> Step {
    let plugin_name = plugin.name().to_string();
    match result {
        Ok(Verdict::Keep(rewritten)) => Step::Next(rewritten, attestations),
        Ok(Verdict::Drop(reason)) => Step::Done(Outcome::Drop {
            marker: event.without_content(),
            plugin: plugin_name,
            reason,
            attestations,
        }),
        Ok(Verdict::Reject(reason)) => Step::Done(Outcome::Reject {
            event_id: event.id,
            plugin: plugin_name,
            reason,
            error: None,
            attestations,
        }),
        Err(error) => Step::Done(match on_error {
            OnError::Reject => Outcome::Reject {
                event_id: event.id,
                plugin: plugin_name,
                reason: error.to_string(),
                error: Some(error),
                attestations,
            },
            OnError::Drop => Outcome::Drop {
                marker: event.without_content(),
                plugin: plugin_name,
                reason: error.to_string(),
                attestations,
            },
        }),
    }
}
