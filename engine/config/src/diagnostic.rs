//! Diagnostics: what went wrong, where in the file, and how to fix it —
//! rendered the way rustc renders its errors.
//!
//! Every check in this crate reports through a [`Report`], which turns byte
//! spans into line and column numbers and keeps errors and warnings apart.
//! Nothing stops at the first problem: a file's diagnostics come back
//! together, in file order, inside one [`ConfigError`].

use std::fmt;
use std::ops::Range;

/// How serious a [`Diagnostic`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    /// The file cannot be used as it is.
    Error,
    /// The file works, but probably not as intended.
    Warning,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// The place in a pipeline file a [`Diagnostic`] points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Line number, starting at 1.
    pub line: usize,
    /// Column number in characters, starting at 1.
    pub column: usize,
    /// Byte offsets of the offending text in the file.
    pub span: Range<usize>,
    /// The text of the line the span starts on, without its line ending.
    pub source_line: String,
    /// How many characters of `source_line` to underline (at least 1).
    pub width: usize,
}

/// One problem found in a pipeline file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong, in one line, naming the component and key involved.
    pub message: String,
    /// The file, as given to [`crate::parse_str`] or [`crate::load`].
    pub file: String,
    /// Where in the file; `None` when the problem has no single place (for
    /// example an empty file, or a file that could not be read).
    pub location: Option<Location>,
    /// The full dotted path of the key involved, such as
    /// `sources.otlp.grpc_address`, when there is one.
    pub key: Option<String>,
    /// A short note printed next to the underline.
    pub label: Option<String>,
    /// How to fix it, one suggestion per entry.
    pub help: Vec<String>,
}

impl Diagnostic {
    /// The 1-based line the diagnostic points at, if it points anywhere.
    pub fn line(&self) -> Option<usize> {
        self.location.as_ref().map(|l| l.line)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}: {}", self.severity.as_str(), self.message)?;
        let gutter = self
            .location
            .as_ref()
            .map_or(1, |l| l.line.to_string().len());
        let pad = " ".repeat(gutter);
        match &self.location {
            Some(loc) => {
                writeln!(f, "{pad}--> {}:{}:{}", self.file, loc.line, loc.column)?;
                writeln!(f, "{pad} |")?;
                writeln!(f, "{} | {}", loc.line, loc.source_line)?;
                // Keep tabs so the carets line up under the text they mark.
                let indent: String = loc
                    .source_line
                    .chars()
                    .take(loc.column - 1)
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                write!(f, "{pad} | {indent}{}", "^".repeat(loc.width))?;
                match &self.label {
                    Some(label) => writeln!(f, " {label}")?,
                    None => writeln!(f)?,
                }
            }
            None => {
                writeln!(f, "{pad}--> {}", self.file)?;
                if let Some(label) = &self.label {
                    writeln!(f, "{pad} = note: {label}")?;
                }
            }
        }
        for help in &self.help {
            writeln!(f, "{pad} = help: {help}")?;
        }
        Ok(())
    }
}

/// A pipeline file that cannot be used: every error found in it.
///
/// `Display` renders all of them, rustc-style, separated by blank lines.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", render_all(.diagnostics))]
pub struct ConfigError {
    diagnostics: Vec<Diagnostic>,
}

impl ConfigError {
    pub(crate) fn new(diagnostics: Vec<Diagnostic>) -> Self {
        ConfigError { diagnostics }
    }

    /// Every error, in file order (errors without a place come last).
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }
}

fn render_all(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(Diagnostic::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Byte offsets to line and column numbers.
struct SourceMap<'s> {
    source: &'s str,
    line_starts: Vec<usize>,
}

impl<'s> SourceMap<'s> {
    fn new(source: &'s str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(source.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        SourceMap {
            source,
            line_starts,
        }
    }

    fn locate(&self, span: Range<usize>) -> Option<Location> {
        if self.source.is_empty() {
            return None;
        }
        let start = span.start.min(self.source.len());
        let line_index = self
            .line_starts
            .partition_point(|&s| s <= start)
            .saturating_sub(1);
        let line_start = self.line_starts.get(line_index).copied().unwrap_or(0);
        let line_end = self.source[line_start..]
            .find('\n')
            .map_or(self.source.len(), |i| line_start + i);
        let text = self.source.get(line_start..line_end).unwrap_or("");
        let source_line = text.strip_suffix('\r').unwrap_or(text).to_string();
        let before = self.source.get(line_start..start).unwrap_or("");
        let column = before.chars().count() + 1;
        let end = span.end.clamp(start, line_end);
        let width = self.source.get(start..end).map_or(0, |s| s.chars().count());
        Some(Location {
            line: line_index + 1,
            column,
            span,
            source_line,
            width: width.max(1),
        })
    }
}

/// A diagnostic being built: [`Report::error`] or [`Report::warning`]
/// start one, the builder methods fill it in, and it is recorded when
/// dropped.
pub(crate) struct Draft<'r, 's> {
    report: &'r mut Report<'s>,
    diagnostic: Option<Diagnostic>,
}

impl Draft<'_, '_> {
    /// Names the dotted key the diagnostic is about.
    pub(crate) fn key(mut self, key: impl Into<String>) -> Self {
        if let Some(d) = &mut self.diagnostic {
            d.key = Some(key.into());
        }
        self
    }

    /// Sets the note printed next to the underline.
    pub(crate) fn label(mut self, label: impl Into<String>) -> Self {
        if let Some(d) = &mut self.diagnostic {
            d.label = Some(label.into());
        }
        self
    }

    /// Adds a suggestion on how to fix the problem.
    pub(crate) fn help(mut self, help: impl Into<String>) -> Self {
        if let Some(d) = &mut self.diagnostic {
            d.help.push(help.into());
        }
        self
    }
}

impl Drop for Draft<'_, '_> {
    fn drop(&mut self) {
        if let Some(d) = self.diagnostic.take() {
            match d.severity {
                Severity::Error => self.report.errors.push(d),
                Severity::Warning => self.report.warnings.push(d),
            }
        }
    }
}

/// Collects the diagnostics for one file.
pub(crate) struct Report<'s> {
    file: String,
    map: SourceMap<'s>,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

impl<'s> Report<'s> {
    pub(crate) fn new(source: &'s str, file: &str) -> Self {
        Report {
            file: file.to_string(),
            map: SourceMap::new(source),
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn draft<'r>(
        &'r mut self,
        severity: Severity,
        span: Option<Range<usize>>,
        message: String,
    ) -> Draft<'r, 's> {
        let location = span.and_then(|s| self.map.locate(s));
        let diagnostic = Diagnostic {
            severity,
            message,
            file: self.file.clone(),
            location,
            key: None,
            label: None,
            help: Vec::new(),
        };
        Draft {
            report: self,
            diagnostic: Some(diagnostic),
        }
    }

    /// Starts an error at `span` (byte offsets), or at no place.
    pub(crate) fn error<'r>(
        &'r mut self,
        span: impl Into<Option<Range<usize>>>,
        message: impl Into<String>,
    ) -> Draft<'r, 's> {
        self.draft(Severity::Error, span.into(), message.into())
    }

    /// Starts a warning at `span` (byte offsets), or at no place.
    pub(crate) fn warning<'r>(
        &'r mut self,
        span: impl Into<Option<Range<usize>>>,
        message: impl Into<String>,
    ) -> Draft<'r, 's> {
        self.draft(Severity::Warning, span.into(), message.into())
    }

    /// The 1-based line a byte offset is on.
    pub(crate) fn line_of(&self, offset: usize) -> usize {
        self.map.locate(offset..offset).map_or(1, |l| l.line)
    }

    /// Ends the report: the errors if there are any, else the warnings
    /// rendered as text.
    pub(crate) fn finish(self) -> Result<Vec<String>, ConfigError> {
        fn sorted(mut list: Vec<Diagnostic>) -> Vec<Diagnostic> {
            // Stable: diagnostics at the same place keep the order of checks.
            list.sort_by_key(|d| {
                d.location
                    .as_ref()
                    .map_or((1, usize::MAX), |l| (0, l.span.start))
            });
            list
        }
        if self.errors.is_empty() {
            Ok(sorted(self.warnings)
                .iter()
                .map(Diagnostic::to_string)
                .collect())
        } else {
            Err(ConfigError::new(sorted(self.errors)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guarantees: a span maps to its 1-based line and column, counting
    /// characters rather than bytes, and the underline covers the span.
    #[test]
    fn spans_map_to_lines_and_columns() {
        let src = "a = 1\n# é\nbé = \"x\"\n";
        let map = SourceMap::new(src);
        let start = src.find("\"x\"").expect("fixture holds the value");
        let loc = map.locate(start..start + 3).expect("non-empty source");
        assert_eq!((loc.line, loc.column, loc.width), (3, 6, 3));
        assert_eq!(loc.source_line, "bé = \"x\"");
    }

    /// Guarantees: a span past the end of the file still lands on the last
    /// line with a one-character underline, instead of panicking.
    #[test]
    fn span_at_end_of_file_is_safe() {
        let src = "a = [";
        let loc = SourceMap::new(src).locate(5..5).expect("non-empty source");
        assert_eq!((loc.line, loc.column, loc.width), (1, 6, 1));
    }

    /// Guarantees: the rendering follows rustc's layout (message, arrow with
    /// file:line:col, the source line, carets with label, help lines).
    #[test]
    fn renders_like_rustc() {
        let src = "[sources.otlp]\ntype = \"otlp\"\ngrpc_adress = \"x\"\n";
        let mut report = Report::new(src, "p.toml");
        let start = src.find("grpc_adress").expect("fixture holds the key");
        report
            .error(
                start..start + 11,
                "unknown field `grpc_adress` in source `otlp`",
            )
            .label("unknown field")
            .help("did you mean `grpc_address`?");
        let err = report.finish().expect_err("one error was reported");
        assert_eq!(
            err.to_string(),
            "error: unknown field `grpc_adress` in source `otlp`\n \
             --> p.toml:3:1\n  |\n3 | grpc_adress = \"x\"\n  | ^^^^^^^^^^^ unknown field\n  \
             = help: did you mean `grpc_address`?\n"
        );
    }
}
