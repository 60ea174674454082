//! Witness quorums: which cosignatures make a checkpoint count. A policy names witnesses
//! by their verifier keys, groups them with thresholds ("k of these"), and picks one group
//! as the quorum. It applies in two places:
//! - the ledger publishes a checkpoint (to `publish-dir`, `publish-command` and the tiles'
//!   `checkpoint`) only once its cosignatures meet the quorum;
//! - `vellum verify --witness-policy FILE` requires a checkpoint that meets it.
//!
//! The text format is the Sigsum trust policy's, with C2SP verifier keys (`vkey`s) in place
//! of hex keys, one statement per line, `#` starting a comment:
//!
//! ```text
//! log     <vkey>                        # optional: the log the policy is for
//! witness <name> <vkey> [<url>]         # a witness; with a URL, the ledger asks it
//! group   <name> <k | all | any> <member>...
//! quorum  <name>                        # a witness or a group
//! ```
//!
//! A group's members are witnesses or groups named on earlier lines.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::LedgerError;
use super::cosignature::CosignatureVerifier;
use super::witness::Witness;

/// A parsed witness policy.
#[derive(Debug, Clone)]
pub struct WitnessPolicy {
    /// The log's verifier key, when the policy names one.
    log: Option<String>,
    witnesses: Vec<PolicyWitness>,
    groups: HashMap<String, Group>,
    quorum: String,
}

/// One `witness` line.
#[derive(Debug, Clone)]
pub struct PolicyWitness {
    /// Its name in the policy.
    pub name: String,
    /// Its verifier key.
    pub key: CosignatureVerifier,
    /// Where its `add-checkpoint` endpoint is, when given.
    pub url: Option<String>,
}

#[derive(Debug, Clone)]
struct Group {
    threshold: usize,
    members: Vec<String>,
}

/// How a checkpoint's cosignatures measure against the quorum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumCheck {
    /// Whether the quorum is met.
    pub met: bool,
    /// The policy's witnesses with a valid cosignature, by name.
    pub cosigned: Vec<String>,
    /// The policy's witnesses without one, by name.
    pub missing: Vec<String>,
}

impl WitnessPolicy {
    /// Reads a policy file.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read witness policy {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("witness policy {}: {e}", path.display()))
    }

    /// Parses a policy; an error names the line.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut policy = Self {
            log: None,
            witnesses: Vec::new(),
            groups: HashMap::new(),
            quorum: String::new(),
        };
        for (number, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            policy
                .statement(line)
                .map_err(|e| format!("line {}: {e}", number + 1))?;
        }
        if policy.quorum.is_empty() {
            return Err("no `quorum` line".into());
        }
        Ok(policy)
    }

    fn statement(&mut self, line: &str) -> Result<(), String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["log", key] => {
                if self.log.replace(key.to_string()).is_some() {
                    return Err("a second `log` line".into());
                }
            }
            ["witness", name, key, rest @ ..] if rest.len() <= 1 => {
                self.check_new_name(name)?;
                let key =
                    CosignatureVerifier::new(key).map_err(|e| format!("witness {name}: {e}"))?;
                let url = rest.first().map(|u| u.trim_end_matches('/').to_string());
                if let Some(url) = &url
                    && !(url.starts_with("http://") || url.starts_with("https://"))
                {
                    return Err(format!("witness {name}: URL `{url}` is not http(s)"));
                }
                self.witnesses.push(PolicyWitness {
                    name: name.to_string(),
                    key,
                    url,
                });
            }
            ["group", name, threshold, members @ ..] if !members.is_empty() => {
                self.check_new_name(name)?;
                let mut seen = HashSet::new();
                for member in members {
                    if !self.defined(member) {
                        return Err(format!(
                            "group {name}: member `{member}` is not a witness or group named \
                             on an earlier line"
                        ));
                    }
                    if !seen.insert(*member) {
                        return Err(format!("group {name}: member `{member}` listed twice"));
                    }
                }
                let threshold = match *threshold {
                    "all" => members.len(),
                    "any" => 1,
                    k => k
                        .parse()
                        .ok()
                        .filter(|k| (1..=members.len()).contains(k))
                        .ok_or_else(|| {
                            format!(
                                "group {name}: threshold `{k}` is not `all`, `any` or a \
                                 number from 1 to {}",
                                members.len()
                            )
                        })?,
                };
                self.groups.insert(
                    name.to_string(),
                    Group {
                        threshold,
                        members: members.iter().map(|m| m.to_string()).collect(),
                    },
                );
            }
            ["quorum", name] => {
                if !self.quorum.is_empty() {
                    return Err("a second `quorum` line".into());
                }
                if !self.defined(name) {
                    return Err(format!(
                        "quorum `{name}` is not a witness or group named on an earlier line"
                    ));
                }
                self.quorum = name.to_string();
            }
            _ => {
                return Err(format!(
                    "`{line}` is not `log <vkey>`, `witness <name> <vkey> [<url>]`, `group \
                     <name> <k|all|any> <member>...` or `quorum <name>`"
                ));
            }
        }
        Ok(())
    }

    fn check_new_name(&self, name: &str) -> Result<(), String> {
        match self.defined(name) {
            true => Err(format!("`{name}` is defined twice")),
            false => Ok(()),
        }
    }

    fn defined(&self, name: &str) -> bool {
        self.groups.contains_key(name) || self.witnesses.iter().any(|w| w.name == name)
    }

    /// The log key the policy names, if any.
    pub fn log_key(&self) -> Option<&str> {
        self.log.as_deref()
    }

    /// The witnesses it names.
    pub fn witnesses(&self) -> &[PolicyWitness] {
        &self.witnesses
    }

    /// Adds the policy's witnesses that name a URL to `witnesses`, the ones asked to cosign,
    /// unless a witness with the same key is there already.
    pub fn add_asked(&self, witnesses: &mut Vec<Witness>) -> Result<(), LedgerError> {
        for named in &self.witnesses {
            let known = witnesses.iter().any(|w| w.key().id() == named.key.id());
            if let (Some(url), false) = (&named.url, known) {
                witnesses.push(Witness::with_key(url, named.key.clone())?);
            }
        }
        Ok(())
    }

    /// Measures the cosignature `lines` of the signed checkpoint `note` against the quorum:
    /// a line counts for a witness when it verifies under that witness's key.
    pub fn check(&self, note: &str, lines: &[String]) -> QuorumCheck {
        let mut cosigned = Vec::new();
        let mut missing = Vec::new();
        for witness in &self.witnesses {
            let prefix = format!("— {} ", witness.key.name());
            let valid = lines
                .iter()
                .filter(|l| l.starts_with(&prefix))
                .any(|l| witness.key.verify_line(note, l).is_ok());
            match valid {
                true => cosigned.push(witness.name.clone()),
                false => missing.push(witness.name.clone()),
            }
        }
        let signed: HashSet<&str> = cosigned.iter().map(String::as_str).collect();
        QuorumCheck {
            met: self.satisfied(&self.quorum, &signed, 0),
            cosigned,
            missing,
        }
    }

    fn satisfied(&self, name: &str, signed: &HashSet<&str>, depth: usize) -> bool {
        match self.groups.get(name) {
            // Groups only name earlier lines, so the nesting ends; the bound is a guard.
            Some(group) if depth < 64 => {
                group
                    .members
                    .iter()
                    .filter(|m| self.satisfied(m, signed, depth + 1))
                    .count()
                    >= group.threshold
            }
            Some(_) => false,
            None => signed.contains(name),
        }
    }

    /// The quorum in words, e.g. `2 of {w1, w2, w3}`.
    pub fn describe(&self) -> String {
        self.describe_member(&self.quorum, 0)
    }

    fn describe_member(&self, name: &str, depth: usize) -> String {
        match self.groups.get(name) {
            Some(group) if depth < 64 => format!(
                "{} of {{{}}}",
                group.threshold,
                group
                    .members
                    .iter()
                    .map(|m| self.describe_member(m, depth + 1))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            _ => name.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::cosignature::Cosigner;

    const NOTE: &str =
        "vellum/test\n3\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n— vellum/test AAAAAAAA\n";

    fn witness(name: &str) -> (Cosigner, String) {
        let (secret, public) = Cosigner::generate(name).unwrap();
        (Cosigner::parse(&secret).unwrap(), public)
    }

    fn cosign(cosigner: &Cosigner) -> String {
        let body = NOTE.split("\n\n").next().unwrap().to_string() + "\n";
        cosigner.cosign(body.as_bytes(), 1_700_000_000)
    }

    #[test]
    fn two_of_three_is_met_by_any_two_and_names_the_missing_one() {
        let ws: Vec<_> = ["a.example", "b.example", "c.example"]
            .iter()
            .map(|n| witness(n))
            .collect();
        let text = format!(
            "# three witnesses\nwitness a {}\nwitness b {} http://127.0.0.1:1/w\nwitness c {}\n\
             group two 2 a b c\nquorum two\n",
            ws[0].1, ws[1].1, ws[2].1
        );
        let policy = WitnessPolicy::parse(&text).unwrap();
        assert_eq!(policy.describe(), "2 of {a, b, c}");
        assert_eq!(
            policy.witnesses()[1].url.as_deref(),
            Some("http://127.0.0.1:1/w")
        );
        let lines = vec![cosign(&ws[0].0), cosign(&ws[2].0)];
        let check = policy.check(NOTE, &lines);
        assert!(check.met);
        assert_eq!(check.missing, vec!["b".to_string()]);
        let check = policy.check(NOTE, &lines[..1]);
        assert!(!check.met);
        assert_eq!(check.cosigned, vec!["a".to_string()]);
    }

    #[test]
    fn a_line_by_another_key_of_the_same_name_does_not_count() {
        let (_, public) = witness("a.example");
        let (impostor, _) = witness("a.example");
        let policy = WitnessPolicy::parse(&format!("witness a {public}\nquorum a\n")).unwrap();
        assert!(!policy.check(NOTE, &[cosign(&impostor)]).met);
    }

    #[test]
    fn nested_groups_and_all_and_any() {
        let ws: Vec<_> = ["a.example", "b.example", "c.example"]
            .iter()
            .map(|n| witness(n))
            .collect();
        let text = format!(
            "witness a {}\nwitness b {}\nwitness c {}\ngroup ab all a b\ngroup top any ab c\n\
             quorum top\n",
            ws[0].1, ws[1].1, ws[2].1
        );
        let policy = WitnessPolicy::parse(&text).unwrap();
        assert_eq!(policy.describe(), "1 of {2 of {a, b}, c}");
        assert!(policy.check(NOTE, &[cosign(&ws[2].0)]).met);
        assert!(!policy.check(NOTE, &[cosign(&ws[0].0)]).met);
        assert!(
            policy
                .check(NOTE, &[cosign(&ws[0].0), cosign(&ws[1].0)])
                .met
        );
    }

    #[test]
    fn bad_policies_are_refused_naming_the_line() {
        let (_, key) = witness("a.example");
        for (text, needle) in [
            (format!("witness a {key}\n"), "no `quorum`"),
            (
                format!("witness a {key}\ngroup g 2 a\nquorum g\n"),
                "line 2",
            ),
            (
                format!("witness a {key}\ngroup g 1 b\nquorum g\n"),
                "`b` is not",
            ),
            (
                format!("witness a {key}\nwitness a {key}\nquorum a\n"),
                "defined twice",
            ),
            ("witness a notakey\nquorum a\n".to_string(), "line 1"),
            (
                format!("witness a {key}\nquorum a\nquorum a\n"),
                "second `quorum`",
            ),
            ("frobnicate\n".to_string(), "is not `log"),
        ] {
            let err = WitnessPolicy::parse(&text).unwrap_err();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }
}
