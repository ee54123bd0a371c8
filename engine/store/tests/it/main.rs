//! The store's integration tests, in one test binary: the store end to
//! end through SQL (`store`), bytes on disk (`store_size`), and the
//! write-ahead log through its public API (`wal`, `wal_proptest`).

mod common;
mod store;
mod store_size;
mod wal;
mod wal_common;
mod wal_proptest;
