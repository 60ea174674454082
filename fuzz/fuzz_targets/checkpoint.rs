//! The signed-checkpoint parser and verifier must reject, never panic on, any input.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// A valid verifier key, so inputs get past key parsing into the note and checkpoint.
const KEY: &str = "vellum/a+86d82ead+ARGC1usJKjZGkRCY586m3IyT8mGfEmWTqiX7lu6k4ZEZ";

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = vellum::ledger::checkpoint::verify_checkpoint(text, KEY);
        let _ = vellum::ledger::checkpoint::verify_checkpoint(KEY, text);
    }
});
