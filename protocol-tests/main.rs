//! Wire-level tests: raw frames against an in-process broker, every API at every advertised
//! version, exact error codes, and malformed input that must close only the offending
//! connection.

// Test code: a failed unwrap is a failed test (the crate's lints deny them outside tests).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

mod admin;
mod api_versions;
mod authorization;
mod compaction;
mod configs;
mod delete_records;
mod every_version;
mod groups;
mod idempotence;
mod listeners;
mod log_dirs;
mod malformed;
mod offsets;
mod produce_fetch;
mod transactions;
