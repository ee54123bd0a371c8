//! Weir's first-party plugins: the components of `plugins/` (enrichment,
//! sampling, redaction, span metrics), built for `wasm32-wasip2` as part of
//! Weir's own build and embedded in the binary, so that a pipeline names
//! one with `plugin = "redact"` and no file, and `weir plugin list` shows
//! them.
//!
//! Which plugins are first-party, and the summary and config keys shown of
//! each, is read from `[package.metadata.weir]` in their `Cargo.toml`
//! (see `build.rs`).

/// One first-party plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bundled {
    /// The name a pipeline gives as `plugin = "..."`.
    pub name: &'static str,
    /// Its version (its crate's).
    pub version: &'static str,
    /// What it does, in one line.
    pub summary: &'static str,
    /// Its config keys, each with a one-line description, by name.
    pub config: &'static [(&'static str, &'static str)],
    /// The WebAssembly component.
    pub wasm: &'static [u8],
}

/// Every first-party plugin, by name.
pub const ALL: &[Bundled] = include!(concat!(env!("OUT_DIR"), "/bundled.rs"));

/// The first-party plugin called `name`, if there is one.
pub fn find(name: &str) -> Option<&'static Bundled> {
    ALL.iter().find(|p| p.name == name)
}

/// The names of every first-party plugin, in order.
pub fn names() -> impl Iterator<Item = &'static str> {
    ALL.iter().map(|p| p.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guarantees: the four first-party plugins are embedded as
    /// WebAssembly components (not core modules), each with a summary and
    /// its config keys documented in its README.
    #[test]
    fn every_first_party_plugin_is_embedded_with_its_description() {
        let names: Vec<&str> = names().collect();
        for expected in ["enrich", "redact", "sample", "spanmetrics"] {
            assert!(names.contains(&expected), "{expected} is not in {names:?}");
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins");
        for plugin in ALL {
            // The component binary format: magic, then version 0x0d, layer 1.
            assert_eq!(
                &plugin.wasm[..8],
                b"\0asm\x0d\0\x01\0",
                "{} is not a component",
                plugin.name
            );
            assert!(!plugin.summary.is_empty(), "{} has no summary", plugin.name);
            assert!(
                !plugin.config.is_empty(),
                "{} lists no config keys",
                plugin.name
            );
            let readme = std::fs::read_to_string(root.join(plugin.name).join("README.md"))
                .unwrap_or_else(|e| panic!("{} has no README: {e}", plugin.name));
            for (key, doc) in plugin.config {
                assert!(!doc.is_empty(), "{}: `{key}` is not described", plugin.name);
                assert!(
                    readme.contains(&format!("`{key}`")),
                    "{}: the README does not document `{key}`",
                    plugin.name
                );
            }
        }
        assert!(find("redact").is_some());
        assert!(find("no-such-plugin").is_none());
    }
}
