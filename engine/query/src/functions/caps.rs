//! Caps on DataFusion's functions that build values outside its memory
//! accounting: `repeat`, `lpad` / `rpad`, `array_repeat` and the
//! array-making `range` / `generate_series`. Each would allocate whatever
//! it is asked for — `repeat('x', 1e12)` is a terabyte — and an allocation
//! that fails aborts the whole process, every pipeline with it. Wrapped,
//! each checks the size it is about to build and fails the query instead:
//! one value may hold at most [`MAX_VALUE_BYTES`] (or [`MAX_ELEMENTS`]),
//! one call at most [`MAX_CALL_BYTES`] over all its rows.

use datafusion::execution::FunctionRegistry;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, FieldRef, Int64Type};
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};
use datafusion::prelude::SessionContext;

/// The most bytes one value may have.
pub const MAX_VALUE_BYTES: i64 = 64 << 20;
/// The most elements one array value may have.
pub const MAX_ELEMENTS: i64 = 10_000_000;
/// The most bytes one call may build over all its rows.
pub const MAX_CALL_BYTES: i64 = 1 << 30;

/// What a wrapped function checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Rule {
    /// `repeat(text, n)`: `length(text) * n` bytes.
    Repeat,
    /// `lpad` / `rpad(text, n, ...)`: `n` characters, up to 4 bytes each.
    Pad,
    /// `array_repeat(element, n)`: `n` elements.
    ArrayRepeat,
    /// `range` / `generate_series(start, stop[, step])`, integers: the
    /// number of steps.
    Range,
}

/// The functions capped, by name.
const CAPPED: &[(&str, Rule)] = &[
    ("repeat", Rule::Repeat),
    ("lpad", Rule::Pad),
    ("rpad", Rule::Pad),
    ("array_repeat", Rule::ArrayRepeat),
    ("range", Rule::Range),
    ("generate_series", Rule::Range),
];

/// Replaces each capped function of `ctx` with its checked form.
pub fn register(ctx: &SessionContext) {
    for (name, rule) in CAPPED {
        if let Ok(inner) = ctx.udf(name) {
            ctx.register_udf(ScalarUDF::new_from_impl(Capped {
                inner: inner.as_ref().clone(),
                rule: *rule,
            }));
        }
    }
}

/// A function with its cap.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Capped {
    inner: ScalarUDF,
    rule: Rule,
}

impl ScalarUDFImpl for Capped {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        check(self.inner.name(), self.rule, &args.args, args.number_rows)?;
        self.inner.invoke_with_args(args)
    }
}

/// `arg` as 64-bit integers (nulls as 0), one per row.
fn integers(arg: &ColumnarValue, rows: usize) -> Result<Option<Vec<i64>>> {
    let array = arg.to_array(rows)?;
    if !array.data_type().is_integer() {
        return Ok(None);
    }
    let array = arrow::compute::cast(&array, &DataType::Int64)?;
    let values = array.as_primitive::<Int64Type>();
    Ok(Some(
        (0..values.len())
            .map(|i| {
                if values.is_null(i) {
                    0
                } else {
                    values.value(i)
                }
            })
            .collect(),
    ))
}

/// The byte length of each string of `arg` (nulls as 0).
fn lengths(arg: &ColumnarValue, rows: usize) -> Result<Vec<i64>> {
    let array: ArrayRef = arg.to_array(rows)?;
    let array = arrow::compute::cast(&array, &DataType::LargeUtf8)?;
    let strings = array.as_string::<i64>();
    Ok((0..strings.len())
        .map(|i| strings.value_length(i))
        .collect())
}

fn check(name: &str, rule: Rule, args: &[ColumnarValue], rows: usize) -> Result<()> {
    let rows = rows.max(1);
    // Per row: (bytes of the value, elements of the value).
    let sizes: Vec<(i64, i64)> = match rule {
        Rule::Repeat => {
            let (Some(text), Some(n)) = (args.first(), args.get(1)) else {
                return Ok(());
            };
            let Some(counts) = integers(n, rows)? else {
                return Ok(());
            };
            lengths(text, rows)?
                .into_iter()
                .zip(counts)
                .map(|(len, n)| (len.saturating_mul(n.max(0)), 0))
                .collect()
        }
        Rule::Pad => {
            let Some(Some(targets)) = args.get(1).map(|n| integers(n, rows)).transpose()? else {
                return Ok(());
            };
            targets
                .into_iter()
                .map(|n| (n.max(0).saturating_mul(4), 0))
                .collect()
        }
        Rule::ArrayRepeat => {
            let Some(Some(counts)) = args.get(1).map(|n| integers(n, rows)).transpose()? else {
                return Ok(());
            };
            counts
                .into_iter()
                .map(|n| (n.max(0).saturating_mul(8), n.max(0)))
                .collect()
        }
        Rule::Range => {
            let mut ints = Vec::with_capacity(args.len());
            for arg in args {
                match integers(arg, rows)? {
                    Some(values) => ints.push(values),
                    // Dates and timestamps step by intervals: not checked.
                    None => return Ok(()),
                }
            }
            let (starts, stops) = match ints.len() {
                1 => (vec![0; rows], ints[0].clone()),
                2 | 3 => (ints[0].clone(), ints[1].clone()),
                _ => return Ok(()),
            };
            (0..rows)
                .map(|i| {
                    let step = ints.get(2).map_or(1, |s| s[i]).unsigned_abs().max(1);
                    let span = i128::from(stops[i]) - i128::from(starts[i]);
                    let steps = span.unsigned_abs() / u128::from(step) + 1;
                    let steps = i64::try_from(steps).unwrap_or(i64::MAX);
                    (steps.saturating_mul(8), steps)
                })
                .collect()
        }
    };
    let mut total: i64 = 0;
    for (bytes, elements) in sizes {
        if bytes > MAX_VALUE_BYTES {
            return exec_err!(
                "{name} would build a value of {bytes} bytes, over Weir's cap of {} MiB per \
                 value: ask for less",
                MAX_VALUE_BYTES >> 20
            );
        }
        if elements > MAX_ELEMENTS {
            return exec_err!(
                "{name} would build an array of {elements} elements, over Weir's cap of \
                 {MAX_ELEMENTS} per value: ask for fewer"
            );
        }
        total = total.saturating_add(bytes);
    }
    if total > MAX_CALL_BYTES {
        return exec_err!(
            "{name} would build {total} bytes over one batch of rows, over Weir's cap of {} \
             MiB per call: ask for less",
            MAX_CALL_BYTES >> 20
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn run(ctx: &SessionContext, sql: &str) -> Result<usize> {
        let batches = ctx.sql(sql).await?.collect().await?;
        Ok(batches.iter().map(|b| b.num_rows()).sum())
    }

    /// Each function asked for a terabyte fails the query with the cap's
    /// message instead of aborting the process; reasonable sizes still
    /// work, constant or per row.
    #[tokio::test]
    async fn allocation_bombs_are_refused() {
        let ctx = SessionContext::new();
        register(&ctx);
        for bomb in [
            "SELECT repeat('x', 1000000000000)",
            "SELECT repeat(s, 100000000) FROM (VALUES ('abc'), ('de')) AS t(s)",
            "SELECT lpad('x', 2000000000)",
            "SELECT rpad('x', 2000000000, 'yz')",
            "SELECT array_repeat(1, 1000000000)",
            "SELECT range(1, 10000000000)",
            "SELECT generate_series(1, 10000000000, 2)",
            "SELECT repeat(s, 5000000) FROM \
             (SELECT '0123456789' || CAST(x AS VARCHAR) AS s FROM generate_series(10, 40) AS t(x))",
        ] {
            let error = run(&ctx, bomb).await.expect_err(bomb);
            assert!(error.to_string().contains("Weir's cap"), "{bomb}: {error}");
        }
        for fine in [
            "SELECT repeat('ab', 1000)",
            "SELECT lpad('7', 3, '0')",
            "SELECT array_repeat('a', 3)",
            "SELECT range(1, 100, 3)",
            "SELECT generate_series(1, 10)",
            "SELECT range(DATE '2025-01-01', DATE '2025-02-01', INTERVAL '1 day')",
        ] {
            assert_eq!(run(&ctx, fine).await.expect(fine), 1, "{fine}");
        }
    }
}
