//! Golden SQL: each `tests/golden/cases/NAME.sql` and each example query of
//! `docs/sql.md` runs through `SqlService::execute` against the realistic
//! fixtures, and its pretty-printed result (or its error) must equal the
//! stored output: `tests/golden/cases/NAME.out`, `tests/golden/docs/NN.out`.
//! A case is a file; `WEIR_BLESS=1 cargo test -p weir-query --test it golden`
//! rewrites the outputs (review the diff).

use std::path::{Path, PathBuf};

use arrow::record_batch::RecordBatch;
use futures::TryStreamExt;
use weir_query::{QueryError, SqlService};

use crate::common;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// The query's result as a table, or its error as `ERROR <kind>: <message>`.
async fn render(service: &SqlService, sql: &str) -> String {
    let result: Result<Vec<RecordBatch>, QueryError> = async {
        let stream = service.execute(sql).await?;
        stream
            .try_collect::<Vec<_>>()
            .await
            .map_err(|e| QueryError::from_datafusion(&e, service.memory_limit()))
    }
    .await;
    match result {
        Ok(batches) => {
            let schema = match batches.first() {
                Some(batch) => batch.schema(),
                None => return "(no rows)\n".to_string(),
            };
            let table = arrow::util::pretty::pretty_format_batches_with_schema(schema, &batches)
                .expect("results print");
            format!("{table}\n")
        }
        Err(error) => format!("ERROR {}: {error}\n", error.kind()),
    }
}

/// Compares (or, with WEIR_BLESS=1, writes) one golden output; returns a
/// description of the mismatch.
fn check(path: &Path, sql: &str, actual: &str) -> Option<String> {
    if std::env::var_os("WEIR_BLESS").is_some() {
        std::fs::write(path, actual).expect("write golden output");
        return None;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_default();
    (expected != actual).then(|| {
        format!(
            "--- {}\n{sql}\n--- expected\n{expected}--- actual\n{actual}",
            path.display()
        )
    })
}

/// The ```sql blocks of the "Example queries" section of docs/sql.md.
fn doc_examples() -> Vec<String> {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/sql.md"))
            .expect("docs/sql.md exists");
    let section = doc
        .split("\n## ")
        .find(|s| s.starts_with("Example queries"))
        .expect("docs/sql.md has an `## Example queries` section");
    let mut examples = Vec::new();
    let mut rest = section;
    while let Some(start) = rest.find("```sql\n") {
        let body = &rest[start + 7..];
        let end = body.find("```").expect("closed code block");
        examples.push(body[..end].trim().to_string());
        rest = &body[end + 3..];
    }
    examples
}

/// Every golden case gives its stored output.
#[tokio::test]
async fn golden_cases() {
    let service = common::service();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(golden_dir().join("cases"))
        .expect("golden cases directory")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 6, "golden cases are missing");
    let mut failures = Vec::new();
    for case in &cases {
        let sql = std::fs::read_to_string(case).expect("read case");
        let actual = render(&service, &sql).await;
        failures.extend(check(&case.with_extension("out"), &sql, &actual));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every example query of docs/sql.md runs and gives its stored output.
#[tokio::test]
async fn documented_examples() {
    let service = common::service();
    let examples = doc_examples();
    assert!(
        examples.len() >= 10,
        "docs/sql.md should show at least 10 examples"
    );
    let mut failures = Vec::new();
    for (i, sql) in examples.iter().enumerate() {
        let actual = render(&service, sql).await;
        assert!(
            !actual.starts_with("ERROR"),
            "example {} fails:\n{sql}\n{actual}",
            i + 1
        );
        let path = golden_dir().join("docs").join(format!("{:02}.out", i + 1));
        failures.extend(check(&path, sql, &actual));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
