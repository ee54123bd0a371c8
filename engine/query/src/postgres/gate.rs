//! Which statements a Postgres client may run: queries (`SELECT`, `WITH`,
//! `VALUES`, `EXPLAIN`, `SHOW TABLES`), and the session statements tools
//! send on connecting (`SET` of a harmless client setting, `SHOW`,
//! `BEGIN` / `COMMIT` / `ROLLBACK`). Everything else is refused with the
//! same error the other endpoints give.

use datafusion::sql::sqlparser::ast::{Set, Statement};

/// What to do with a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A query: run it with the service's limits.
    Query,
    /// A session statement: answered without touching the engine.
    Session,
    /// Refused, with the reason.
    Refused(String),
}

/// Client settings a `SET` may change: they only shape what the client is
/// sent, none of them reaches the engine.
const CLIENT_SETTINGS: &[&str] = &[
    "application_name",
    "client_encoding",
    "client_min_messages",
    "datestyle",
    "extra_float_digits",
    "intervalstyle",
    "search_path",
    "standard_conforming_strings",
    "statement_timeout",
    "time zone",
    "timezone",
    "bytea_output",
    "lc_messages",
    "lc_monetary",
    "lc_numeric",
    "lc_time",
    "idle_in_transaction_session_timeout",
    "lock_timeout",
    "transaction isolation level",
    "default_transaction_isolation",
    "session characteristics",
    "names",
];

/// The verdict on `statement`.
pub(crate) fn judge(statement: &Statement) -> Verdict {
    match statement {
        Statement::Query(_)
        | Statement::Explain { .. }
        | Statement::ShowTables { .. }
        | Statement::ShowColumns { .. } => Verdict::Query,
        Statement::ShowVariable { .. } | Statement::ShowStatus { .. } => Verdict::Session,
        Statement::StartTransaction { .. }
        | Statement::Commit { .. }
        | Statement::Rollback { .. } => Verdict::Session,
        Statement::Set(set) => judge_set(set),
        other => Verdict::Refused(read_only_refusal(&other.to_string(), 2)),
    }
}

fn judge_set(set: &Set) -> Verdict {
    let name = match set {
        Set::SingleAssignment { variable, .. } => variable.to_string(),
        Set::SetTimeZone { .. } => "time zone".to_string(),
        Set::SetNames { .. } | Set::SetNamesDefault { .. } => "names".to_string(),
        Set::SetTransaction { .. } => "transaction isolation level".to_string(),
        Set::SetSessionParam(_) => "session characteristics".to_string(),
        other => other.to_string(),
    };
    let lower = name.to_ascii_lowercase();
    if CLIENT_SETTINGS.contains(&lower.as_str()) {
        Verdict::Session
    } else {
        Verdict::Refused(format!(
            "`SET {name}` is refused: only client settings may be set ({}); the engine's \
             settings are Weir's configuration (`[query]`)",
            CLIENT_SETTINGS.join(", ")
        ))
    }
}

/// The refusal of a statement that is not a query, naming it by its first
/// `words` words rather than echoing it whole.
pub(crate) fn read_only_refusal(sql: &str, words: usize) -> String {
    format!(
        "`{}` is refused: Weir's SQL endpoints are read-only: only queries are allowed",
        sql.split_whitespace()
            .take(words)
            .collect::<Vec<_>>()
            .join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion_pg_catalog::sql::PostgresCompatibilityParser;

    fn verdict(sql: &str) -> Verdict {
        let mut statements = PostgresCompatibilityParser::new()
            .parse(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        judge(&statements.remove(0))
    }

    /// Queries and the session statements tools send pass; writes, DDL,
    /// `COPY` and engine settings are refused.
    #[test]
    fn only_reads_and_client_settings_pass() {
        for sql in [
            "SELECT 1",
            "WITH t AS (SELECT 1) SELECT * FROM t",
            "EXPLAIN SELECT 1",
        ] {
            assert_eq!(verdict(sql), Verdict::Query, "{sql}");
        }
        for sql in [
            "SET application_name = 'psql'",
            "SET extra_float_digits = 3",
            "SET TIME ZONE 'UTC'",
            "SHOW search_path",
            "BEGIN",
            "COMMIT",
        ] {
            assert_eq!(verdict(sql), Verdict::Session, "{sql}");
        }
        for sql in [
            "INSERT INTO spans VALUES (1)",
            "COPY spans TO '/tmp/x.csv'",
            "DROP TABLE spans",
            "SET datafusion.execution.target_partitions = 1",
        ] {
            assert!(
                matches!(verdict(sql), Verdict::Refused(_)),
                "{sql}: {:?}",
                verdict(sql)
            );
        }
    }
}
