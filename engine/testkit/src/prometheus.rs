//! Values read from Prometheus' text exposition format, what `/metrics`
//! serves.
//!
//! ```
//! use weir_testkit::prometheus::value;
//!
//! let text = "# TYPE x counter\nx{a=\"1\"} 4\nx{a=\"2\"} 5\n";
//! assert_eq!(value(text, r#"x{a="2"}"#), Some(5.0));
//! assert_eq!(value(text, "y"), None);
//! ```

/// The value of the sample whose series (name and labels, exactly as
/// written) is `series`, if `text` holds one.
pub fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(series)?;
        // `x 1` is series `x`; `x_total 1` or `x{..} 1` are not.
        if !rest.starts_with(' ') {
            return None;
        }
        rest.split_whitespace().next()?.parse().ok()
    })
}
