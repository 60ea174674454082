//! Vellum's guest plugins, built from source to WebAssembly components by this crate's
//! build script (no `.wasm` file is ever committed), and the [`toolchain`] that builds a
//! plugin component in Rust, Python or JavaScript (also used by `vellum plugin build`).
//!
//! Each guest under `guest/` gets a constant holding the absolute path of its component,
//! for example [`TEMPLATE`], and [`foreach_guest!`] calls a macro once per guest so that a
//! test can cover every guest.

pub mod toolchain;

include!(concat!(env!("OUT_DIR"), "/guests.rs"));
