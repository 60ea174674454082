//! The `vellum` command-line tool: argument parsing, logging set-up, and mapping the
//! library's typed errors to messages and exit codes. Everything else is in the `vellum`
//! library.

/// `println!` that never panics: a closed stdout (`vellum … | head`) ends the process
/// quietly, any other write error ends it with exit code 1 and a message.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::commands::write_stdout(format_args!($($arg)*), true)
    };
}

/// `print!` counterpart of [`say!`].
macro_rules! say_raw {
    ($($arg:tt)*) => {
        $crate::commands::write_stdout(format_args!($($arg)*), false)
    };
}

/// mimalloc instead of the system allocator: events are allocated on one thread and freed on
/// another, many times a second, which the C library's allocator handles poorly.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod builtins;
mod commands;
mod demo;
mod erase;
mod inspect;
mod ledger;
mod monitor;
mod plugin_kit;
mod progress;
mod run;
mod serve;
mod test;
mod witness;

use commands::{exit, report};

fn main() -> std::process::ExitCode {
    commands::main()
}
