//! Per-plugin resource limits and the store limiter that enforces the memory and table caps.

use serde::{Deserialize, Serialize};

/// Resource limits for one plugin. Every field has a safe default; the chain TOML can
/// override each one (see the README).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Limits {
    /// Wall-clock deadline for one call into the plugin (`configure` or one `apply`), in
    /// milliseconds. Enforced by epoch interruption: the guest traps when it passes.
    pub deadline_ms: u64,
    /// Optional fuel (roughly, wasm instructions) per call: deterministic, unlike the
    /// deadline, but it slows every plugin in the chain down when any plugin sets it.
    pub fuel: Option<u64>,
    /// Largest linear memory the guest may grow to, in bytes.
    pub max_memory_bytes: usize,
    /// Largest number of elements a guest table may have.
    pub max_table_elements: usize,
    /// Largest total size, in bytes, of the strings in one `apply` call's verdicts.
    pub max_output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            deadline_ms: 1_000,
            fuel: None,
            max_memory_bytes: 64 << 20,
            max_table_elements: 10_000,
            max_output_bytes: 16 << 20,
        }
    }
}

impl Limits {
    /// Checks that the limits can be enforced.
    pub fn validate(&self) -> Result<(), String> {
        if self.deadline_ms == 0 {
            return Err("deadline-ms must be at least 1".to_string());
        }
        if self.fuel == Some(0) {
            return Err("fuel must be at least 1 (omit it for no fuel limit)".to_string());
        }
        if self.max_memory_bytes < 64 << 10 {
            return Err("max-memory-bytes must be at least 65536 (one wasm page)".to_string());
        }
        if self.max_output_bytes == 0 {
            return Err("max-output-bytes must be at least 1".to_string());
        }
        Ok(())
    }
}

/// A guest tried to grow a memory or table past its cap.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitExceeded {
    /// Linear memory growth was refused.
    #[error("tried to grow its memory to {desired} bytes, past the {limit}-byte cap")]
    Memory {
        /// Requested size in bytes.
        desired: usize,
        /// The cap.
        limit: usize,
    },
    /// Table growth was refused.
    #[error("tried to grow a table to {desired} elements, past the {limit}-element cap")]
    Table {
        /// Requested number of elements.
        desired: usize,
        /// The cap.
        limit: usize,
    },
}

/// Maximum number of core instances, tables and memories in one plugin instance. A
/// component is a handful of core modules; these only stop pathological components.
const MAX_CORE_INSTANCES: usize = 64;
/// See [`MAX_CORE_INSTANCES`].
const MAX_TABLES: usize = 64;
/// See [`MAX_CORE_INSTANCES`].
const MAX_MEMORIES: usize = 4;

/// Enforces [`Limits`] on one store. Growth past a cap traps with [`LimitExceeded`] (rather
/// than failing the grow quietly) so the failure is classified precisely.
#[derive(Debug)]
pub struct StoreLimiter {
    max_memory_bytes: usize,
    max_table_elements: usize,
}

impl StoreLimiter {
    /// A limiter for the given limits.
    pub fn new(limits: &Limits) -> Self {
        Self {
            max_memory_bytes: limits.max_memory_bytes,
            max_table_elements: limits.max_table_elements,
        }
    }
}

impl wasmtime::ResourceLimiter for StoreLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_memory_bytes {
            return Err(LimitExceeded::Memory {
                desired,
                limit: self.max_memory_bytes,
            }
            .into());
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_table_elements {
            return Err(LimitExceeded::Table {
                desired,
                limit: self.max_table_elements,
            }
            .into());
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        MAX_CORE_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}
