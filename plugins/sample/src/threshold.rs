//! OpenTelemetry's consistent probability sampling (OTEP 235, the
//! "TraceState: Probability Sampling" specification): 56-bit
//! [`Randomness`], a 56-bit rejection [`Threshold`], and the decision
//! `keep = randomness >= threshold`.
//!
//! A threshold is `(1 - probability) * 2^56`: the number of values out of
//! 2^56 that are rejected. It is written as up to 14 hex digits with the
//! trailing zeros removed (`th:c` is 0xc0000000000000, probability 0.25;
//! `th:0` is probability 1). Probabilities are turned into thresholds with
//! the specification's rounding to a number of significant hex digits
//! ([`Threshold::from_probability`]).

use std::fmt;

/// 2^56: one more than the largest randomness value.
pub const MAX: u64 = 1 << 56;

/// Hex digits of a full 56-bit value.
const DIGITS: usize = 14;

/// The most significant digits the specification's float algorithm
/// yields (a double has 13 hex digits of fraction; one is kept for
/// rounding).
pub const MAX_PRECISION: u32 = 12;

/// A rejection threshold: values of randomness below it are dropped.
/// `0` keeps everything; the largest is `2^56 - 1` (probability `2^-56`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Threshold(u64);

/// 56 bits of randomness shared by every participant that samples a
/// trace: the trace id's last 7 bytes, or the `rv` of its tracestate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Randomness(u64);

/// A `th` or `rv` value that is not what the specification allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// `th:` with no digit, or more than 14.
    #[error("`th:{0}` must have 1 to 14 hex digits")]
    ThresholdLength(String),
    /// `rv:` with other than 14 digits.
    #[error("`rv:{0}` must have exactly 14 hex digits")]
    RandomnessLength(String),
    /// A character that is not a lowercase hex digit.
    #[error("`{0}` is not lowercase hex")]
    NotHex(String),
}

fn hex(text: &str) -> Result<u64, ParseError> {
    if !text
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(ParseError::NotHex(text.to_string()));
    }
    u64::from_str_radix(text, 16).map_err(|_| ParseError::NotHex(text.to_string()))
}

impl Threshold {
    /// Keeps everything (`th:0`).
    pub const ALWAYS: Threshold = Threshold(0);

    /// The threshold of a 56-bit value; `None` at or above `2^56`.
    pub fn new(value: u64) -> Option<Threshold> {
        (value < MAX).then_some(Threshold(value))
    }

    /// The 56-bit value.
    pub fn value(self) -> u64 {
        self.0
    }

    /// Parses a `th` value: 1 to 14 lowercase hex digits, the missing
    /// trailing digits being zeros (`c` is `c0000000000000`).
    pub fn parse(text: &str) -> Result<Threshold, ParseError> {
        if text.is_empty() || text.len() > DIGITS {
            return Err(ParseError::ThresholdLength(text.to_string()));
        }
        let value = hex(text)? << (4 * (DIGITS - text.len()));
        Ok(Threshold(value))
    }

    /// The probability of keeping: `(2^56 - threshold) / 2^56`.
    pub fn probability(self) -> f64 {
        (MAX - self.0) as f64 / MAX as f64
    }

    /// Whether an item with `randomness` is kept.
    #[inline]
    pub fn keeps(self, randomness: Randomness) -> bool {
        randomness.0 >= self.0
    }

    /// The threshold of `probability` rounded to `precision` significant
    /// hex digits, as the specification's reference algorithm computes
    /// it: the precision grows by one digit per four binary orders of
    /// magnitude below 1/2 (so that 0.001 keeps 4 digits after its
    /// leading `ff`), capped at [`MAX_PRECISION`]; the rejection
    /// probability is rounded half up at the last digit. `None` when the
    /// probability is not in `[2^-56, 1]`.
    pub fn from_probability(probability: f64, precision: u32) -> Option<Threshold> {
        if !(probability >= 1.0 / MAX as f64 && probability <= 1.0) {
            return None;
        }
        if probability == 1.0 {
            return Some(Threshold::ALWAYS);
        }
        let exponent = frexp_exponent(probability);
        // Python's `exp // -4` is a floor division.
        let extra = (-f64::from(exponent) / 4.0).floor() as i64;
        let precision = (i64::from(precision) + extra).clamp(1, i64::from(MAX_PRECISION)) as u32;
        // 1 + rejection probability, in [1, 2), plus half the last digit.
        let reject = (2.0 - probability) + 0.5 * 2f64.powi(-4 * precision as i32);
        let digits = if reject >= 2.0 {
            (1u64 << 52) - 1
        } else {
            reject.to_bits() & ((1u64 << 52) - 1)
        };
        // 13 hex digits of fraction; keep `precision` of them.
        let kept = digits >> (4 * (13 - precision));
        Threshold::new(kept << (4 * (DIGITS as u32 - precision)))
    }

    /// The threshold of a probability that is `self`'s times `factor`
    /// (sampling again at `factor` what was sampled at `self`), rounded to
    /// `precision`; `None` when it falls below `2^-56`.
    pub fn times(self, factor: f64, precision: u32) -> Option<Threshold> {
        Threshold::from_probability(self.probability() * factor, precision)
    }
}

/// The binary exponent of `x` as `frexp` gives it: `x = m * 2^e` with
/// `m` in `[0.5, 1)`. For normal positive doubles only.
fn frexp_exponent(x: f64) -> i32 {
    let biased = ((x.to_bits() >> 52) & 0x7ff) as i32;
    biased - 1022
}

impl fmt::Display for Threshold {
    /// The `th` value: 14 hex digits without the trailing zeros; `0` for
    /// [`Threshold::ALWAYS`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0");
        }
        let full = format!("{:014x}", self.0);
        f.write_str(full.trim_end_matches('0'))
    }
}

impl Randomness {
    /// The randomness of a 56-bit value; `None` at or above `2^56`.
    pub fn new(value: u64) -> Option<Randomness> {
        (value < MAX).then_some(Randomness(value))
    }

    /// The 56-bit value.
    pub fn value(self) -> u64 {
        self.0
    }

    /// Parses an `rv` value: exactly 14 lowercase hex digits.
    pub fn parse(text: &str) -> Result<Randomness, ParseError> {
        if text.len() != DIGITS {
            return Err(ParseError::RandomnessLength(text.to_string()));
        }
        Ok(Randomness(hex(text)?))
    }

    /// The randomness of a trace id given as 32 hex digits (as Weir's
    /// `trace_id` column reads): its last 7 bytes, the W3C Trace Context
    /// Level 2 random part. `None` for anything else, and for the all-zero
    /// (invalid) trace id.
    pub fn from_trace_id(hex_id: &str) -> Option<Randomness> {
        if hex_id.len() != 32 || !hex_id.is_ascii() {
            return None;
        }
        let id = u128::from_str_radix(hex_id, 16).ok()?;
        (id != 0).then_some(Randomness((id as u64) & (MAX - 1)))
    }

    /// The randomness of a trace id as a number.
    pub fn from_trace_id_bits(id: u128) -> Randomness {
        Randomness((id as u64) & (MAX - 1))
    }

    /// 56 bits of a stable hash of `bytes`, for records with no trace id
    /// (the low 56 bits of a 64-bit FNV-1a hash passed through MurmurHash3's
    /// finaliser, so that short, similar values spread evenly). The same in
    /// every build and on every platform.
    pub fn from_hash(bytes: &[u8]) -> Randomness {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^= h >> 33;
        Randomness(h & (MAX - 1))
    }
}

impl fmt::Display for Randomness {
    /// The `rv` value: 14 hex digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:014x}", self.0)
    }
}
