//! Erasure, retention and legal hold: what may be forgotten, and the signed record that
//! says it was.
//!
//! An erasure removes the content of entries (and, for a subject or a tenant, destroys
//! their data keys) and appends one `vellum.erasure` entry saying who erased what, when and
//! why: its reason, the erased keys and sequence numbers, never the erased content or a
//! plain subject. `verify` requires every erased entry to be covered by such a record under
//! a signed checkpoint (`erased-without-record` otherwise).

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::content::KeyId;
use super::keys::HoldTarget;
use crate::event::AuditEvent;

/// The kind of an erasure record.
pub const ERASURE_KIND: &str = "vellum.erasure";

/// Which field of an event names its data subject, whose key seals its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectField {
    /// A label (`label:data_subject`, the default).
    Label(String),
    /// The actor.
    Actor,
    /// The subject field.
    Subject,
    /// The correlation id.
    CorrelationId,
    /// A JSON pointer into the payload (`/user/id`); strings and numbers count.
    Pointer(String),
}

impl Default for SubjectField {
    fn default() -> Self {
        Self::Label("data_subject".to_string())
    }
}

impl SubjectField {
    /// Parses `label:NAME`, `actor`, `subject`, `correlation_id` or a JSON pointer.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "actor" => Ok(Self::Actor),
            "subject" => Ok(Self::Subject),
            "correlation_id" => Ok(Self::CorrelationId),
            _ if text.starts_with('/') => Ok(Self::Pointer(text.to_string())),
            _ => match text.strip_prefix("label:") {
                Some(name) if !name.is_empty() => Ok(Self::Label(name.to_string())),
                _ => Err(format!(
                    "subject-field `{text}`: expected `label:NAME`, `actor`, `subject`, \
                     `correlation_id` or a JSON pointer such as `/user/id`"
                )),
            },
        }
    }

    /// The data subject of `event`, if it names one (empty values do not count).
    pub fn value(&self, event: &AuditEvent) -> Option<String> {
        let value = match self {
            Self::Label(name) => event.labels.get(name).cloned(),
            Self::Actor => event.actor.clone(),
            Self::Subject => event.subject.clone(),
            Self::CorrelationId => event.correlation_id.clone(),
            Self::Pointer(pointer) => {
                let payload: serde_json::Value =
                    serde_json::from_str(event.payload.as_str()).ok()?;
                match payload.pointer(pointer)? {
                    serde_json::Value::String(s) => Some(s.clone()),
                    serde_json::Value::Number(n) => Some(n.to_string()),
                    _ => None,
                }
            }
        };
        value.filter(|v| !v.is_empty())
    }
}

/// What to erase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EraseTarget {
    /// Every entry of a data subject, in one tenant or (`tenant: None`) in all; destroys
    /// the subject's keys.
    Subject {
        /// The subject, as the subject field gives it.
        subject: String,
        /// Only in this tenant.
        tenant: Option<String>,
    },
    /// Every entry of a tenant; destroys all its keys.
    Tenant(String),
    /// These entries only (a leaked secret, retention); their keys stay.
    Entries(Vec<u64>),
}

/// What erasure does with entries under a legal hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnHold {
    /// Refuse the whole erasure, naming the hold.
    Refuse,
    /// Leave held entries alone and erase the rest (retention).
    Skip,
    /// Erase anyway; the record names the holds overridden.
    Override,
}

/// An erasure to perform.
#[derive(Debug, Clone)]
pub struct EraseRequest {
    /// What.
    pub target: EraseTarget,
    /// Why (kept in the record).
    pub reason: String,
    /// Who asked (an operator, a token's name; kept in the record).
    pub by: String,
    /// What to do about legal holds.
    pub on_hold: OnHold,
}

/// The payload of a `vellum.erasure` record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErasureRecord {
    /// `subject`, `tenant`, `entries` or `retention`.
    pub scope: String,
    /// The tenant erased, or that a subject's erasure was limited to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The erased subject's keyed hash (hex), never the subject itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_hash: Option<String>,
    /// Why.
    pub reason: String,
    /// Who.
    pub by: String,
    /// The data keys destroyed: every entry sealed under them is erased.
    #[serde(default)]
    pub keys: Vec<KeyId>,
    /// The entries erased one by one, as inclusive ranges `[first, last]`.
    #[serde(default)]
    pub seqs: Vec<(u64, u64)>,
    /// How many entries' content this erasure removed.
    pub entries_erased: u64,
    /// Legal holds this erasure overrode (their ids).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holds_overridden: Vec<u64>,
}

impl ErasureRecord {
    /// Whether this record erases entry `seq` sealed under `key`.
    pub fn covers(&self, seq: u64, key: Option<&KeyId>) -> bool {
        key.is_some_and(|k| self.keys.contains(k))
            || self
                .seqs
                .iter()
                .any(|&(first, last)| (first..=last).contains(&seq))
    }
}

/// Sorted sequence numbers as inclusive ranges.
pub fn ranges(seqs: &BTreeSet<u64>) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &seq in seqs {
        match out.last_mut() {
            Some((_, last)) if *last + 1 == seq => *last = seq,
            _ => out.push((seq, seq)),
        }
    }
    out
}

/// What an erasure did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EraseReport {
    /// The sequence number of the `vellum.erasure` record.
    pub record_seq: u64,
    /// Entries whose content was removed.
    pub entries_erased: u64,
    /// Data keys destroyed.
    pub keys_destroyed: usize,
    /// Entries left alone because a legal hold covers them (retention).
    pub held: usize,
    /// Legal holds overridden.
    pub holds_overridden: Vec<u64>,
}

/// One retention rule: entries of a tenant and/or kind are erased once older than
/// `keep_days` (by the later of their occurred and recorded times).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RetentionRule {
    /// Only this tenant (any, when unset).
    #[serde(default)]
    pub tenant: Option<String>,
    /// Only this kind (any, when unset).
    #[serde(default)]
    pub kind: Option<String>,
    /// Days an entry is kept.
    pub keep_days: u32,
}

impl RetentionRule {
    /// How specific the rule is: tenant and kind > tenant > kind > neither.
    fn specificity(&self) -> u8 {
        u8::from(self.tenant.is_some()) * 2 + u8::from(self.kind.is_some())
    }

    fn applies(&self, tenant: Option<&str>, kind: &str) -> bool {
        self.tenant.as_deref().is_none_or(|t| Some(t) == tenant)
            && self.kind.as_deref().is_none_or(|k| k == kind)
    }
}

/// The rule that governs an entry of `tenant` and `kind`: the most specific one that
/// applies (so `tenant = "acme", keep-days = 365` keeps acme's entries longer than a
/// catch-all of 180). Erasure records are never due.
pub fn governing_rule<'a>(
    rules: &'a [RetentionRule],
    tenant: Option<&str>,
    kind: &str,
) -> Option<&'a RetentionRule> {
    if kind == ERASURE_KIND {
        return None;
    }
    rules
        .iter()
        .filter(|r| r.applies(tenant, kind))
        .max_by_key(|r| (r.specificity(), std::cmp::Reverse(r.keep_days)))
}

/// When an entry of `rule` recorded at `recorded` and occurred at `occurred` is due: the
/// later of the two plus `keep_days`, so a producer's clock cannot make an entry due early.
pub fn due_at(rule: &RetentionRule, recorded: Timestamp, occurred: Timestamp) -> Timestamp {
    let newest = recorded.max(occurred);
    newest
        .checked_add(jiff::SignedDuration::from_hours(
            i64::from(rule.keep_days) * 24,
        ))
        .unwrap_or(Timestamp::MAX)
}

/// What a retention run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RetentionReport {
    /// Entries whose content was erased.
    pub erased: u64,
    /// Due entries left alone under a legal hold.
    pub held: usize,
    /// Due entries of format 1, which cannot be erased.
    pub format_1: u64,
    /// The erasure records written.
    pub records: Vec<u64>,
}

/// Whether a hold covers an entry of `tenant`, `correlation` and subject hash (hex).
pub fn hold_covers(
    hold: &HoldTarget,
    tenant: Option<&str>,
    correlation: Option<&str>,
    subject_hash: Option<&str>,
) -> bool {
    match hold {
        HoldTarget::Tenant(t) => tenant == Some(t.as_str()),
        HoldTarget::Correlation(c) => correlation == Some(c.as_str()),
        HoldTarget::Subject(h) => subject_hash == Some(h.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_fields_parse_and_read_events() {
        let event: AuditEvent = serde_json::from_str(
            r#"{"id":"e","occurred_at":"2026-01-01T00:00:00Z","kind":"k","actor":"user:ada",
                "payload":{"user":{"id":42}},"labels":{"data_subject":"ada"}}"#,
        )
        .unwrap();
        let value = |f: &str| SubjectField::parse(f).unwrap().value(&event);
        assert_eq!(value("label:data_subject").as_deref(), Some("ada"));
        assert_eq!(value("actor").as_deref(), Some("user:ada"));
        assert_eq!(value("/user/id").as_deref(), Some("42"));
        assert_eq!(value("subject"), None);
        assert!(SubjectField::parse("label:").is_err());
        assert!(SubjectField::parse("payload.user").is_err());
    }

    #[test]
    fn the_most_specific_retention_rule_governs() {
        let rule = |tenant: Option<&str>, kind: Option<&str>, keep_days| RetentionRule {
            tenant: tenant.map(Into::into),
            kind: kind.map(Into::into),
            keep_days,
        };
        let rules = [
            rule(None, None, 180),
            rule(Some("acme"), None, 365),
            rule(Some("acme"), Some("llm.call"), 30),
        ];
        let days = |t, k| governing_rule(&rules, t, k).map(|r| r.keep_days);
        assert_eq!(days(Some("acme"), "llm.call"), Some(30));
        assert_eq!(days(Some("acme"), "tool.call"), Some(365));
        assert_eq!(days(Some("other"), "tool.call"), Some(180));
        assert_eq!(days(None, ERASURE_KIND), None);
        assert_eq!(
            ranges(&[1, 2, 3, 7, 9, 10].into()),
            vec![(1, 3), (7, 7), (9, 10)]
        );
    }
}
