//! Attribute columns in the native harness: `attribute_column` and
//! `write_attributes` behave as Weir's host does.

use std::cell::RefCell;

use weir_plugin::{AttributeColumn, AttributeSet, AttributeWrite, Batch, Error, Plugin, harness};

/// A row as the plugin read it back: `(service, team, env)`.
type Seen = (Option<String>, Option<String>, Option<String>);

thread_local! {
    /// What the plugin read back after its write, per row.
    static SEEN: RefCell<Vec<Seen>> = const { RefCell::new(Vec::new()) };
}

/// Gives each service a team in one call that also drops `env`, then
/// reads the rows back.
struct Teams;

impl Plugin for Teams {
    fn init(_: &str) -> Result<Self, Error> {
        Ok(Teams)
    }

    fn process(&mut self, batch: &mut Batch<'_>) -> Result<(), Error> {
        let services = batch.attribute_column(AttributeSet::Resource, "service.name")?;
        if services.values != ["cart"] || services.rows != [1, 1, 0] {
            return Err(Error::Failed(format!("read {services:?}")));
        }
        let teams: Vec<String> = services
            .values
            .iter()
            .map(|s| format!("team-of-{s}"))
            .collect();
        let write = AttributeWrite {
            key: "team".to_string(),
            column: AttributeColumn {
                values: teams,
                rows: services.rows.clone(),
            },
        };
        batch.write_attributes(AttributeSet::Resource, &["env".to_string()], &[write])?;
        let service = batch.attribute(AttributeSet::Resource, "service.name")?;
        let team = batch.attribute(AttributeSet::Resource, "team")?;
        let env = batch.attribute(AttributeSet::Resource, "env")?;
        SEEN.with(|s| {
            *s.borrow_mut() = (0..service.len())
                .map(|i| (service[i].clone(), team[i].clone(), env[i].clone()))
                .collect();
        });
        let bad = AttributeWrite {
            key: "team".to_string(),
            column: AttributeColumn {
                values: vec!["x".to_string()],
                rows: vec![2; service.len()],
            },
        };
        match batch.write_attributes(AttributeSet::Resource, &[], &[bad]) {
            Err(Error::InvalidArgument(_)) => Ok(()),
            other => Err(Error::Failed(format!(
                "an index past the values was taken: {other:?}"
            ))),
        }
    }
}

/// Guarantees: a column read gives each distinct value once with an index
/// per row (0 for a row without the key); one `write_attributes` call
/// removes a key and writes another from such a column; an index past
/// the values is refused.
#[test]
fn columns_are_read_and_written_in_one_call() {
    let otlp = r#"{"resourceLogs":[
      {"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"cart"}},
                                 {"key":"env","value":{"stringValue":"prod"}}]},
       "scopeLogs":[{"logRecords":[{"body":{"stringValue":"a"}},{"body":{"stringValue":"b"}}]}]},
      {"resource":{"attributes":[{"key":"env","value":{"stringValue":"dev"}}]},
       "scopeLogs":[{"logRecords":[{"body":{"stringValue":"c"}}]}]}]}"#;
    harness::run::<Teams>("{}", otlp).expect("the plugin runs");
    let s = |v: &str| Some(v.to_string());
    SEEN.with(|seen| {
        assert_eq!(
            *seen.borrow(),
            [
                (s("cart"), s("team-of-cart"), None),
                (s("cart"), s("team-of-cart"), None),
                (None, None, None),
            ]
        );
    });
    let column = AttributeColumn::from_options(vec![s("a"), None, s("b")]);
    assert_eq!(column.rows, [1, 0, 2]);
    assert_eq!(column.get(2), Some("b"));
    assert_eq!(column.get(1), None);
    assert_eq!(column.to_options(), [s("a"), None, s("b")]);
}
