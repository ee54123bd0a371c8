//! What a user writes for one lookup table in `lookups = { NAME = ... }`:
//! a file name alone (`"hosts.json"`: a JSON object, exact match), or a
//! table `{ file = "teams.csv", key = "service", match = "exact" }`.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

/// One lookup table of a `wasm` processor: where its rows come from and
/// how a key finds its row.
///
/// ```toml
/// lookups = { hosts = "hosts.json",
///             teams = { file = "teams.csv", key = "service" },
///             routes = { file = "routes.json", match = "prefix" },
///             networks = { file = "networks.csv", key = "cidr", match = "cidr" } }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct LookupFile {
    /// The file: CSV (a header row, then one row per key) or JSON (one
    /// object of key -> value, or an array of objects). Required. A
    /// relative path is taken from the directory Weir runs in. Checked
    /// about once a second; a changed file is loaded again.
    #[serde(deserialize_with = "weir_config::values::path")]
    pub file: PathBuf,
    /// CSV: the column that holds the keys (default: the first column).
    /// A JSON array of objects: the field that holds each object's key
    /// (required). Not allowed for a JSON object, whose keys are the keys.
    #[serde(default)]
    pub key: Option<String>,
    /// How a key finds its row: `"exact"` (the key as written),
    /// `"prefix"` (the longest key the looked-up text starts with) or
    /// `"cidr"` (keys are networks such as `10.0.0.0/8` or
    /// `2001:db8::/32`, or single addresses; an IP address finds the most
    /// specific network that holds it). Default `"exact"`.
    #[serde(default, rename = "match")]
    pub match_mode: MatchMode,
    /// `"csv"` or `"json"`. Default: `"csv"` for a file whose name ends
    /// in `.csv`, `"json"` for any other.
    #[serde(default)]
    pub format: Option<Format>,
}

/// How a looked-up key finds its row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchMode {
    /// The key as written.
    #[default]
    Exact,
    /// The longest key that is a prefix of the looked-up text.
    Prefix,
    /// The most specific network (CIDR) holding the looked-up address.
    Cidr,
}

/// How a lookup file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Comma-separated values with a header row.
    Csv,
    /// A JSON object, or an array of objects.
    Json,
}

impl LookupFile {
    /// A table read from `file` with every default: a JSON object, exact
    /// match (what a plain `NAME = "FILE"` means).
    pub fn new(file: impl Into<PathBuf>) -> Self {
        LookupFile {
            file: file.into(),
            key: None,
            match_mode: MatchMode::Exact,
            format: None,
        }
    }

    /// The file's format: `format`, or CSV for a `.csv` file and JSON
    /// for any other.
    pub fn resolved_format(&self) -> Format {
        self.format.unwrap_or_else(|| format_of(&self.file))
    }

    /// What is wrong with this table's settings, if anything (before the
    /// file is read).
    pub fn problem(&self) -> Option<String> {
        if self.file.as_os_str().is_empty() {
            return Some("needs a file name".to_string());
        }
        if self.key.as_deref() == Some("") {
            return Some("`key` cannot be empty; name the key column or field".to_string());
        }
        None
    }
}

fn format_of(path: &Path) -> Format {
    match path.extension().and_then(|e| e.to_str()) {
        Some(ext) if ext.eq_ignore_ascii_case("csv") => Format::Csv,
        _ => Format::Json,
    }
}

/// `NAME = "FILE"` or `NAME = { file = ..., ... }`.
pub(crate) fn lookup_file<'de, D: Deserializer<'de>>(d: D) -> Result<LookupFile, D::Error> {
    struct FileOrTable;
    impl<'de> Visitor<'de> for FileOrTable {
        type Value = LookupFile;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(
                "a file name, or a table such as { file = \"teams.csv\", key = \"service\", \
                 match = \"exact\" }",
            )
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<LookupFile, E> {
            Ok(LookupFile::new(v))
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<LookupFile, A::Error> {
            LookupFile::deserialize(de::value::MapAccessDeserializer::new(map))
        }
    }
    d.deserialize_any(FileOrTable)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[derive(Debug, Deserialize)]
    struct Holder {
        #[serde(deserialize_with = "lookups_of")]
        lookups: BTreeMap<String, LookupFile>,
    }

    fn lookups_of<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, LookupFile>, D::Error> {
        #[derive(Deserialize)]
        struct One(#[serde(deserialize_with = "lookup_file")] LookupFile);
        let map = BTreeMap::<String, One>::deserialize(d)?;
        Ok(map.into_iter().map(|(k, v)| (k, v.0)).collect())
    }

    fn parse(toml_text: &str) -> Result<BTreeMap<String, LookupFile>, String> {
        toml::from_str::<Holder>(toml_text)
            .map(|h| h.lookups)
            .map_err(|e| e.to_string())
    }

    /// Guarantees: a plain file name keeps meaning a JSON object with
    /// exact match; a table gives file, key, match and format, and the
    /// format defaults to the extension's.
    #[test]
    fn plain_names_and_tables() {
        let l = parse(
            r#"lookups = { hosts = "hosts.json", teams = { file = "teams.csv", key = "service", match = "prefix" }, nets = { file = "nets.txt", format = "csv", match = "cidr" } }"#,
        )
        .expect("parses");
        assert_eq!(l["hosts"], LookupFile::new("hosts.json"));
        assert_eq!(l["hosts"].resolved_format(), Format::Json);
        assert_eq!(l["teams"].key.as_deref(), Some("service"));
        assert_eq!(l["teams"].match_mode, MatchMode::Prefix);
        assert_eq!(l["teams"].resolved_format(), Format::Csv);
        assert_eq!(l["nets"].resolved_format(), Format::Csv);
        assert_eq!(l["nets"].match_mode, MatchMode::Cidr);
        assert_eq!(l["nets"].problem(), None);
    }

    /// Guarantees: an unknown key, an unknown match mode, a missing or
    /// empty file and an empty key are refused, saying what to write; a
    /// plain name that does not end in `.csv` is JSON, as it always was.
    #[test]
    fn mistakes_are_refused() {
        let e =
            parse(r#"lookups = { t = { file = "t.csv", column = "x" } }"#).expect_err("refused");
        assert!(e.contains("unknown field `column`"), "{e}");
        let e =
            parse(r#"lookups = { t = { file = "t.csv", match = "regex" } }"#).expect_err("refused");
        assert!(
            e.contains("expected one of `exact`, `prefix`, `cidr`"),
            "{e}"
        );
        let e = parse(r#"lookups = { t = { key = "x" } }"#).expect_err("refused");
        assert!(e.contains("missing field `file`"), "{e}");
        let e = parse(r#"lookups = { t = 3 }"#).expect_err("refused");
        assert!(e.contains("a file name, or a table"), "{e}");
        let l = parse(r#"lookups = { t = "", u = { file = "u.csv", key = "" }, v = "hosts" }"#)
            .expect("parses");
        assert_eq!(l["t"].problem().as_deref(), Some("needs a file name"));
        assert!(
            l["u"]
                .problem()
                .expect("a problem")
                .contains("`key` cannot be empty")
        );
        assert_eq!(l["v"].resolved_format(), Format::Json);
    }
}
