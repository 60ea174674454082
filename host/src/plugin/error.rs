//! Typed plugin failures. Every failure names the plugin, its component digest and, when it
//! concerns one event, the event id. Classification is by type (wasmtime's `Trap`, the
//! limiter's [`LimitExceeded`]), never by matching error text.

use std::fmt;

use super::host_api::HostRefusal;
use super::limits::LimitExceeded;

/// What went wrong inside or with a plugin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginFailure {
    /// The component could not be read, compiled or linked (for example it imports
    /// something the host does not provide).
    #[error("cannot load component: {0}")]
    Load(String),
    /// The plugin's `configure` rejected its configuration.
    #[error("configuration rejected by the plugin: {0}")]
    ConfigRejected(String),
    /// The guest trapped (a panic, `unreachable`, an out-of-bounds access, ...).
    #[error("guest trapped: {0}")]
    Trap(String),
    /// A host function the plugin called refused the call (for example `pseudonymize`
    /// without a configured key).
    #[error("a host function refused the call: {0}")]
    HostRefusal(String),
    /// The call ran past the plugin's wall-clock deadline and was interrupted.
    #[error("exceeded its deadline of {deadline_ms} ms")]
    Deadline {
        /// The configured deadline.
        deadline_ms: u64,
    },
    /// The call consumed all the fuel the plugin was given.
    #[error("ran out of fuel ({fuel} units)")]
    FuelExhausted {
        /// The configured fuel.
        fuel: u64,
    },
    /// The guest tried to grow its memory or tables beyond the cap.
    #[error("{0}")]
    ResourceLimit(LimitExceeded),
    /// `apply` returned a different number of verdicts than it was given events.
    #[error("returned {got} verdicts for {expected} events")]
    WrongVerdictCount {
        /// Events passed in.
        expected: usize,
        /// Verdicts returned.
        got: usize,
    },
    /// A kept event had a protected envelope field changed.
    #[error("changed the protected field `{field}`")]
    ProtectedFieldChanged {
        /// The field that changed.
        field: &'static str,
    },
    /// The verdicts of one call were larger than the output cap.
    #[error("returned {bytes} bytes of output, more than the {limit}-byte cap")]
    OutputTooLarge {
        /// Size of the output (strings' bytes).
        bytes: usize,
        /// The configured cap.
        limit: usize,
    },
    /// The output could not be decoded or is not a valid event (bad JSON payload, duplicate
    /// labels, bad pointers, more data than the lifting budget allows, ...).
    #[error("returned malformed output: {0}")]
    MalformedOutput(String),
}

impl PluginFailure {
    /// Classifies an error returned by a call into the guest.
    pub(crate) fn from_call_error(
        error: wasmtime::Error,
        deadline_ms: u64,
        fuel: Option<u64>,
    ) -> Self {
        if let Some(limit) = error.downcast_ref::<LimitExceeded>() {
            return Self::ResourceLimit(limit.clone());
        }
        if let Some(refusal) = error.downcast_ref::<HostRefusal>() {
            return Self::HostRefusal(refusal.0.clone());
        }
        match error.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::Interrupt) => Self::Deadline { deadline_ms },
            Some(wasmtime::Trap::OutOfFuel) => Self::FuelExhausted {
                fuel: fuel.unwrap_or(u64::MAX),
            },
            Some(trap) => Self::Trap(format!("{trap}: {}", first_line(&error))),
            // Not a trap: the canonical ABI refused to lift what the guest returned.
            None => Self::MalformedOutput(format!("{error:#}")),
        }
    }

    /// A short machine-readable name for the failure class (used in JSON output).
    pub fn class(&self) -> &'static str {
        match self {
            Self::Load(_) => "load",
            Self::ConfigRejected(_) => "config-rejected",
            Self::Trap(_) => "trap",
            Self::HostRefusal(_) => "host-refusal",
            Self::Deadline { .. } => "deadline",
            Self::FuelExhausted { .. } => "fuel",
            Self::ResourceLimit(LimitExceeded::Memory { .. }) => "memory-limit",
            Self::ResourceLimit(LimitExceeded::Table { .. }) => "table-limit",
            Self::WrongVerdictCount { .. } => "wrong-verdict-count",
            Self::ProtectedFieldChanged { .. } => "protected-field-changed",
            Self::OutputTooLarge { .. } => "output-too-large",
            Self::MalformedOutput(_) => "malformed-output",
        }
    }
}

/// The first line of an error's full report (wasmtime appends a multi-line backtrace).
fn first_line(error: &wasmtime::Error) -> String {
    let text = format!("{error:#}");
    text.lines().next().unwrap_or_default().to_string()
}

/// A plugin failure with the context needed to act on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginError {
    /// The plugin's name in the chain.
    pub plugin: String,
    /// `sha256:<hex>` of the component bytes.
    pub digest: String,
    /// The event being processed, when the failure is tied to one event.
    pub event_id: Option<String>,
    /// What went wrong.
    pub failure: PluginFailure,
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "plugin `{}` ({}) ",
            self.plugin,
            short_digest(&self.digest)
        )?;
        match &self.event_id {
            Some(id) => write!(f, "failed on event `{id}`: {}", self.failure),
            None => write!(f, "failed: {}", self.failure),
        }
    }
}

impl std::error::Error for PluginError {}

/// `sha256:` plus the first 12 hex digits, enough to tell components apart in messages.
fn short_digest(digest: &str) -> &str {
    digest.get(..19).unwrap_or(digest)
}
