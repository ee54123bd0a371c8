//! The specification's own numbers: thresholds of probabilities at 3, 4
//! and 5 digits of precision (the table of "Converting floating-point
//! probability to threshold value"), the `th` text form, and the keep
//! decision.

use crate::threshold::{MAX, Randomness, Threshold};
use crate::tracestate;

/// Guarantees: every row of the specification's table of 1-in-N
/// probabilities comes out as the specification prints it, at precision
/// 3, 4 and 5 (so 1/3 is `aaab` at the default 4, 0.01 `fd70a`).
#[test]
fn thresholds_match_the_specification_table() {
    let table: [(f64, [&str; 3]); 13] = [
        (1.0, ["0", "0", "0"]),
        (0.5, ["8", "8", "8"]),
        (1.0 / 3.0, ["aab", "aaab", "aaaab"]),
        (0.25, ["c", "c", "c"]),
        (0.2, ["ccd", "cccd", "ccccd"]),
        (0.125, ["e", "e", "e"]),
        (0.1, ["e66", "e666", "e6666"]),
        (0.0625, ["f", "f", "f"]),
        (0.01, ["fd71", "fd70a", "fd70a4"]),
        (0.001, ["ffbe7", "ffbe77", "ffbe76d"]),
        (0.0001, ["fff972", "fff9724", "fff97247"]),
        (0.00001, ["ffff584", "ffff583a", "ffff583a5"]),
        (0.000001, ["ffffef4", "ffffef39", "ffffef391"]),
    ];
    for (p, expected) in table {
        for (precision, th) in [3, 4, 5].into_iter().zip(expected) {
            let got = Threshold::from_probability(p, precision)
                .unwrap_or_else(|| panic!("{p} has a threshold"));
            assert_eq!(
                got.to_string(),
                th,
                "probability {p}, precision {precision}"
            );
        }
    }
}

/// Guarantees: the examples, 0.25 -> `th:c`, 0.5 -> `th:8`,
/// 1/3 -> `th:aaab` at the default precision; the spec's 1 % example at
/// full value (`fd70a4` is 0xfd70a400000000); probabilities outside
/// `[2^-56, 1]` have no threshold.
#[test]
fn probabilities_encode_with_trailing_zeros_removed() {
    let th = |p: f64| Threshold::from_probability(p, 4).map(|t| t.to_string());
    assert_eq!(th(0.25).as_deref(), Some("c"));
    assert_eq!(th(0.5).as_deref(), Some("8"));
    assert_eq!(th(1.0 / 3.0).as_deref(), Some("aaab"));
    assert_eq!(th(1.0).as_deref(), Some("0"));
    let one_percent = Threshold::from_probability(0.01, 5).map(Threshold::value);
    assert_eq!(one_percent, Some(0xfd70a400000000));
    assert_eq!(Threshold::from_probability(0.0, 4), None);
    assert_eq!(Threshold::from_probability(1.5, 4), None);
    assert_eq!(Threshold::from_probability(f64::NAN, 4), None);
    assert!(Threshold::from_probability(1.0 / MAX as f64, 4).is_some());
}

/// Guarantees: `th` values decode with the missing digits as trailing
/// zeros and encode back to the same text; malformed ones are refused.
#[test]
fn th_values_round_trip_and_bad_ones_are_refused() {
    for text in [
        "0",
        "8",
        "c",
        "aaab",
        "fd70a4",
        "ffffffffffffff",
        "00000000000001",
    ] {
        let th = Threshold::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let back = th.to_string();
        assert_eq!(Threshold::parse(&back), Ok(th), "{text} -> {back}");
    }
    assert_eq!(
        Threshold::parse("c").map(Threshold::value),
        Ok(0xc0000000000000)
    );
    assert_eq!(
        Threshold::parse("00000000000001").map(|t| t.to_string()),
        Ok("00000000000001".to_string())
    );
    for bad in ["", "fffffffffffffff", "C", "x", "-1", "+8"] {
        assert!(Threshold::parse(bad).is_err(), "`{bad}` is refused");
    }
    assert!(Randomness::parse("9b8233f7e3a151").is_ok());
    for bad in [
        "9b8233f7e3a15",
        "9b8233f7e3a1511",
        "9B8233F7E3A151",
        "zz8233f7e3a151",
    ] {
        assert!(Randomness::parse(bad).is_err(), "rv `{bad}` is refused");
    }
}

/// Guarantees: the keep rule is `randomness >= threshold`, exactly at
/// the boundary; the randomness of a trace id is its last 7 bytes; the
/// Collector README's example (rv 9b8233f7e3a151 passes 50 %) holds.
#[test]
fn keep_when_randomness_reaches_the_threshold() {
    let half = Threshold::parse("8").unwrap_or(Threshold::ALWAYS);
    let r = |v: u64| Randomness::new(v).unwrap_or_else(|| panic!("{v:x} is 56-bit"));
    assert!(half.keeps(r(0x80000000000000)));
    assert!(!half.keeps(r(0x7fffffffffffff)));
    assert!(Threshold::ALWAYS.keeps(r(0)));
    let rv = Randomness::parse("9b8233f7e3a151").unwrap_or_else(|e| panic!("{e}"));
    assert!(half.keeps(rv));
    assert!(!Threshold::parse("c").unwrap_or(Threshold::ALWAYS).keeps(rv));
    // 4bf92f3577b34da6a3ce929d0e0e4736: the last 7 bytes are ce929d0e0e4736.
    assert_eq!(
        Randomness::from_trace_id("4bf92f3577b34da6a3ce929d0e0e4736"),
        Some(r(0xce929d0e0e4736))
    );
    assert_eq!(
        Randomness::from_trace_id("00000000000000000000000000000000"),
        None
    );
    assert_eq!(Randomness::from_trace_id("4bf92f35"), None);
}

/// Guarantees: the `ot` entry is read among other vendors' entries with
/// spaces; rewriting `th` keeps `rv`, other `ot` sub-keys and other
/// entries, and moves `ot` to the front.
#[test]
fn tracestate_th_is_read_and_rewritten_in_place() {
    let parsed = tracestate::parse("vendor=x, ot=rv:9b8233f7e3a151;th:c;zz:1 ,other=y")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(parsed.threshold, Threshold::parse("c").ok());
    assert_eq!(parsed.randomness, Randomness::parse("9b8233f7e3a151").ok());
    let th = Threshold::parse("e").unwrap_or(Threshold::ALWAYS);
    assert_eq!(
        tracestate::with_threshold(
            Some("vendor=x, ot=rv:9b8233f7e3a151;th:c;zz:1 ,other=y"),
            th
        ),
        "ot=th:e;rv:9b8233f7e3a151;zz:1,vendor=x,other=y"
    );
    assert_eq!(tracestate::with_threshold(None, th), "ot=th:e");
    assert_eq!(tracestate::with_threshold(Some("a=1"), th), "ot=th:e,a=1");
    assert!(tracestate::parse("ot=th:xyz").is_err());
    assert_eq!(tracestate::parse("a=1").map(|o| o.threshold), Ok(None));
}
