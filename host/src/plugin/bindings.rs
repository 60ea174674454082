//! The one place that runs `bindgen!` over `wit/`, plus conversions between the generated
//! WIT types and the host's [`AuditEvent`].

use jiff::Timestamp;

use crate::event::{AuditEvent, Payload, join_timestamp, split_timestamp};

wasmtime::component::bindgen!({
    world: "plugin",
    path: "../wit",
    imports: {
        // Pseudonymisation traps when no key is configured: there is no safe value to return.
        "vellum:audit/host.pseudonymize": trappable,
    },
});

pub use self::exports::vellum::audit::filter::Verdict as WitVerdict;
pub use self::vellum::audit::types::{
    AuditEvent as WitEvent, Label as WitLabel, Timestamp as WitTimestamp,
};

/// Converts a host event to the WIT form handed to plugins.
pub fn to_wit(event: &AuditEvent) -> WitEvent {
    WitEvent {
        id: event.id.clone(),
        occurred_at: to_wit_timestamp(event.occurred_at),
        tenant: event.tenant.clone(),
        correlation_id: event.correlation_id.clone(),
        chain_id: event.chain_id.clone(),
        actor: event.actor.clone(),
        kind: event.kind.clone(),
        subject: event.subject.clone(),
        payload: event.payload.as_str().to_string(),
        labels: event
            .labels
            .iter()
            .map(|(key, value)| WitLabel {
                key: key.clone(),
                value: value.clone(),
            })
            .collect(),
    }
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
