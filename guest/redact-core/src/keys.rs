//! Sensitive object keys, matched as words: a key is split into lower-case words (snake,
//! kebab, dotted and camel case), and it names a secret when a listed name's words appear
//! in it, in order and adjacent — unless the next word says the value is only about the
//! secret (`token_count`, `secret_name`, `password_policy`, `private_key_path`).
//!
//! So `token`, `access_token`, `x-api-key`, `clientSecret`, `set-cookie` and
//! `session_token` are secrets, while `tokens`, `prompt_tokens`, `tokenizer`,
//! `token_count`, `session_id` and `secretary` are not.

use regex::Regex;

/// Words that, right after a secret's name, make the key describe the secret instead of
/// holding it.
const ABOUT: &[&str] = &[
    "count",
    "counts",
    "limit",
    "limits",
    "type",
    "types",
    "usage",
    "length",
    "len",
    "size",
    "ttl",
    "expiry",
    "expires",
    "expiration",
    "url",
    "uri",
    "endpoint",
    "name",
    "names",
    "id",
    "ids",
    "policy",
    "hint",
    "required",
    "enabled",
    "path",
    "file",
    "version",
    "index",
];

/// The lower-case words of a key.
pub fn words(key: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let chars: Vec<char> = key.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            continue;
        }
        let prev = i.checked_sub(1).map(|p| chars[p]);
        let next = chars.get(i + 1);
        // camelCase: a capital after a lower-case letter or digit, or the last capital of
        // an acronym followed by a lower-case letter (`APIKey` → api, key).
        let boundary = c.is_uppercase()
            && prev.is_some_and(|p| {
                p.is_lowercase()
                    || p.is_ascii_digit()
                    || (p.is_uppercase() && next.is_some_and(|n| n.is_lowercase()))
            });
        if boundary && !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
        word.extend(c.to_lowercase());
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// A list of sensitive names, each as its words.
#[derive(Debug, Clone)]
pub struct SensitiveKeys {
    /// Each name, split into words.
    names: Vec<Vec<String>>,
    /// Every word of every name, case-insensitively. A key matches only if each word of a
    /// name is one of its words, so an ASCII key in which no such word occurs at all cannot
    /// match: most keys are ruled out by this one pass, without splitting them into words.
    /// (Only ASCII keys: there lower-casing is per byte, so the key's words are substrings.)
    any_word: Option<Regex>,
}

impl SensitiveKeys {
    /// The names (`api_key`, `clientSecret`, …).
    pub fn new<S: AsRef<str>>(names: &[S]) -> Self {
        let names: Vec<Vec<String>> = names
            .iter()
            .map(|n| words(n.as_ref()))
            .filter(|w| !w.is_empty())
            .collect();
        let mut all: Vec<&str> = names.iter().flatten().map(String::as_str).collect();
        all.sort_unstable();
        all.dedup();
        let alternation: Vec<String> = all.iter().map(|w| regex::escape(w)).collect();
        // Escaped words cannot make an invalid pattern; were the set ever too large to
        // compile, every key would simply take the full path.
        let any_word = (!all.is_empty())
            .then(|| Regex::new(&format!("(?i:{})", alternation.join("|"))).ok())
            .flatten();
        Self { names, any_word }
    }

    /// Whether some name's word occurs anywhere in `text`, case-insensitively: when not, no
    /// key in the text can name a secret (a cheap test before looking for `key = value`).
    pub fn may_occur_in(&self, text: &str) -> bool {
        !text.is_ascii() || self.any_word.as_ref().is_none_or(|re| re.is_match(text))
    }

    /// Whether `key` names a secret.
    pub fn matches(&self, key: &str) -> bool {
        if key.is_ascii() && self.any_word.as_ref().is_some_and(|re| !re.is_match(key)) {
            return false;
        }
        let key = words(key);
        self.names.iter().any(|name| {
            key.windows(name.len()).enumerate().any(|(at, window)| {
                window == name.as_slice()
                    && key
                        .get(at + name.len())
                        .is_none_or(|next| !ABOUT.contains(&next.as_str()))
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_SENSITIVE_KEYS;

    #[test]
    fn the_word_prefilter_never_rules_out_a_key_the_full_match_takes() {
        let keys = SensitiveKeys::new(DEFAULT_SENSITIVE_KEYS);
        // Non-ASCII keys skip the prefilter: KELVIN SIGN lower-cases to `k`.
        assert!(keys.matches("api_\u{212A}ey"));
        assert!(keys.matches("X-API-KEY"));
        assert!(keys.matches("myPassword"));
        assert!(!keys.matches("prompt_tokens"));
        assert!(!keys.matches("duration_ms"));
        // A key list with no usable name matches nothing.
        assert!(!SensitiveKeys::new(&["", "--"]).matches("token"));
    }

    #[test]
    fn keys_split_into_words() {
        for (key, want) in [
            ("access_token", &["access", "token"][..]),
            ("x-api-key", &["x", "api", "key"]),
            ("clientSecret", &["client", "secret"]),
            ("APIKey", &["api", "key"]),
            ("usage.prompt_tokens", &["usage", "prompt", "tokens"]),
            ("OAuth2Token", &["o", "auth2", "token"]),
            ("", &[]),
        ] {
            assert_eq!(words(key), want, "{key}");
        }
    }

    #[test]
    fn the_default_names_match_secrets_and_leave_their_look_alikes() {
        let keys = SensitiveKeys::new(DEFAULT_SENSITIVE_KEYS);
        for secret in [
            "token",
            "access_token",
            "id_token",
            "refresh-token",
            "x-api-key",
            "X-Api-Key",
            "api_key",
            "apiKey",
            "apikey",
            "client_secret",
            "clientSecret",
            "secret",
            "password",
            "Password",
            "db_password",
            "passwd",
            "pwd",
            "set-cookie",
            "Cookie",
            "private_key",
            "privateKey",
            "session_token",
            "Authorization",
            "proxy-authorization",
            "credentials",
            "aws_secret_access_key",
            "secrets",
        ] {
            assert!(keys.matches(secret), "{secret} should be a secret");
        }
        for harmless in [
            "tokens",
            "prompt_tokens",
            "completion_tokens",
            "total_tokens",
            "max_tokens",
            "tokenizer",
            "token_count",
            "token_type",
            "session_id",
            "session",
            "secretary",
            "secret_name",
            "password_policy",
            "private_key_path",
            "passwordless",
            "keyboard",
            "author",
            "cookbook",
            "api_version",
            "usage",
        ] {
            assert!(!keys.matches(harmless), "{harmless} should not be a secret");
        }
    }
}
