//! The built-in detectors: a pattern, an optional validator, and the tag they redact to.

use std::sync::OnceLock;

use regex::Regex;

use crate::credentials::CREDENTIALS;
use crate::validate;

/// Prepended to every built-in pattern (the detectors' and the look-alikes'): `\d`, `\s`,
/// `\w`, `\b` and `(?i)` are ASCII-only in them. The formats they detect are ASCII (the
/// digits of card and phone numbers, the alphabets of tokens), and a letter outside ASCII
/// next to a match counts as a word boundary, as punctuation does. Unicode classes made the
/// automata several times larger: compiling the candidate set took 3.5 ms natively instead
/// of 1 ms, paid by every tenant's plugin instance. A part of a pattern that must match any
/// character (`.`, a negated class) says so with a `(?u:…)` group. Custom rules are
/// compiled as written.
pub const BUILTIN_FLAGS: &str = "(?-u)";

/// A built-in detector's definition.
pub struct DetectorSpec {
    /// Name used in the configuration's `[detectors]` table.
    pub name: &'static str,
    /// Tag in masked output, e.g. `EMAIL`.
    pub tag: &'static str,
    /// The pattern, compiled ASCII-only (with `(?-u)` before it).
    pub pattern: &'static str,
    /// The capture group holding the secret (0: the whole match).
    pub group: usize,
    /// A check the matched text must pass.
    pub validate: Option<fn(&str) -> bool>,
    /// Whether it is on without configuration.
    pub default_on: bool,
    /// Whether matches inside look-alikes (UUIDs, digests, timestamps, versions) are ignored.
    pub respects_lookalikes: bool,
    /// Whether a finding is certain enough to refuse an event over when it sits in a
    /// protected field, which no plugin may rewrite: the credential formats, private keys,
    /// JWTs, passwords in URLs, `Authorization` values and e-mail addresses. The digit
    /// detectors (cards, phones) are not: ids made of digits pass their checks now and then.
    pub precise: bool,
}

/// A detector on by default, with no group, check or look-alike handling, not precise.
pub(crate) const fn spec(
    name: &'static str,
    tag: &'static str,
    pattern: &'static str,
) -> DetectorSpec {
    DetectorSpec {
        name,
        tag,
        pattern,
        group: 0,
        validate: None,
        default_on: true,
        respects_lookalikes: false,
        precise: false,
    }
}

/// The structural detectors, which come first: a private key block, a JWT, a password in a
/// URL, the credential of an `Authorization` value.
const LEADING: &[DetectorSpec] = &[
    DetectorSpec {
        precise: true,
        ..spec(
            "pem-private-key",
            "PRIVATE_KEY",
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----(?su:.)*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----",
        )
    },
    DetectorSpec {
        precise: true,
        ..spec(
            "jwt",
            "JWT",
            r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{8,}",
        )
    },
    DetectorSpec {
        group: 1,
        precise: true,
        ..spec(
            "url-password",
            "PASSWORD",
            r"\b[a-zA-Z][a-zA-Z0-9+.-]*://(?u:[^/\s:@])+:((?u:[^/\s@])+)@",
        )
    },
    DetectorSpec {
        group: 1,
        precise: true,
        ..spec(
            "authorization",
            "CREDENTIALS",
            r"(?i)\b(?:bearer|basic)\s+([A-Za-z0-9._~+/-]{8,}=*)",
        )
    },
];

/// The other built-in detectors, after the credential formats: AWS secrets, then PII.
const TRAILING: &[DetectorSpec] = &[
    DetectorSpec {
        group: 1,
        ..spec(
            "aws-secret-key",
            "AWS_SECRET_KEY",
            r#"(?i)aws(?u:.){0,20}?(?:secret|private)(?u:.){0,20}?['"=:\s]+([A-Za-z0-9/+]{40})\b"#,
        )
    },
    // The same key with nothing around it that says "aws" or "secret": exactly 40
    // characters of the base64 alphabet standing alone, random-looking (see
    // `validate::aws_secret`); 40-digit hex (git commits, SHA-1) is not taken.
    DetectorSpec {
        group: 1,
        validate: Some(validate::aws_secret),
        ..spec(
            "aws-secret-key",
            "AWS_SECRET_KEY",
            r"(?:^|(?u:[^A-Za-z0-9/+=_.-]))([A-Za-z0-9/+]{40})(?:$|(?u:[^A-Za-z0-9/+=_-]))",
        )
    },
    DetectorSpec {
        precise: true,
        ..spec(
            "email",
            "EMAIL",
            r"(?i)\b[a-z0-9][a-z0-9._%+-]*@[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*\.[a-z]{2,}\b",
        )
    },
    DetectorSpec {
        validate: Some(validate::iban),
        ..spec(
            "iban",
            "IBAN",
            r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b",
        )
    },
    DetectorSpec {
        validate: Some(validate::card),
        respects_lookalikes: true,
        ..spec("card", "CARD", r"\b\d(?:[ -]?\d){11,18}\b")
    },
    DetectorSpec {
        validate: Some(validate::ssn),
        respects_lookalikes: true,
        ..spec("ssn", "SSN", r"\b\d{3}-\d{2}-\d{4}\b")
    },
    DetectorSpec {
        validate: Some(validate::ipv6),
        respects_lookalikes: true,
        ..spec(
            "ipv6",
            "IPV6",
            r"(?i)(?:\b[0-9a-f]{1,4}|\B)(?::[0-9a-f]{0,4}){2,7}\b|::1\b",
        )
    },
    // Not subject to look-alikes: a dotted quad that parses is an address, not a version.
    DetectorSpec {
        validate: Some(validate::ipv4),
        ..spec("ipv4", "IPV4", r"\b(?:\d{1,3}\.){3}\d{1,3}\b")
    },
    DetectorSpec {
        validate: Some(validate::phone),
        respects_lookalikes: true,
        ..spec(
            "phone",
            "PHONE",
            concat!(
                r"(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){1,4}",
                r"(?:\s?(?i:x|ext\.?|extension)\s?\d{1,6})?\b)",
                r"|(?:\(\d{3}\)[ .-]?\d{3}[ .-]\d{4}(?:\s?(?i:x|ext\.?|extension)\s?\d{1,6})?\b)",
                r"|(?:\b\d{3}-\d{3}-\d{4}(?:\s?(?i:x|ext\.?|extension)\s?\d{1,6})?\b)",
                r"|(?:\b0\d{2,4}[ -]\d{3,4}[ -]?\d{3,4}\b)",
            ),
        )
    },
    // North American numbers written with dots (`920.889.9913`) have the shape of a version
    // number, which the look-alikes keep; three-three-four digits is a phone, not a version.
    DetectorSpec {
        validate: Some(validate::phone),
        ..spec(
            "phone",
            "PHONE",
            r"\b\d{3}\.\d{3}\.\d{4}(?:\s?(?i:x|ext\.?|extension)\s?\d{1,6})?\b",
        )
    },
    // Free-text PII in prompts, without a model. A passport number needs the word
    // "passport" before it, which makes it precise enough to be on by default.
    DetectorSpec {
        group: 1,
        validate: Some(validate::passport),
        ..spec(
            "passport",
            "PASSPORT",
            r"(?i:passport)(?:\s*(?i:no\.?|number|num|nr\.?|#))?(?:\s+(?i:is)\b)?\s*[:#=]?\s*([A-Z0-9]{6,9})\b",
        )
    },
    // Names, off by default (see docs/plugins.md for the measured precision): after a phrase
    // that always introduces one ("my name is", "Mr."), any one to three capitalised words;
    // after a greeting or a weaker phrase ("Hi", "I'm", "called"), only when one of them is a
    // census first or last name; anywhere, a census first name followed by one of the
    // 20,000 commonest census last names.
    DetectorSpec {
        group: 1,
        default_on: false,
        ..spec(
            "person-name",
            "NAME",
            concat!(
                r"\b(?:(?i:my name is|my name's|my full name is|name is|name:|full name:)\s+|",
                r"(?:Mr|Mrs|Ms|Dr|Prof)\.?\s+)",
                r"([A-Z][a-z]+(?:[ -][A-Z][a-z]+){0,2})\b",
            ),
        )
    },
    DetectorSpec {
        group: 1,
        validate: Some(validate::introduced_name),
        default_on: false,
        ..spec(
            "person-name",
            "NAME",
            concat!(
                r"\b(?:(?i:i am|i'm|this is|called|named|dear|hi|hello|thanks|regards|",
                r"contact|ask|email|call|signed by|patient|customer|applicant|passenger)[,:]?\s+)",
                r"([A-Z][a-z]+(?:[ -][A-Z][a-z]+){0,2})\b",
            ),
        )
    },
    DetectorSpec {
        validate: Some(validate::full_name),
        default_on: false,
        ..spec("person-name", "NAME", r"\b[A-Z][a-z]+ [A-Z][a-z]+\b")
    },
    // Postal addresses: a house number and a street ("42 Baker Street"), a UK postcode
    // ("NW1 6XE"), a US state and ZIP code ("CA 94103"). Off by default.
    DetectorSpec {
        default_on: false,
        ..spec(
            "postal-address",
            "ADDRESS",
            concat!(
                r"\b\d{1,5}[A-Za-z]?,?\s+(?:[A-Z][a-z]+\s+){1,3}(?:Street|St|Road|Rd|Avenue|Ave|",
                r"Lane|Ln|Drive|Dr|Boulevard|Blvd|Way|Court|Ct|Place|Pl|Terrace|Ter|Close|",
                r"Crescent|Square|Sq|Highway|Hwy|Parkway|Pkwy|Circle|Cir|Trail|Trl|Row|Walk|",
                r"Alley|Route|Rte|Plaza|Loop|Path|Pike|Mews|Gardens|Grove|Park|Hill|Heights|",
                r"Crossing|Junction|Point|Ridge|Run|View|Village)\b\.?",
            ),
        )
    },
    DetectorSpec {
        group: 1,
        default_on: false,
        ..spec(
            "postal-address",
            "ADDRESS",
            concat!(
                r"(?i:\blive at|\blives at|\baddress(?: is)?:?|\bship(?:ped)? to|",
                r"\bdeliver(?:ed)? to|\blocated at|\bresid(?:e|es|ing) at)\s+",
                r"(\d{1,5}[A-Za-z]?(?:,?\s+[A-Z][a-z]+){1,4})",
            ),
        )
    },
    DetectorSpec {
        default_on: false,
        ..spec(
            "postal-address",
            "ADDRESS",
            r"\b(?:[A-Z]{1,2}\d[A-Z\d]?|GIR) ?\d[ABD-HJLNP-UW-Z]{2}\b",
        )
    },
    DetectorSpec {
        validate: Some(validate::us_zip),
        default_on: false,
        ..spec(
            "postal-address",
            "ADDRESS",
            r"\b[A-Z]{2} \d{5}(?:-\d{4})?\b",
        )
    },
    DetectorSpec {
        validate: Some(validate::high_entropy),
        default_on: false,
        respects_lookalikes: true,
        ..spec("entropy", "SECRET", r"[A-Za-z0-9+/_=-]{24,}")
    },
];

/// `key = value` in text: shell and `.env` lines (`DB_PASSWORD=…`, `export X=…`), headers
/// (`X-Api-Key: …`), code and YAML (`api_key="…"`, `password: …`), and JSON or Python
/// literals serialized inside a string (`{"token": "…"}`). Groups 1–3: the key (double-,
/// single- or unquoted); 4–6: the value (its text inside double or single quotes, or an
/// unquoted token). The key rules decide whether the key names a secret.
pub const ASSIGNMENT: &str = concat!(
    r#"(?:^|(?u:[^A-Za-z0-9_.$-]))"#,
    r#"(?:"([A-Za-z_][A-Za-z0-9_.-]{0,63})"|'([A-Za-z_][A-Za-z0-9_.-]{0,63})'|([A-Za-z_][A-Za-z0-9_.-]{0,63}))"#,
    r#"[ \t]*(?::=|=>|=|:)[ \t]*"#,
    r#"(?:"((?:(?u:[^"\\\n])|\\(?u:.))*)"|'((?u:[^'\n])*)'|((?u:[^\s"',;}\])])+))"#,
);

/// Look-alikes that audit logs are full of and that must not be redacted: UUIDs, hex
/// digests, ISO timestamps, dates, version numbers, and IBAN-shaped strings that failed the
/// IBAN checksum (their digits must not be taken for a card).
pub const LOOKALIKES: &str = concat!(
    r"(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
    r"|\b(?:sha(?:1|256|512):)?(?:[0-9a-f]{128}|[0-9a-f]{64}|[0-9a-f]{40}|[0-9a-f]{32})\b",
    r"|\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?",
    r"|\bv?\d+\.\d+\.\d+(?:\.\d+)?(?:[-+][0-9A-Za-z.-]+)?\b",
    // Case-sensitive, like IBANs: under the `(?i)` above, `cd11 connected` took this shape
    // and hid the IPv6 address before it.
    r"|(?-i:\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b)",
);

/// Every built-in detector, in priority order (an earlier detector wins an overlap): the
/// structural ones, the credential formats ([`CREDENTIALS`]), then the rest.
pub fn builtins() -> impl Iterator<Item = &'static DetectorSpec> {
    LEADING.iter().chain(CREDENTIALS).chain(TRAILING)
}

/// A detection in a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The detector or custom rule that found it.
    pub detector: String,
    /// Byte offsets of the secret in the scanned string.
    pub start: usize,
    /// End offset (exclusive).
    pub end: usize,
}

/// A regex compiled on first use. Most detectors never fire on a given tenant's events,
/// and compiling all of them up front was most of a plugin instance's `configure` time
/// (every tenant gets its own instances). The pattern is known to compile: built-in ones
/// are checked by a test, and every enabled pattern compiled in the redactor's candidate
/// set, which `Redactor::new` builds before anything runs.
pub(crate) struct LazyRegex {
    pattern: String,
    regex: OnceLock<Regex>,
}

impl LazyRegex {
    /// A built-in pattern, to compile with [`BUILTIN_FLAGS`] when first needed.
    pub fn builtin(pattern: &str) -> Self {
        LazyRegex {
            pattern: format!("{BUILTIN_FLAGS}{pattern}"),
            regex: OnceLock::new(),
        }
    }

    /// A regex compiled already (a custom rule, compiled at configure to name its errors).
    pub fn compiled(regex: Regex) -> Self {
        LazyRegex {
            pattern: regex.as_str().to_string(),
            regex: OnceLock::from(regex),
        }
    }

    /// The pattern.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// The compiled regex.
    pub fn get(&self) -> &Regex {
        self.regex.get_or_init(|| {
            Regex::new(&self.pattern)
                .expect("the pattern compiled in the candidate set, so it compiles alone")
        })
    }
}

/// A detector ready to run.
pub(crate) struct Compiled {
    pub name: String,
    pub tag: String,
    pub regex: LazyRegex,
    pub group: usize,
    pub validate: Option<fn(&str) -> bool>,
    pub respects_lookalikes: bool,
    pub precise: bool,
    pub operator: crate::Operator,
    pub keep: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Built-in patterns are compiled lazily, on first use, and trusted to compile.
    #[test]
    fn every_built_in_pattern_compiles_ascii_only() {
        for pattern in builtins().map(|d| d.pattern).chain([LOOKALIKES]) {
            assert!(
                LazyRegex::builtin(pattern)
                    .get()
                    .as_str()
                    .starts_with(BUILTIN_FLAGS)
            );
        }
        let lazy = LazyRegex::builtin(r"\bINC-\d+\b");
        assert!(lazy.get().is_match("see INC-42"));
        assert_eq!(lazy.as_str(), r"(?-u)\bINC-\d+\b");
        // ASCII-only classes: other scripts' digits are not digits, a letter outside ASCII
        // is a boundary, and the parts that match any character still match any.
        assert!(!lazy.get().is_match("INC-\u{0664}\u{0662}"));
        assert!(lazy.get().is_match("éINC-42"));
        let pem = builtins().find(|d| d.name == "pem-private-key").unwrap();
        let key = "-----BEGIN PRIVATE KEY-----\nkéy\n-----END PRIVATE KEY-----";
        assert!(LazyRegex::builtin(pem.pattern).get().is_match(key));
    }
}
