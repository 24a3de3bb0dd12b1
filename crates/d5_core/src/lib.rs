//! The part of d5_storage that needs no running Postgres.
//!
//! The extension calls into this crate; this crate never calls Postgres, so
//! `cargo test -p d5_core` runs in seconds.

pub mod audit;
pub mod credentials;
pub mod focus;
pub mod json_schema;
pub mod token;
