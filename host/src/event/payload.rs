//! The event payload: JSON text validated once and then kept byte for byte.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::InvalidEvent;

/// An event's details: valid JSON text (an object, by convention), kept exactly as the
/// producer or the last plugin wrote it. Two payloads are equal when their text is.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Payload(Box<RawValue>);

impl Payload {
    /// Takes JSON text, refusing anything that is not one valid JSON value.
    pub fn from_json(text: String) -> Result<Self, InvalidEvent> {
        RawValue::from_string(text)
            .map(Self)
            .map_err(|e| InvalidEvent {
                field: "payload",
                problem: format!("is not valid JSON: {e}"),
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
}
