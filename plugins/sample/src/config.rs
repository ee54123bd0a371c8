//! What a user writes in the processor's `config = { ... }` table
//! ([`SampleConfig`], parsed from the JSON the host hands to `init`), and
//! the checked [`Plan`] it resolves into. Every mistake is a
//! [`ConfigError`] naming the key to fix.

use serde::Deserialize;
use weir_plugin::config::{byte_size, duration_ns, parse_json};

use crate::policy::{self, Policy, Rule, SpanTest};
use crate::threshold::{MAX_PRECISION, Threshold};

/// The plugin's settings, as written in the pipeline file: head sampling,
/// tail sampling, or both (head first).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleConfig {
    /// Head sampling of every span and log record on its own, by its
    /// trace's randomness. Default: none.
    #[serde(default)]
    pub head: Option<HeadConfig>,
    /// Tail sampling of whole traces by policies. Default: none.
    #[serde(default)]
    pub tail: Option<TailConfig>,
}

/// `head`: consistent probability sampling of single records.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadConfig {
    /// The share of traces kept, in percent, 0 to 100. Required. 100 keeps
    /// everything and leaves tracestates alone; 0 drops everything.
    pub sampling_percentage: f64,
    /// `"equalizing"`: a record already sampled upstream at a lower
    /// probability passes (the effective threshold is the larger of its
    /// `th` and ours); `"proportional"`: every record is sampled again at
    /// `sampling_percentage` of its own probability. Default
    /// `"equalizing"`.
    #[serde(default)]
    pub mode: Mode,
    /// Significant hex digits of the threshold written to `th`, 1 to 14
    /// (the computation gives at most 12). Default 4, the specification's
    /// recommendation and the Collector's default.
    #[serde(default = "default_precision")]
    pub sampling_precision: u32,
    /// Whether a record whose sampling state cannot be trusted (no trace id
    /// or randomness, a malformed `th` or `rv`, a `th` its randomness does
    /// not pass) is dropped (`true`) or passed on (`false`). Default
    /// `true`, the Collector's.
    #[serde(default = "default_true")]
    pub fail_closed: bool,
    /// Log records without a trace id: `"keep"` them all, `"drop"` them
    /// all, or `"hash"` them, taking the randomness from a hash of the
    /// attribute `logs_hash_attribute`. Default `"keep"`.
    #[serde(default)]
    pub logs_without_trace_id: LogsFallback,
    /// With `logs_without_trace_id = "hash"`: the attribute whose value is
    /// hashed, looked up in the record's attributes, then its resource's
    /// (`"service.instance.id"` samples whole instances, a unique record id
    /// single records). Required then, refused otherwise.
    #[serde(default)]
    pub logs_hash_attribute: Option<String>,
}

/// How the configured probability combines with an upstream `th`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The effective threshold is `max(upstream th, ours)`: the
    /// probability is only ever lowered to ours.
    #[default]
    Equalizing,
    /// The probability becomes the upstream one times ours.
    Proportional,
}

/// What happens to log records without a trace id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogsFallback {
    /// Pass them on, unsampled.
    #[default]
    Keep,
    /// Drop them.
    Drop,
    /// Sample them by a hash of `logs_hash_attribute`.
    Hash,
}

/// `tail`: whole traces held until they are complete, then kept or dropped.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TailConfig {
    /// How long after the last span of a trace arrives it is decided, as a
    /// duration (`"30s"`). Default `"30s"`, the Collector's.
    #[serde(default = "default_decision_wait")]
    pub decision_wait: String,
    /// How often the plugin looks for traces to decide (the host's tick).
    /// Decisions happen up to this much after `decision_wait`. Default
    /// `"1s"`; at most `decision_wait`.
    #[serde(default = "default_check_interval")]
    pub check_interval: String,
    /// The most memory held traces may take: the bytes the host holds for
    /// the instance plus the plugin's own bookkeeping per trace. Above it
    /// the oldest traces are decided early. A size (`"256MiB"`). Default
    /// `"256MiB"`.
    #[serde(default = "default_max_memory")]
    pub max_memory: String,
    /// How many decided trace ids are remembered (kept and dropped alike,
    /// the oldest forgotten first), so that late spans follow their
    /// trace's decision without being held. 0 turns it off. Default
    /// 100000.
    #[serde(default = "default_decision_cache")]
    pub decision_cache: usize,
    /// The policies. Required, at least one.
    pub policies: Vec<PolicyConfig>,
}

/// One tail sampling policy, by `type`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum PolicyConfig {
    /// Matches every trace.
    AlwaysSample {
        /// The policy's name (required at the top level).
        #[serde(default)]
        name: Option<String>,
    },
    /// Matches when the trace's duration (its earliest span start to its
    /// latest span end) is at least `threshold` and at most
    /// `upper_threshold`.
    Latency {
        /// The policy's name.
        #[serde(default)]
        name: Option<String>,
        /// The least duration, `"5s"`.
        threshold: String,
        /// The largest duration; default none.
        #[serde(default)]
        upper_threshold: Option<String>,
    },
    /// Matches when a span has one of the status codes.
    StatusCode {
        /// The policy's name.
        #[serde(default)]
        name: Option<String>,
        /// Among `"ERROR"`, `"OK"`, `"UNSET"` (a span without status is
        /// `UNSET`).
        status_codes: Vec<StatusName>,
    },
    /// Matches when a span (or its resource) has attribute `key` equal to
    /// one of `values`.
    StringAttribute {
        /// The policy's name.
        #[serde(default)]
        name: Option<String>,
        /// The attribute key.
        key: String,
        /// The values, compared exactly.
        values: Vec<String>,
    },
    /// Matches when a span (or its resource) has attribute `key` as a
    /// number within `[min_value, max_value]`.
    NumericAttribute {
        /// The policy's name.
        #[serde(default)]
        name: Option<String>,
        /// The attribute key.
        key: String,
        /// The least value; default none.
        #[serde(default)]
        min_value: Option<f64>,
        /// The largest value; default none.
        #[serde(default)]
        max_value: Option<f64>,
    },
    /// Matches a share of traces, by the same randomness as head sampling.
    Probabilistic {
        /// The policy's name.
        #[serde(default)]
        name: Option<String>,
        /// Percent, 0 to 100.
        sampling_percentage: f64,
    },
    /// Matches while the spans of the traces it matched stay within
    /// `spans_per_second`.
    RateLimiting {
        /// The policy's name.
        #[serde(default)]
        name: Option<String>,
        /// Spans per second, above zero.
        spans_per_second: f64,
    },
    /// Matches when the trace has at least `min_spans` and at most
    /// `max_spans` spans.
    SpanCount {
        /// The policy's name.
        #[serde(default)]
        name: Option<String>,
        /// The least count; default 1.
        #[serde(default)]
        min_spans: Option<u32>,
        /// The largest count; default none.
        #[serde(default)]
        max_spans: Option<u32>,
    },
    /// Matches when every policy of `policies` matches (evaluated in order;
    /// a rate limit is only used when the ones before it matched).
    And {
        /// The policy's name.
        #[serde(default)]
        name: Option<String>,
        /// At least one.
        policies: Vec<PolicyConfig>,
    },
    /// Matches when `policy` does not.
    Not {
        /// The policy's name.
        #[serde(default)]
        name: Option<String>,
        /// The negated policy.
        policy: Box<PolicyConfig>,
    },
    /// Top level only: when every policy of `policies` matches, the trace
    /// is dropped, whatever the other policies say.
    Drop {
        /// The policy's name.
        #[serde(default)]
        name: Option<String>,
        /// At least one.
        policies: Vec<PolicyConfig>,
    },
}

/// A span status, as the Collector spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum StatusName {
    /// `status_code` 0, or no status.
    #[serde(rename = "UNSET")]
    Unset,
    /// `status_code` 1.
    #[serde(rename = "OK")]
    Ok,
    /// `status_code` 2.
    #[serde(rename = "ERROR")]
    Error,
}

fn default_precision() -> u32 {
    4
}

fn default_true() -> bool {
    true
}

fn default_decision_wait() -> String {
    "30s".to_string()
}

fn default_check_interval() -> String {
    "1s".to_string()
}

fn default_max_memory() -> String {
    "256MiB".to_string()
}

fn default_decision_cache() -> usize {
    DEFAULT_DECISION_CACHE
}

/// The default `decision_cache`.
pub const DEFAULT_DECISION_CACHE: usize = 100_000;

/// The largest `decision_cache` (about 48 bytes of instance memory each).
pub const MAX_DECISION_CACHE: usize = 10_000_000;

/// The least `max_memory`.
pub const MIN_MAX_MEMORY: u64 = 1 << 20;

/// A mistake in the config, with the key to fix. Shown as
/// `sample: config key `...`: ...` when `init` refuses it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The JSON does not fit the keys and types (an unknown key or policy
    /// type, a wrong type, a missing key).
    #[error("sample: config key `{path}`: {message}")]
    Invalid {
        /// Where: `tail.policies[0]`, or `.` for the table itself.
        path: String,
        /// What serde found.
        message: String,
    },
    /// Neither `head` nor `tail`.
    #[error(
        "sample: the config has neither `head` nor `tail`; give `head = {{ sampling_percentage = 10 }}` \
         and/or `tail = {{ policies = [...] }}`"
    )]
    Nothing,
    /// A value out of its range, or that does not parse.
    #[error("sample: config key `{key}`: {message}")]
    Bad {
        /// The key, with its path: `tail.policies[2].threshold`.
        key: String,
        /// What is wrong and what to write instead.
        message: String,
    },
}

impl From<ConfigError> for weir_plugin::Error {
    fn from(e: ConfigError) -> Self {
        weir_plugin::Error::InvalidArgument(e.to_string())
    }
}

fn bad(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Bad {
        key: key.into(),
        message: message.into(),
    }
}

/// `head`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadPlan {
    /// The configured probability, 0 to 1.
    pub probability: f64,
    /// Its threshold at `precision`; `None` for probability 0 (nothing is
    /// kept, and no `th` can say so).
    pub threshold: Option<Threshold>,
    /// How an upstream `th` combines with ours.
    pub mode: Mode,
    /// Significant hex digits of written thresholds.
    pub precision: u32,
    /// Whether untrustworthy records are dropped.
    pub fail_closed: bool,
    /// Log records without a trace id.
    pub logs_without_trace_id: LogsFallback,
    /// The attribute hashed with [`LogsFallback::Hash`].
    pub logs_hash_attribute: Option<String>,
}

/// `tail`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct TailPlan {
    /// Nanoseconds after a trace's last span before it is decided.
    pub decision_wait_ns: u64,
    /// Nanoseconds between ticks.
    pub check_interval_ns: u64,
    /// Bytes held plus bookkeeping, at most.
    pub max_memory: u64,
    /// Decided trace ids remembered.
    pub decision_cache: usize,
    /// The top-level policies, in order.
    pub policies: Vec<Policy>,
    /// The per-span tests the policies fold over a trace's spans, each a
    /// bit of a trace's `matched` mask.
    pub span_tests: Vec<SpanTest>,
    /// The rate limits, spans per second, by index.
    pub rate_limits: Vec<f64>,
    /// Which columns the policies need.
    pub needs: policy::Needs,
}

/// The config, checked: what the plugin runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Head sampling, if configured.
    pub head: Option<HeadPlan>,
    /// Tail sampling, if configured.
    pub tail: Option<TailPlan>,
}

impl SampleConfig {
    /// Parses the JSON text `init` receives.
    pub fn parse(json: &str) -> Result<Self, ConfigError> {
        parse_json(json).map_err(|e| ConfigError::Invalid {
            path: e.path,
            message: e.message,
        })
    }

    /// Checks everything into a [`Plan`].
    pub fn resolve(self) -> Result<Plan, ConfigError> {
        if self.head.is_none() && self.tail.is_none() {
            return Err(ConfigError::Nothing);
        }
        Ok(Plan {
            head: self.head.map(HeadConfig::resolve).transpose()?,
            tail: self.tail.map(TailConfig::resolve).transpose()?,
        })
    }
}

impl Plan {
    /// The plan of the config's JSON text.
    pub fn from_json(json: &str) -> Result<Plan, ConfigError> {
        SampleConfig::parse(json)?.resolve()
    }
}

/// A percentage key's probability, 0 to 1.
fn percentage(key: &str, value: f64) -> Result<f64, ConfigError> {
    if !(0.0..=100.0).contains(&value) {
        return Err(bad(
            key,
            format!("{value} is not a percentage; give 0 to 100 (10 keeps one trace in ten)"),
        ));
    }
    Ok(value / 100.0)
}

impl HeadConfig {
    fn resolve(self) -> Result<HeadPlan, ConfigError> {
        let probability = percentage("head.sampling_percentage", self.sampling_percentage)?;
        if !(1..=14).contains(&self.sampling_precision) {
            return Err(bad(
                "head.sampling_precision",
                format!(
                    "{} is out of range; give 1 to 14 hex digits (the default is 4; more than \
                     {MAX_PRECISION} add nothing)",
                    self.sampling_precision
                ),
            ));
        }
        let threshold = match probability {
            0.0 => None,
            p => Some(
                Threshold::from_probability(p, self.sampling_precision).ok_or_else(|| {
                    bad(
                        "head.sampling_percentage",
                        format!(
                            "{} is below the smallest probability a threshold can carry (2^-56); \
                             give 0 to drop everything",
                            self.sampling_percentage
                        ),
                    )
                })?,
            ),
        };
        match (self.logs_without_trace_id, &self.logs_hash_attribute) {
            (LogsFallback::Hash, None) => {
                return Err(bad(
                    "head.logs_hash_attribute",
                    "required with logs_without_trace_id = \"hash\": name the attribute to hash, \
                     such as \"service.instance.id\"",
                ));
            }
            (LogsFallback::Hash, Some(key)) if key.is_empty() => {
                return Err(bad(
                    "head.logs_hash_attribute",
                    "an attribute key cannot be empty",
                ));
            }
            (LogsFallback::Keep | LogsFallback::Drop, Some(_)) => {
                return Err(bad(
                    "head.logs_hash_attribute",
                    "only used with logs_without_trace_id = \"hash\"; remove it or set that",
                ));
            }
            _ => {}
        }
        Ok(HeadPlan {
            probability,
            threshold,
            mode: self.mode,
            precision: self.sampling_precision,
            fail_closed: self.fail_closed,
            logs_without_trace_id: self.logs_without_trace_id,
            logs_hash_attribute: self.logs_hash_attribute,
        })
    }
}

fn duration_key(key: &str, text: &str) -> Result<u64, ConfigError> {
    duration_ns(text).map_err(|m| bad(key, m))
}

impl TailConfig {
    fn resolve(self) -> Result<TailPlan, ConfigError> {
        let decision_wait_ns = duration_key("tail.decision_wait", &self.decision_wait)?;
        if decision_wait_ns == 0 {
            return Err(bad(
                "tail.decision_wait",
                "must be longer than zero: spans arrive over time; the default is \"30s\"",
            ));
        }
        let check_interval_ns = duration_key("tail.check_interval", &self.check_interval)?;
        if check_interval_ns < 1_000_000 || check_interval_ns > decision_wait_ns {
            return Err(bad(
                "tail.check_interval",
                format!(
                    "`{}` is out of range; give 1ms to decision_wait (`{}`); the default is \"1s\"",
                    self.check_interval, self.decision_wait
                ),
            ));
        }
        let max_memory = byte_size(&self.max_memory).map_err(|m| bad("tail.max_memory", m))?;
        if max_memory < MIN_MAX_MEMORY {
            return Err(bad(
                "tail.max_memory",
                format!(
                    "`{}` is too small; give at least \"1MiB\" (the default is \"256MiB\")",
                    self.max_memory
                ),
            ));
        }
        if self.decision_cache > MAX_DECISION_CACHE {
            return Err(bad(
                "tail.decision_cache",
                format!(
                    "{} is out of range; give 0 to {MAX_DECISION_CACHE} (the default is \
                     {DEFAULT_DECISION_CACHE})",
                    self.decision_cache
                ),
            ));
        }
        if self.policies.is_empty() {
            return Err(bad(
                "tail.policies",
                "give at least one policy, such as { name = \"errors\", type = \"status_code\", \
                 status_codes = [\"ERROR\"] }",
            ));
        }
        let mut builder = policy::Builder::default();
        let mut policies = Vec::with_capacity(self.policies.len());
        for (i, p) in self.policies.into_iter().enumerate() {
            let key = format!("tail.policies[{i}]");
            let Some(name) = p.name().map(str::to_owned) else {
                return Err(bad(
                    format!("{key}.name"),
                    "a top-level policy needs a name: it labels the policy's counter",
                ));
            };
            if name.is_empty() || policies.iter().any(|q: &Policy| q.name == name) {
                return Err(bad(
                    format!("{key}.name"),
                    format!("`{name}` must be a non-empty name no other policy has"),
                ));
            }
            let (rule, veto) = match p {
                PolicyConfig::Drop { policies: subs, .. } => {
                    (builder.all(&format!("{key}.policies"), subs)?, true)
                }
                other => (builder.rule(&key, other)?, false),
            };
            policies.push(Policy { name, rule, veto });
        }
        let (span_tests, rate_limits) = builder.finish();
        let needs = policy::Needs::of(&policies, &span_tests);
        Ok(TailPlan {
            decision_wait_ns,
            check_interval_ns,
            max_memory,
            decision_cache: self.decision_cache,
            policies,
            span_tests,
            rate_limits,
            needs,
        })
    }
}

impl PolicyConfig {
    /// The policy's `name`, if it has one.
    pub fn name(&self) -> Option<&str> {
        match self {
            PolicyConfig::AlwaysSample { name }
            | PolicyConfig::Latency { name, .. }
            | PolicyConfig::StatusCode { name, .. }
            | PolicyConfig::StringAttribute { name, .. }
            | PolicyConfig::NumericAttribute { name, .. }
            | PolicyConfig::Probabilistic { name, .. }
            | PolicyConfig::RateLimiting { name, .. }
            | PolicyConfig::SpanCount { name, .. }
            | PolicyConfig::And { name, .. }
            | PolicyConfig::Not { name, .. }
            | PolicyConfig::Drop { name, .. } => name.as_deref(),
        }
    }
}

impl policy::Builder {
    /// The rules of `subs` under one [`Rule::And`].
    fn all(&mut self, key: &str, subs: Vec<PolicyConfig>) -> Result<Rule, ConfigError> {
        if subs.is_empty() {
            return Err(bad(key, "give at least one policy"));
        }
        let rules = subs
            .into_iter()
            .enumerate()
            .map(|(i, p)| self.rule(&format!("{key}[{i}]"), p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Rule::And(rules))
    }

    /// The rule of one policy at `key`.
    fn rule(&mut self, key: &str, p: PolicyConfig) -> Result<Rule, ConfigError> {
        Ok(match p {
            PolicyConfig::AlwaysSample { .. } => Rule::Always,
            PolicyConfig::Latency {
                threshold,
                upper_threshold,
                ..
            } => {
                let min = duration_key(&format!("{key}.threshold"), &threshold)?;
                let max = upper_threshold
                    .map(|t| duration_key(&format!("{key}.upper_threshold"), &t))
                    .transpose()?;
                if let Some(max) = max
                    && max < min
                {
                    return Err(bad(
                        format!("{key}.upper_threshold"),
                        "is below `threshold`; give a larger duration, or leave it out for no upper bound",
                    ));
                }
                Rule::Latency {
                    min_ns: i64::try_from(min).unwrap_or(i64::MAX),
                    max_ns: max.map(|m| i64::try_from(m).unwrap_or(i64::MAX)),
                }
            }
            PolicyConfig::StatusCode { status_codes, .. } => {
                if status_codes.is_empty() {
                    return Err(bad(
                        format!("{key}.status_codes"),
                        "give at least one of \"ERROR\", \"OK\", \"UNSET\"",
                    ));
                }
                let mut mask = 0u8;
                for s in status_codes {
                    mask |= match s {
                        StatusName::Unset => 1,
                        StatusName::Ok => 2,
                        StatusName::Error => 4,
                    };
                }
                self.span_test(key, SpanTest::Status(mask))?
            }
            PolicyConfig::StringAttribute {
                key: attr, values, ..
            } => {
                if attr.is_empty() {
                    return Err(bad(
                        format!("{key}.key"),
                        "an attribute key cannot be empty",
                    ));
                }
                if values.is_empty() {
                    return Err(bad(format!("{key}.values"), "give at least one value"));
                }
                self.span_test(key, SpanTest::String { key: attr, values })?
            }
            PolicyConfig::NumericAttribute {
                key: attr,
                min_value,
                max_value,
                ..
            } => {
                if attr.is_empty() {
                    return Err(bad(
                        format!("{key}.key"),
                        "an attribute key cannot be empty",
                    ));
                }
                if min_value.is_none() && max_value.is_none() {
                    return Err(bad(
                        format!("{key}.min_value"),
                        "give min_value, max_value or both",
                    ));
                }
                let (min, max) = (
                    min_value.unwrap_or(f64::NEG_INFINITY),
                    max_value.unwrap_or(f64::INFINITY),
                );
                if min.is_nan() || max.is_nan() || max < min {
                    return Err(bad(
                        format!("{key}.max_value"),
                        "is below min_value; give min_value <= max_value",
                    ));
                }
                self.span_test(
                    key,
                    SpanTest::Numeric {
                        key: attr,
                        min,
                        max,
                    },
                )?
            }
            PolicyConfig::Probabilistic {
                sampling_percentage,
                ..
            } => {
                let p = percentage(&format!("{key}.sampling_percentage"), sampling_percentage)?;
                match p {
                    0.0 => Rule::Never,
                    p => Rule::Probabilistic(
                        Threshold::from_probability(p, MAX_PRECISION).ok_or_else(|| {
                            bad(
                                format!("{key}.sampling_percentage"),
                                "is below 2^-56; give 0 or more",
                            )
                        })?,
                    ),
                }
            }
            PolicyConfig::RateLimiting {
                spans_per_second, ..
            } => {
                if !(spans_per_second > 0.0 && spans_per_second.is_finite()) {
                    return Err(bad(
                        format!("{key}.spans_per_second"),
                        format!("{spans_per_second} is out of range; give a number above zero"),
                    ));
                }
                Rule::RateLimit(self.rate_limit(spans_per_second))
            }
            PolicyConfig::SpanCount {
                min_spans,
                max_spans,
                ..
            } => {
                let min = min_spans.unwrap_or(1);
                let max = max_spans.unwrap_or(u32::MAX);
                if max < min {
                    return Err(bad(
                        format!("{key}.max_spans"),
                        "is below min_spans; give min_spans <= max_spans",
                    ));
                }
                Rule::SpanCount { min, max }
            }
            PolicyConfig::And { policies, .. } => self.all(&format!("{key}.policies"), policies)?,
            PolicyConfig::Not { policy, .. } => {
                Rule::Not(Box::new(self.rule(&format!("{key}.policy"), *policy)?))
            }
            PolicyConfig::Drop { .. } => {
                return Err(bad(
                    format!("{key}.type"),
                    "a `drop` policy vetoes the whole decision, so it is allowed at the top level \
                     only; inside `and` use `not` to negate",
                ));
            }
        })
    }

    fn span_test(&mut self, key: &str, test: SpanTest) -> Result<Rule, ConfigError> {
        self.add_span_test(test).map(Rule::Span).ok_or_else(|| {
            bad(
                key,
                format!(
                    "too many status and attribute policies; at most {} in all",
                    policy::MAX_SPAN_TESTS
                ),
            )
        })
    }
}
