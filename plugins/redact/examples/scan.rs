//! Runs every preset over the lines of text files and prints what each
//! finds: the way to check, on your own logs, that the presets mask what
//! they should and nothing else.
//!
//! ```sh
//! cargo run --release -p redact --example scan -- app.log [more.log ...]
//! ```
//!
//! For each file: up to `SHOWN` changed lines as they would be stored, then
//! the findings per preset.

use redact::{Outcome, RedactConfig, Redactor};

/// Changed lines printed per file.
const SHOWN: usize = 5;

fn main() {
    let config = r#"{"presets": ["email", "credit_card", "ipv4", "ipv6", "jwt", "bearer",
        "aws_access_key", "iban", "phone"]}"#;
    let plan = RedactConfig::parse(config)
        .and_then(RedactConfig::resolve)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut redactor = Redactor::new(plan.rules, plan.hash).unwrap_or_else(|e| panic!("{e}"));
    for path in std::env::args().skip(1) {
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) => {
                eprintln!("{path}: {e}");
                continue;
            }
        };
        let mut shown = 0;
        let mut changed = 0;
        for line in text.lines() {
            if let Outcome::Rewritten(new) = redactor.redact(line) {
                changed += 1;
                if shown < SHOWN {
                    #[allow(clippy::print_stdout)]
                    {
                        println!("  {new}");
                    }
                    shown += 1;
                }
            }
        }
        let counts = redactor.take_counts();
        let found: Vec<String> = redactor
            .rules()
            .iter()
            .zip(counts)
            .filter(|(_, n)| *n > 0)
            .map(|(rule, n)| format!("{} {n}", rule.name))
            .collect();
        #[allow(clippy::print_stdout)]
        {
            println!(
                "{path}: {changed} of {} lines changed; {}",
                text.lines().count(),
                if found.is_empty() {
                    "nothing found".to_string()
                } else {
                    found.join(", ")
                }
            );
        }
    }
}
