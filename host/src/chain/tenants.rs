//! Plugin instances kept per tenant, so that no instance ever sees the events of two
//! tenants: whatever a plugin remembers between calls (a static, a cache in its heap) stays
//! within one tenant.
//!
//! The instances live in a pool shared by every runner of a chain: a runner checks out the
//! set of instances (one per plugin) of the tenant it is about to serve, runs that tenant's
//! events, and checks the set back in. Two runners serving the same tenant at once each get
//! a set. Past the pool's capacity, the least recently used sets are discarded and a
//! returning tenant gets fresh, freshly configured instances.

use std::sync::{Arc, Mutex};

use crate::plugin::{Plugin, PluginTemplate};

/// Instance sets a pool keeps by default: one per active tenant (plus one per worker when
/// several serve the same tenant at once). Each set holds one instance of every plugin.
pub const DEFAULT_TENANT_CAPACITY: usize = 64;

/// One plugin instance per plugin of the chain, all serving one tenant.
pub(crate) type InstanceSet = Vec<Plugin>;

/// The idle instance sets of a chain's tenants (`None` is the events without a tenant, kept
/// apart like any other tenant).
pub(crate) struct InstancePool {
    idle: Mutex<Idle>,
    capacity: usize,
}

struct Idle {
    slots: Vec<Slot>,
    clock: u64,
}

struct Slot {
    tenant: Option<String>,
    plugins: InstanceSet,
    used: u64,
}

impl InstancePool {
    /// An empty pool keeping at most `capacity` (at least 1) idle sets.
    pub(crate) fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            idle: Mutex::new(Idle {
                slots: Vec::new(),
                clock: 0,
            }),
            capacity: capacity.max(1),
        })
    }

    /// An idle set serving `tenant`, or a new one made from `templates`.
    pub(crate) fn check_out(
        &self,
        tenant: Option<&str>,
        templates: &[Arc<PluginTemplate>],
    ) -> InstanceSet {
        let found = self.with_idle(|idle| {
            let at = idle
                .slots
                .iter()
                .position(|s| s.tenant.as_deref() == tenant)?;
            Some(idle.slots.swap_remove(at).plugins)
        });
        found.unwrap_or_else(|| templates.iter().map(|t| t.instance_for(tenant)).collect())
    }

    /// Returns a set after use, discarding the least recently used past the capacity.
    pub(crate) fn check_in(&self, tenant: Option<String>, plugins: InstanceSet) {
        let evicted = self.with_idle(|idle| {
            idle.clock += 1;
            idle.slots.push(Slot {
                tenant,
                plugins,
                used: idle.clock,
            });
            if idle.slots.len() <= self.capacity {
                return None;
            }
            let lru = (0..idle.slots.len()).min_by_key(|&i| idle.slots[i].used)?;
            Some(idle.slots.swap_remove(lru))
        });
        // Instances are dropped outside the lock: tearing down a store takes a while.
        drop(evicted);
    }

    fn with_idle<T>(&self, f: impl FnOnce(&mut Idle) -> Option<T>) -> Option<T> {
        let mut idle = match self.idle.lock() {
            Ok(idle) => idle,
            // A panic while holding the lock left plain data behind; it is still usable.
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut idle)
    }
}
