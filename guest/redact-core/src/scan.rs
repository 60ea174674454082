//! A read-only pass over JSON text that answers "could redaction change anything?" without
//! building a tree: most audit events carry nothing to redact, and for them parsing into a
//! `serde_json::Value` (one allocation per string) and serialising it back is the whole cost.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::Redactor;

impl Redactor {
    /// Whether [`Redactor::redact_json`] could change the JSON value `json` holds: `false`
    /// only when no string in it has a detection and no sensitive key holds a non-null value
    /// (then redaction leaves it exactly as it is). Strings are checked as decoded, escapes
    /// included, so the answer never misses what `redact_json` would find. Errors when `json`
    /// is not one JSON value.
    pub fn needs_redaction(&self, json: &str) -> Result<bool, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_str(json);
        let found = Scan { redactor: self }.deserialize(&mut de)?;
        de.end()?;
        Ok(found)
    }
}

/// Visits one JSON value; yields whether redaction could change it.
#[derive(Clone, Copy)]
struct Scan<'r> {
    redactor: &'r Redactor,
}

impl<'de> DeserializeSeed<'de> for Scan<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Scan<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_i64<E>(self, n: i64) -> Result<bool, E> {
        Ok(self.redactor.number_has_finding(&n.into()))
    }

    fn visit_u64<E>(self, n: u64) -> Result<bool, E> {
        Ok(self.redactor.number_has_finding(&n.into()))
    }

    fn visit_f64<E>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_str<E>(self, text: &str) -> Result<bool, E> {
        Ok(self.redactor.has_finding(text))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        let mut found = false;
        while let Some(item) = if found {
            seq.next_element::<IgnoredAny>()?.map(|_| true)
        } else {
            seq.next_element_seed(self)?
        } {
            found |= item;
        }
        Ok(found)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let mut found = false;
        while let Some(key) = map.next_key_seed(KeyKind(self.redactor))? {
            found |= if found || key == Key::Rewritten {
                map.next_value::<IgnoredAny>().map(|_| true)?
            } else if key == Key::Sensitive {
                // A sensitive key's value is replaced unless it is null.
                map.next_value_seed(NotNull)?
            } else {
                map.next_value_seed(self)?
            };
        }
        Ok(found)
    }
}

/// What an object key means to redaction.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Key {
    /// Nothing: its value is scanned.
    Plain,
    /// It names a secret: its value is replaced unless null.
    Sensitive,
    /// A detector finds something in the key itself: it is rewritten.
    Rewritten,
}

/// Reads an object key; yields what it means to redaction.
struct KeyKind<'r>(&'r Redactor);

impl<'de> DeserializeSeed<'de> for KeyKind<'_> {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyKind<'_> {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, key: &str) -> Result<Key, E> {
        Ok(if self.0.key_has_finding(key) {
            Key::Rewritten
        } else if self.0.is_sensitive_key(key) {
            Key::Sensitive
        } else {
            Key::Plain
        })
    }
}

/// Skips one value; yields whether it is not `null`.
struct NotNull;

impl<'de> DeserializeSeed<'de> for NotNull {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        let value: Option<IgnoredAny> = serde::Deserialize::deserialize(deserializer)?;
        Ok(value.is_some())
    }
}
