//! OpenTelemetry names -> Prometheus names, by the rules of Prometheus'
//! own OTLP receiver (`github.com/prometheus/otlptranslator`, strategy
//! `UnderscoreEscapingWithSuffixes`) and the collector's
//! `prometheusremotewrite` exporter:
//!
//! * a metric name keeps `[a-zA-Z0-9:]` and joins the runs between other
//!   characters with `_`; the unit adds a suffix (`s` -> `_seconds`, `By` ->
//!   `_bytes`, `ms` -> `_milliseconds`, `{packets}` -> nothing, `By/s` ->
//!   `_bytes_per_second`) unless the name holds it already; a monotonic
//!   counter ends in `_total`, a gauge of unit `1` in `_ratio`; a name
//!   starting with a digit gets `_` in front;
//! * a label name turns each character outside `[a-zA-Z0-9_]` into `_`; one
//!   starting with a digit gets `key_` in front, one starting with a single
//!   `_` gets `key` (names starting with `__` are Prometheus' own and kept).

/// What a metric is, for its name's suffixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A gauge.
    Gauge,
    /// A monotonic cumulative sum: `_total`.
    MonotonicCounter,
    /// A non-monotonic cumulative sum.
    NonMonotonicCounter,
    /// A histogram (explicit or exponential).
    Histogram,
    /// A summary.
    Summary,
}

/// The Prometheus name of unit `unit` (UCUM, as OpenTelemetry writes it).
fn unit_word(unit: &str) -> &str {
    match unit {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "1" => "",
        "%" => "percent",
        other => other,
    }
}

/// The Prometheus name of the unit after `/` in `unit`.
fn per_unit_word(unit: &str) -> &str {
    match unit {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        other => other,
    }
}

fn is_metric_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == ':'
}

/// The main and per-unit suffixes of `unit` (`By/s` -> `bytes`,
/// `per_second`); annotations in braces give none.
fn unit_suffixes(unit: &str) -> (String, String) {
    let mut parts = unit.splitn(2, '/');
    let main = parts.next().unwrap_or_default().trim();
    let per = parts.next().unwrap_or_default().trim();
    let main = if main.is_empty() || main.contains(['{', '}']) {
        String::new()
    } else {
        clean_unit(unit_word(main))
    };
    let per = if per.is_empty() || per.contains(['{', '}']) {
        String::new()
    } else {
        let word = clean_unit(per_unit_word(per));
        if word.is_empty() {
            String::new()
        } else {
            format!("per_{word}")
        }
    };
    (main, per)
}

/// A unit word with characters outside `[a-zA-Z0-9:]` as `_`, runs of `_`
/// collapsed, and no `_` at either end.
fn clean_unit(word: &str) -> String {
    word.split(|c: char| !is_metric_char(c))
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join("_")
}

/// The Prometheus name of metric `name` of unit `unit` and kind `kind`
/// (without `_bucket`, `_sum`, `_count`), or `None` when nothing of it is
/// left.
pub(crate) fn metric_name(name: &str, unit: &str, kind: Kind) -> Option<String> {
    let mut tokens: Vec<&str> = name
        .split(|c: char| !is_metric_char(c))
        .filter(|t| !t.is_empty())
        .collect();
    if tokens.is_empty() {
        return None;
    }
    let (main, per) = unit_suffixes(unit);
    if !main.is_empty() && !tokens.contains(&main.as_str()) {
        tokens.push(&main);
    }
    if !per.is_empty() && !tokens.contains(&per.as_str()) {
        tokens.push(&per);
    }
    if kind == Kind::MonotonicCounter {
        tokens.retain(|t| *t != "total");
        tokens.push("total");
    }
    if unit == "1" && kind == Kind::Gauge {
        tokens.retain(|t| *t != "ratio");
        tokens.push("ratio");
    }
    let joined = tokens.join("_");
    Some(if joined.starts_with(|c: char| c.is_ascii_digit()) {
        format!("_{joined}")
    } else {
        joined
    })
}

/// The Prometheus name of attribute `key`, or `None` when it is empty or
/// only underscores.
pub(crate) fn label_name(key: &str) -> Option<String> {
    let mut name: String = key
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if name.chars().all(|c| c == '_') {
        return None;
    }
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert_str(0, "key_");
    } else if name.starts_with('_') && !name.starts_with("__") {
        name.insert_str(0, "key");
    }
    Some(name)
}

/// A label value for a float (`le`, `quantile`): Go's
/// `strconv.FormatFloat(v, 'f', -1, 64)`, as Prometheus writes them, and
/// `+Inf`.
pub(crate) fn float_label(v: f64) -> String {
    if v == f64::INFINITY {
        "+Inf".to_string()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guarantees: metric names follow Prometheus' OTLP translator,
    /// suffixes and all (cases from otlptranslator's tests).
    #[test]
    fn metric_names_as_prometheus_makes_them() {
        let cases = [
            (
                "system.filesystem.usage",
                "By",
                Kind::Gauge,
                "system_filesystem_usage_bytes",
            ),
            (
                "http.server.duration",
                "ms",
                Kind::Histogram,
                "http_server_duration_milliseconds",
            ),
            (
                "http.server.request.duration",
                "s",
                Kind::Histogram,
                "http_server_request_duration_seconds",
            ),
            (
                "requests",
                "{request}",
                Kind::MonotonicCounter,
                "requests_total",
            ),
            (
                "requests_total",
                "",
                Kind::MonotonicCounter,
                "requests_total",
            ),
            (
                "system.io",
                "By",
                Kind::MonotonicCounter,
                "system_io_bytes_total",
            ),
            (
                "network.transmit",
                "By/s",
                Kind::Gauge,
                "network_transmit_bytes_per_second",
            ),
            (
                "throughput",
                "{packets}/s",
                Kind::Gauge,
                "throughput_per_second",
            ),
            ("cpu.utilization", "1", Kind::Gauge, "cpu_utilization_ratio"),
            (
                "cpu.utilization",
                "1",
                Kind::NonMonotonicCounter,
                "cpu_utilization",
            ),
            ("queue.size", "", Kind::NonMonotonicCounter, "queue_size"),
            ("latency_seconds", "s", Kind::Summary, "latency_seconds"),
            ("temp", "Cel", Kind::Gauge, "temp_celsius"),
            ("odd__name--here", "", Kind::Gauge, "odd_name_here"),
            (
                "job:http_requests:rate5m",
                "",
                Kind::Gauge,
                "job:http_requests:rate5m",
            ),
            ("ALERTS", "", Kind::Gauge, "ALERTS"),
            ("2xx.count", "", Kind::Gauge, "_2xx_count"),
            ("disk", "custom unit", Kind::Gauge, "disk_custom_unit"),
        ];
        for (name, unit, kind, want) in cases {
            assert_eq!(
                metric_name(name, unit, kind).as_deref(),
                Some(want),
                "{name} [{unit}] {kind:?}"
            );
        }
        assert_eq!(metric_name("...", "s", Kind::Gauge), None);
    }

    /// Guarantees: label names keep `[a-zA-Z0-9_]`, get `key_` before a
    /// digit and `key` before a single `_`, and keep Prometheus' `__`.
    #[test]
    fn label_names_as_prometheus_makes_them() {
        let cases = [
            ("http.method", "http_method"),
            ("k8s.pod.name", "k8s_pod_name"),
            ("0xdead", "key_0xdead"),
            ("_private", "key_private"),
            ("__reserved__", "__reserved__"),
            ("a/b c", "a_b_c"),
            ("émoji", "key_moji"),
        ];
        for (key, want) in cases {
            assert_eq!(label_name(key).as_deref(), Some(want), "{key}");
        }
        assert_eq!(label_name(""), None);
        assert_eq!(label_name("..."), None);
    }

    /// Guarantees: `le` and `quantile` values read as Prometheus writes
    /// them.
    #[test]
    fn float_labels() {
        assert_eq!(float_label(0.5), "0.5");
        assert_eq!(float_label(10.0), "10");
        assert_eq!(float_label(1e21), "1000000000000000000000");
        assert_eq!(float_label(f64::INFINITY), "+Inf");
        assert_eq!(float_label(0.001), "0.001");
    }
}
