//! Tail sampling policies, checked, and how a trace is judged by them.
//!
//! A trace is summarised as its spans arrive ([`Summary`]: a fixed-size
//! record, whatever the trace's size): its span count, its earliest start
//! and latest end, its randomness, and one bit per [`SpanTest`] (status
//! code, string or numeric attribute) set when any of its spans passed it.
//! At the decision every [`Rule`] reads only the summary, so nothing of
//! the spans themselves stays in the plugin.
//!
//! **The decision** ([`decide`]), as the Collector's `tail_sampling` with
//! its current `drop` policy:
//!
//! 1. every top-level policy is evaluated, in order (so each rate limit is
//!    used by the traces its own policy matched);
//! 2. if a `drop` policy matched (all its sub-policies matched), the trace
//!    is dropped;
//! 3. otherwise it is kept if any other top-level policy matched, and
//!    dropped if none did.
//!
//! `and` matches when all its sub-policies match, evaluated in order and
//! stopping at the first that does not (a rate limit inside is used only
//! when the ones before it matched); `not` matches when its sub-policy does
//! not, at any level (a plain negation, not the Collector's deprecated
//! `invert_match` veto: for a veto, use `drop`).

use crate::threshold::{Randomness, Threshold};

/// The most status and attribute policies in a config: one bit each of
/// a trace's mask.
pub const MAX_SPAN_TESTS: usize = 64;

/// A test of one span, folded over a trace's spans: the trace passes it
/// when any of its spans does.
#[derive(Debug, Clone, PartialEq)]
pub enum SpanTest {
    /// The span's status is one of a mask of bits: 1 unset (or no status),
    /// 2 ok, 4 error.
    Status(u8),
    /// The span's attribute `key` (else its resource's) is one of `values`.
    String {
        /// The attribute key.
        key: String,
        /// The accepted values.
        values: Vec<String>,
    },
    /// The span's attribute `key` (else its resource's) parses as a number
    /// in `[min, max]`.
    Numeric {
        /// The attribute key.
        key: String,
        /// The least value.
        min: f64,
        /// The largest value.
        max: f64,
    },
}

impl SpanTest {
    /// The attribute key the test reads, if any.
    pub fn attribute(&self) -> Option<&str> {
        match self {
            SpanTest::Status(_) => None,
            SpanTest::String { key, .. } | SpanTest::Numeric { key, .. } => Some(key),
        }
    }

    /// Whether a span with `status` (`status_code`, `None` without status)
    /// and `value` (the test's attribute, if it reads one) passes.
    #[inline]
    pub fn passes(&self, status: Option<i64>, value: Option<&str>) -> bool {
        match self {
            SpanTest::Status(mask) => {
                let bit = match status {
                    None | Some(0) => 1,
                    Some(1) => 2,
                    Some(2) => 4,
                    Some(_) => 0,
                };
                mask & bit != 0
            }
            SpanTest::String { values, .. } => value.is_some_and(|v| values.iter().any(|x| x == v)),
            SpanTest::Numeric { min, max, .. } => value
                .and_then(|v| v.trim().parse::<f64>().ok())
                .is_some_and(|n| n >= *min && n <= *max),
        }
    }
}

/// A checked policy, judged on a trace's [`Summary`].
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// Every trace.
    Always,
    /// No trace (a probabilistic policy at 0 %).
    Never,
    /// Duration (latest end minus earliest start) in `[min_ns, max_ns]`.
    Latency {
        /// The least duration.
        min_ns: i64,
        /// The largest, if bounded.
        max_ns: Option<i64>,
    },
    /// Span count in `[min, max]`.
    SpanCount {
        /// The least count.
        min: u32,
        /// The largest count.
        max: u32,
    },
    /// The trace's randomness passes the threshold.
    Probabilistic(Threshold),
    /// Rate limit number `n` has room for the trace's spans.
    RateLimit(usize),
    /// Span test number `n` passed on some span.
    Span(usize),
    /// All of these, in order.
    And(Vec<Rule>),
    /// Not this.
    Not(Box<Rule>),
}

/// A top-level policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Its name, the label of its counter.
    pub name: String,
    /// What it matches.
    pub rule: Rule,
    /// Whether a match drops the trace (a `drop` policy).
    pub veto: bool,
}

/// Collects the span tests and rate limits of the policies as they are
/// checked (see `config`).
#[derive(Debug, Default)]
pub struct Builder {
    span_tests: Vec<SpanTest>,
    rate_limits: Vec<f64>,
}

impl Builder {
    /// The index of `test`, reusing an equal one; `None` past
    /// [`MAX_SPAN_TESTS`].
    pub fn add_span_test(&mut self, test: SpanTest) -> Option<usize> {
        if let Some(i) = self.span_tests.iter().position(|t| *t == test) {
            return Some(i);
        }
        if self.span_tests.len() == MAX_SPAN_TESTS {
            return None;
        }
        self.span_tests.push(test);
        Some(self.span_tests.len() - 1)
    }

    /// The index of a new rate limit (each policy has its own budget).
    pub fn rate_limit(&mut self, spans_per_second: f64) -> usize {
        self.rate_limits.push(spans_per_second);
        self.rate_limits.len() - 1
    }

    /// The span tests and rate limits collected.
    pub fn finish(self) -> (Vec<SpanTest>, Vec<f64>) {
        (self.span_tests, self.rate_limits)
    }
}

/// Which columns the policies read, besides `trace_id`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Needs {
    /// `status_code`.
    pub status: bool,
    /// `start_time` and `end_time`.
    pub times: bool,
    /// `trace_state` (for `rv`).
    pub trace_state: bool,
    /// Distinct attribute keys, each read from span then resource.
    pub attributes: Vec<String>,
}

impl Needs {
    /// What `policies` and `tests` read.
    pub fn of(policies: &[Policy], tests: &[SpanTest]) -> Needs {
        fn walk(rule: &Rule, needs: &mut Needs) {
            match rule {
                Rule::Latency { .. } => needs.times = true,
                Rule::Probabilistic(_) => needs.trace_state = true,
                Rule::And(rules) => rules.iter().for_each(|r| walk(r, needs)),
                Rule::Not(rule) => walk(rule, needs),
                _ => {}
            }
        }
        let mut needs = Needs::default();
        for p in policies {
            walk(&p.rule, &mut needs);
        }
        for t in tests {
            match t.attribute() {
                None => needs.status = true,
                Some(key) => {
                    if !needs.attributes.iter().any(|k| k == key) {
                        needs.attributes.push(key.to_string());
                    }
                }
            }
        }
        needs
    }
}

/// What the policies know of a trace: a fixed-size summary of its spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Spans seen.
    pub spans: u32,
    /// Bit `n` set when a span passed span test `n`.
    pub matched: u64,
    /// The earliest span start, ns since the epoch (`i64::MAX` if none).
    pub min_start: i64,
    /// The latest span end (`i64::MIN` if none).
    pub max_end: i64,
    /// The trace's randomness: an `rv` if a span carried one, else the
    /// trace id's.
    pub randomness: Randomness,
}

impl Summary {
    /// The summary of a trace with no span yet.
    pub fn new(randomness: Randomness) -> Summary {
        Summary {
            spans: 0,
            matched: 0,
            min_start: i64::MAX,
            max_end: i64::MIN,
            randomness,
        }
    }

    /// The trace's duration, when some span had both times.
    pub fn duration_ns(&self) -> Option<i64> {
        (self.max_end >= self.min_start).then(|| self.max_end.saturating_sub(self.min_start))
    }
}

/// Token buckets of the rate-limiting policies, refilled by the tick's
/// time: each holds at most one second of spans.
#[derive(Debug, Clone)]
pub struct Limits {
    rates: Vec<f64>,
    tokens: Vec<f64>,
    at: Option<u64>,
}

impl Limits {
    /// Full buckets for `rates` (spans per second).
    pub fn new(rates: &[f64]) -> Limits {
        Limits {
            rates: rates.to_vec(),
            tokens: rates.to_vec(),
            at: None,
        }
    }

    /// Refills the buckets for the time since the last call.
    pub fn advance(&mut self, now: u64) {
        if let Some(at) = self.at {
            let secs = now.saturating_sub(at) as f64 / 1e9;
            for (t, r) in self.tokens.iter_mut().zip(&self.rates) {
                *t = (*t + secs * r).min(*r);
            }
        }
        self.at = Some(self.at.map_or(now, |a| a.max(now)));
    }

    /// Takes `spans` tokens of bucket `n` if it has them.
    fn take(&mut self, n: usize, spans: u32) -> bool {
        let spans = f64::from(spans);
        if self.tokens[n] >= spans {
            self.tokens[n] -= spans;
            true
        } else {
            false
        }
    }
}

/// Whether `rule` matches the trace.
pub fn matches(rule: &Rule, trace: &Summary, limits: &mut Limits) -> bool {
    match rule {
        Rule::Always => true,
        Rule::Never => false,
        Rule::Latency { min_ns, max_ns } => trace
            .duration_ns()
            .is_some_and(|d| d >= *min_ns && max_ns.is_none_or(|m| d <= m)),
        Rule::SpanCount { min, max } => trace.spans >= *min && trace.spans <= *max,
        Rule::Probabilistic(th) => th.keeps(trace.randomness),
        Rule::RateLimit(n) => limits.take(*n, trace.spans),
        Rule::Span(n) => trace.matched & (1 << n) != 0,
        Rule::And(rules) => rules.iter().all(|r| matches(r, trace, limits)),
        Rule::Not(rule) => !matches(rule, trace, limits),
    }
}

/// The decision on a trace, and which top-level policies matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the trace is kept.
    pub keep: bool,
    /// Bit `n` set when top-level policy `n` matched (at most 64 are
    /// recorded).
    pub matched: u64,
}

/// Judges a trace by the top-level `policies` (see the module's text).
pub fn decide(policies: &[Policy], trace: &Summary, limits: &mut Limits) -> Decision {
    let (mut any, mut vetoed, mut matched) = (false, false, 0u64);
    for (i, p) in policies.iter().enumerate() {
        if matches(&p.rule, trace, limits) {
            if i < 64 {
                matched |= 1 << i;
            }
            if p.veto {
                vetoed = true;
            } else {
                any = true;
            }
        }
    }
    Decision {
        keep: any && !vetoed,
        matched,
    }
}
