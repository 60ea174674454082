//! The free-text PII detectors (`person-name`, `postal-address`, `passport`) measured on a
//! generated corpus of agent prompts: names, addresses and passport numbers planted in
//! sentences (fake data), and benign prompts full of capitalised words (cities, companies,
//! products, weekdays). Prints recall per kind and the share of benign prompts touched, with
//! the default configuration and with the detectors on; asserts floors well below the
//! measured figures so that a regression, not noise, fails it.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use fake::Fake;
use fake::faker::address::en::{BuildingNumber, CityName, StateAbbr, StreetName, StreetSuffix};
use fake::faker::company::en::{Buzzword, CompanyName};
use fake::faker::name::en::{FirstName, LastName};
use fake::rand::rngs::StdRng;
use fake::rand::{RngExt, SeedableRng};
use vellum_redact_core::{Config, Redactor};

const PROMPTS: usize = 1_000;
const FREE_TEXT: &[&str] = &["person-name", "postal-address", "passport"];

fn redactor(on: bool) -> Redactor {
    let config = match on {
        true => "[detectors]\nperson-name = {}\npostal-address = {}\n",
        false => "",
    };
    let config = config.replace("{}", "{ enabled = true }");
    Redactor::new(&Config::parse(&config).unwrap()).unwrap()
}

fn uk_postcode(rng: &mut StdRng) -> String {
    let letter = |rng: &mut StdRng| (b'A' + rng.random_range(0..26u8)) as char;
    let inward = |rng: &mut StdRng| {
        let l = b"ABDEFGHJLNPQRSTUWXYZ";
        l[rng.random_range(0..l.len())] as char
    };
    format!(
        "{}{}{} {}{}{}",
        letter(rng),
        letter(rng),
        rng.random_range(1..20),
        rng.random_range(0..10),
        inward(rng),
        inward(rng)
    )
}

/// A prompt with one planted value: (text, the value, its kind).
fn planted(rng: &mut StdRng, i: usize) -> (String, String, &'static str) {
    let first: String = FirstName().fake_with_rng(rng);
    let last: String = LastName().fake_with_rng(rng);
    match i % 6 {
        0 => {
            let name = format!("{first} {last}");
            (
                format!("Hi, my name is {name} and I need a refund."),
                name,
                "person-name",
            )
        }
        1 => {
            let name = format!("{first} {last}");
            (
                format!("Forward this to {name} before Friday."),
                name,
                "person-name",
            )
        }
        2 => {
            let street = format!(
                "{} {} {}",
                BuildingNumber().fake_with_rng::<String, _>(rng),
                StreetName().fake_with_rng::<String, _>(rng),
                StreetSuffix().fake_with_rng::<String, _>(rng)
            );
            (
                format!("I live at {street}, please ship it there."),
                street,
                "postal-address",
            )
        }
        3 => {
            let code = uk_postcode(rng);
            (
                format!("Deliver to the London office, postcode {code}."),
                code,
                "postal-address",
            )
        }
        4 => {
            let zip = format!(
                "{} {:05}",
                StateAbbr().fake_with_rng::<String, _>(rng),
                rng.random_range(1000..99999)
            );
            (
                format!(
                    "Billing address: {} {zip}",
                    CityName().fake_with_rng::<String, _>(rng)
                ),
                zip,
                "postal-address",
            )
        }
        _ => {
            let number = format!(
                "{}{:08}",
                (b'A' + rng.random_range(0..26u8)) as char,
                rng.random_range(0..100_000_000u32)
            );
            (
                format!("My passport number is {number}, expiring soon."),
                number,
                "passport",
            )
        }
    }
}

/// A benign agent prompt full of capitalised words that are not people or addresses.
fn benign(rng: &mut StdRng, i: usize) -> String {
    let city: String = CityName().fake_with_rng(rng);
    let company: String = CompanyName().fake_with_rng(rng);
    let buzz: String = Buzzword().fake_with_rng(rng);
    match i % 16 {
        8 => "Hi Team, please review the Rose Garden dashboard by Tuesday.".into(),
        9 => "Dear Valued Customer, your order from Spring Sale has shipped.".into(),
        10 => "Customer Success will reply; Call Center hours are Monday to Friday.".into(),
        11 => format!("Contact Sales about {company} Enterprise pricing in {city}."),
        12 => "Grant Access to the Shared Drive folder, then Mark Complete.".into(),
        13 => "Thanks Support, the April Release fixed the Login Page.".into(),
        14 => format!("Patient Portal outage in {city}; escalate to the On Call engineer."),
        15 => "Email Marketing sent the Black Friday campaign to 1200 users.".into(),
        0 => format!("Deploy the {buzz} service to the {city} region."),
        1 => format!("Summarise the Q3 report from {company} for the board."),
        2 => "Search Google Drive for Meeting Notes from Monday and Tuesday.".into(),
        3 => "Open Pull Request 4821 in the Vellum repository and run Cargo Test.".into(),
        4 => "The New York and San Francisco teams share the Slack channel.".into(),
        5 => format!("Call the Weather API for {city} and return Celsius values."),
        6 => "Tool Call Failed: Rate Limit Exceeded after 3 retries.".into(),
        _ => "Read Chapter 7 of The Rust Programming Language, then draft Section 2.".into(),
    }
}

#[test]
fn free_text_pii_is_measured_both_ways() {
    let mut rng = StdRng::seed_from_u64(0xF7EE_7E27);
    let off = redactor(false);
    let on = redactor(true);
    let free_text = |r: &Redactor, text: &str| {
        r.find(text)
            .into_iter()
            .filter(|f| FREE_TEXT.contains(&f.detector.as_str()))
            .map(|f| text[f.start..f.end].to_string())
            .collect::<Vec<_>>()
    };
    let mut report = String::new();
    for (label, r) in [("default", &off), ("enabled", &on)] {
        let mut found = std::collections::BTreeMap::<&str, (usize, usize)>::new();
        for i in 0..PROMPTS {
            let (text, value, kind) = planted(&mut rng, i);
            let hits = free_text(r, &text);
            let entry = found.entry(kind).or_default();
            entry.1 += 1;
            if hits
                .iter()
                .any(|h| h.contains(&value) || value.contains(h.as_str()))
            {
                entry.0 += 1;
            } else if std::env::var_os("SHOW_MISSES").is_some() {
                eprintln!("{label} missed {kind}: {text:?} (found {hits:?})");
            }
        }
        let touched = (0..PROMPTS)
            .filter(|i| {
                let text = benign(&mut rng, *i);
                let hits = free_text(r, &text);
                if !hits.is_empty() && std::env::var_os("SHOW_MISSES").is_some() {
                    eprintln!("{label} touched {text:?}: {hits:?}");
                }
                !hits.is_empty()
            })
            .count();
        let fp = touched as f64 / PROMPTS as f64;
        for (kind, (hit, total)) in &found {
            report.push_str(&format!(
                "{label}: {kind} recall {:.3} ({hit}/{total})\n",
                *hit as f64 / *total as f64
            ));
        }
        report.push_str(&format!("{label}: benign prompts touched {fp:.3}\n"));
        let recall = |kind| found.get(kind).map_or(0.0, |(h, t)| *h as f64 / *t as f64);
        match label {
            "default" => {
                assert!(recall("passport") >= 0.95, "{report}");
                assert_eq!(recall("person-name"), 0.0, "{report}");
                assert!(fp <= 0.01, "{report}");
            }
            _ => {
                assert!(recall("person-name") >= 0.6, "{report}");
                assert!(recall("postal-address") >= 0.8, "{report}");
                assert!(fp <= 0.1, "{report}");
            }
        }
    }
    eprint!("{report}");
}
