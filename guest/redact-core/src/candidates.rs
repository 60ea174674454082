//! Which detectors can match a string, in one cheap pass, so that only those run their own
//! regex (usually none of them).
//!
//! Most credential formats start with a literal (`sk-proj-`, `ghp_`, `AKIA`, `xoxb-`): a
//! pattern whose every match starts with one of a few literals of three bytes or more is
//! found by one Aho-Corasick search over all those literals, which costs little to build
//! and to run. The other patterns (e-mail, cards, phones, custom rules without such a
//! prefix) share one `RegexSet`. Before the split, one set of every pattern made each
//! tenant's instance slower to configure and every string slower to scan.

use aho_corasick::AhoCorasick;
use regex::RegexSet;
use regex_syntax::hir::literal::{ExtractKind, Extractor};

/// The fewest bytes a literal prefix must have to gate its detector.
const MIN_PREFIX: usize = 3;

/// The most literals one pattern may contribute (case-insensitive prefixes multiply).
const MAX_PREFIXES: usize = 32;

/// The candidate search over a redactor's detectors, by their index.
pub(crate) struct Candidates {
    /// The patterns without a literal prefix, in one set.
    set: RegexSet,
    /// For each pattern of `set`, its detector.
    set_detectors: Vec<usize>,
    /// The literal prefixes of the other patterns (`None` when there are none).
    prefixes: Option<AhoCorasick>,
    /// For each literal of `prefixes`, the detector it starts.
    prefix_detectors: Vec<usize>,
}

impl Candidates {
    /// The search over `patterns` (each detector's, by index).
    pub fn new<'p>(patterns: impl Iterator<Item = &'p str>) -> Result<Self, String> {
        let (mut set_patterns, mut set_detectors) = (Vec::new(), Vec::new());
        let (mut literals, mut prefix_detectors) = (Vec::new(), Vec::new());
        for (index, pattern) in patterns.enumerate() {
            match literal_prefixes(pattern) {
                Some(prefixes) => {
                    prefix_detectors.extend(std::iter::repeat_n(index, prefixes.len()));
                    literals.extend(prefixes);
                }
                None => {
                    set_patterns.push(pattern);
                    set_detectors.push(index);
                }
            }
        }
        let set = RegexSet::new(&set_patterns).map_err(|e| e.to_string())?;
        let prefixes = match literals.is_empty() {
            true => None,
            false => Some(AhoCorasick::new(&literals).map_err(|e| e.to_string())?),
        };
        Ok(Self {
            set,
            set_detectors,
            prefixes,
            prefix_detectors,
        })
    }

    /// The detectors that may match `text`: `is[index]` for each, or `None` when none may.
    pub fn of(&self, text: &str, detectors: usize) -> Option<Vec<bool>> {
        let mut is: Option<Vec<bool>> = None;
        // Most strings match nothing: the plain searches (which may stop early and use the
        // engines' own prefilters) rule them out before the overlapping ones.
        if self.set.is_match(text) {
            let set = self.set.matches(text);
            for (position, &index) in self.set_detectors.iter().enumerate() {
                if set.matched(position) {
                    is.get_or_insert_with(|| vec![false; detectors])[index] = true;
                }
            }
        }
        if let Some(prefixes) = self.prefixes.as_ref().filter(|p| p.is_match(text)) {
            for found in prefixes.find_overlapping_iter(text) {
                let index = self.prefix_detectors[found.pattern().as_usize()];
                is.get_or_insert_with(|| vec![false; detectors])[index] = true;
            }
        }
        is
    }
}

/// The literals every match of `pattern` starts with, when there are a few of at least
/// [`MIN_PREFIX`] bytes; `None` otherwise (or when the pattern does not parse here: it then
/// goes to the set, which reports it).
fn literal_prefixes(pattern: &str) -> Option<Vec<Vec<u8>>> {
    let hir = regex_syntax::Parser::new().parse(pattern).ok()?;
    let mut extractor = Extractor::new();
    extractor.kind(ExtractKind::Prefix);
    let mut seq = extractor.extract(&hir);
    seq.minimize_by_preference();
    let literals = seq.literals()?;
    let usable = !literals.is_empty()
        && literals.len() <= MAX_PREFIXES
        && literals.iter().all(|l| l.len() >= MIN_PREFIX);
    usable.then(|| literals.iter().map(|l| l.as_bytes().to_vec()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_prefixes_gate_only_patterns_that_have_them() {
        let prefixes = |p: &str| {
            literal_prefixes(p).map(|ls| {
                let mut ls: Vec<String> = ls
                    .into_iter()
                    .map(|l| String::from_utf8(l).unwrap())
                    .collect();
                ls.sort();
                ls
            })
        };
        assert_eq!(
            prefixes(r"(?-u)\bghp_[A-Za-z0-9]{36}\b|\bgithub_pat_[A-Za-z0-9_]{22,}"),
            Some(vec!["ghp_".to_string(), "github_pat_".to_string()])
        );
        assert_eq!(
            prefixes(r"(?-u)\bsk-(?:proj|admin)-x"),
            Some(vec!["sk-admin-x".into(), "sk-proj-x".into()])
        );
        // A branch without a prefix, or a prefix too short, leaves the pattern to the set.
        assert_eq!(prefixes(r"(?-u)\bAKIA[0-9]|\d{4}"), None);
        assert_eq!(prefixes(r"(?-u)\br8_x"), Some(vec!["r8_x".into()]));
        assert_eq!(prefixes(r"(?-u)\bxy"), None);
        assert_eq!(prefixes(r"(?i)[a-z0-9]+@example\.com"), None);
    }

    #[test]
    fn candidates_come_from_both_searches() {
        let c = Candidates::new(
            [
                r"(?-u)\bghp_[A-Za-z0-9]{4}",
                r"(?-u)\d{3}-\d{4}",
                r"(?-u)\bsk-ant-",
            ]
            .into_iter(),
        )
        .unwrap();
        assert_eq!(c.of("nothing here", 3), None);
        assert_eq!(
            c.of("ghp_abcd and 555-1234", 3),
            Some(vec![true, true, false])
        );
        assert_eq!(c.of("key sk-ant-x", 3), Some(vec![false, false, true]));
    }
}
