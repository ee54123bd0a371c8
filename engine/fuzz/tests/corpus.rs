//! The fuzz corpus as a regression test: every file of every target's
//! corpus (`engine/fuzz/corpus/<target>/`, seeds and fixed findings) runs
//! through its target without a panic.

use std::panic::{AssertUnwindSafe, catch_unwind};

use weir_fuzz::targets::{frame_segment, unframe_segment};
use weir_fuzz::{Runner, Target, corpus_files, shipped_corpus};

/// Guarantees: each target has a corpus, and no corpus file makes its
/// target panic.
#[test]
fn every_corpus_file_runs_without_a_panic() {
    let runner = Runner::new().expect("the runner starts");
    let mut failed = Vec::new();
    for target in Target::ALL {
        let files = corpus_files(&shipped_corpus(), target).expect("the corpus is readable");
        assert!(
            files.len() >= 2,
            "the corpus of {} has {} files; it needs seeds (`weir-fuzz seed` writes the binary ones)",
            target.name(),
            files.len()
        );
        for file in files {
            let data = std::fs::read(&file).expect("readable");
            if catch_unwind(AssertUnwindSafe(|| runner.run(target, &data))).is_err() {
                failed.push(file.display().to_string());
            }
        }
    }
    assert!(failed.is_empty(), "these inputs panic: {failed:?}");
}

/// Guarantees: framing a real segment's records again gives back the same
/// segment, so the framed seeds reach replay as valid records.
#[test]
fn framing_round_trips_a_real_segment() {
    let files = corpus_files(&shipped_corpus(), Target::WalReplay).expect("corpus");
    let raw = files
        .iter()
        .find(|f| f.extension().is_some_and(|e| e == "raw"))
        .expect("a raw segment seed");
    let bytes = std::fs::read(raw).expect("readable");
    let segment = &bytes[1..];
    assert_eq!(frame_segment(&unframe_segment(segment)), segment);
}
