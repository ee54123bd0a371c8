//! The versioned Arrow schemas of the signal tables: `logs`, `spans` and
//! `metrics`.
//!
//! Each table has one row per record (log record, span, metric data point).
//! The resource and the instrumentation scope a record came with are copied
//! onto its row ("denormalised"); the columns that repeat from row to row are
//! dictionary-encoded, so the repetition costs a 4-byte index per row.
//!
//! The meaning of every column, the rules of the reverse conversion and
//! example SQL are in `docs/schema.md`; the column names are the constants of
//! [`col`]. The schemas are a public contract: the store, SQL rules and
//! plugins depend on them. A change that is not purely additive bumps
//! [`SCHEMA_VERSION`].
//!
//! Conventions shared by all tables:
//!
//! * times are `Timestamp(Nanosecond, "+00:00")` (UTC); the OTLP value 0
//!   ("unknown") is null;
//! * an OTLP string field that is empty is null;
//! * attribute lists are `Map<Utf8, Utf8>` holding each value's string form,
//!   plus a `*_types` column telling the OTLP type of each entry (see
//!   [`crate::convert`]), so `attributes['http.route']` works in SQL and the
//!   reverse conversion restores the exact values.

use arrow::datatypes::{DataType, Field, FieldRef, Fields, Schema, SchemaRef, TimeUnit};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use crate::Signal;

/// The version of the table schemas, stored in each schema's metadata under
/// [`VERSION_KEY`].
pub const SCHEMA_VERSION: &str = "1";

/// The schema metadata key holding [`SCHEMA_VERSION`].
pub const VERSION_KEY: &str = "weir.schema.version";

/// The schema metadata key holding the table's name (`logs`, `spans`,
/// `metrics`).
pub const TABLE_KEY: &str = "weir.table";

/// The time zone of every timestamp column: UTC, written as an offset.
/// Arrow without the `chrono-tz` feature (its JSON writer, `arrow-cast`'s
/// display) only understands offsets, and DataFusion's `now()` has this
/// same type, so `time > now() - INTERVAL '5 minutes'` needs no cast.
pub const TIME_ZONE: &str = "+00:00";

/// The column names of the signal tables (and of the fields of their nested
/// structs). Stable: users' SQL depends on them.
pub mod col {
    // Columns common to every table.
    /// `service.name` of the resource (derived; ignored on the way back).
    pub const SERVICE_NAME: &str = "service_name";
    /// The resource's attributes (null: the record had no resource).
    pub const RESOURCE_ATTRIBUTES: &str = "resource_attributes";
    /// The OTLP type of each resource attribute.
    pub const RESOURCE_ATTRIBUTES_TYPES: &str = "resource_attributes_types";
    /// `Resource.dropped_attributes_count`.
    pub const RESOURCE_DROPPED_ATTRIBUTES_COUNT: &str = "resource_dropped_attributes_count";
    /// `Resource.entity_refs` as OTLP/JSON (null: none).
    pub const RESOURCE_ENTITY_REFS: &str = "resource_entity_refs";
    /// `Resource{Logs,Spans,Metrics}.schema_url`.
    pub const RESOURCE_SCHEMA_URL: &str = "resource_schema_url";
    /// `InstrumentationScope.name`.
    pub const SCOPE_NAME: &str = "scope_name";
    /// `InstrumentationScope.version`.
    pub const SCOPE_VERSION: &str = "scope_version";
    /// The scope's attributes (null: the record had no scope).
    pub const SCOPE_ATTRIBUTES: &str = "scope_attributes";
    /// The OTLP type of each scope attribute.
    pub const SCOPE_ATTRIBUTES_TYPES: &str = "scope_attributes_types";
    /// `InstrumentationScope.dropped_attributes_count`.
    pub const SCOPE_DROPPED_ATTRIBUTES_COUNT: &str = "scope_dropped_attributes_count";
    /// `Scope{Logs,Spans,Metrics}.schema_url`.
    pub const SCOPE_SCHEMA_URL: &str = "scope_schema_url";

    // Columns several tables share.
    /// The record's attributes.
    pub const ATTRIBUTES: &str = "attributes";
    /// The OTLP type of each attribute.
    pub const ATTRIBUTES_TYPES: &str = "attributes_types";
    /// `dropped_attributes_count` of the record.
    pub const DROPPED_ATTRIBUTES_COUNT: &str = "dropped_attributes_count";
    /// The record's `flags`.
    pub const FLAGS: &str = "flags";
    /// A trace id (16 bytes).
    pub const TRACE_ID: &str = "trace_id";
    /// A span id (8 bytes).
    pub const SPAN_ID: &str = "span_id";
    /// The record's time (`time_unix_nano`).
    pub const TIME: &str = "time";
    /// `start_time_unix_nano`.
    pub const START_TIME: &str = "start_time";
    /// A W3C trace state.
    pub const TRACE_STATE: &str = "trace_state";
    /// A name (span, event).
    pub const NAME: &str = "name";

    // logs
    /// `LogRecord.observed_time_unix_nano`.
    pub const OBSERVED_TIME: &str = "observed_time";
    /// `LogRecord.severity_number`.
    pub const SEVERITY_NUMBER: &str = "severity_number";
    /// `LogRecord.severity_text`.
    pub const SEVERITY_TEXT: &str = "severity_text";
    /// The string form of `LogRecord.body`.
    pub const BODY: &str = "body";
    /// The OTLP type of the body.
    pub const BODY_TYPE: &str = "body_type";
    /// `LogRecord.event_name`.
    pub const EVENT_NAME: &str = "event_name";

    // spans
    /// `Span.end_time_unix_nano`.
    pub const END_TIME: &str = "end_time";
    /// `end_time - start_time` (derived; ignored on the way back).
    pub const DURATION_NS: &str = "duration_ns";
    /// `Span.parent_span_id`.
    pub const PARENT_SPAN_ID: &str = "parent_span_id";
    /// `Span.kind`.
    pub const KIND: &str = "kind";
    /// `Span.events`.
    pub const EVENTS: &str = "events";
    /// `Span.dropped_events_count`.
    pub const DROPPED_EVENTS_COUNT: &str = "dropped_events_count";
    /// `Span.links`.
    pub const LINKS: &str = "links";
    /// `Span.dropped_links_count`.
    pub const DROPPED_LINKS_COUNT: &str = "dropped_links_count";
    /// `Span.status.code` (null: no status).
    pub const STATUS_CODE: &str = "status_code";
    /// `Span.status.message`.
    pub const STATUS_MESSAGE: &str = "status_message";

    // metrics
    /// `Metric.name`.
    pub const METRIC_NAME: &str = "metric_name";
    /// `Metric.description`.
    pub const METRIC_DESCRIPTION: &str = "metric_description";
    /// `Metric.unit`.
    pub const METRIC_UNIT: &str = "metric_unit";
    /// `gauge`, `sum`, `histogram`, `exponential_histogram` or `summary`.
    pub const METRIC_TYPE: &str = "metric_type";
    /// `Metric.metadata`.
    pub const METRIC_METADATA: &str = "metric_metadata";
    /// The OTLP type of each metadata entry.
    pub const METRIC_METADATA_TYPES: &str = "metric_metadata_types";
    /// `aggregation_temporality` of sums and histograms.
    pub const AGGREGATION_TEMPORALITY: &str = "aggregation_temporality";
    /// `Sum.is_monotonic`.
    pub const IS_MONOTONIC: &str = "is_monotonic";
    /// A number point's value as a double.
    pub const VALUE: &str = "value";
    /// A number point's value when it was an integer.
    pub const INT_VALUE: &str = "int_value";
    /// A histogram's or summary's count.
    pub const COUNT: &str = "count";
    /// A histogram's or summary's sum.
    pub const SUM: &str = "sum";
    /// A histogram's minimum.
    pub const MIN: &str = "min";
    /// A histogram's maximum.
    pub const MAX: &str = "max";
    /// `HistogramDataPoint.bucket_counts`.
    pub const BUCKET_COUNTS: &str = "bucket_counts";
    /// `HistogramDataPoint.explicit_bounds`.
    pub const EXPLICIT_BOUNDS: &str = "explicit_bounds";
    /// `ExponentialHistogramDataPoint.scale`.
    pub const SCALE: &str = "scale";
    /// `ExponentialHistogramDataPoint.zero_count`.
    pub const ZERO_COUNT: &str = "zero_count";
    /// `ExponentialHistogramDataPoint.zero_threshold`.
    pub const ZERO_THRESHOLD: &str = "zero_threshold";
    /// `ExponentialHistogramDataPoint.positive.offset`.
    pub const POSITIVE_OFFSET: &str = "positive_offset";
    /// `ExponentialHistogramDataPoint.positive.bucket_counts`.
    pub const POSITIVE_BUCKET_COUNTS: &str = "positive_bucket_counts";
    /// `ExponentialHistogramDataPoint.negative.offset`.
    pub const NEGATIVE_OFFSET: &str = "negative_offset";
    /// `ExponentialHistogramDataPoint.negative.bucket_counts`.
    pub const NEGATIVE_BUCKET_COUNTS: &str = "negative_bucket_counts";
    /// `SummaryDataPoint.quantile_values`.
    pub const QUANTILE_VALUES: &str = "quantile_values";
    /// `ValueAtQuantile.quantile`.
    pub const QUANTILE: &str = "quantile";
    /// The exemplars of a data point.
    pub const EXEMPLARS: &str = "exemplars";
    /// `Exemplar.filtered_attributes`.
    pub const FILTERED_ATTRIBUTES: &str = "filtered_attributes";
    /// The OTLP type of each filtered attribute.
    pub const FILTERED_ATTRIBUTES_TYPES: &str = "filtered_attributes_types";

    // The fields of a map's entries (arrow-rs' names for them).
    /// The struct field of a map's entries.
    pub const MAP_ENTRIES: &str = "entries";
    /// A map's key field.
    pub const MAP_KEYS: &str = "keys";
    /// A map's value field.
    pub const MAP_VALUES: &str = "values";
    /// The item field of a list.
    pub const LIST_ITEM: &str = "item";
}

/// The values of the `metric_type` column.
pub mod metric_type {
    /// A gauge's number point.
    pub const GAUGE: &str = "gauge";
    /// A sum's number point.
    pub const SUM: &str = "sum";
    /// A histogram point (explicit buckets).
    pub const HISTOGRAM: &str = "histogram";
    /// An exponential histogram point.
    pub const EXPONENTIAL_HISTOGRAM: &str = "exponential_histogram";
    /// A summary point (quantiles).
    pub const SUMMARY: &str = "summary";
}

/// `Timestamp(Nanosecond, "+00:00")`, the type of every time column.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some(TIME_ZONE.into()))
}

/// `Dictionary<Int32, Utf8>`, the type of the columns whose values repeat.
pub fn dict_utf8_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// The entries field of an attribute map whose values have type `value`.
pub(crate) fn map_entries(value: DataType) -> FieldRef {
    Arc::new(Field::new(
        col::MAP_ENTRIES,
        DataType::Struct(Fields::from(vec![
            Field::new(col::MAP_KEYS, DataType::Utf8, false),
            Field::new(col::MAP_VALUES, value, true),
        ])),
        false,
    ))
}

/// `Map<Utf8, Utf8>`: the type of a record's attributes (and of those of
/// events, links, exemplars).
pub fn attributes_type() -> DataType {
    DataType::Map(map_entries(DataType::Utf8), false)
}

/// `Map<Utf8, Dictionary<Int32, Utf8>>`: the type of the attributes that
/// repeat on many rows (resource, scope, metric metadata). The keys stay
/// plain `Utf8` because Arrow's JSON writer and most SQL engines require
/// string map keys.
pub fn repeated_attributes_type() -> DataType {
    DataType::Map(map_entries(dict_utf8_type()), false)
}

/// The type of a list of `item`.
fn list_of(item: DataType, item_nullable: bool) -> DataType {
    DataType::List(Arc::new(Field::new(col::LIST_ITEM, item, item_nullable)))
}

/// `List<UInt64>` (bucket counts).
pub fn u64_list_type() -> DataType {
    list_of(DataType::UInt64, false)
}

/// `List<Float64>` (explicit bounds).
pub fn f64_list_type() -> DataType {
    list_of(DataType::Float64, false)
}

/// The fields of one element of `events`.
pub fn event_fields() -> Fields {
    Fields::from(vec![
        Field::new(col::TIME, timestamp_type(), true),
        Field::new(col::NAME, DataType::Utf8, true),
        Field::new(col::ATTRIBUTES, attributes_type(), false),
        Field::new(col::ATTRIBUTES_TYPES, DataType::Utf8, false),
        Field::new(col::DROPPED_ATTRIBUTES_COUNT, DataType::UInt32, false),
    ])
}

/// The fields of one element of `links`.
pub fn link_fields() -> Fields {
    Fields::from(vec![
        Field::new(col::TRACE_ID, DataType::FixedSizeBinary(16), true),
        Field::new(col::SPAN_ID, DataType::FixedSizeBinary(8), true),
        Field::new(col::TRACE_STATE, DataType::Utf8, true),
        Field::new(col::ATTRIBUTES, attributes_type(), false),
        Field::new(col::ATTRIBUTES_TYPES, DataType::Utf8, false),
        Field::new(col::DROPPED_ATTRIBUTES_COUNT, DataType::UInt32, false),
        Field::new(col::FLAGS, DataType::UInt32, false),
    ])
}

/// The fields of one element of `quantile_values`.
pub fn quantile_fields() -> Fields {
    Fields::from(vec![
        Field::new(col::QUANTILE, DataType::Float64, false),
        Field::new(col::VALUE, DataType::Float64, false),
    ])
}

/// The fields of one element of `exemplars`.
pub fn exemplar_fields() -> Fields {
    Fields::from(vec![
        Field::new(col::TIME, timestamp_type(), true),
        Field::new(col::VALUE, DataType::Float64, true),
        Field::new(col::INT_VALUE, DataType::Int64, true),
        Field::new(col::SPAN_ID, DataType::FixedSizeBinary(8), true),
        Field::new(col::TRACE_ID, DataType::FixedSizeBinary(16), true),
        Field::new(col::FILTERED_ATTRIBUTES, attributes_type(), false),
        Field::new(col::FILTERED_ATTRIBUTES_TYPES, DataType::Utf8, false),
    ])
}

/// A list of structs with `fields`.
fn struct_list(fields: Fields) -> DataType {
    list_of(DataType::Struct(fields), false)
}

/// The columns every table ends with: the record's resource and scope.
fn resource_and_scope_fields() -> Vec<Field> {
    vec![
        Field::new(col::RESOURCE_ATTRIBUTES, repeated_attributes_type(), true),
        Field::new(col::RESOURCE_ATTRIBUTES_TYPES, dict_utf8_type(), true),
        Field::new(
            col::RESOURCE_DROPPED_ATTRIBUTES_COUNT,
            DataType::UInt32,
            false,
        ),
        Field::new(col::RESOURCE_ENTITY_REFS, dict_utf8_type(), true),
        Field::new(col::RESOURCE_SCHEMA_URL, dict_utf8_type(), true),
        Field::new(col::SCOPE_NAME, dict_utf8_type(), true),
        Field::new(col::SCOPE_VERSION, dict_utf8_type(), true),
        Field::new(col::SCOPE_ATTRIBUTES, repeated_attributes_type(), true),
        Field::new(col::SCOPE_ATTRIBUTES_TYPES, dict_utf8_type(), true),
        Field::new(col::SCOPE_DROPPED_ATTRIBUTES_COUNT, DataType::UInt32, false),
        Field::new(col::SCOPE_SCHEMA_URL, dict_utf8_type(), true),
    ]
}

/// A record's attributes, their types and its dropped attributes count.
fn attribute_fields() -> [Field; 3] {
    [
        Field::new(col::ATTRIBUTES, attributes_type(), false),
        Field::new(col::ATTRIBUTES_TYPES, dict_utf8_type(), false),
        Field::new(col::DROPPED_ATTRIBUTES_COUNT, DataType::UInt32, false),
    ]
}

fn service_name_field() -> Field {
    Field::new(col::SERVICE_NAME, dict_utf8_type(), true)
}

fn make_schema(table: &str, fields: Vec<Field>) -> SchemaRef {
    let metadata = HashMap::from([
        (VERSION_KEY.to_string(), SCHEMA_VERSION.to_string()),
        (TABLE_KEY.to_string(), table.to_string()),
    ]);
    Arc::new(Schema::new_with_metadata(fields, metadata))
}

static LOGS: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields = vec![
        Field::new(col::TIME, timestamp_type(), true),
        Field::new(col::OBSERVED_TIME, timestamp_type(), true),
        service_name_field(),
        Field::new(col::SEVERITY_NUMBER, DataType::Int32, false),
        Field::new(col::SEVERITY_TEXT, dict_utf8_type(), true),
        Field::new(col::BODY, DataType::Utf8, true),
        Field::new(col::BODY_TYPE, dict_utf8_type(), true),
    ];
    fields.extend(attribute_fields());
    fields.extend([
        Field::new(col::FLAGS, DataType::UInt32, false),
        Field::new(col::TRACE_ID, DataType::FixedSizeBinary(16), true),
        Field::new(col::SPAN_ID, DataType::FixedSizeBinary(8), true),
        Field::new(col::EVENT_NAME, dict_utf8_type(), true),
    ]);
    fields.extend(resource_and_scope_fields());
    make_schema(Signal::Logs.as_str(), fields)
});

static SPANS: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields = vec![
        Field::new(col::START_TIME, timestamp_type(), true),
        Field::new(col::END_TIME, timestamp_type(), true),
        Field::new(col::DURATION_NS, DataType::Int64, true),
        service_name_field(),
        Field::new(col::TRACE_ID, DataType::FixedSizeBinary(16), false),
        Field::new(col::SPAN_ID, DataType::FixedSizeBinary(8), false),
        Field::new(col::PARENT_SPAN_ID, DataType::FixedSizeBinary(8), true),
        Field::new(col::TRACE_STATE, DataType::Utf8, true),
        Field::new(col::FLAGS, DataType::UInt32, false),
        Field::new(col::NAME, dict_utf8_type(), true),
        Field::new(col::KIND, DataType::Int32, false),
    ];
    fields.extend(attribute_fields());
    fields.extend([
        Field::new(col::EVENTS, struct_list(event_fields()), false),
        Field::new(col::DROPPED_EVENTS_COUNT, DataType::UInt32, false),
        Field::new(col::LINKS, struct_list(link_fields()), false),
        Field::new(col::DROPPED_LINKS_COUNT, DataType::UInt32, false),
        Field::new(col::STATUS_CODE, DataType::Int32, true),
        Field::new(col::STATUS_MESSAGE, DataType::Utf8, true),
    ]);
    fields.extend(resource_and_scope_fields());
    make_schema(Signal::Spans.as_str(), fields)
});

static METRICS: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields = vec![
        Field::new(col::TIME, timestamp_type(), true),
        Field::new(col::START_TIME, timestamp_type(), true),
        service_name_field(),
        Field::new(col::METRIC_NAME, dict_utf8_type(), true),
        Field::new(col::METRIC_DESCRIPTION, dict_utf8_type(), true),
        Field::new(col::METRIC_UNIT, dict_utf8_type(), true),
        Field::new(col::METRIC_TYPE, dict_utf8_type(), false),
        Field::new(col::METRIC_METADATA, repeated_attributes_type(), false),
        Field::new(col::METRIC_METADATA_TYPES, dict_utf8_type(), false),
        Field::new(col::AGGREGATION_TEMPORALITY, DataType::Int32, true),
        Field::new(col::IS_MONOTONIC, DataType::Boolean, true),
        Field::new(col::VALUE, DataType::Float64, true),
        Field::new(col::INT_VALUE, DataType::Int64, true),
        Field::new(col::COUNT, DataType::UInt64, true),
        Field::new(col::SUM, DataType::Float64, true),
        Field::new(col::MIN, DataType::Float64, true),
        Field::new(col::MAX, DataType::Float64, true),
        Field::new(col::BUCKET_COUNTS, u64_list_type(), true),
        Field::new(col::EXPLICIT_BOUNDS, f64_list_type(), true),
        Field::new(col::SCALE, DataType::Int32, true),
        Field::new(col::ZERO_COUNT, DataType::UInt64, true),
        Field::new(col::ZERO_THRESHOLD, DataType::Float64, true),
        Field::new(col::POSITIVE_OFFSET, DataType::Int32, true),
        Field::new(col::POSITIVE_BUCKET_COUNTS, u64_list_type(), true),
        Field::new(col::NEGATIVE_OFFSET, DataType::Int32, true),
        Field::new(col::NEGATIVE_BUCKET_COUNTS, u64_list_type(), true),
        Field::new(col::QUANTILE_VALUES, struct_list(quantile_fields()), true),
        Field::new(col::EXEMPLARS, struct_list(exemplar_fields()), false),
        Field::new(col::FLAGS, DataType::UInt32, false),
        Field::new(col::ATTRIBUTES, attributes_type(), false),
        Field::new(col::ATTRIBUTES_TYPES, dict_utf8_type(), false),
    ];
    fields.extend(resource_and_scope_fields());
    make_schema(Signal::Metrics.as_str(), fields)
});

/// The schema of the `logs` table: one row per log record.
pub fn logs_schema() -> SchemaRef {
    LOGS.clone()
}

/// The schema of the `spans` table: one row per span.
pub fn spans_schema() -> SchemaRef {
    SPANS.clone()
}

/// The schema of the `metrics` table: one row per metric data point.
pub fn metrics_schema() -> SchemaRef {
    METRICS.clone()
}

static ALERTS: LazyLock<SchemaRef> = LazyLock::new(|| {
    let map = DataType::Map(
        Arc::new(Field::new(
            "entries",
            DataType::Struct(Fields::from(vec![
                Field::new("keys", DataType::Utf8, false),
                Field::new("values", DataType::Utf8, true),
            ])),
            false,
        )),
        false,
    );
    make_schema(
        Signal::Alerts.as_str(),
        vec![
            Field::new("time", timestamp_type(), false),
            Field::new("rule", dict_utf8_type(), false),
            Field::new("state", dict_utf8_type(), false),
            Field::new("kind", dict_utf8_type(), false),
            Field::new("labels", map.clone(), false),
            Field::new("annotations", map, false),
            Field::new("value", DataType::Float64, true),
            Field::new("starts_at", timestamp_type(), true),
            Field::new("ends_at", timestamp_type(), true),
            Field::new("fingerprint", DataType::Utf8, false),
            Field::new("generator_url", DataType::Utf8, true),
        ],
    )
});

/// The schema of the `alerts` table: one row per alert event, with
/// Alertmanager's fields. `kind` tells the two kinds of event apart:
/// `transition` (an instance changed state: pending, firing, resolved,
/// inactive) and `notification` (what is sent to Alertmanager and webhooks:
/// firing and resolved alerts, re-sent as Prometheus re-sends them).
pub fn alerts_schema() -> SchemaRef {
    ALERTS.clone()
}

/// The schema of `signal`'s table.
pub fn schema_for(signal: Signal) -> SchemaRef {
    match signal {
        Signal::Logs => logs_schema(),
        Signal::Spans => spans_schema(),
        Signal::Metrics => metrics_schema(),
        Signal::Alerts => alerts_schema(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guarantees: every schema carries its version and table name, and its
    /// column names are unique snake_case; telemetry tables have a
    /// dictionary `service_name`.
    #[test]
    fn schemas_are_versioned_and_well_named() {
        for signal in Signal::ALL {
            let schema = schema_for(signal);
            assert_eq!(
                schema.metadata().get(VERSION_KEY).map(String::as_str),
                Some(SCHEMA_VERSION)
            );
            assert_eq!(
                schema.metadata().get(TABLE_KEY).map(String::as_str),
                Some(signal.as_str())
            );
            let mut names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            for name in &names {
                assert!(
                    name.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                    "{signal}: column `{name}` is not snake_case"
                );
            }
            let total = names.len();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), total, "{signal}: duplicate column names");
            if signal == Signal::Alerts {
                // Alert events carry their labels in a map, not resource
                // columns.
                continue;
            }
            assert_eq!(
                schema
                    .field_with_name(col::SERVICE_NAME)
                    .map(|f| f.data_type().clone())
                    .ok(),
                Some(dict_utf8_type()),
                "{signal}: service_name must be Dictionary<Int32, Utf8>"
            );
        }
    }
}
