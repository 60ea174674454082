//! `vellum plugin inspect`: what a component imports and exports, its size and digest, and
//! whether it fits the `vellum:audit/plugin` world.

use serde::Serialize;
use wasmtime::component::Component;
use wasmtime::component::types::{ComponentExtern, ComponentItem};

use super::engine::{EngineError, PluginEngine};
use super::instance::{PROVIDED_IMPORTS, check_instantiates, link, sha256_digest};

/// The interface a plugin must export.
const FILTER_EXPORT: &str = "vellum:audit/filter@0.1.0";
/// The world a conforming plugin targets.
const PLUGIN_WORLD: &str = "vellum:audit/plugin@0.1.0";

/// A description of a component.
#[derive(Debug, Serialize)]
pub struct ComponentReport {
    /// `sha256:<hex>` of the component bytes.
    pub digest: String,
    /// Size in bytes.
    pub size: usize,
    /// `vellum:audit/plugin@0.1.0` when the component fits the plugin world.
    pub world: Option<String>,
    /// Why it does not fit the plugin world, if it does not.
    pub problems: Vec<String>,
    /// Every import, with the items it contains.
    pub imports: Vec<Item>,
    /// Every export, with the items it contains.
    pub exports: Vec<Item>,
}

/// One import or export.
#[derive(Debug, Serialize)]
pub struct Item {
    /// The import or export name, e.g. `vellum:audit/host@0.1.0`.
    pub name: String,
    /// `instance`, `func`, `type`, `module`, `component` or `resource`.
    pub kind: &'static str,
    /// For instances: the names of their functions and types, as `kind name`.
    pub members: Vec<String>,
}

/// Inspects a component (compiling it, through the cache, to read its type).
pub fn inspect(engine: &PluginEngine, bytes: &[u8]) -> Result<ComponentReport, EngineError> {
    let digest = sha256_digest(bytes);
    let component: Component = engine.load_component(bytes, &digest)?;
    let ty = component.component_type();
    let items = |iter: &mut dyn Iterator<Item = (&str, ComponentExtern<'_>)>| -> Vec<Item> {
        iter.map(|(name, item)| describe(engine, name, &item.ty))
            .collect()
    };
    let imports = items(&mut ty.imports(engine.engine()));
    let exports = items(&mut ty.exports(engine.engine()));

    let mut problems: Vec<String> = imports
        .iter()
        .filter(|i| {
            !PROVIDED_IMPORTS.contains(&i.name.as_str()) && !super::wasi::is_provided_wasi(&i.name)
        })
        .map(|i| format!("imports `{}`, which the host does not provide", i.name))
        .collect();
    match exports.iter().find(|e| e.name == FILTER_EXPORT) {
        None => problems.push(format!("does not export `{FILTER_EXPORT}`")),
        Some(filter) => {
            for func in ["func configure", "func apply"] {
                if !filter.members.iter().any(|m| m == func) {
                    problems.push(format!("`{FILTER_EXPORT}` lacks `{func}`"));
                }
            }
        }
    }
    // Names are not enough: link it exactly as loading does (import kinds and signatures,
    // export signatures).
    if problems.is_empty()
        && let Err(e) = link(engine, &component).and_then(|pre| check_instantiates(engine, &pre))
    {
        problems.push(format!("does not link as a plugin: {e}"));
    }
    Ok(ComponentReport {
        digest,
        size: bytes.len(),
        world: problems.is_empty().then(|| PLUGIN_WORLD.to_string()),
        problems,
        imports,
        exports,
    })
}

fn describe(engine: &PluginEngine, name: &str, item: &ComponentItem) -> Item {
    let members = match item {
        ComponentItem::ComponentInstance(instance) => instance
            .exports(engine.engine())
            .map(|(member, item)| format!("{} {member}", kind(&item.ty)))
            .collect(),
        _ => Vec::new(),
    };
    Item {
        name: name.to_string(),
        kind: kind(item),
        members,
    }
}

fn kind(item: &ComponentItem) -> &'static str {
    match item {
        ComponentItem::ComponentFunc(_) => "func",
        ComponentItem::CoreFunc(_) => "core-func",
        ComponentItem::Module(_) => "module",
        ComponentItem::Component(_) => "component",
        ComponentItem::ComponentInstance(_) => "instance",
        ComponentItem::Type(_) => "type",
        ComponentItem::Resource(_) => "resource",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::EngineOptions;

    /// The filter's names, with the wrong signatures: names alone would pass.
    const WRONG_SIGNATURES: &str = r#"
(component
  (core module $m
    (func (export "configure") (param i32))
    (func (export "apply") (param i32)))
  (core instance $i (instantiate $m))
  (func $configure (param "config" u32) (canon lift (core func $i "configure")))
  (func $apply (param "events" u32) (canon lift (core func $i "apply")))
  (instance $filter (export "configure" (func $configure)) (export "apply" (func $apply)))
  (export "vellum:audit/filter@0.1.0" (instance $filter)))
"#;

    #[test]
    fn wrong_signatures_under_the_right_names_are_a_problem() {
        let engine = PluginEngine::new(EngineOptions {
            fuel: false,
            cache_dir: None,
        })
        .unwrap();
        let bytes = wat::parse_str(WRONG_SIGNATURES).unwrap();
        let report = inspect(&engine, &bytes).unwrap();
        assert_eq!(report.world, None, "{:?}", report.problems);
        assert!(
            report.problems[0].contains("does not link as a plugin"),
            "{:?}",
            report.problems
        );
    }
}
