//! `vellum._native`: the Vellum sink in-process for Python. The Python package `vellum`
//! (`python/py/vellum`) re-exports it and adds the agent-framework adapters.
//!
//! Events cross as JSON (Python's `json.dumps` of a dict, parsed into the envelope), so
//! the rules are exactly those of every other front door: the `Sink` decides what is
//! recorded. Calls release the GIL while the sink works.

use std::path::PathBuf;
use std::sync::Mutex;

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use vellum::chain::LoadOptions;
use vellum::ledger::erasure::{EraseRequest, EraseTarget, OnHold};
use vellum::ledger::query::Query;
use vellum::ledger::store::Location;
use vellum::sink::Receipt;
use vellum::{AuditEvent, EmitError, Ledger, SinkConfig, StatusChange};

create_exception!(
    vellum,
    VellumError,
    PyException,
    "Base class of Vellum's errors."
);
create_exception!(
    vellum,
    InvalidEvent,
    VellumError,
    "The event is malformed; nothing was recorded."
);
create_exception!(
    vellum,
    Rejected,
    VellumError,
    "A plugin rejected the event (`.plugin` names it); nothing was recorded."
);
create_exception!(
    vellum,
    Unavailable,
    VellumError,
    "The event could not be durably recorded; nothing was recorded. Retry later."
);
create_exception!(
    vellum,
    OpenError,
    VellumError,
    "The sink could not be opened (configuration, plugins or ledger)."
);

/// The Python exception of an emit error.
fn emit_error(py: Python<'_>, error: EmitError) -> PyErr {
    match error {
        EmitError::InvalidEvent(m) => InvalidEvent::new_err(m),
        EmitError::Unavailable(m) => Unavailable::new_err(m),
        EmitError::Rejected { plugin, reason } => {
            let err = Rejected::new_err(format!("rejected by plugin `{plugin}`: {reason}"));
            let value = err.value(py);
            let set = value
                .setattr("plugin", plugin)
                .and_then(|()| value.setattr("reason", reason));
            match set {
                Ok(()) => err,
                Err(e) => e,
            }
        }
    }
}

/// `json.dumps(obj)` parsed as `T`; a shape error is an `InvalidEvent` naming the field.
fn from_python<T: serde::de::DeserializeOwned>(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<T> {
    let json = obj.py().import("json")?;
    let text: String = json
        .call_method1("dumps", (obj,))
        .map_err(|e| InvalidEvent::new_err(format!("{what} is not JSON: {e}")))?
        .extract()?;
    serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(&text)).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        // The position is in our JSON rendering of the dict, not the caller's source.
        let message = inner.to_string();
        let message = message.split(" at line ").next().unwrap_or(&message);
        InvalidEvent::new_err(match field.as_str() {
            "." => format!("{what}: {message}"),
            _ => format!("{what}: field `{field}`: {message}"),
        })
    })
}

/// A receipt as a dict: `event_id`, `seq`, `recorded_at` (RFC 3339), `disposition`
/// (`recorded` or `dropped`) and, for a drop, `dropped_by`.
fn to_python<'py>(py: Python<'py>, receipt: &Receipt) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("event_id", &receipt.event_id)?;
    dict.set_item("seq", receipt.seq)?;
    dict.set_item("recorded_at", receipt.recorded_at.to_string())?;
    let disposition = match receipt.disposition {
        vellum::sink::Disposition::Recorded => "recorded",
        vellum::sink::Disposition::Dropped => "dropped",
    };
    dict.set_item("disposition", disposition)?;
    if let Some(plugin) = &receipt.dropped_by {
        dict.set_item("dropped_by", plugin)?;
    }
    Ok(dict)
}

/// A running sink: plugin chain, pipeline and ledger, in this process.
#[pyclass(frozen, module = "vellum._native")]
struct Sink {
    inner: Mutex<Option<vellum::Sink>>,
}

impl Sink {
    fn sink(&self) -> PyResult<vellum::Sink> {
        self.inner
            .lock()
            .map_err(|_| Unavailable::new_err("the sink's lock is poisoned"))?
            .clone()
            .ok_or_else(|| Unavailable::new_err("the sink is closed; nothing was recorded"))
    }

    /// Records `events`, idempotently when a key is given (scoped to the first event's
    /// tenant), with the GIL released.
    fn record<'py>(
        &self,
        py: Python<'py>,
        events: Vec<AuditEvent>,
        idempotency_key: Option<String>,
    ) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let sink = self.sink()?;
        let result = py.detach(move || match idempotency_key {
            None => sink.emit_batch(events),
            Some(key) => {
                let scope = events
                    .first()
                    .and_then(|e| e.tenant.clone())
                    .unwrap_or_default();
                sink.emit_batch_idempotent(&scope, &key, events)
            }
        });
        let receipts = result.map_err(|e| emit_error(py, e))?;
        receipts.iter().map(|r| to_python(py, r)).collect()
    }
}

#[pymethods]
impl Sink {
    /// Opens the sink a sink file describes (`[sink]`, `[ledger]`, `[chain]`).
    #[staticmethod]
    fn open(py: Python<'_>, config_path: PathBuf) -> PyResult<Self> {
        let sink = py
            .detach(|| {
                let config = SinkConfig::from_file(&config_path).map_err(|e| e.to_string())?;
                vellum::Sink::open(&config, &LoadOptions::default()).map_err(|e| e.to_string())
            })
            .map_err(OpenError::new_err)?;
        Ok(Self {
            inner: Mutex::new(Some(sink)),
        })
    }

    /// Records one event (a dict in the envelope's JSON shape); returns its receipt once
    /// the entry is durable, or raises.
    #[pyo3(signature = (event, *, idempotency_key = None))]
    fn emit<'py>(
        &self,
        py: Python<'py>,
        event: &Bound<'py, PyAny>,
        idempotency_key: Option<String>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let event: AuditEvent = from_python(event, "event")?;
        let mut receipts = self.record(py, vec![event], idempotency_key)?;
        receipts
            .pop()
            .ok_or_else(|| Unavailable::new_err("the sink answered no receipt"))
    }

    /// Records a list of events atomically: all receipts, or none recorded and an error.
    #[pyo3(signature = (events, *, idempotency_key = None))]
    fn emit_batch<'py>(
        &self,
        py: Python<'py>,
        events: Vec<Bound<'py, PyAny>>,
        idempotency_key: Option<String>,
    ) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let events = events
            .iter()
            .enumerate()
            .map(|(i, e)| from_python(e, &format!("event #{}", i + 1)))
            .collect::<PyResult<Vec<AuditEvent>>>()?;
        self.record(py, events, idempotency_key)
    }

    /// Records an intent status change (`intent_id`, `old_status`, `new_status`,
    /// `reason`, optional `plan_id` and `triggering_action_id`) as an
    /// `intent.status-changed` event on `envelope` (`id`, `occurred_at`, …; `kind` may be
    /// left out). An empty reason raises `InvalidEvent`.
    #[pyo3(signature = (envelope, change, *, idempotency_key = None))]
    fn emit_status_change<'py>(
        &self,
        py: Python<'py>,
        envelope: &Bound<'py, PyAny>,
        change: &Bound<'py, PyAny>,
        idempotency_key: Option<String>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let envelope = envelope.call_method0("copy")?;
        if !envelope.contains("kind")? {
            envelope.set_item("kind", vellum::sink::STATUS_CHANGED_KIND)?;
        }
        let envelope: AuditEvent = from_python(&envelope, "envelope")?;
        let change: StatusChange = from_python(change, "change")?;
        let event = change
            .into_event(envelope)
            .map_err(|e| InvalidEvent::new_err(e.to_string()))?;
        let mut receipts = self.record(py, vec![event], idempotency_key)?;
        receipts
            .pop()
            .ok_or_else(|| Unavailable::new_err("the sink answered no receipt"))
    }

    /// Erases what one of `subject` (every entry of a data subject; with `tenant`, in
    /// that tenant only), `tenant` (every entry of a tenant) or `seqs` (these entries)
    /// names: removes their content, destroys their data keys and appends a signed
    /// `vellum.erasure` record saying `reason` and `by`. Returns the report (`record_seq`,
    /// `entries_erased`, `keys_destroyed`, …). Raises `VellumError` when a legal hold
    /// covers it (unless `override_hold`) or nothing matches.
    #[pyo3(signature = (*, reason, subject = None, tenant = None, seqs = None, by = "python".to_string(), override_hold = false))]
    #[allow(clippy::too_many_arguments)]
    fn erase<'py>(
        &self,
        py: Python<'py>,
        reason: String,
        subject: Option<String>,
        tenant: Option<String>,
        seqs: Option<Vec<u64>>,
        by: String,
        override_hold: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let target = match (subject, tenant, seqs) {
            (Some(subject), tenant, None) => EraseTarget::Subject { subject, tenant },
            (None, Some(tenant), None) => EraseTarget::Tenant(tenant),
            (None, None, Some(seqs)) if !seqs.is_empty() => EraseTarget::Entries(seqs),
            _ => {
                return Err(VellumError::new_err(
                    "give one of subject (optionally with tenant), tenant or seqs",
                ));
            }
        };
        let request = EraseRequest {
            target,
            reason,
            by,
            on_hold: match override_hold {
                true => OnHold::Override,
                false => OnHold::Refuse,
            },
        };
        let sink = self.sink()?;
        let report = py
            .detach(move || sink.ledger().erase(request))
            .map_err(|e| VellumError::new_err(e.to_string()))?;
        json_to_python(py, &report)
    }

    /// Finishes queued emits, signs a final checkpoint and returns it; later emits raise
    /// `Unavailable`.
    fn close(&self, py: Python<'_>) -> PyResult<String> {
        let sink = self
            .inner
            .lock()
            .map_err(|_| Unavailable::new_err("the sink's lock is poisoned"))?
            .take();
        match sink {
            None => Err(Unavailable::new_err("the sink is already closed")),
            Some(sink) => py
                .detach(move || sink.close())
                .map_err(|e| Unavailable::new_err(e.to_string())),
        }
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &self,
        py: Python<'_>,
        _kind: Option<&Bound<'_, PyAny>>,
        _value: Option<&Bound<'_, PyAny>>,
        _traceback: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        if self.sink().is_ok() {
            self.close(py)?;
        }
        Ok(false)
    }
}

/// Creates a ledger (a SQLite file, or a `postgres://` URL with `signing_key`) and its key
/// pair; returns the verifier key.
#[pyfunction]
#[pyo3(signature = (path, origin = None, signing_key = None))]
fn init_ledger(
    path: PathBuf,
    origin: Option<String>,
    signing_key: Option<PathBuf>,
) -> PyResult<String> {
    let origin = origin.unwrap_or_else(|| "vellum/python".to_string());
    let location = Location::parse(&path.to_string_lossy()).with_signing_key(signing_key);
    Ledger::init(location, &origin).map_err(|e| OpenError::new_err(e.to_string()))
}

/// Reads a ledger's entries (a SQLite file, or a `postgres://` URL), oldest first, as the
/// `vellum query` JSON: content opened with the ledger's key store, erased entries marked
/// (`seal.erased`). Filters: `tenant`, `correlation_id`, `kinds`; `after_seq` continues
/// after an entry; at most `limit` (1..=10000) entries.
#[pyfunction]
#[pyo3(signature = (ledger, *, tenant = None, correlation_id = None, kinds = None, after_seq = None, limit = 1000))]
fn query<'py>(
    py: Python<'py>,
    ledger: PathBuf,
    tenant: Option<String>,
    correlation_id: Option<String>,
    kinds: Option<Vec<String>>,
    after_seq: Option<u64>,
    limit: usize,
) -> PyResult<Bound<'py, PyAny>> {
    let query = Query {
        tenant,
        correlation_id,
        kinds: kinds.unwrap_or_default(),
        after_seq,
        limit,
        ..Query::default()
    };
    let location = Location::parse(&ledger.to_string_lossy());
    let page = py
        .detach(move || Ledger::open_read_only(location)?.query(&query))
        .map_err(|e| VellumError::new_err(e.to_string()))?;
    json_to_python(py, &page.entries)
}

/// A value as Python sees its JSON (via `json.loads`).
fn json_to_python<'py>(
    py: Python<'py>,
    value: &impl serde::Serialize,
) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(value).map_err(|e| VellumError::new_err(e.to_string()))?;
    py.import("json")?.call_method1("loads", (text,))
}

/// The `vellum._native` module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<Sink>()?;
    m.add_function(wrap_pyfunction!(init_ledger, m)?)?;
    m.add_function(wrap_pyfunction!(query, m)?)?;
    m.add("VellumError", py.get_type::<VellumError>())?;
    m.add("InvalidEvent", py.get_type::<InvalidEvent>())?;
    m.add("Rejected", py.get_type::<Rejected>())?;
    m.add("Unavailable", py.get_type::<Unavailable>())?;
    m.add("OpenError", py.get_type::<OpenError>())?;
    Ok(())
}
