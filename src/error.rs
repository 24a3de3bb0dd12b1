//! The one place where module errors become Postgres errors.
//!
//! Each module keeps a `thiserror` enum and implements [`SqlError`] for it;
//! [`raise`] turns it into an `ereport(ERROR)` with a real SQLSTATE, detail
//! and hint.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::{PgLogLevel, PgSqlErrorCode};

pub trait SqlError: std::fmt::Display {
    fn sqlstate(&self) -> PgSqlErrorCode;
    fn detail(&self) -> Option<String> {
        None
    }
    fn hint(&self) -> Option<String> {
        None
    }
}

/// Raises `err` as an ERROR; never returns.
#[track_caller]
pub fn raise(err: impl SqlError) -> ! {
    let mut report = ErrorReport::new(err.sqlstate(), err.to_string(), "d5_storage");
    if let Some(detail) = err.detail() {
        report = report.set_detail(detail);
    }
    if let Some(hint) = err.hint() {
        report = report.set_hint(hint);
    }
    report.report(PgLogLevel::ERROR);
    unreachable!("ereport(ERROR) returned")
}

/// SPI failures are internal errors: they mean our own SQL is wrong.
#[derive(Debug, thiserror::Error)]
#[error("d5 internal query failed: {0}")]
pub struct InternalError(pub String);

impl SqlError for InternalError {
    fn sqlstate(&self) -> PgSqlErrorCode {
        PgSqlErrorCode::ERRCODE_INTERNAL_ERROR
    }
}

impl From<pgrx::spi::Error> for InternalError {
    fn from(e: pgrx::spi::Error) -> Self {
        InternalError(e.to_string())
    }
}

/// Unwraps an SPI result or raises it as an internal error.
#[track_caller]
pub fn spi<T>(r: Result<T, pgrx::spi::Error>) -> T {
    r.unwrap_or_else(|e| raise(InternalError::from(e)))
}
