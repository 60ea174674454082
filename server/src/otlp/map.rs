//! OTLP records → audit events.
//!
//! - A span becomes one event. Its id is derived from the trace and span ids, and a log
//!   record's from a digest of the record and its resource, so a redelivered record gets
//!   the same id and is recorded once (the emit is idempotent by event id).
//! - The trace id becomes the correlation id; the resource's `service.name` the actor;
//!   `gen_ai.conversation.id` the chain id when it is id-shaped. No plugin may rewrite a
//!   protected field, so user content stays out of them where it can: a conversation id or
//!   a log's event name that is not id- or kind-shaped stays in the payload only.
//! - OpenTelemetry GenAI spans become the well-known kinds: `execute_tool` → `tool.call`
//!   (subject: the tool), `invoke_agent` → `agent.invoke`, `create_agent` →
//!   `agent.spawned` (subject: the agent), `chat`, `text_completion`, `generate_content`
//!   → `llm.call`, `embeddings` → `llm.embeddings` (subject: the model). Other spans are
//!   `otel.span`; log records take their event name, or `otel.log`.
//! - Attributes, status, span events and the log body go to the payload, as JSON.
//! - The record's (else the resource's) `user.id` or `enduser.id` becomes the
//!   `data_subject` label: the ledger seals the event under that person's key, so that
//!   `vellum erase --subject` can forget them.

use std::collections::BTreeMap;

use jiff::Timestamp;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use vellum::AuditEvent;
use vellum::event::Payload;

/// The attributes that name the person a record is about (OpenTelemetry's `user.id`, and
/// the older `enduser.id`), in order of preference.
const SUBJECT_ATTRIBUTES: [&str; 2] = ["user.id", "enduser.id"];

/// Where a record came from: its resource and instrumentation scope.
pub struct Origin<'a> {
    /// The resource (its `service.name` is the actor).
    pub resource: Option<&'a Resource>,
    /// The instrumentation scope's name.
    pub scope: &'a str,
}

impl Origin<'_> {
    fn actor(&self) -> Option<String> {
        self.resource
            .and_then(|r| attribute(&r.attributes, "service.name"))
            .and_then(as_string)
    }

    /// The labels: the signal, the scope, and the data subject (`data_subject`, whose key
    /// seals the event's content so that it can be erased) from the record's `user.id` or
    /// `enduser.id`, else the resource's.
    fn labels(&self, signal: &str, attributes: &[KeyValue]) -> BTreeMap<String, String> {
        let mut labels = BTreeMap::from([("otel.signal".to_string(), signal.to_string())]);
        if !self.scope.is_empty() {
            labels.insert("otel.scope".to_string(), self.scope.to_string());
        }
        let resource = self.resource.map_or(&[][..], |r| &r.attributes[..]);
        let subject = [attributes, resource].into_iter().find_map(|attrs| {
            SUBJECT_ATTRIBUTES
                .iter()
                .find_map(|key| attribute(attrs, key).and_then(as_string))
                .filter(|s| !s.is_empty())
        });
        if let Some(subject) = subject {
            labels.insert("data_subject".to_string(), subject);
        }
        labels
    }
}

/// The event of one span, or why it cannot be one.
pub fn span_event(span: &Span, origin: &Origin<'_>) -> Result<AuditEvent, String> {
    if span.trace_id.len() != 16 || span.span_id.len() != 8 {
        return Err(format!(
            "span `{}` has no valid trace id and span id",
            span.name
        ));
    }
    let trace = hex::encode(&span.trace_id);
    let text = |key| attribute(&span.attributes, key).and_then(as_string);
    let operation = text("gen_ai.operation.name");
    let (kind, subject) = match operation.as_deref() {
        Some("execute_tool") => ("tool.call", text("gen_ai.tool.name")),
        Some("invoke_agent") => ("agent.invoke", text("gen_ai.agent.name")),
        Some("create_agent") => ("agent.spawned", text("gen_ai.agent.name")),
        Some("chat" | "text_completion" | "generate_content") => {
            ("llm.call", text("gen_ai.request.model"))
        }
        Some("embeddings") => ("llm.embeddings", text("gen_ai.request.model")),
        _ => ("otel.span", None),
    };
    let status = span
        .status
        .as_ref()
        .map(|s| json!({"code": s.code, "message": s.message}));
    let events: Vec<Value> = span
        .events
        .iter()
        .map(|e| {
            json!({
                "name": e.name,
                "time_unix_nano": e.time_unix_nano.to_string(),
                "attributes": attributes(&e.attributes),
            })
        })
        .collect();
    let mut payload = json!({
        "name": span.name,
        "span_id": hex::encode(&span.span_id),
        "kind": span.kind,
        "start_time_unix_nano": span.start_time_unix_nano.to_string(),
        "end_time_unix_nano": span.end_time_unix_nano.to_string(),
        "attributes": attributes(&span.attributes),
    });
    if !span.parent_span_id.is_empty() {
        payload["parent_span_id"] = json!(hex::encode(&span.parent_span_id));
    }
    if let Some(status) = status {
        payload["status"] = status;
    }
    if !events.is_empty() {
        payload["events"] = json!(events);
    }
    Ok(AuditEvent {
        id: format!("otlp-span:{trace}:{}", hex::encode(&span.span_id)),
        occurred_at: time(span.start_time_unix_nano)
            .ok_or_else(|| format!("span `{}` has no start time", span.name))?,
        tenant: None,
        correlation_id: Some(trace),
        chain_id: text("gen_ai.conversation.id").filter(|id| id_like(id)),
        actor: origin.actor(),
        kind: kind.to_string(),
        subject: subject.or_else(|| Some(span.name.clone())),
        payload: Payload::from_value(&payload),
        labels: origin.labels("span", &span.attributes),
    })
}

/// The event of one log record, or why it cannot be one.
pub fn log_event(record: &LogRecord, origin: &Origin<'_>) -> Result<AuditEvent, String> {
    let nanos = match record.time_unix_nano {
        0 => record.observed_time_unix_nano,
        t => t,
    };
    let occurred_at = time(nanos).ok_or("a log record has no time and no observed time")?;
    let mut digest = Sha256::new();
    if let Some(resource) = origin.resource {
        digest.update(resource.encode_to_vec());
    }
    digest.update(origin.scope.as_bytes());
    digest.update([0]);
    digest.update(record.encode_to_vec());
    let id = format!("otlp-log:{}", hex::encode(&digest.finalize()[..16]));
    let name = match record.event_name.as_str() {
        "" => attribute(&record.attributes, "event.name").and_then(as_string),
        name => Some(name.to_string()),
    };
    let mut payload = json!({
        "severity_number": record.severity_number,
        "severity_text": record.severity_text,
        "body": record.body.as_ref().map_or(Value::Null, any_value_json),
        "attributes": attributes(&record.attributes),
    });
    if !record.span_id.is_empty() {
        payload["span_id"] = json!(hex::encode(&record.span_id));
    }
    let name = match name {
        Some(name) if !kind_like(&name) => {
            payload["event_name"] = json!(name);
            None
        }
        name => name,
    };
    Ok(AuditEvent {
        id,
        occurred_at,
        tenant: None,
        correlation_id: (!record.trace_id.is_empty()).then(|| hex::encode(&record.trace_id)),
        chain_id: attribute(&record.attributes, "gen_ai.conversation.id")
            .and_then(as_string)
            .filter(|id| id_like(id)),
        actor: origin.actor(),
        kind: name.unwrap_or_else(|| "otel.log".to_string()),
        subject: None,
        payload: Payload::from_value(&payload),
        labels: origin.labels("log", &record.attributes),
    })
}

/// Whether a conversation id can be a chain id: no plugin may rewrite a chain id, so only
/// an id-shaped value (at most 128 characters of letters, digits and `-_.:/`) goes there.
/// Anything else (a sentence, an e-mail address) stays in the payload's attributes, where
/// the redactor can reach it.
fn id_like(id: &str) -> bool {
    id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/".contains(&b))
}

/// Whether a log's event name can be a kind (which no plugin may rewrite either): a dotted
/// name of at most 128 letters, digits and `._-`. Anything else makes the kind `otel.log`;
/// the name stays in the payload.
fn kind_like(name: &str) -> bool {
    name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

fn time(unix_nanos: u64) -> Option<Timestamp> {
    if unix_nanos == 0 {
        return None;
    }
    Timestamp::from_nanosecond(i128::from(unix_nanos)).ok()
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
}

fn as_string(value: &AnyValue) -> Option<String> {
    match &value.value {
        Some(any_value::Value::StringValue(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

fn attributes(attributes: &[KeyValue]) -> Value {
    Value::Object(
        attributes
            .iter()
            .map(|kv| {
                let value = kv.value.as_ref().map_or(Value::Null, any_value_json);
                (kv.key.clone(), value)
            })
            .collect::<Map<_, _>>(),
    )
}

fn any_value_json(value: &AnyValue) -> Value {
    use any_value::Value as V;
    match &value.value {
        None => Value::Null,
        Some(V::StringValue(s)) => json!(s),
        Some(V::BoolValue(b)) => json!(b),
        Some(V::IntValue(i)) => json!(i),
        Some(V::DoubleValue(d)) => {
            serde_json::Number::from_f64(*d).map_or(Value::Null, Value::Number)
        }
        Some(V::ArrayValue(a)) => Value::Array(a.values.iter().map(any_value_json).collect()),
        Some(V::KvlistValue(kv)) => attributes(&kv.values),
        Some(V::BytesValue(b)) => json!(hex::encode(b)),
        // An index into a dictionary this receiver is not sent: keep the index.
        Some(V::StringValueStrindex(i)) => json!({ "string_index": i }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::AnyValue;

    fn kv(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(value.into())),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_genai_tool_span_is_a_tool_call() {
        let resource = Resource {
            attributes: vec![kv("service.name", "travel-agent")],
            ..Default::default()
        };
        let span = Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            name: "execute_tool book_flight".into(),
            start_time_unix_nano: 1_700_000_000_000_000_000,
            attributes: vec![
                kv("gen_ai.operation.name", "execute_tool"),
                kv("gen_ai.tool.name", "book_flight"),
            ],
            ..Default::default()
        };
        let origin = Origin {
            resource: Some(&resource),
            scope: "agents",
        };
        let event = span_event(&span, &origin).unwrap();
        assert_eq!(event.labels.get("data_subject"), None);
        assert_eq!(event.kind, "tool.call");
        assert_eq!(event.subject.as_deref(), Some("book_flight"));
        assert_eq!(event.actor.as_deref(), Some("travel-agent"));
        assert_eq!(
            event.correlation_id.as_deref(),
            Some("01010101010101010101010101010101")
        );
        assert_eq!(event.id, span_event(&span, &origin).unwrap().id);
        let bad = Span {
            span_id: vec![],
            ..span
        };
        assert!(span_event(&bad, &origin).is_err());
    }

    #[test]
    fn user_ids_name_the_data_subject_record_first_then_resource() {
        let resource = Resource {
            attributes: vec![kv("enduser.id", "from-resource")],
            ..Default::default()
        };
        let origin = Origin {
            resource: Some(&resource),
            scope: "",
        };
        let record = LogRecord {
            time_unix_nano: 1_700_000_000_000_000_000,
            attributes: vec![kv("user.id", "ada")],
            ..Default::default()
        };
        let subject = |r: &LogRecord| log_event(r, &origin).unwrap().labels["data_subject"].clone();
        assert_eq!(subject(&record), "ada");
        let anonymous = LogRecord {
            attributes: vec![kv("user.id", "")],
            ..record
        };
        assert_eq!(subject(&anonymous), "from-resource");
    }

    #[test]
    fn a_log_record_id_follows_its_content() {
        let origin = Origin {
            resource: None,
            scope: "",
        };
        let record = LogRecord {
            time_unix_nano: 1_700_000_000_000_000_000,
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue("approved".into())),
            }),
            event_name: "approval.granted".into(),
            ..Default::default()
        };
        let a = log_event(&record, &origin).unwrap();
        assert_eq!(a.kind, "approval.granted");
        assert_eq!(a.id, log_event(&record, &origin).unwrap().id);
        let other = LogRecord {
            severity_number: 9,
            ..record
        };
        assert_ne!(a.id, log_event(&other, &origin).unwrap().id);
        let untimed = LogRecord {
            time_unix_nano: 0,
            ..other
        };
        assert!(log_event(&untimed, &origin).is_err());
    }

    #[test]
    fn user_content_stays_out_of_protected_fields() {
        let origin = Origin {
            resource: None,
            scope: "",
        };
        let conversation = |id: &str| KeyValue {
            key: "gen_ai.conversation.id".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(id.into())),
            }),
            ..Default::default()
        };
        let record = |name: &str, conversation_id: &str| LogRecord {
            time_unix_nano: 1_700_000_000_000_000_000,
            event_name: name.into(),
            attributes: vec![conversation(conversation_id)],
            ..Default::default()
        };
        let ok = log_event(&record("gen_ai.user.message", "conv_01J8Z"), &origin).unwrap();
        assert_eq!(ok.kind, "gen_ai.user.message");
        assert_eq!(ok.chain_id.as_deref(), Some("conv_01J8Z"));
        let odd = log_event(
            &record("mail alice@example.com", "chat with alice@example.com"),
            &origin,
        )
        .unwrap();
        assert_eq!(odd.kind, "otel.log");
        assert_eq!(odd.chain_id, None);
        let payload: Value = serde_json::from_str(odd.payload.as_str()).unwrap();
        assert_eq!(payload["event_name"], "mail alice@example.com");
        assert_eq!(
            payload["attributes"]["gen_ai.conversation.id"],
            "chat with alice@example.com"
        );
    }
}
