//! Finding and rewriting secrets in strings and JSON values.

use regex::Regex;
use serde_json::Value;

use crate::candidates::Candidates;
use crate::config::{
    Config, ConfigError, DEFAULT_SENSITIVE_KEYS, ENVELOPE_FIELDS, Operator, ProtectedFields,
};
use crate::detectors::{ASSIGNMENT, Compiled, Finding, LOOKALIKES, LazyRegex, builtins};
use crate::keys::SensitiveKeys;

/// Characters kept by `partial` unless configured.
const DEFAULT_KEEP: usize = 4;

/// What became of a scanned string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The (possibly rewritten) string.
    Keep(String),
    /// A detector with the `remove` operator fired: drop the field holding the string.
    Remove,
}

/// What redacting a string or a JSON value in place did to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Nothing was found: the value is as it was (a caller can pass the event on as is).
    Unchanged,
    /// Something was rewritten in place.
    Changed,
    /// A detector with the `remove` operator fired: drop the field holding the value.
    Remove,
}

impl Change {
    /// Whether the value differs from what it was (rewritten or to be removed).
    pub fn changed(self) -> bool {
        self != Change::Unchanged
    }

    /// Combines the changes of two parts of one value.
    fn and(self, other: Change) -> Change {
        if self.changed() || other.changed() {
            Change::Changed
        } else {
            Change::Unchanged
        }
    }
}

/// A compiled redaction configuration.
pub struct Redactor {
    detectors: Vec<Compiled>,
    /// Which detectors can match a string, in one cheap pass, so that the others (usually
    /// all of them) are not run at all. The key rule inside text is gated by the sensitive
    /// words instead.
    candidates: Candidates,
    /// Compiled only when a detector that respects look-alikes has a candidate.
    lookalikes: LazyRegex,
    allow: Vec<String>,
    allow_patterns: Vec<Regex>,
    sensitive_keys: SensitiveKeys,
    sensitive_operator: Operator,
    /// The index in `detectors` of the key rule inside text (`key = value`), last in
    /// priority.
    assignment: usize,
    fields: Vec<String>,
    protected_fields: ProtectedFields,
}

/// How much of a string's detections to find.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Search {
    /// All of them, without overlaps (earlier detectors win).
    All,
    /// The first, to answer whether there is any.
    First,
    /// The first of a precise detector (for a protected field).
    FirstPrecise,
}

/// The detector name of a value found by the key rules inside text.
pub const SENSITIVE_KEY: &str = "sensitive-key";

impl Redactor {
    /// Compiles a configuration; a bad pattern is an error naming its rule.
    pub fn new(config: &Config) -> Result<Self, ConfigError> {
        let mut detectors = Vec::new();
        for (i, rule) in config.rules.iter().enumerate() {
            let regex = Regex::new(&rule.pattern).map_err(|e| {
                ConfigError(format!(
                    "rules[{i}] (`{}`): invalid pattern: {e}",
                    rule.name
                ))
            })?;
            detectors.push(Compiled {
                name: rule.name.clone(),
                tag: rule.name.to_ascii_uppercase().replace([' ', '-'], "_"),
                regex: LazyRegex::compiled(regex),
                group: 0,
                validate: None,
                respects_lookalikes: false,
                precise: true,
                operator: rule.operator.unwrap_or(Operator::Mask),
                keep: rule.keep.unwrap_or(DEFAULT_KEEP),
            });
        }
        for spec in builtins() {
            let settings = config.detectors.get(spec.name).cloned().unwrap_or_default();
            if !settings.enabled.unwrap_or(spec.default_on) {
                continue;
            }
            detectors.push(Compiled {
                name: spec.name.to_string(),
                tag: spec.tag.to_string(),
                regex: LazyRegex::builtin(spec.pattern),
                group: spec.group,
                validate: spec.validate,
                respects_lookalikes: spec.respects_lookalikes,
                precise: spec.precise,
                operator: settings.operator.unwrap_or(Operator::Mask),
                keep: settings.keep.unwrap_or(DEFAULT_KEEP),
            });
        }
        let allow_patterns = config
            .allow_patterns
            .iter()
            .enumerate()
            .map(|(i, p)| {
                Regex::new(&format!("^(?:{p})$"))
                    .map_err(|e| ConfigError(format!("allow-patterns[{i}]: invalid pattern: {e}")))
            })
            .collect::<Result<_, _>>()?;
        let sensitive_keys = match &config.sensitive_keys {
            Some(keys) => SensitiveKeys::new(keys),
            None => SensitiveKeys::new(DEFAULT_SENSITIVE_KEYS),
        };
        let sensitive_operator = config.sensitive_keys_operator.unwrap_or(Operator::Mask);
        let assignment = detectors.len();
        detectors.push(Compiled {
            name: SENSITIVE_KEY.to_string(),
            tag: "SECRET".to_string(),
            regex: LazyRegex::builtin(ASSIGNMENT),
            group: 0,
            validate: None,
            respects_lookalikes: false,
            precise: true,
            operator: sensitive_operator,
            keep: DEFAULT_KEEP,
        });
        let candidates = Candidates::new(detectors[..assignment].iter().map(|d| d.regex.as_str()))
            .map_err(|e| ConfigError(format!("combining the detectors' patterns: {e}")))?;
        Ok(Self {
            detectors,
            candidates,
            lookalikes: LazyRegex::builtin(LOOKALIKES),
            allow: config.allow.clone(),
            allow_patterns,
            sensitive_keys,
            sensitive_operator,
            assignment,
            fields: config
                .fields
                .clone()
                .unwrap_or_else(|| ENVELOPE_FIELDS.iter().map(|f| f.to_string()).collect()),
            protected_fields: config.protected_fields.unwrap_or(ProtectedFields::Reject),
        })
    }

    /// The envelope fields this redactor scans besides the payload.
    pub fn fields(&self) -> &[String] {
        &self.fields
    }

    /// Why an event must be refused for what its protected fields hold (`(name, value)`
    /// pairs: `id`, `kind`, `correlation_id`, `chain_id`), which no plugin may rewrite: the
    /// first precise finding (a credential, a private key, an e-mail address…), unless the
    /// configuration says `protected-fields = "ignore"`.
    pub fn protected_refusal(&self, fields: &[(&str, Option<&str>)]) -> Option<String> {
        if self.protected_fields == ProtectedFields::Ignore {
            return None;
        }
        fields.iter().find_map(|&(name, value)| {
            let (index, _) = self
                .find_with_index(value?, Search::FirstPrecise)
                .into_iter()
                .next()?;
            Some(format!(
                "protected field `{name}` holds a value the `{}` detector finds; protected \
                 fields cannot be rewritten, so the event is refused (set protected-fields = \
                 \"ignore\" in the redact configuration to record it as sent)",
                self.detectors[index].name
            ))
        })
    }

    fn allowed(&self, value: &str) -> bool {
        self.allow.iter().any(|a| a == value)
            || self.allow_patterns.iter().any(|p| p.is_match(value))
    }

    /// Every detection in `text`, without overlaps (earlier detectors win), in order.
    pub fn find(&self, text: &str) -> Vec<Finding> {
        self.find_with_index(text, Search::All)
            .into_iter()
            .map(|(_, f)| f)
            .collect()
    }

    /// Whether `text` has at least one detection.
    pub(crate) fn has_finding(&self, text: &str) -> bool {
        !self.find_with_index(text, Search::First).is_empty()
    }

    /// Whether an object key may hold something a detector finds (see [`plain_key`]).
    pub(crate) fn key_has_finding(&self, key: &str) -> bool {
        !plain_key(key) && self.has_finding(key)
    }

    /// The detections in `text` with their detectors' indexes, in order (see [`Search`]).
    fn find_with_index(&self, text: &str, search: Search) -> Vec<(usize, Finding)> {
        let first_only = search != Search::All;
        let assignment_possible = text.as_bytes().iter().any(|&b| b == b'=' || b == b':')
            && self.sensitive_keys.may_occur_in(text);
        let candidates = self.candidates.of(text, self.assignment);
        if candidates.is_none() && !assignment_possible {
            return Vec::new();
        }
        let candidates = candidates.unwrap_or_default();
        // Look-alikes only matter to detectors that respect them; find them once, if needed.
        let mut lookalikes: Option<Vec<(usize, usize)>> = None;
        let mut inside_lookalike = |s: usize, e: usize| {
            lookalikes
                .get_or_insert_with(|| {
                    self.lookalikes
                        .get()
                        .find_iter(text)
                        .map(|m| (m.start(), m.end()))
                        .collect()
                })
                .iter()
                .any(|&(ls, le)| s < le && ls < e)
        };
        let mut found: Vec<(usize, Finding)> = Vec::new();
        for (index, d) in self.detectors.iter().enumerate() {
            if index == self.assignment {
                if assignment_possible {
                    self.find_assignments(text, index, &mut found);
                }
                if first_only && !found.is_empty() {
                    return found;
                }
                continue;
            }
            if !candidates.get(index).copied().unwrap_or(false)
                || (search == Search::FirstPrecise && !d.precise)
            {
                continue;
            }
            for caps in d.regex.get().captures_iter(text) {
                let Some(m) = caps.get(d.group).or_else(|| caps.get(0)) else {
                    continue;
                };
                let (s, e) = (m.start(), m.end());
                if m.as_str().is_empty()
                    || d.validate.is_some_and(|check| !check(m.as_str()))
                    || (d.respects_lookalikes && inside_lookalike(s, e))
                    || self.allowed(m.as_str())
                    || found.iter().any(|(_, f)| s < f.end && f.start < e)
                {
                    continue;
                }
                found.push((
                    index,
                    Finding {
                        detector: d.name.clone(),
                        start: s,
                        end: e,
                    },
                ));
                if first_only {
                    return found;
                }
            }
        }
        found.sort_by_key(|(_, f)| f.start);
        found
    }

    /// The values of `key = value` pairs in `text` whose key names a secret (see
    /// [`ASSIGNMENT`]), skipping placeholders and spans already found.
    fn find_assignments(&self, text: &str, index: usize, found: &mut Vec<(usize, Finding)>) {
        let regex = self.detectors[index].regex.get();
        let mut at = 0;
        while let Some(caps) = regex.captures_at(text, at) {
            let key = caps.get(1).or_else(|| caps.get(2)).or_else(|| caps.get(3));
            let value = caps.get(4).or_else(|| caps.get(5)).or_else(|| caps.get(6));
            let (Some(key), Some(value)) = (key, value) else {
                break;
            };
            let (s, e) = (value.start(), value.end());
            let sensitive = self.sensitive_keys.matches(key.as_str());
            // After a harmless pair, look again from its value, which may hold a pair of
            // its own (`client = Client(api_key="…")`); after a secret, from its end.
            at = if sensitive { e } else { s }.max(at + 1);
            if !sensitive
                || placeholder(value.as_str())
                || self.allowed(value.as_str())
                || found.iter().any(|(_, f)| s < f.end && f.start < e)
            {
                continue;
            }
            found.push((
                index,
                Finding {
                    detector: SENSITIVE_KEY.to_string(),
                    start: s,
                    end: e,
                },
            ));
        }
    }

    /// Rewrites the detections in `text`. `pseudonymize(domain, value)` serves `hash`.
    pub fn redact_str(
        &self,
        text: &str,
        pseudonymize: &mut dyn FnMut(&str, &str) -> String,
    ) -> Outcome {
        let mut text = text.to_string();
        match self.redact_string(&mut text, pseudonymize) {
            Change::Remove => Outcome::Remove,
            Change::Unchanged | Change::Changed => Outcome::Keep(text),
        }
    }

    /// Rewrites the detections in `text` in place; a string with no detection is neither
    /// copied nor touched.
    pub fn redact_string(
        &self,
        text: &mut String,
        pseudonymize: &mut dyn FnMut(&str, &str) -> String,
    ) -> Change {
        // JSON serialized inside the string (tool arguments, OTLP attributes): redacted as
        // JSON, so key rules, numbers and structure are handled as at the top level and the
        // string stays valid JSON. It is parsed only when something in it may change, and
        // then its detections as text are not needed.
        let looks_json = matches!(text.trim_start().as_bytes().first(), Some(b'{' | b'['));
        if looks_json {
            if !self.has_finding(text) {
                return Change::Unchanged;
            }
            if let Ok(mut embedded) = serde_json::from_str::<Value>(text) {
                return match self.redact_json(&mut embedded, pseudonymize) {
                    Change::Unchanged => Change::Unchanged,
                    Change::Remove => Change::Remove,
                    Change::Changed => {
                        *text = embedded.to_string();
                        Change::Changed
                    }
                };
            }
        }
        let found = self.find_with_index(text, Search::All);
        if found.is_empty() {
            return Change::Unchanged;
        }
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for (index, finding) in found {
            let d = &self.detectors[index];
            let secret = &text[finding.start..finding.end];
            let replacement = match d.operator {
                Operator::Remove => return Change::Remove,
                op => apply(op, &d.tag, d.keep, secret, pseudonymize),
            };
            out.push_str(&text[last..finding.start]);
            out.push_str(&replacement);
            last = finding.end;
        }
        out.push_str(&text[last..]);
        *text = out;
        Change::Changed
    }

    /// Redacts a JSON value in place: every string at any depth, and the values under
    /// sensitive keys. [`Change::Remove`] means the value itself must go (a `remove`
    /// detector fired on a bare string); fields and items inside it are removed in place.
    pub fn redact_json(
        &self,
        value: &mut Value,
        pseudonymize: &mut dyn FnMut(&str, &str) -> String,
    ) -> Change {
        match value {
            Value::String(s) => self.redact_string(s, pseudonymize),
            Value::Array(items) => {
                let mut change = Change::Unchanged;
                items.retain_mut(|item| {
                    let c = self.redact_json(item, pseudonymize);
                    change = change.and(c);
                    c != Change::Remove
                });
                change
            }
            Value::Object(map) => {
                let mut change = self.redact_keys(map, pseudonymize);
                map.retain(|key, v| {
                    let c = if self.is_sensitive_key(key) {
                        self.redact_sensitive(v, pseudonymize)
                    } else if is_trace_id(key, v) {
                        Change::Unchanged
                    } else {
                        self.redact_json(v, pseudonymize)
                    };
                    change = change.and(c);
                    c != Change::Remove
                });
                change
            }
            Value::Number(n) => match card_sized(n) {
                Some(mut text) => match self.redact_string(&mut text, pseudonymize) {
                    Change::Unchanged => Change::Unchanged,
                    Change::Remove => Change::Remove,
                    Change::Changed => {
                        *value = Value::String(text);
                        Change::Changed
                    }
                },
                None => Change::Unchanged,
            },
            Value::Null | Value::Bool(_) => Change::Unchanged,
        }
    }

    /// Redacts what the detectors find in an object's keys (`{"alice@example.com": …}`):
    /// the member is kept under the rewritten key (a `#2`, `#3`… suffix keeps two
    /// rewritten keys apart), or removed by a `remove` detector.
    fn redact_keys(
        &self,
        map: &mut serde_json::Map<String, Value>,
        pseudonymize: &mut dyn FnMut(&str, &str) -> String,
    ) -> Change {
        if !map.keys().any(|k| self.key_has_finding(k)) {
            return Change::Unchanged;
        }
        let members = std::mem::take(map);
        for (mut key, value) in members {
            if !plain_key(&key) && self.redact_string(&mut key, pseudonymize) == Change::Remove {
                continue;
            }
            let mut unique = key.clone();
            let mut n = 1;
            while map.contains_key(&unique) {
                n += 1;
                unique = format!("{key}#{n}");
            }
            map.insert(unique, value);
        }
        Change::Changed
    }

    /// Whether a number could hold what a detector finds (a card number has 12 to 19
    /// digits), and then whether it does.
    pub(crate) fn number_has_finding(&self, number: &serde_json::Number) -> bool {
        card_sized(number).is_some_and(|text| self.has_finding(&text))
    }

    /// Whether an object key names a secret.
    pub fn is_sensitive_key(&self, key: &str) -> bool {
        self.sensitive_keys.matches(key)
    }

    fn redact_sensitive(
        &self,
        value: &mut Value,
        pseudonymize: &mut dyn FnMut(&str, &str) -> String,
    ) -> Change {
        if value.is_null() {
            return Change::Unchanged;
        }
        // A number or boolean under a secret's name keeps its place but not its value: it
        // becomes null (a schema that types the field as nullable still holds), except
        // under `hash`, whose point is a joinable token (a string).
        let scalar = matches!(value, Value::Number(_) | Value::Bool(_));
        let text = match &*value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let replacement = match self.sensitive_operator {
            Operator::Remove => return Change::Remove,
            Operator::Mask | Operator::Partial if scalar => Value::Null,
            op => Value::String(apply(op, "SECRET", DEFAULT_KEEP, &text, pseudonymize)),
        };
        if *value == replacement {
            return Change::Unchanged;
        }
        *value = replacement;
        Change::Changed
    }
}

/// The digits of an integer long enough to be a card number (12 to 19 digits).
fn card_sized(number: &serde_json::Number) -> Option<String> {
    let text = number
        .as_u64()
        .map(|n| n.to_string())
        .or_else(|| number.as_i64().map(|n| n.unsigned_abs().to_string()))?;
    (12..=19).contains(&text.len()).then_some(text)
}

/// Whether `value` is a trace or span id (16 or 32 hex digits) under a key that names one
/// (`trace_id`, `spanId`, `parent_span_id`): never a card or a phone number, whatever its
/// digits.
fn is_trace_id(key: &str, value: &Value) -> bool {
    let Value::String(id) = value else {
        return false;
    };
    // The value's shape first: it is cheap, and splitting the key into words allocates.
    if !(matches!(id.len(), 16 | 32) && id.bytes().all(|b| b.is_ascii_hexdigit())) {
        return false;
    }
    let words = crate::keys::words(key);
    matches!(
        words
            .iter()
            .rev()
            .take(2)
            .map(String::as_str)
            .collect::<Vec<_>>()[..],
        ["id", "span" | "trace"]
    )
}

/// Whether an object key is a plain name that holds nothing a detector finds, and is not
/// searched: letters, `_`, `.` and `-` without digits (`intent_id`, `usage.prompt_tokens`),
/// short or without capitals. An address, a card or phone number, or a random key has
/// digits, `@` or capitals.
fn plain_key(key: &str) -> bool {
    let named = key
        .bytes()
        .all(|b| b.is_ascii_alphabetic() || matches!(b, b'_' | b'.' | b'-'));
    named && (key.len() < 20 || !key.bytes().any(|b| b.is_ascii_uppercase()))
}

/// Whether the value of a `key = value` pair says there is no secret there: empty, a null
/// or boolean literal, a reference to a variable, a placeholder or something already masked.
fn placeholder(value: &str) -> bool {
    let v = value.trim();
    v.is_empty()
        || matches!(
            v,
            "null" | "None" | "nil" | "undefined" | "true" | "false" | "True" | "False"
        )
        || v.starts_with('$')
        || (v.starts_with('[') && v.ends_with(']'))
        || (v.starts_with('<') && v.ends_with('>'))
        || v.bytes()
            .all(|b| b == b'*' || b == b'x' || b == b'X' || b == b'.')
}

/// The replacement text of one secret.
fn apply(
    op: Operator,
    tag: &str,
    keep: usize,
    secret: &str,
    pseudonymize: &mut dyn FnMut(&str, &str) -> String,
) -> String {
    match op {
        Operator::Mask | Operator::Remove => format!("[{tag}]"),
        Operator::Partial => {
            let chars: Vec<char> = secret.chars().filter(|c| c.is_alphanumeric()).collect();
            let keep = keep.min(chars.len() / 2);
            let tail: String = chars[chars.len() - keep..].iter().collect();
            format!("[{tag} …{tail}]")
        }
        Operator::Hash => format!(
            "[{tag}:{}]",
            pseudonymize(&tag.to_ascii_lowercase(), secret)
        ),
    }
}
