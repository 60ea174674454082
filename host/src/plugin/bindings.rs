//! The one place that runs `bindgen!` over `wit/`, plus conversions between the generated
//! WIT types and the host's [`AuditEvent`].

use jiff::Timestamp;

use crate::event::{AuditEvent, Payload, join_timestamp, split_timestamp};

wasmtime::component::bindgen!({
    world: "plugin",
    path: "../wit",
    // Events are lowered straight from the host's strings, without copying them first.
    ownership: Borrowing { duplicate_if_necessary: true },
    imports: {
        // Pseudonymisation traps when no key is configured: there is no safe value to return.
        "vellum:audit/host.pseudonymize": trappable,
    },
});

pub use self::exports::vellum::audit::filter::Verdict as WitVerdict;
pub use self::vellum::audit::types::{
    AuditEventParam as WitEventIn, AuditEventResult as WitEvent, LabelParam as WitLabelIn,
    Timestamp as WitTimestamp,
};

/// The WIT form of a host event handed to plugins, borrowing the event's strings.
pub fn to_wit<'a>(event: &'a AuditEvent, labels: &'a [WitLabelIn<'a>]) -> WitEventIn<'a> {
    WitEventIn {
        id: &event.id,
        occurred_at: to_wit_timestamp(event.occurred_at),
        tenant: event.tenant.as_deref(),
        correlation_id: event.correlation_id.as_deref(),
        chain_id: event.chain_id.as_deref(),
        actor: event.actor.as_deref(),
        kind: &event.kind,
        subject: event.subject.as_deref(),
        payload: event.payload.as_str(),
        labels,
    }
}

/// The WIT form of an event's labels, borrowing its strings.
pub fn wit_labels(event: &AuditEvent) -> Vec<WitLabelIn<'_>> {
    event
        .labels
        .iter()
        .map(|(key, value)| WitLabelIn { key, value })
        .collect()
}

/// Converts an event a plugin returned for `input` back to the host form, checking what WIT
/// cannot express: the payload is JSON, label keys are unique, the timestamp is in range.
/// A payload returned unchanged is taken from `input` without parsing it again.
pub fn from_wit(event: WitEvent, input: &AuditEvent) -> Result<AuditEvent, String> {
    let occurred_at = from_wit_timestamp(event.occurred_at)?;
    let payload = if event.payload == input.payload.as_str() {
        input.payload.clone()
    } else {
        Payload::from_json(event.payload).map_err(|e| e.to_string())?
    };
    let mut labels = std::collections::BTreeMap::new();
    for label in event.labels {
        if let Some(old) = labels.insert(label.key, label.value) {
            return Err(format!("duplicate label key (one value was `{old}`)"));
        }
    }
    Ok(AuditEvent {
        id: event.id,
        occurred_at,
        tenant: event.tenant,
        correlation_id: event.correlation_id,
        chain_id: event.chain_id,
        actor: event.actor,
        kind: event.kind,
        subject: event.subject,
        payload,
        labels,
    })
}

/// Converts a timestamp to the WIT record.
pub fn to_wit_timestamp(ts: Timestamp) -> WitTimestamp {
    let (seconds, nanoseconds) = split_timestamp(ts);
    WitTimestamp {
        seconds,
        nanoseconds,
    }
}

/// Converts the WIT record to a timestamp, refusing out-of-range values.
pub fn from_wit_timestamp(ts: WitTimestamp) -> Result<Timestamp, String> {
    join_timestamp(ts.seconds, ts.nanoseconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_including_before_1970() {
        for text in [
            "2026-11-22T10:00:00.123456789Z",
            "1969-12-31T23:59:59.5Z",
            "1970-01-01T00:00:00Z",
        ] {
            let ts: Timestamp = text.parse().unwrap();
            let wit = to_wit_timestamp(ts);
            assert!(wit.nanoseconds < 1_000_000_000);
            assert_eq!(from_wit_timestamp(wit).unwrap(), ts, "{text}");
        }
        let early = to_wit_timestamp("1969-12-31T23:59:59.5Z".parse().unwrap());
        assert_eq!((early.seconds, early.nanoseconds), (-1, 500_000_000));
    }

    #[test]
    fn out_of_range_timestamps_are_refused() {
        let bad = WitTimestamp {
            seconds: 0,
            nanoseconds: 1_000_000_000,
        };
        assert!(from_wit_timestamp(bad).is_err());
        let far = WitTimestamp {
            seconds: i64::MAX,
            nanoseconds: 0,
        };
        assert!(from_wit_timestamp(far).is_err());
    }
}
