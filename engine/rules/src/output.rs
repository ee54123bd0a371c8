//! Alert events as rows: [`alerts_batch`] makes the rows of the `alerts`
//! table (its schema is [`weir_core::schema::alerts_schema`]), one per
//! event. The sinks of weir-sinks turn them into what Alertmanager and
//! webhooks read.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float64Array, MapBuilder, MapFieldNames, StringArray, StringBuilder,
    StringDictionaryBuilder, TimestampNanosecondArray,
};
use arrow::datatypes::Int32Type;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use weir_core::Signal;
use weir_core::schema::{TIME_ZONE, schema_for};

use crate::alert::AlertEvent;

/// The rows of the `alerts` table: one per transition (`kind` =
/// `transition`), then one per notification (`kind` = `notification`).
pub fn alerts_batch(
    transitions: &[AlertEvent],
    notifications: &[AlertEvent],
) -> Result<RecordBatch, ArrowError> {
    let mut kind = StringDictionaryBuilder::<Int32Type>::new();
    kind.append_values("transition", transitions.len());
    kind.append_values("notification", notifications.len());
    let events: Vec<&AlertEvent> = transitions.iter().chain(notifications).collect();
    let events = events.as_slice();
    let tz = TIME_ZONE;
    let time =
        TimestampNanosecondArray::from_iter_values(events.iter().map(|e| e.time)).with_timezone(tz);
    let mut rule = StringDictionaryBuilder::<Int32Type>::new();
    let mut state = StringDictionaryBuilder::<Int32Type>::new();
    for e in events {
        rule.append_value(&e.rule);
        state.append_value(e.state.as_str());
    }
    let labels = string_map(events.iter().map(|e| &e.labels))?;
    let annotations = string_map(events.iter().map(|e| &e.annotations))?;
    let value = Float64Array::from_iter_values(events.iter().map(|e| e.value));
    let starts_at = TimestampNanosecondArray::from_iter(events.iter().map(|e| Some(e.starts_at)))
        .with_timezone(tz);
    let ends_at =
        TimestampNanosecondArray::from_iter(events.iter().map(|e| e.ends_at)).with_timezone(tz);
    let fingerprint = StringArray::from_iter_values(events.iter().map(|e| &e.fingerprint));
    let generator_url = StringArray::from_iter_values(events.iter().map(|e| &e.generator_url));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(time),
        Arc::new(rule.finish()),
        Arc::new(state.finish()),
        Arc::new(kind.finish()),
        labels,
        annotations,
        Arc::new(value),
        Arc::new(starts_at),
        Arc::new(ends_at),
        Arc::new(fingerprint),
        Arc::new(generator_url),
    ];
    RecordBatch::try_new(schema_for(Signal::Alerts), columns)
}

fn string_map<'a>(
    maps: impl Iterator<Item = &'a BTreeMap<String, String>>,
) -> Result<ArrayRef, ArrowError> {
    let names = MapFieldNames {
        entry: "entries".to_string(),
        key: "keys".to_string(),
        value: "values".to_string(),
    };
    let mut builder = MapBuilder::new(Some(names), StringBuilder::new(), StringBuilder::new());
    for map in maps {
        for (k, v) in map {
            builder.keys().append_value(k);
            builder.values().append_value(v);
        }
        builder.append(true)?;
    }
    Ok(Arc::new(builder.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::EventState;
    use crate::alert::fingerprint_hex;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::TimestampNanosecondType;

    const S: i64 = 1_000_000_000;

    fn event(state: EventState, service: &str) -> AlertEvent {
        let labels = BTreeMap::from([
            ("alertname".to_string(), "HighErrorRate".to_string()),
            ("service".to_string(), service.to_string()),
        ]);
        AlertEvent {
            rule: "HighErrorRate".into(),
            time: 120 * S,
            state,
            fingerprint: fingerprint_hex(&labels),
            labels,
            annotations: BTreeMap::from([("summary".to_string(), format!("{service} fails"))]),
            value: 0.5,
            starts_at: 60 * S,
            ends_at: match state {
                EventState::Pending => None,
                EventState::Firing => Some(360 * S),
                _ => Some(120 * S),
            },
            generator_url: "http://weir:8080/rules/HighErrorRate".into(),
        }
    }

    /// Guarantees: events become rows of exactly the store's `alerts`
    /// schema, with their state, labels and times.
    #[test]
    fn alerts_table_rows() {
        let events = [
            event(EventState::Pending, "cart"),
            event(EventState::Resolved, "pay"),
        ];
        let batch = alerts_batch(&events[..1], &events[1..]).unwrap();
        assert_eq!(batch.schema(), schema_for(Signal::Alerts));
        assert_eq!(batch.num_rows(), 2);
        let kind = batch
            .column_by_name("kind")
            .unwrap()
            .as_dictionary::<Int32Type>();
        let kinds: Vec<_> = kind
            .downcast_dict::<StringArray>()
            .unwrap()
            .into_iter()
            .flatten()
            .collect();
        assert_eq!(kinds, ["transition", "notification"]);
        let ends = batch.column_by_name("ends_at").unwrap();
        assert!(ends.is_null(0));
        assert_eq!(
            ends.as_primitive::<TimestampNanosecondType>().value(1),
            120 * S
        );
        let labels = batch.column_by_name("labels").unwrap().as_map();
        assert_eq!(labels.value(1).len(), 2);
        let keys = labels.keys().as_string::<i32>();
        assert_eq!(keys.value(2), "alertname");
        assert!(alerts_batch(&[], &[]).unwrap().num_rows() == 0);
    }
}
