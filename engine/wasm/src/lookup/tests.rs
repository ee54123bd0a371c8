//! The tables as the host serves them: loaded from files at start, looked
//! up in each mode, reloaded when a file changes.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use super::*;

/// How often the tests' tables check their files.
const QUICK: Duration = Duration::from_millis(10);

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("the test writes its file");
}

fn files(entries: &[(&str, LookupFile)]) -> BTreeMap<String, LookupFile> {
    entries
        .iter()
        .map(|(n, f)| (n.to_string(), f.clone()))
        .collect()
}

fn table(file: &Path, key: Option<&str>, mode: MatchMode) -> LookupFile {
    LookupFile {
        file: file.to_path_buf(),
        key: key.map(str::to_owned),
        match_mode: mode,
        format: None,
    }
}

fn get(tables: &Tables, table: &str, key: &str) -> Option<String> {
    tables
        .get(table)
        .expect("the table exists")
        .get(key)
        .map(str::to_owned)
}

/// Waits until `done` holds, failing after 10 seconds.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Guarantees: a CSV table and a JSON table (plain file name, and an
/// array of objects) load at start and answer lookups with the row's other
/// columns as one JSON object.
#[test]
fn csv_and_json_tables_load() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let csv = dir.path().join("teams.csv");
    write(
        &csv,
        "team,service,owner\npayments,checkout,ana\nshop,cart,bo\n",
    );
    let object = dir.path().join("hosts.json");
    write(&object, r#"{"web-1": "eu-west", "db-1": {"zone": "b"}}"#);
    let array = dir.path().join("owners.json");
    write(&array, r#"[{"service": "checkout", "owner": "ana"}]"#);
    let tables = Tables::load_checking_every(
        "enrich",
        &files(&[
            ("teams", table(&csv, Some("service"), MatchMode::Exact)),
            ("hosts", LookupFile::new(&object)),
            ("owners", table(&array, Some("service"), MatchMode::Exact)),
        ]),
        QUICK,
    )
    .expect("loads");
    assert_eq!(
        get(&tables, "teams", "checkout").as_deref(),
        Some(r#"{"owner":"ana","team":"payments"}"#)
    );
    assert_eq!(get(&tables, "teams", "payments"), None);
    assert_eq!(get(&tables, "hosts", "web-1").as_deref(), Some("eu-west"));
    assert_eq!(
        get(&tables, "hosts", "db-1").as_deref(),
        Some(r#"{"zone":"b"}"#)
    );
    assert_eq!(
        get(&tables, "owners", "checkout").as_deref(),
        Some(r#"{"owner":"ana"}"#)
    );
    assert!(tables.get("nope").is_none());
}

/// Guarantees: the three match modes work through the loaded tables:
/// exact keys, the longest prefix, the most specific network.
#[test]
fn match_modes() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let routes = dir.path().join("routes.csv");
    write(&routes, "route,api\n/api/,v1\n/api/v2/,v2\n");
    let nets = dir.path().join("nets.csv");
    write(
        &nets,
        "cidr,zone\n10.0.0.0/8,corp\n10.1.0.0/16,eu\n2001:db8::/32,doc\n",
    );
    let tables = Tables::load_checking_every(
        "enrich",
        &files(&[
            ("exact", table(&routes, None, MatchMode::Exact)),
            ("routes", table(&routes, None, MatchMode::Prefix)),
            ("nets", table(&nets, None, MatchMode::Cidr)),
        ]),
        QUICK,
    )
    .expect("loads");
    assert_eq!(get(&tables, "exact", "/api/v2/cart"), None);
    assert_eq!(
        get(&tables, "exact", "/api/").as_deref(),
        Some(r#"{"api":"v1"}"#)
    );
    assert_eq!(
        get(&tables, "routes", "/api/v2/cart").as_deref(),
        Some(r#"{"api":"v2"}"#)
    );
    assert_eq!(
        get(&tables, "routes", "/api/v1/cart").as_deref(),
        Some(r#"{"api":"v1"}"#)
    );
    assert_eq!(
        get(&tables, "nets", "10.1.2.3").as_deref(),
        Some(r#"{"zone":"eu"}"#)
    );
    assert_eq!(
        get(&tables, "nets", "10.2.2.3").as_deref(),
        Some(r#"{"zone":"corp"}"#)
    );
    assert_eq!(
        get(&tables, "nets", "2001:db8::1").as_deref(),
        Some(r#"{"zone":"doc"}"#)
    );
    assert_eq!(get(&tables, "nets", "checkout"), None);
}

/// Guarantees: a changed file is loaded again and its new rows are served
/// (the test waits for the change to be seen, not for a fixed time).
#[test]
fn a_changed_file_is_reloaded() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("teams.csv");
    write(&path, "service,team\ncheckout,payments\n");
    let tables = Tables::load_checking_every(
        "enrich",
        &files(&[("teams", table(&path, None, MatchMode::Exact))]),
        QUICK,
    )
    .expect("loads");
    assert_eq!(get(&tables, "teams", "cart"), None);
    write(
        &path,
        "service,team\ncheckout,payments\ncart,shop-frontend\n",
    );
    wait_for("the new row", || get(&tables, "teams", "cart").is_some());
    assert_eq!(
        get(&tables, "teams", "cart").as_deref(),
        Some(r#"{"team":"shop-frontend"}"#)
    );
    assert_eq!(tables.reload_counts("teams"), (1, 0));
}

/// Guarantees: a file that no longer parses (or is gone) on reload leaves
/// the last good table in place and is counted; once fixed it loads again.
#[test]
fn a_bad_reload_keeps_the_old_table() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("nets.csv");
    write(&path, "cidr,zone\n10.0.0.0/8,corp\n");
    let tables = Tables::load_checking_every(
        "enrich",
        &files(&[("nets", table(&path, None, MatchMode::Cidr))]),
        QUICK,
    )
    .expect("loads");
    write(&path, "cidr,zone\n10.0.0.0/8,corp\n10.1.0.0/33,bad\n");
    wait_for("the failed reload", || tables.reload_counts("nets").1 == 1);
    assert_eq!(
        get(&tables, "nets", "10.1.1.1").as_deref(),
        Some(r#"{"zone":"corp"}"#)
    );
    std::fs::remove_file(&path).expect("removes");
    wait_for("the file to be missed", || {
        tables.reload_counts("nets").1 == 2
    });
    assert_eq!(
        get(&tables, "nets", "10.1.1.1").as_deref(),
        Some(r#"{"zone":"corp"}"#)
    );
    write(&path, "cidr,zone\n10.0.0.0/8,corp\n10.1.0.0/16,eu\n");
    wait_for("the fixed file", || tables.reload_counts("nets").0 == 1);
    assert_eq!(
        get(&tables, "nets", "10.1.1.1").as_deref(),
        Some(r#"{"zone":"eu"}"#)
    );
}

/// Guarantees: a missing file, one that does not parse, a bad key column
/// and an empty file name fail the start with the table, the file and the
/// reason.
#[test]
fn errors_at_start_name_the_table_and_file() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let start = |source: LookupFile| {
        Tables::load("enrich", &files(&[("teams", source)]))
            .expect_err("refused")
            .to_string()
    };
    let missing = dir.path().join("missing.csv");
    let e = start(LookupFile::new(&missing));
    assert!(
        e.starts_with(&format!(
            "lookup table `teams` (`{}`): cannot read the file",
            missing.display()
        )),
        "{e}"
    );
    let bad = dir.path().join("bad.json");
    write(&bad, "{\"a\": ");
    assert!(start(LookupFile::new(&bad)).contains("not JSON"));
    let csv = dir.path().join("teams.csv");
    write(&csv, "service,team\n");
    let e = start(table(&csv, Some("name"), MatchMode::Exact));
    assert!(e.contains("there is no column `name`"), "{e}");
    let e = start(LookupFile::new(""));
    assert!(e.contains("needs a file name"), "{e}");
}

/// Guarantees: dropping the tables ends their reload thread (no thread is
/// left behind per processor).
#[test]
fn the_reload_thread_ends_with_the_tables() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("t.json");
    write(&path, "{}");
    let tables = Tables::load_checking_every(
        "enrich",
        &files(&[("t", LookupFile::new(&path))]),
        Duration::from_secs(3600),
    )
    .expect("loads");
    let inner = Arc::downgrade(&tables.inner);
    drop(tables);
    wait_for("the thread to let go of the tables", || {
        inner.upgrade().is_none()
    });
}
