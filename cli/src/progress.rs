//! Progress bars on stderr for long work (`verify` of a large ledger, `run`/`ingest` of a
//! large input file). Shown only when stderr is a terminal; hidden when piped, so scripts
//! and logs see nothing of them.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// Inputs smaller than this finish too fast for a bar.
const MIN_INPUT_BYTES: u64 = 1 << 20;

/// Ledgers smaller than this verify too fast for a bar.
const MIN_ENTRIES: u64 = 100_000;

fn bar(len: u64, template: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

/// A bar over the entries of a ledger being verified.
pub fn entries(size: u64) -> ProgressBar {
    if size < MIN_ENTRIES || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    bar(size, "{bar:40} {pos}/{len} entries ({per_sec}, {eta})")
}

/// A bar over the bytes of an input file, with the events read so far as its message.
/// Hidden unless stderr is a terminal and stdout is not (the output would break the bar).
pub fn input(bytes: u64) -> ProgressBar {
    let terminal = std::io::stderr().is_terminal() && !std::io::stdout().is_terminal();
    if bytes < MIN_INPUT_BYTES || !terminal {
        return ProgressBar::hidden();
    }
    bar(
        bytes,
        "{bar:40} {binary_bytes}/{binary_total_bytes} ({binary_bytes_per_sec}, {eta}) {msg}",
    )
}
