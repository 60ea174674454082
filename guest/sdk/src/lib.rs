//! Write a Vellum plugin in Rust: implement [`Plugin`] and export it with
//! [`export_plugin!`].
//!
//! A plugin is a sandboxed WebAssembly component of the `vellum:audit/plugin` world (the WIT
//! ships inside this crate, in `wit/`). The host configures every fresh instance once, then
//! hands it batches of events and takes back one [`Verdict`] per event. This crate holds the
//! boilerplate every plugin would otherwise repeat: the generated bindings, keeping the
//! configured plugin between calls, refusing events before `configure`, and helpers for the
//! payload ([`edit_payload`] returns [`Verdict::Pass`] when nothing changed, so an untouched
//! event is not copied back to the host), labels ([`label`], [`set_label`]), configuration
//! ([`json_config`]) and the host's services ([`log`], [`pseudonymize`]).
//!
//! ```ignore
//! use vellum_plugin::{AuditEvent, Plugin, Verdict, edit_payload, strings_mut};
//!
//! struct Shout;
//!
//! impl Plugin for Shout {
//!     fn configure(_config: &str) -> Result<Self, String> {
//!         Ok(Shout)
//!     }
//!
//!     fn apply(&self, event: AuditEvent) -> Verdict {
//!         edit_payload(event, |payload| {
//!             strings_mut(payload, |s| {
//!                 let loud = s.to_uppercase();
//!                 let changed = loud != *s;
//!                 *s = loud;
//!                 changed
//!             })
//!         })
//!     }
//! }
//!
//! vellum_plugin::export_plugin!(Shout);
//! ```
//!
//! Build it for `wasm32-unknown-unknown` as a `cdylib` and wrap it into a component (`vellum
//! plugin build` does both).

// The generated bindings name this crate by its external name, also from inside it.
extern crate self as vellum_plugin;

mod event;
#[doc(hidden)]
pub mod export;

pub use event::{edit_payload, json_config, label, payload, remove_label, set_label, strings_mut};

/// Bindings generated from the crate's `wit/` by wit-bindgen (generated items carry the WIT
/// docs). Plugins rarely need them directly: the types they use are re-exported at the crate
/// root.
#[allow(missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "plugin",
        path: "wit",
        pub_export_macro: true,
        export_macro_name: "__export_filter",
        default_bindings_module: "::vellum_plugin::bindings",
        runtime_path: "::vellum_plugin::export::wit_bindgen::rt",
    });
}

pub use bindings::vellum::audit::host::{LogLevel, log, pseudonymize};
pub use bindings::vellum::audit::types::{AuditEvent, Label, Timestamp, Verdict};

/// A plugin: configured once per instance, then asked for a verdict on every event.
///
/// The host may discard an instance and configure a fresh one at any time (it always does
/// after a trap), so a plugin must not rely on state kept between calls.
pub trait Plugin: Sized + 'static {
    /// Parses and checks the configuration text from the chain file (empty when the chain
    /// gives none). Return an error that names the bad setting: the host then refuses to load
    /// the chain and shows it.
    fn configure(config: &str) -> Result<Self, String>;

    /// Decides about one event: [`Verdict::Pass`] to let it through unchanged,
    /// [`Verdict::Keep`] with a rewritten event (only `actor`, `subject`, `payload` and
    /// `labels` may change), [`Verdict::Drop`] to store only a drop marker, or
    /// [`Verdict::Reject`] to fail the producer's emit.
    fn apply(&self, event: AuditEvent) -> Verdict;

    /// Decides about a batch: exactly one verdict per event, in order. The default calls
    /// [`Plugin::apply`] per event; override it to share work across a batch.
    fn apply_batch(&self, events: Vec<AuditEvent>) -> Vec<Verdict> {
        events.into_iter().map(|event| self.apply(event)).collect()
    }
}

/// Exports a [`Plugin`] type as the component's `filter` interface. Use it once, at the
/// crate root of a `cdylib`: `vellum_plugin::export_plugin!(MyPlugin);`.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        ::std::thread_local! {
            static __VELLUM_PLUGIN: $crate::export::Slot<$plugin> =
                const { $crate::export::Slot::new() };
        }

        #[doc(hidden)]
        struct __VellumFilter;

        impl $crate::bindings::exports::vellum::audit::filter::Guest for __VellumFilter {
            fn configure(config: ::std::string::String) -> ::std::result::Result<(), ::std::string::String> {
                __VELLUM_PLUGIN.with(|slot| slot.configure(&config))
            }

            fn apply(
                events: ::std::vec::Vec<$crate::AuditEvent>,
            ) -> ::std::vec::Vec<$crate::Verdict> {
                __VELLUM_PLUGIN.with(|slot| slot.apply(events))
            }
        }

        $crate::bindings::__export_filter!(__VellumFilter with_types_in $crate::bindings);
    };
}
