//! What a user writes in the processor's `config = { ... }` table
//! ([`SpanMetricsConfig`], parsed from the JSON the host hands to `init`),
//! and the checked plan it resolves into ([`Plan`]). Every mistake is a
//! [`ConfigError`] naming the key to fix.

use std::time::Duration;

use serde::Deserialize;
use weir_plugin::config::{duration_ns, parse_json};

/// The plugin's settings, as written in the pipeline file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct SpanMetricsConfig {
    /// The prefix of the metric names: `<namespace>.calls` and
    /// `<namespace>.duration`; `""` gives the bare `calls` and `duration`
    /// (the connector's legacy names). Default `"traces.span.metrics"`,
    /// the Collector connector's.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Dimensions on top of `service.name`, `span.name`, `span.kind` and
    /// `status.code`: `[{ name = "http.method", default = "GET" }]`. Each
    /// is read from the span's attributes, then the resource's; without
    /// either, `default` is used, and without a default the dimension is
    /// left out of that series. Default: none.
    #[serde(default)]
    pub dimensions: Vec<DimensionConfig>,
    /// Default dimensions to leave out, among `service.name`, `span.name`,
    /// `span.kind` and `status.code`. Default: none.
    #[serde(default)]
    pub exclude_dimensions: Vec<String>,
    /// Resource attributes copied from the spans' resource to the metrics'
    /// resource, besides `service.name` (always copied): `["deployment.environment.name",
    /// "k8s.namespace.name"]`. Each distinct combination is a resource of
    /// its own, as in the connector. Default: none.
    #[serde(default)]
    pub resource_attributes: Vec<String>,
    /// Whether the duration histogram is made. Default `true`.
    #[serde(default = "default_true")]
    pub histogram: bool,
    /// The histogram's bucket upper bounds, as durations in increasing
    /// order: `["2ms", "10ms", "100ms", "1s"]`. Default: the connector's,
    /// 2ms, 4ms, 6ms, 8ms, 10ms, 50ms, 100ms, 200ms, 400ms, 800ms, 1s,
    /// 1400ms, 2s, 5s, 10s, 15s.
    #[serde(default)]
    pub buckets: Option<Vec<String>>,
    /// The histogram's unit: `"ms"` or `"s"`. Default `"ms"`, the
    /// connector's.
    #[serde(default)]
    pub unit: Unit,
    /// `"cumulative"` (counts keep growing from a fixed start time) or
    /// `"delta"` (each emission counts the spans since the one before).
    /// The connector's spellings `AGGREGATION_TEMPORALITY_CUMULATIVE` and
    /// `AGGREGATION_TEMPORALITY_DELTA` are accepted too. Default
    /// `"cumulative"`.
    #[serde(default)]
    pub temporality: Temporality,
    /// How often the metrics are emitted, as a duration (`"15s"`, `"1m"`).
    /// Default `"15s"`.
    #[serde(default = "default_interval")]
    pub interval: String,
    /// With `"cumulative"`: a series that has seen no span for this long
    /// is no longer emitted (and starts afresh if spans come back).
    /// Default: never.
    #[serde(default)]
    pub expiration: Option<String>,
    /// The most series kept; the spans of any further series are counted
    /// in one overflow series whose only attribute is
    /// `otel.metric.overflow = true`. Default 10000.
    #[serde(default = "default_max_series")]
    pub max_series: usize,
    /// Whether spans are dropped once counted (`true`) or passed on
    /// unchanged (`false`). Default `false`.
    #[serde(default)]
    pub drop_spans: bool,
}

/// One entry of `dimensions`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct DimensionConfig {
    /// The attribute key, looked up in the span's attributes, then in its
    /// resource's; it is also the data point attribute's name.
    pub name: String,
    /// The value when neither has the key; without it the dimension is
    /// left out of such series.
    #[serde(default)]
    pub default: Option<String>,
}

/// The unit of the duration histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum Unit {
    /// Milliseconds, UCUM `ms`.
    #[default]
    #[serde(rename = "ms")]
    Milliseconds,
    /// Seconds, UCUM `s`.
    #[serde(rename = "s")]
    Seconds,
}

impl Unit {
    /// The UCUM text of the metric's `unit` field.
    pub fn ucum(self) -> &'static str {
        match self {
            Unit::Milliseconds => "ms",
            Unit::Seconds => "s",
        }
    }

    /// Nanoseconds per unit.
    pub fn nanos(self) -> f64 {
        match self {
            Unit::Milliseconds => 1e6,
            Unit::Seconds => 1e9,
        }
    }
}

/// The aggregation temporality of the emitted points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum Temporality {
    /// Counts since the series' start time, which stays fixed.
    #[default]
    #[serde(rename = "cumulative", alias = "AGGREGATION_TEMPORALITY_CUMULATIVE")]
    Cumulative,
    /// Counts since the previous emission.
    #[serde(rename = "delta", alias = "AGGREGATION_TEMPORALITY_DELTA")]
    Delta,
}

impl Temporality {
    /// OTLP's `AggregationTemporality` number.
    pub fn otlp(self) -> u8 {
        match self {
            Temporality::Delta => 1,
            Temporality::Cumulative => 2,
        }
    }
}

/// The connector's default namespace.
pub const DEFAULT_NAMESPACE: &str = "traces.span.metrics";

/// The connector's default buckets, in milliseconds.
pub const DEFAULT_BUCKETS_MS: [u64; 16] = [
    2, 4, 6, 8, 10, 50, 100, 200, 400, 800, 1000, 1400, 2000, 5000, 10_000, 15_000,
];

/// The default `max_series`.
pub const DEFAULT_MAX_SERIES: usize = 10_000;

/// The largest `max_series` taken: each series is two records per
/// emission, and a plugin call may emit `max_emitted_records` (100,000 by
/// default) at most.
pub const MAX_MAX_SERIES: usize = 1_000_000;

/// The four dimensions every series has, in the order they are written.
pub const DEFAULT_DIMENSIONS: [&str; 4] = ["service.name", "span.name", "span.kind", "status.code"];

fn default_namespace() -> String {
    DEFAULT_NAMESPACE.to_string()
}

fn default_true() -> bool {
    true
}

fn default_interval() -> String {
    "15s".to_string()
}

fn default_max_series() -> usize {
    DEFAULT_MAX_SERIES
}

/// A mistake in the config, with the key to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The JSON does not fit the keys and types above (an unknown key, an
    /// unknown `unit` or `temporality`, a wrong type).
    #[error("config key `{path}`: {message}")]
    Invalid {
        /// Where: `dimensions[0].name`, or `.` for the table itself.
        path: String,
        /// What serde found.
        message: String,
    },
    /// A duration that does not parse.
    #[error("config key `{key}`: {message}")]
    BadDuration {
        /// `interval`, `expiration` or `buckets[3]`.
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// `interval = "0s"`.
    #[error("config key `interval`: the interval must be longer than zero; the default is \"15s\"")]
    ZeroInterval,
    /// An interval the host's `tick-every-ms` cannot carry.
    #[error("config key `interval`: `{0}` is too long; give at most \"24h\"")]
    LongInterval(String),
    /// `expiration = "0s"`.
    #[error(
        "config key `expiration`: zero would expire every series at once; leave the key out \
         for series that never expire, or give a duration such as \"5m\""
    )]
    ZeroExpiration,
    /// `expiration` with `temporality = "delta"`, where every series is
    /// forgotten after each emission anyway.
    #[error(
        "config key `expiration`: only meaningful with temporality \"cumulative\"; with \
         \"delta\" a series is only emitted in intervals that saw spans. Remove the key"
    )]
    ExpirationWithDelta,
    /// `buckets = []`.
    #[error(
        "config key `buckets`: give at least one bound, such as [\"10ms\", \"100ms\", \"1s\"], \
         or set histogram = false"
    )]
    NoBuckets,
    /// Bounds out of order or repeated.
    #[error(
        "config key `buckets`: the bounds must increase, but `{value}` (buckets[{index}]) \
         follows `{previous}`; list them from the shortest to the longest, each once"
    )]
    BucketsNotIncreasing {
        /// The position of the bound out of order.
        index: usize,
        /// The bound before it, as given.
        previous: String,
        /// The bound, as given.
        value: String,
    },
    /// A dimension without a name.
    #[error("config key `dimensions[{index}].name`: a dimension needs an attribute key")]
    EmptyDimension {
        /// The dimension's position.
        index: usize,
    },
    /// A dimension listed twice, or one of the four default ones.
    #[error("config key `dimensions[{index}].name`: `{name}` is {why}; list each dimension once")]
    DuplicateDimension {
        /// The dimension's position.
        index: usize,
        /// Its name.
        name: String,
        /// "a default dimension" or "listed twice".
        why: &'static str,
    },
    /// `exclude_dimensions` names something that is not a default one.
    #[error(
        "config key `exclude_dimensions`: `{0}` is not a default dimension; the defaults are \
         service.name, span.name, span.kind and status.code"
    )]
    UnknownExcluded(String),
    /// A bad key in `resource_attributes`.
    #[error("config key `resource_attributes`: {0}")]
    BadResourceAttribute(String),
    /// `max_series` out of range.
    #[error(
        "config key `max_series`: {0} is out of range; give 1 to {MAX_MAX_SERIES} (the \
         default is {DEFAULT_MAX_SERIES})"
    )]
    MaxSeries(usize),
}

impl From<ConfigError> for weir_plugin::Error {
    fn from(e: ConfigError) -> Self {
        weir_plugin::Error::InvalidArgument(e.to_string())
    }
}

/// One extra dimension, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dimension {
    /// The attribute key and data point attribute name.
    pub name: String,
    /// The value when the span and its resource lack the key.
    pub default: Option<String>,
}

/// Which of the four default dimensions the series have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Defaults {
    /// `service.name` (the resource keeps it regardless).
    pub service_name: bool,
    /// `span.name`.
    pub span_name: bool,
    /// `span.kind`.
    pub span_kind: bool,
    /// `status.code`.
    pub status_code: bool,
}

/// The duration histogram, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramPlan {
    /// Bucket upper bounds in nanoseconds, strictly increasing.
    pub bounds_ns: Vec<u64>,
    /// The bounds in `unit`, as emitted in `explicitBounds`.
    pub bounds: Vec<f64>,
    /// The unit of the bounds and of the sum.
    pub unit: Unit,
}

/// The config, checked: what [`crate::SpanMetrics`] runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The name of the call counter.
    pub calls_name: String,
    /// The name of the duration histogram.
    pub duration_name: String,
    /// Which default dimensions the series have.
    pub defaults: Defaults,
    /// The extra dimensions, in the config's order.
    pub dimensions: Vec<Dimension>,
    /// The resource attributes copied besides `service.name`.
    pub resource_attributes: Vec<String>,
    /// The histogram, unless `histogram = false`.
    pub histogram: Option<HistogramPlan>,
    /// The temporality of the emitted points.
    pub temporality: Temporality,
    /// How often the metrics are emitted.
    pub interval: Duration,
    /// When a cumulative series that saw no span is dropped.
    pub expiration: Option<Duration>,
    /// The most series kept besides the overflow one.
    pub max_series: usize,
    /// Whether spans are dropped once counted.
    pub drop_spans: bool,
}

impl SpanMetricsConfig {
    /// Parses the JSON text `init` receives.
    pub fn parse(json: &str) -> Result<Self, ConfigError> {
        parse_json(json).map_err(|e| ConfigError::Invalid {
            path: e.path,
            message: e.message,
        })
    }

    /// Checks everything into a [`Plan`].
    pub fn resolve(self) -> Result<Plan, ConfigError> {
        let interval = duration_key("interval", &self.interval)?;
        if interval == 0 {
            return Err(ConfigError::ZeroInterval);
        }
        if interval > 86_400 * 1_000_000_000 {
            return Err(ConfigError::LongInterval(self.interval));
        }
        let expiration = match &self.expiration {
            None => None,
            Some(text) => match duration_key("expiration", text)? {
                0 => return Err(ConfigError::ZeroExpiration),
                _ if self.temporality == Temporality::Delta => {
                    return Err(ConfigError::ExpirationWithDelta);
                }
                ns => Some(Duration::from_nanos(ns)),
            },
        };
        if self.max_series == 0 || self.max_series > MAX_MAX_SERIES {
            return Err(ConfigError::MaxSeries(self.max_series));
        }
        let histogram = match self.histogram {
            false => None,
            true => Some(histogram(self.buckets.as_deref(), self.unit)?),
        };

        let mut defaults = Defaults {
            service_name: true,
            span_name: true,
            span_kind: true,
            status_code: true,
        };
        for name in &self.exclude_dimensions {
            match name.as_str() {
                "service.name" => defaults.service_name = false,
                "span.name" => defaults.span_name = false,
                "span.kind" => defaults.span_kind = false,
                "status.code" => defaults.status_code = false,
                _ => return Err(ConfigError::UnknownExcluded(name.clone())),
            }
        }
        let mut dimensions: Vec<Dimension> = Vec::with_capacity(self.dimensions.len());
        for (index, d) in self.dimensions.into_iter().enumerate() {
            if d.name.is_empty() {
                return Err(ConfigError::EmptyDimension { index });
            }
            let why = if DEFAULT_DIMENSIONS.contains(&d.name.as_str()) {
                Some("a default dimension")
            } else if dimensions.iter().any(|x| x.name == d.name) {
                Some("listed twice")
            } else {
                None
            };
            if let Some(why) = why {
                return Err(ConfigError::DuplicateDimension {
                    index,
                    name: d.name,
                    why,
                });
            }
            dimensions.push(Dimension {
                name: d.name,
                default: d.default,
            });
        }
        let mut resource_attributes: Vec<String> = Vec::new();
        for key in self.resource_attributes {
            if key.is_empty() {
                return Err(ConfigError::BadResourceAttribute(
                    "an attribute key cannot be empty".into(),
                ));
            }
            if key == "service.name" {
                return Err(ConfigError::BadResourceAttribute(
                    "`service.name` is always copied; remove it from the list".into(),
                ));
            }
            if resource_attributes.contains(&key) {
                return Err(ConfigError::BadResourceAttribute(format!(
                    "`{key}` is listed twice"
                )));
            }
            resource_attributes.push(key);
        }

        let name = |metric: &str| match self.namespace.as_str() {
            "" => metric.to_string(),
            ns => format!("{ns}.{metric}"),
        };
        Ok(Plan {
            calls_name: name("calls"),
            duration_name: name("duration"),
            defaults,
            dimensions,
            resource_attributes,
            histogram,
            temporality: self.temporality,
            interval: Duration::from_nanos(interval),
            expiration,
            max_series: self.max_series,
            drop_spans: self.drop_spans,
        })
    }
}

impl Plan {
    /// The plan of the config's JSON text.
    pub fn from_json(json: &str) -> Result<Plan, ConfigError> {
        SpanMetricsConfig::parse(json)?.resolve()
    }

    /// A hash of everything that shapes a series key and a histogram, the
    /// same in every instance with the same config: instances hand their
    /// counts to each other only when it matches (see [`crate::handoff`]).
    pub fn fingerprint(&self) -> u64 {
        // FNV-1a: stable across builds and targets, unlike `Hash`.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |bytes: &[u8]| {
            for b in bytes.iter().chain([0xffu8].iter()) {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        };
        let d = self.defaults;
        eat(&[
            u8::from(d.service_name),
            u8::from(d.span_name),
            u8::from(d.span_kind),
            u8::from(d.status_code),
        ]);
        for dim in &self.dimensions {
            eat(dim.name.as_bytes());
            eat(dim
                .default
                .as_deref()
                .map_or(b"\x00none" as &[u8], str::as_bytes));
        }
        eat(b"resource");
        for key in &self.resource_attributes {
            eat(key.as_bytes());
        }
        eat(b"histogram");
        if let Some(hist) = &self.histogram {
            eat(hist.unit.ucum().as_bytes());
            for b in &hist.bounds_ns {
                eat(&b.to_le_bytes());
            }
        }
        h
    }
}

/// A duration key's value in nanoseconds.
fn duration_key(key: &str, text: &str) -> Result<u64, ConfigError> {
    duration_ns(text).map_err(|message| ConfigError::BadDuration {
        key: key.to_string(),
        message,
    })
}

/// The histogram of `buckets` (or the default ones) in `unit`.
fn histogram(buckets: Option<&[String]>, unit: Unit) -> Result<HistogramPlan, ConfigError> {
    let bounds_ns: Vec<u64> = match buckets {
        None => DEFAULT_BUCKETS_MS.iter().map(|ms| ms * 1_000_000).collect(),
        Some([]) => return Err(ConfigError::NoBuckets),
        Some(given) => {
            let mut out: Vec<u64> = Vec::with_capacity(given.len());
            for (index, text) in given.iter().enumerate() {
                let ns = duration_key(&format!("buckets[{index}]"), text)?;
                if let Some(&last) = out.last()
                    && ns <= last
                {
                    return Err(ConfigError::BucketsNotIncreasing {
                        index,
                        previous: given[index - 1].clone(),
                        value: text.clone(),
                    });
                }
                out.push(ns);
            }
            out
        }
    };
    let bounds = bounds_ns
        .iter()
        .map(|ns| *ns as f64 / unit.nanos())
        .collect();
    Ok(HistogramPlan {
        bounds_ns,
        bounds,
        unit,
    })
}
