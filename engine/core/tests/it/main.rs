//! The integration tests of `weir-core`, in one test binary: OTLP <-> Arrow
//! conversion and OTLP/JSON, seen from outside the crate.
//!
//! proptest replays the failing cases it once found from
//! `../proptest-regressions/<module>.txt` (it finds this `main.rs` and keeps
//! them beside `it/`), and adds new ones there.

mod arrow_formats;
mod common;
mod direct;
mod encode;
mod encode_speed;
mod examples;
mod json;
mod rejections;
mod roundtrip;
