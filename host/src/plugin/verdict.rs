//! Checking what a plugin returned before anything of it is trusted: one verdict per event,
//! the output size cap, protected envelope fields unchanged, and a valid event.

use super::bindings::{self, WitVerdict};
use super::error::PluginFailure;
use crate::event::AuditEvent;

/// A plugin's decision about one event, after validation.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// Pass the rewritten event on.
    Keep(AuditEvent),
    /// Pass the event on exactly as it was given.
    Pass,
    /// Store only a drop marker with this reason.
    Drop(String),
    /// Refuse the event with this reason.
    Reject(String),
}

impl Verdict {
    /// `keep`, `drop` or `reject`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Keep(_) | Self::Pass => "keep",
            Self::Drop(_) => "drop",
            Self::Reject(_) => "reject",
        }
    }
}

/// Validates the raw verdicts for `inputs` and converts them to host values.
pub(crate) fn check(
    inputs: &[AuditEvent],
    outputs: Vec<WitVerdict>,
    max_output_bytes: usize,
) -> Result<Vec<Verdict>, PluginFailure> {
    if outputs.len() != inputs.len() {
        let failure = PluginFailure::WrongVerdictCount {
            expected: inputs.len(),
            got: outputs.len(),
        };
        return Err(failure);
    }
    let bytes: usize = outputs.iter().map(output_bytes).sum();
    if bytes > max_output_bytes {
        let failure = PluginFailure::OutputTooLarge {
            bytes,
            limit: max_output_bytes,
        };
        return Err(failure);
    }
    inputs
        .iter()
        .zip(outputs)
        .map(|(input, output)| check_one(input, output))
        .collect()
}

fn check_one(input: &AuditEvent, output: WitVerdict) -> Result<Verdict, PluginFailure> {
    match output {
        WitVerdict::Keep(event) => {
            let event = bindings::from_wit(event, input).map_err(PluginFailure::MalformedOutput)?;
            if let Some(field) = input.protected_fields_differ(&event) {
                return Err(PluginFailure::ProtectedFieldChanged { field });
            }
            if let Some(field) = event.field_with_nul() {
                return Err(PluginFailure::MalformedOutput(format!(
                    "field `{field}` contains U+0000 (NUL)"
                )));
            }
            Ok(Verdict::Keep(event))
        }
        WitVerdict::Pass => Ok(Verdict::Pass),
        WitVerdict::Drop(reason) | WitVerdict::Reject(reason) if reason.contains('\0') => Err(
            PluginFailure::MalformedOutput("the reason contains U+0000 (NUL)".to_string()),
        ),
        WitVerdict::Drop(reason) => Ok(Verdict::Drop(reason)),
        WitVerdict::Reject(reason) => Ok(Verdict::Reject(reason)),
    }
}

/// Bytes of string data in one verdict.
fn output_bytes(verdict: &WitVerdict) -> usize {
    match verdict {
        WitVerdict::Keep(e) => {
            let optional = [
                &e.tenant,
                &e.correlation_id,
                &e.chain_id,
                &e.actor,
                &e.subject,
            ]
            .iter()
            .map(|o| o.as_ref().map_or(0, String::len))
            .sum::<usize>();
            let labels: usize = e.labels.iter().map(|l| l.key.len() + l.value.len()).sum();
            e.id.len() + e.kind.len() + e.payload.len() + optional + labels
        }
        WitVerdict::Pass => 0,
        WitVerdict::Drop(reason) | WitVerdict::Reject(reason) => reason.len(),
    }
}
