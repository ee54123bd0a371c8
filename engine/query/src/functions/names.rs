//! Small conversions: ids as hex, durations as milliseconds, OTLP codes as
//! names.

use std::fmt::Write as _;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, StringArray, StringBuilder};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int64Type, TimeUnit};
use datafusion::common::{Result, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::map_rows;

fn one_argument<'a>(name: &str, arg_types: &'a [DataType]) -> Result<&'a DataType> {
    match arg_types {
        [one] => Ok(one),
        _ => plan_err!(
            "{name} takes one argument, got {}: write {name}(column)",
            arg_types.len()
        ),
    }
}

/// `hex_id(id)`: a binary value (a trace or span id) as lowercase hex text,
/// the form every tracing UI shows.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct HexId {
    signature: Signature,
}

impl HexId {
    pub(super) fn new() -> Self {
        HexId {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for HexId {
    fn name(&self) -> &str {
        "hex_id"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match one_argument(self.name(), arg_types)? {
            t @ (DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
            | DataType::FixedSizeBinary(_)) => Ok(vec![t.clone()]),
            DataType::Null => Ok(vec![DataType::Binary]),
            other => {
                plan_err!("hex_id expects a binary value such as trace_id or span_id, got {other}")
            }
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        map_rows(&args.args, args.number_rows, |arrays| {
            let binary = cast(&arrays[0], &DataType::LargeBinary)?;
            let binary = binary.as_binary::<i64>();
            let mut out = StringBuilder::with_capacity(binary.len(), binary.values().len() * 2);
            let mut text = String::new();
            for value in binary.iter() {
                match value {
                    Some(bytes) => {
                        text.clear();
                        for byte in bytes {
                            // Writing to a String cannot fail.
                            let _ = write!(text, "{byte:02x}");
                        }
                        out.append_value(&text);
                    }
                    None => out.append_null(),
                }
            }
            Ok(Arc::new(out.finish()) as ArrayRef)
        })
    }
}

/// `duration_ms(x)`: a duration as milliseconds (a double). `x` is an
/// integer number of nanoseconds (the `duration_ns` column of `spans`) or a
/// duration value (`end_time - start_time`).
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct DurationMs {
    signature: Signature,
}

impl DurationMs {
    pub(super) fn new() -> Self {
        DurationMs {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for DurationMs {
    fn name(&self) -> &str {
        "duration_ms"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match one_argument(self.name(), arg_types)? {
            t if t.is_integer() => Ok(vec![DataType::Int64]),
            DataType::Null => Ok(vec![DataType::Int64]),
            t @ DataType::Duration(_) => Ok(vec![t.clone()]),
            other => plan_err!(
                "duration_ms expects nanoseconds (an integer such as duration_ns) or a duration \
                 (such as end_time - start_time), got {other}"
            ),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        map_rows(&args.args, args.number_rows, |arrays| {
            let input = &arrays[0];
            let nanos = match input.data_type() {
                DataType::Duration(_) => {
                    let ns = cast(input, &DataType::Duration(TimeUnit::Nanosecond))?;
                    cast(&ns, &DataType::Int64)?
                }
                _ => cast(input, &DataType::Int64)?,
            };
            let millis: Float64Array = nanos
                .as_primitive::<Int64Type>()
                .iter()
                .map(|v| v.map(|ns| ns as f64 / 1e6))
                .collect();
            Ok(Arc::new(millis) as ArrayRef)
        })
    }
}

/// Names for OTLP's integer codes: `severity_name`, `span_kind_name`,
/// `status_name`.
#[derive(Debug)]
pub(super) struct CodeName {
    name: &'static str,
    argument: &'static str,
    names: fn(i64) -> Option<&'static str>,
    signature: Signature,
}

impl CodeName {
    /// `severity_name(severity_number)`: the range of a log severity:
    /// 1–4 `TRACE`, 5–8 `DEBUG`, 9–12 `INFO`, 13–16 `WARN`, 17–20 `ERROR`,
    /// 21–24 `FATAL`, 0 `UNSPECIFIED`; null otherwise.
    pub(super) fn severity() -> Self {
        CodeName::new("severity_name", "severity_number", |n| match n {
            0 => Some("UNSPECIFIED"),
            1..=4 => Some("TRACE"),
            5..=8 => Some("DEBUG"),
            9..=12 => Some("INFO"),
            13..=16 => Some("WARN"),
            17..=20 => Some("ERROR"),
            21..=24 => Some("FATAL"),
            _ => None,
        })
    }

    /// `span_kind_name(kind)`: `unspecified`, `internal`, `server`,
    /// `client`, `producer`, `consumer`; null otherwise.
    pub(super) fn span_kind() -> Self {
        CodeName::new("span_kind_name", "kind", |n| match n {
            0 => Some("unspecified"),
            1 => Some("internal"),
            2 => Some("server"),
            3 => Some("client"),
            4 => Some("producer"),
            5 => Some("consumer"),
            _ => None,
        })
    }

    /// `status_name(status_code)`: `unset`, `ok`, `error`; null otherwise
    /// (and for a span without a status).
    pub(super) fn status() -> Self {
        CodeName::new("status_name", "status_code", |n| match n {
            0 => Some("unset"),
            1 => Some("ok"),
            2 => Some("error"),
            _ => None,
        })
    }

    fn new(
        name: &'static str,
        argument: &'static str,
        names: fn(i64) -> Option<&'static str>,
    ) -> Self {
        CodeName {
            name,
            argument,
            names,
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

// Two instances are the same function when they have the same name.
impl PartialEq for CodeName {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for CodeName {}

impl std::hash::Hash for CodeName {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for CodeName {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match one_argument(self.name, arg_types)? {
            t if t.is_integer() || t.is_null() => Ok(vec![DataType::Int64]),
            other => plan_err!(
                "{} expects an integer code such as the {} column, got {other}",
                self.name,
                self.argument
            ),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        map_rows(&args.args, args.number_rows, |arrays| {
            let codes = cast(&arrays[0], &DataType::Int64)?;
            let names: StringArray = codes
                .as_primitive::<Int64Type>()
                .iter()
                .map(|code| code.and_then(self.names))
                .collect();
            Ok(Arc::new(names) as ArrayRef)
        })
    }
}
