//! Helpers over one event: its JSON payload, its labels, and a plugin's JSON configuration.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{AuditEvent, Label, Verdict};

/// The event's payload parsed as JSON; the error says it is not JSON and why.
pub fn payload(event: &AuditEvent) -> Result<Value, String> {
    serde_json::from_str(&event.payload).map_err(|e| format!("payload is not JSON: {e}"))
}

/// Lets `edit` change the payload as a JSON value and turns the result into a verdict:
/// [`Verdict::Pass`] when `edit` returns `false` (nothing changed: the payload is not
/// serialised again and the event is not copied back to the host), [`Verdict::Keep`] with the
/// re-serialised payload when it returns `true`, and [`Verdict::Reject`] when the payload is
/// not JSON (it cannot be inspected, so it must not pass unexamined).
pub fn edit_payload(mut event: AuditEvent, edit: impl FnOnce(&mut Value) -> bool) -> Verdict {
    let mut value = match payload(&event) {
        Ok(value) => value,
        Err(e) => return Verdict::Reject(e),
    };
    if !edit(&mut value) {
        return Verdict::Pass;
    }
    event.payload = value.to_string();
    Verdict::Keep(event)
}

/// Calls `visit` on every string inside `value` (object values and array items, at any
/// depth; not object keys) and returns whether any call returned `true` (changed it).
pub fn strings_mut(value: &mut Value, mut visit: impl FnMut(&mut String) -> bool) -> bool {
    fn walk(value: &mut Value, visit: &mut dyn FnMut(&mut String) -> bool) -> bool {
        match value {
            Value::String(s) => visit(s),
            Value::Array(items) => items
                .iter_mut()
                .fold(false, |changed, item| walk(item, visit) | changed),
            Value::Object(map) => map
                .values_mut()
                .fold(false, |changed, item| walk(item, visit) | changed),
            Value::Null | Value::Bool(_) | Value::Number(_) => false,
        }
    }
    walk(value, &mut visit)
}

/// The value of the event's label `key`, if it has one.
pub fn label<'a>(event: &'a AuditEvent, key: &str) -> Option<&'a str> {
    event
        .labels
        .iter()
        .find(|l| l.key == key)
        .map(|l| l.value.as_str())
}

/// Sets label `key` to `value`, replacing its value when the event has it already (keys are
/// unique within an event).
pub fn set_label(event: &mut AuditEvent, key: &str, value: impl Into<String>) {
    let value = value.into();
    match event.labels.iter_mut().find(|l| l.key == key) {
        Some(label) => label.value = value,
        None => event.labels.push(Label {
            key: key.to_string(),
            value,
        }),
    }
}

/// Removes label `key`; returns its value when the event had it.
pub fn remove_label(event: &mut AuditEvent, key: &str) -> Option<String> {
    let index = event.labels.iter().position(|l| l.key == key)?;
    Some(event.labels.remove(index).value)
}

/// Parses a JSON configuration into `T` (use `#[serde(deny_unknown_fields)]` so typos are
/// refused). Empty text stands for `{}`, so a chain may omit the configuration when every
/// field has a default. Errors read "invalid configuration: …" and name the field.
pub fn json_config<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    let text = if text.trim().is_empty() { "{}" } else { text };
    serde_json::from_str(text).map_err(|e| format!("invalid configuration: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Timestamp;

    fn event(payload: &str) -> AuditEvent {
        AuditEvent {
            id: "e1".into(),
            occurred_at: Timestamp {
                seconds: 0,
                nanoseconds: 0,
            },
            tenant: None,
            correlation_id: None,
            chain_id: None,
            actor: None,
            kind: "tool.call".into(),
            subject: None,
            payload: payload.into(),
            labels: vec![Label {
                key: "env".into(),
                value: "prod".into(),
            }],
        }
    }

    #[test]
    fn an_unchanged_payload_passes_and_a_changed_one_is_kept_reserialised() {
        let untouched = edit_payload(event(r#"{"a": "x"}"#), |_| false);
        assert!(matches!(untouched, Verdict::Pass));
        let changed = edit_payload(event(r#"{"a": ["x", {"b": "x"}], "n": 1}"#), |v| {
            strings_mut(v, |s| {
                s.push('!');
                true
            })
        });
        let Verdict::Keep(kept) = changed else {
            panic!("expected keep")
        };
        assert_eq!(kept.payload, r#"{"a":["x!",{"b":"x!"}],"n":1}"#);
    }

    #[test]
    fn a_payload_that_is_not_json_is_rejected_naming_why() {
        let Verdict::Reject(reason) = edit_payload(event("not json"), |_| true) else {
            panic!("expected reject")
        };
        assert!(reason.starts_with("payload is not JSON"), "{reason}");
    }

    #[test]
    fn strings_mut_reports_whether_anything_changed() {
        let mut value: Value = serde_json::json!({"k": ["a", 1, null, {"n": "b"}]});
        assert!(!strings_mut(&mut value, |_| false));
        let mut seen = Vec::new();
        strings_mut(&mut value, |s| {
            seen.push(s.clone());
            false
        });
        assert_eq!(seen, ["a", "b"]);
    }

    #[test]
    fn labels_are_read_replaced_added_and_removed() {
        let mut e = event("{}");
        assert_eq!(label(&e, "env"), Some("prod"));
        set_label(&mut e, "env", "dev");
        set_label(&mut e, "team", "core");
        assert_eq!(label(&e, "env"), Some("dev"));
        assert_eq!(e.labels.len(), 2);
        assert_eq!(remove_label(&mut e, "team").as_deref(), Some("core"));
        assert_eq!(remove_label(&mut e, "team"), None);
    }

    #[test]
    fn json_config_treats_empty_as_defaults_and_names_bad_fields() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        struct Config {
            #[serde(default)]
            label: Option<String>,
        }
        assert!(json_config::<Config>("  ").is_ok_and(|c| c.label.is_none()));
        let err = json_config::<Config>(r#"{"lable": "x"}"#).expect_err("typo refused");
        assert!(
            err.contains("invalid configuration") && err.contains("lable"),
            "{err}"
        );
    }
}
