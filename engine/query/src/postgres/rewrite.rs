//! Rewrites of what clients send, before it is parsed.
//!
//! Grafana's PostgreSQL data source limits its table list to the schemas
//! of the session's `search_path` with a subquery that splits
//! `current_setting('search_path')` and expands `"$user"`. DataFusion
//! cannot plan that Postgres idiom (a scalar function in `FROM`, `user`),
//! and `datafusion-pg-catalog` answers it with no schema at all, which
//! leaves Grafana with no tables. Weir's search path is always
//! `"$user", public` and no schema is named after a user, so the subquery
//! is exactly `SELECT 'public'`, which is what it is replaced with.

use std::borrow::Cow;
use std::sync::LazyLock;

use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

/// Grafana's search-path subquery, as `buildSchemaConstraint()` writes it.
const SEARCH_PATH_SUBQUERY: &str = r#"SELECT
            CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
          FROM
            generate_series(
              array_lower(string_to_array(current_setting('search_path'),','),1),
              array_upper(string_to_array(current_setting('search_path'),','),1)
            ) as i,
            string_to_array(current_setting('search_path'),',') s"#;

/// What the subquery evaluates to in Weir.
const SEARCH_PATH_SCHEMAS: &str = "SELECT 'public'";

static PATTERN: LazyLock<Vec<Token>> = LazyLock::new(|| {
    tokens(SEARCH_PATH_SUBQUERY)
        .unwrap_or_default()
        .into_iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .collect()
});

fn tokens(sql: &str) -> Option<Vec<Token>> {
    Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize().ok()
}

/// `sql` with Grafana's search-path subquery replaced (every occurrence).
pub(crate) fn rewrite(sql: &str) -> Cow<'_, str> {
    if !sql.contains("current_setting('search_path')") || PATTERN.is_empty() {
        return Cow::Borrowed(sql);
    }
    let Some(tokens) = tokens(sql) else {
        return Cow::Borrowed(sql);
    };
    let mut out = String::with_capacity(sql.len());
    let mut i = 0;
    let mut changed = false;
    while i < tokens.len() {
        if let Some(end) = match_at(&tokens, i) {
            out.push_str(SEARCH_PATH_SCHEMAS);
            i = end;
            changed = true;
        } else {
            out.push_str(&tokens[i].to_string());
            i += 1;
        }
    }
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(sql)
    }
}

/// Where the pattern ends if it starts at `start`, whitespace aside.
fn match_at(tokens: &[Token], start: usize) -> Option<usize> {
    let mut at = start;
    for expected in PATTERN.iter() {
        while matches!(tokens.get(at), Some(Token::Whitespace(_))) {
            at += 1;
        }
        if !same(tokens.get(at)?, expected) {
            return None;
        }
        at += 1;
    }
    Some(at)
}

/// Tokens equal up to the case of keywords and names.
fn same(a: &Token, b: &Token) -> bool {
    match (a, b) {
        (Token::Word(a), Token::Word(b)) => {
            a.value.eq_ignore_ascii_case(&b.value) && a.quote_style == b.quote_style
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Grafana's table list keeps its shape with the subquery replaced,
    /// whatever its whitespace; other SQL is untouched.
    #[test]
    fn grafana_search_path_becomes_public() {
        let grafana = format!(
            "select quote_ident(table_name) from information_schema.tables where \
             quote_ident(table_schema) IN ({})",
            SEARCH_PATH_SUBQUERY.replace('\n', " ")
        );
        let rewritten = rewrite(&grafana);
        assert!(
            rewritten.ends_with("quote_ident(table_schema) IN (SELECT 'public')"),
            "{rewritten}"
        );
        let plain = "SELECT current_setting('search_path')";
        assert!(matches!(rewrite(plain), Cow::Borrowed(_)));
    }
}
