//! The event payload: JSON text validated once and then kept byte for byte.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::InvalidEvent;

/// Deepest nesting of arrays and objects a payload may have. Many JSON readers (Python's
/// `json`, serde_json's `Value`) stop at about this depth, so a deeper payload would be
/// stored but unreadable to them.
pub const MAX_NESTING: usize = 128;

/// Largest payload accepted, in bytes (the JSON-lines reader's line limit).
pub const MAX_PAYLOAD_BYTES: usize = 16 << 20;

/// An event's details: valid JSON text (an object, by convention), kept exactly as the
/// producer or the last plugin wrote it. Two payloads are equal when their text is.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Payload(Box<RawValue>);

impl Payload {
    /// Takes JSON text, refusing anything that is not one valid JSON value.
    /// Refuses one larger than [`MAX_PAYLOAD_BYTES`] or nested deeper than [`MAX_NESTING`].
    pub fn from_json(text: String) -> Result<Self, InvalidEvent> {
        let payload = RawValue::from_string(text)
            .map(Self)
            .map_err(|e| InvalidEvent {
                field: "payload",
                problem: format!("is not valid JSON: {e}"),
            })?;
        payload.check_limits()?;
        Ok(payload)
    }

    /// Checks the size and nesting limits (a payload deserialized inside an event is
    /// checked by [`AuditEvent::validate`](super::AuditEvent::validate)).
    pub fn check_limits(&self) -> Result<(), InvalidEvent> {
        let text = self.as_str();
        let problem = if text.len() > MAX_PAYLOAD_BYTES {
            format!(
                "is {} bytes, more than the {MAX_PAYLOAD_BYTES}-byte limit",
                text.len()
            )
        } else if nesting_depth(text) > MAX_NESTING {
            format!("nests arrays and objects deeper than the limit of {MAX_NESTING} levels")
        } else {
            return Ok(());
        };
        Err(InvalidEvent {
            field: "payload",
            problem,
        })
    }

    /// The payload of a JSON value, serialised compactly.
    pub fn from_value(value: &serde_json::Value) -> Self {
        Self(serde_json::value::to_raw_value(value).expect("a JSON value serialises"))
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }
}

/// The deepest nesting of arrays and objects in valid JSON text.
fn nesting_depth(text: &str) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for byte in text.bytes() {
        match (in_string, byte) {
            (true, _) if escaped => escaped = false,
            (true, b'\\') => escaped = true,
            (true, b'"') | (false, b'"') => in_string = !in_string,
            (false, b'[' | b'{') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (false, b']' | b'}') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

impl Default for Payload {
    /// The empty object `{}`.
    fn default() -> Self {
        Self(RawValue::from_string("{}".to_string()).expect("`{}` is valid JSON"))
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Payload {}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_valid_json_is_a_payload() {
        assert_eq!(
            Payload::from_json(r#"{"a": 1}"#.into()).unwrap().as_str(),
            r#"{"a": 1}"#
        );
        let err = Payload::from_json("{".into()).unwrap_err();
        assert_eq!(err.field, "payload");
        assert!(Payload::from_json("1 2".into()).is_err());
        assert_eq!(Payload::default().as_str(), "{}");
    }

    #[test]
    fn nesting_and_size_are_capped() {
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(Payload::from_json(nested(MAX_NESTING)).is_ok());
        let err = Payload::from_json(nested(100_000)).unwrap_err();
        assert!(err.problem.contains("128 levels"), "{err}");
        // Brackets inside strings (also after escaped quotes) do not count.
        let text = format!(r#"{{"a": "\"{}", "b": [[1]]}}"#, "[".repeat(500));
        assert_eq!(nesting_depth(&text), 3);
        assert!(Payload::from_json(text).is_ok());
        let big = format!("\"{}\"", "x".repeat(MAX_PAYLOAD_BYTES));
        let err = Payload::from_json(big).unwrap_err();
        assert!(err.problem.contains("byte limit"), "{err}");
    }
}
