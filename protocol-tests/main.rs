//! Wire-level tests: raw frames against an in-process broker, every API at every advertised
//! version, exact error codes, and malformed input that must close only the offending
//! connection.

mod harness;

mod api_versions;
mod configs;
mod delete_records;
mod every_version;
mod groups;
mod idempotence;
mod malformed;
mod offsets;
mod produce_fetch;
