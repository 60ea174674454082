//! Person names without a model: the census name lists compiled in (see
//! `data/README.md`), looked up case-insensitively, and the names that are also ordinary
//! English words.

use std::collections::HashSet;
use std::sync::OnceLock;

static FIRST: &str = include_str!("../data/first-names.txt");
static LAST: &str = include_str!("../data/last-names.txt");
static COMMON: &str = include_str!("../data/common-words.txt");

/// Whether the lower-case `word` is a line of `list`, which is parsed into `cache` once.
fn contains(cache: &OnceLock<HashSet<&'static str>>, list: &'static str, word: &str) -> bool {
    cache
        .get_or_init(|| list.lines().filter(|l| !l.is_empty()).collect())
        .contains(word.to_ascii_lowercase().as_str())
}

/// Whether `word` is a census first name.
pub fn is_first_name(word: &str) -> bool {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    contains(&SET, FIRST, word)
}

/// Whether `word` is one of the 20,000 commonest census last names.
pub fn is_last_name(word: &str) -> bool {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    contains(&SET, LAST, word)
}

/// Whether `word` is also an ordinary English word ("rose", "garden", "sales"): the names
/// in the lists that a dictionary has in lower case.
pub fn is_common_word(word: &str) -> bool {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    contains(&SET, COMMON, word)
}
