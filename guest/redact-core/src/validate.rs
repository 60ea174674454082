//! Checks that turn a pattern match into a detection: checksums, ranges, context.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::names;

/// The digits of a string.
fn digits(s: &str) -> Vec<u32> {
    s.chars().filter_map(|c| c.to_digit(10)).collect()
}

/// A payment card number: 13–19 digits, consistent separators, Luhn checksum.
pub fn card(s: &str) -> bool {
    let d = digits(s);
    if !(12..=19).contains(&d.len()) || d.iter().all(|&x| x == d[0]) {
        return false;
    }
    // Twelve digits are a card only in Maestro's ranges (50, 56–58, 639, 67).
    let maestro = |prefix: &[&str]| prefix.iter().any(|p| digits_start(&d, p));
    if d.len() == 12 && !maestro(&["50", "56", "57", "58", "639", "67"]) {
        return false;
    }
    // The first digit fixes the lengths a card can have: 1 is UATP (15 digits), 2 the
    // Mastercard 2-series (16). Epoch timestamps in milliseconds (13 digits), microseconds
    // (16) and nanoseconds (19) start with 1 until 2033, and nanoseconds with 2 after: none
    // of them is a card, whatever Luhn says.
    match d[0] {
        1 if d.len() != 15 => return false,
        2 if d.len() != 16 => return false,
        _ => {}
    }
    let separators: Vec<char> = s.chars().filter(|c| !c.is_ascii_digit()).collect();
    if separators.windows(2).any(|w| w[0] != w[1]) {
        return false;
    }
    if !separators.is_empty() {
        // Printed cards group as 4-4-4-4(-1..4) or, for Amex and Diners, 4-6-5 / 4-6-4.
        let groups: Vec<usize> = s.split([' ', '-']).map(str::len).collect();
        let fours = groups[..groups.len() - 1].iter().all(|&g| g == 4)
            && (1..=4).contains(&groups[groups.len() - 1]);
        let amex = groups == [4, 6, 5] || groups == [4, 6, 4];
        if !(fours || amex) {
            return false;
        }
    }
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            if i % 2 == 1 {
                if x * 2 > 9 { x * 2 - 9 } else { x * 2 }
            } else {
                x
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// An IBAN with a valid country format and mod-97 checksum.
pub fn iban(s: &str) -> bool {
    let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    compact.parse::<iban::Iban>().is_ok()
}

/// A US social security number outside the never-issued ranges.
pub fn ssn(s: &str) -> bool {
    let d = digits(s);
    if d.len() != 9 {
        return false;
    }
    let area = d[0] * 100 + d[1] * 10 + d[2];
    let group = d[3] * 10 + d[4];
    let serial = d[5] * 1000 + d[6] * 100 + d[7] * 10 + d[8];
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

/// Whether the digits start with `prefix`.
fn digits_start(d: &[u32], prefix: &str) -> bool {
    prefix
        .chars()
        .zip(d)
        .all(|(c, &x)| c.to_digit(10) == Some(x))
        && d.len() >= prefix.len()
}

/// A phone number: 7 to 15 digits, not counting an extension.
pub fn phone(s: &str) -> bool {
    // The number itself, without an extension (`x448`, `ext. 12`).
    let number = s
        .split(|c: char| c.is_ascii_alphabetic())
        .next()
        .unwrap_or(s);
    (7..=15).contains(&digits(number).len())
}

/// A dotted-quad IPv4 address.
pub fn ipv4(s: &str) -> bool {
    s.parse::<Ipv4Addr>().is_ok()
}

/// An IPv6 address (at least two colons, parses).
pub fn ipv6(s: &str) -> bool {
    s.matches(':').count() >= 2 && s.parse::<Ipv6Addr>().is_ok()
}

/// A long token of high Shannon entropy mixing letters and digits; hex-only strings (hashes,
/// digests) are excluded.
pub fn high_entropy(s: &str) -> bool {
    s.len() >= 24 && mixed(s) && entropy(s) >= 4.0
}

/// A name after a weak context ("Hi …", "I'm …"): one of its words is a census first or
/// last name, and not all of them are ordinary English words ("Call Center").
pub fn introduced_name(s: &str) -> bool {
    let mut words = s.split([' ', '-']);
    words
        .clone()
        .any(|w| names::is_first_name(w) || names::is_last_name(w))
        && !words.all(names::is_common_word)
}

/// "First Last" anywhere: a census first name followed by a common census last name, not
/// both ordinary English words ("Rose Garden", "Spring Sale").
pub fn full_name(s: &str) -> bool {
    match s.split_once(' ') {
        Some((first, last)) => {
            names::is_first_name(first)
                && names::is_last_name(last)
                && !(names::is_common_word(first) && names::is_common_word(last))
        }
        None => false,
    }
}

/// A passport number: six to nine letters and digits, with at least one digit.
pub fn passport(s: &str) -> bool {
    (6..=9).contains(&s.len()) && s.bytes().any(|b| b.is_ascii_digit())
}

/// `XX 12345`: a US state or territory code before a ZIP code.
pub fn us_zip(s: &str) -> bool {
    const STATES: &str = "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS \
                          MO MT NE NV NH NJ NM NY NC ND OH OK OR PA PR RI SC SD TN TX UT VT VA WA \
                          WV WI WY";
    s.get(..2)
        .is_some_and(|state| STATES.split_whitespace().any(|s| s == state))
}

/// A bare AWS secret access key: 40 characters (the pattern's job) mixing upper case, lower
/// case and digits, not hex, with the entropy of random base64 (a median of 4.8 bits per
/// character over 40 characters; none of 100,000 random keys under 4.15), and not made of
/// words: in an identifier (`getUserAccountBalance…`) most letters sit in lower-case runs
/// of four or more, in random base64 few do. Simulated on 200,000 random keys and 50,000
/// camel-case identifiers of dictionary words: 0.25% of the keys missed (a third of them
/// for want of a digit), 0.19% of the identifiers taken for keys.
pub fn aws_secret(s: &str) -> bool {
    s.len() == 40 && mixed(s) && entropy(s) >= 4.1 && !wordy(s)
}

/// Whether at least half of the letters sit in runs of four or more lower-case letters.
fn wordy(s: &str) -> bool {
    let letters = s.bytes().filter(u8::is_ascii_alphabetic).count();
    let in_runs: usize = s
        .as_bytes()
        .split(|b| !b.is_ascii_lowercase())
        .map(<[u8]>::len)
        .filter(|&run| run >= 4)
        .sum();
    letters > 0 && in_runs * 2 >= letters
}

/// Not hex-only, and has a digit, a lower-case and an upper-case letter.
fn mixed(s: &str) -> bool {
    let has = |f: fn(&char) -> bool| s.chars().any(|c| f(&c));
    !s.chars().all(|c| c.is_ascii_hexdigit())
        && has(char::is_ascii_digit)
        && has(char::is_ascii_lowercase)
        && has(char::is_ascii_uppercase)
}

/// Shannon entropy of the bytes of `s`, in bits per byte.
fn entropy(s: &str) -> f64 {
    let mut counts = [0u32; 256];
    for b in s.bytes() {
        counts[b as usize] += 1;
    }
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_aws_secret_key_is_random_base64_of_40() {
        assert!(aws_secret("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"));
        assert!(aws_secret("Xk3m9Qz+Lr7Tb2Wn5Yc8Vd1Hf4Jg6Ks0Pa/Ue3Io"));
        assert!(!aws_secret("9fceb02d0ae598e95dc970b74767f19372d61af8")); // a git commit
        assert!(!aws_secret("AbstractSingletonProxyFactoryBean2Helper")); // an identifier
        assert!(!aws_secret("getUserAccountBalanceForCustomer2024Q3v1"));
        assert!(!aws_secret("abcdefghijklmnopqrstuvwxyzabcdefghijklmn")); // no digit or capital
        assert!(!aws_secret("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKE")); // 39
    }

    #[test]
    fn cards_need_luhn_and_consistent_separators() {
        assert!(card("4111 1111 1111 1111"));
        assert!(card("4111-1111-1111-1111"));
        assert!(card("5500005555555559"));
        assert!(card("378282246310005")); // Amex, 15 digits
        assert!(!card("4111 1111 1111 1112"));
        assert!(!card("4111-1111 1111-1111"));
        assert!(!card("0000000000000000"));
        assert!(!card("123456789012")); // 12 digits
    }

    #[test]
    fn iban_checksums() {
        assert!(iban("DE89 3704 0044 0532 0130 00"));
        assert!(iban("GB82WEST12345698765432"));
        assert!(!iban("DE89 3704 0044 0532 0130 01"));
        assert!(!iban("XX00 1234"));
    }

    #[test]
    fn ssn_ranges() {
        assert!(ssn("123-45-6789"));
        assert!(!ssn("000-12-3456"));
        assert!(!ssn("666-12-3456"));
        assert!(!ssn("912-12-3456"));
        assert!(!ssn("123-00-4567"));
    }

    #[test]
    fn ip_addresses() {
        assert!(ipv4("192.168.1.20"));
        assert!(!ipv4("999.1.1.1"));
        assert!(ipv6("2001:db8::8a2e:370:7334"));
        assert!(ipv6("fe80::1"));
        assert!(!ipv6("10:00:00"));
        assert!(!ipv6("aa:bb:cc:dd:ee:ff"));
    }

    #[test]
    fn entropy_ignores_hex_and_plain_words() {
        assert!(high_entropy("Zx8kQ2mP9vL4nR7tW1yB6cD3fG5hJ0s"));
        assert!(!high_entropy(
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        ));
        assert!(!high_entropy("the_quick_brown_fox_jumps_over"));
    }
}
