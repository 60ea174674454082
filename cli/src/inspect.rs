//! `vellum plugin inspect`.

use std::path::Path;

use anyhow::Context;
use vellum::plugin::{
    ComponentCache, ComponentReport, EngineOptions, PluginEngine, inspect as inspect_component,
};

use super::{exit, report};

/// Reads a component (or `builtin:NAME`) and inspects it, with the compiled-component
/// cache (so a later load of the same component is fast).
pub fn component_report(path: &Path) -> anyhow::Result<ComponentReport> {
    let bytes = crate::builtins::read_component(path)?;
    let engine = PluginEngine::new(EngineOptions {
        fuel: false,
        cache_dir: ComponentCache::default_dir(),
    })?;
    inspect_component(&engine, &bytes)
        .with_context(|| format!("{} is not a loadable component", path.display()))
}

/// Prints the report for one component; exit code CONFIG when it cannot be read or is not a
/// component, or does not fit the plugin world.
pub fn inspect(path: &Path, json: bool) -> u8 {
    let report_ = match component_report(path) {
        Ok(r) => r,
        Err(e) => {
            report(&e);
            return exit::CONFIG;
        }
    };
    if json {
        match serde_json::to_string_pretty(&report_) {
            Ok(text) => say!("{text}"),
            Err(e) => {
                report(&e.into());
                return exit::ERROR;
            }
        }
    } else {
        say!("component: {}", path.display());
        say!("digest:    {}", report_.digest);
        say!("size:      {} bytes", report_.size);
        match &report_.world {
            Some(world) => say!("world:     {world}"),
            None => say!("world:     does not fit vellum:audit/plugin@0.1.0"),
        }
        for problem in &report_.problems {
            say!("  problem: {problem}");
        }
        for (title, items) in [("imports", &report_.imports), ("exports", &report_.exports)] {
            say!("{title}:");
            for item in items.iter() {
                say!("  {} {}", item.kind, item.name);
                for member in &item.members {
                    say!("    {member}");
                }
            }
        }
    }
    if report_.world.is_some() {
        exit::OK
    } else {
        exit::CONFIG
    }
}
