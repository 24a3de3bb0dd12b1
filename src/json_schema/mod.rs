//! JSON Schema registry and validation: `d5.register_json_schema`,
//! `d5.validate_json`, `d5.json_errors`, the write-time trigger, and the
//! tables and binding functions in `sql/json_schema.sql`.
//! Compiling and validating is `d5_core::json_schema`; this module adds the
//! registry, the per-backend cache and the Postgres boundary.

mod cache;
pub mod jsonb;
mod registry;
pub(crate) mod trigger;

use d5_core::json_schema::{
    compile, format_detail, DepthError, SchemaError, DEFAULT_MAX_DOCUMENT_DEPTH,
    MAX_SCHEMA_BYTES, MAX_SCHEMA_DEPTH, SHIPPED,
};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

use crate::error::{raise, spi, SqlError};
use crate::gucs;
pub use jsonb::RawJsonb;

/// Rows `d5.json_errors` returns at most.
const MAX_ERROR_ROWS: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum JsonSchemaError {
    #[error("JSON schema name must not be NULL")]
    NullName,
    #[error("invalid JSON schema name {0:?}")]
    BadName(String),
    #[error("JSON schema document must not be NULL")]
    NullSchema,
    #[error("JSON schema \"{0}\" does not exist")]
    UnknownSchema(String),
    #[error("{}", schema_error_message(.0))]
    InvalidSchema(SchemaError),
    #[error("stored JSON schema \"{name}\" version {version} no longer compiles: {error}")]
    StoredSchemaBroken { name: String, version: i32, error: SchemaError },
    #[error("JSON document is {size} bytes, more than d5.max_document_bytes ({max} bytes)")]
    DocumentTooLarge { size: usize, max: usize },
    #[error("{}", depth_message(.path, *.max))]
    DocumentTooDeep { path: String, max: usize },
    #[error("number at {} is outside the range JSON Schema validation supports (about ±1.8e308)", display_path(.path))]
    NumberOutOfRange { path: String },
    #[error("JSON string at {} is not valid UTF-8", display_path(.path))]
    NotUtf8 { path: String },
    #[error("new row for relation \"{relation}\" violates {schemas} for column \"{column}\"")]
    Violation { relation: String, column: String, schemas: String, detail: String },
    #[error("column \"{column}\" of relation \"{relation}\" is bound to a JSON schema but {problem}")]
    BadBoundColumn { relation: String, column: String, problem: &'static str },
    #[error("d5._json_schema_check() must run as a BEFORE INSERT OR UPDATE ... FOR EACH ROW trigger")]
    BadTrigger,
}

fn display_path(path: &str) -> &str {
    if path.is_empty() {
        "/"
    } else {
        path
    }
}

fn depth_message(path: &str, max: usize) -> String {
    DepthError { path: path.to_owned(), max }.to_string()
}

fn schema_error_message(e: &SchemaError) -> String {
    match e {
        // The problems go to DETAIL, one per line.
        SchemaError::Invalid { draft, problems } => {
            format!("schema is not valid JSON Schema ({draft}): {} problem(s)", problems.len())
        }
        other => other.to_string(),
    }
}

/// The JSON Pointer(s) a refused schema is faulted at, for DETAIL.
fn schema_error_detail(e: &SchemaError) -> Option<String> {
    use SchemaError::*;
    match e {
        Invalid { problems, .. } => Some(format_detail(problems, problems.len())),
        TooDeep { path, .. }
        | SchemaNotString { path }
        | UnsupportedDraft { path, .. }
        | MixedDrafts { path }
        | ExternalRef { path, .. }
        | Compile { path, .. } => Some(format!("path: {}", display_path(path))),
        Parse(_) | TooLarge { .. } => None,
    }
}

impl SqlError for JsonSchemaError {
    fn sqlstate(&self) -> PgSqlErrorCode {
        use JsonSchemaError::*;
        use PgSqlErrorCode::*;
        match self {
            NullName | BadName(_) | NullSchema | InvalidSchema(_) => ERRCODE_INVALID_PARAMETER_VALUE,
            UnknownSchema(_) => ERRCODE_NO_DATA_FOUND,
            StoredSchemaBroken { .. } | BadTrigger => ERRCODE_INTERNAL_ERROR,
            DocumentTooLarge { .. } => ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            DocumentTooDeep { .. } => ERRCODE_STATEMENT_TOO_COMPLEX,
            NumberOutOfRange { .. } => ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
            NotUtf8 { .. } => ERRCODE_CHARACTER_NOT_IN_REPERTOIRE,
            Violation { .. } => ERRCODE_CHECK_VIOLATION,
            BadBoundColumn { .. } => ERRCODE_UNDEFINED_COLUMN,
        }
    }

    fn detail(&self) -> Option<String> {
        match self {
            JsonSchemaError::InvalidSchema(e) => schema_error_detail(e),
            JsonSchemaError::Violation { detail, .. } => Some(detail.clone()),
            _ => None,
        }
    }

    fn hint(&self) -> Option<String> {
        use JsonSchemaError::*;
        match self {
            BadName(_) => Some("Use 1 to 128 characters: letters, digits, '_', '.', ':' or '-', starting with a letter or digit.".into()),
            UnknownSchema(_) => Some("A d5_admin registers schemas with d5.register_json_schema().".into()),
            DocumentTooLarge { .. } => Some("A superuser can raise d5.max_document_bytes.".into()),
            BadBoundColumn { .. } => Some("A d5_admin can rebind it with d5.bind_json_schema() or remove it with d5.unbind_json_schema().".into()),
            _ => None,
        }
    }
}

/// Registers the invalidation callbacks (from `_PG_init`).
pub fn init() {
    cache::init();
}

/// Limits for documents being validated.
fn document_limits() -> jsonb::Limits {
    jsonb::Limits {
        max_bytes: usize::try_from(gucs::MAX_DOCUMENT_BYTES.get()).unwrap_or(0),
        max_depth: DEFAULT_MAX_DOCUMENT_DEPTH,
    }
}

fn check_name(name: Option<&str>) -> &str {
    let name = name.unwrap_or_else(|| raise(JsonSchemaError::NullName));
    let ok = (1..=128).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c));
    if !ok {
        raise(JsonSchemaError::BadName(name.chars().take(140).collect()));
    }
    name
}

/// Stores `schema` as the next version of `name` and returns that version;
/// an unchanged schema returns the current version. d5_admin only.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn register_json_schema(name: Option<&str>, schema: Option<RawJsonb>) -> i32 {
    let name = check_name(name);
    let schema = schema.unwrap_or_else(|| raise(JsonSchemaError::NullSchema));
    // The core checks the exact size of the compact text; jsonb is larger.
    let limits = jsonb::Limits { max_bytes: 4 * MAX_SCHEMA_BYTES, max_depth: MAX_SCHEMA_DEPTH };
    let value = jsonb::to_value(schema, limits).unwrap_or_else(|e| match e {
        JsonSchemaError::DocumentTooLarge { .. } => {
            raise(JsonSchemaError::InvalidSchema(SchemaError::TooLarge { max: MAX_SCHEMA_BYTES }))
        }
        JsonSchemaError::DocumentTooDeep { path, max } => {
            raise(JsonSchemaError::InvalidSchema(SchemaError::TooDeep { path, max }))
        }
        other => raise(other),
    });
    if let Err(e) = compile(&value) {
        raise(JsonSchemaError::InvalidSchema(e));
    }
    // Registrations of any name queue here; readers are not blocked.
    spi(Spi::run("LOCK TABLE d5.json_schemas IN SHARE ROW EXCLUSIVE MODE"));
    let (latest, same) = spi(Spi::connect(|c| {
        let rows = c.select(
            "SELECT version, schema OPERATOR(pg_catalog.=) $2 FROM d5.json_schemas
             WHERE name OPERATOR(pg_catalog.=) $1 ORDER BY version DESC LIMIT 1",
            Some(1),
            &[name.into(), schema.into()],
        )?;
        if rows.is_empty() {
            return Ok((None, None));
        }
        rows.first().get_two::<i32, bool>()
    }));
    if let (Some(version), Some(true)) = (latest, same) {
        return version;
    }
    let version = latest.unwrap_or(0) + 1;
    spi(Spi::run_with_args(
        "INSERT INTO d5.json_schemas (name, version, schema) VALUES ($1, $2, $3)",
        &[name.into(), version.into(), schema.into()],
    ));
    // Schema changes are configuration changes: recorded in the system chain.
    let detail = serde_json::json!({
        "name": name,
        "version": version,
        "session_user": crate::privilege::session_user_if_different(),
    })
    .to_string();
    crate::audit::append_event(&crate::audit::Event {
        tenant: None,
        table_name: Some("d5.json_schemas"),
        operation: "REGISTER_SCHEMA",
        row_count: Some(1),
        rows_digest: None,
        detail: Some(&detail),
    });
    version
}

/// Inserts the schemas shipped in d5_core as version 1 (at CREATE EXTENSION).
#[pg_extern(volatile, parallel_unsafe)]
fn _json_schema_install_shipped() {
    for (name, text) in SHIPPED {
        if let Err(error) = d5_core::json_schema::compile_str(text) {
            raise(JsonSchemaError::StoredSchemaBroken { name: (*name).into(), version: 1, error });
        }
        spi(Spi::run_with_args(
            "INSERT INTO d5.json_schemas (name, version, schema, shipped)
             VALUES ($1, 1, $2::pg_catalog.jsonb, true) ON CONFLICT DO NOTHING",
            &[(*name).into(), (*text).into()],
        ));
    }
}

/// Whether `doc` conforms to the latest version of schema `name`.
#[pg_extern(stable, parallel_safe, strict)]
fn validate_json(name: &str, doc: RawJsonb) -> bool {
    let compiled = cache::latest(name);
    jsonb::with_doc(doc, document_limits(), |root| compiled.schema.is_valid(root)).unwrap_or_else(|e| raise(e))
}

/// Every violation of the latest version of schema `name` by `doc` (at most
/// 1000), sorted by path; `path` is a JSON Pointer, '' for the document root.
#[pg_extern(stable, parallel_safe, strict)]
fn json_errors(
    name: &str,
    doc: RawJsonb,
) -> TableIterator<'static, (name!(path, String), name!(message, String))> {
    let compiled = cache::latest(name);
    let rows = jsonb::with_doc(doc, document_limits(), |root| compiled.schema.errors(root, MAX_ERROR_ROWS))
        .unwrap_or_else(|e| raise(e));
    TableIterator::new(rows.into_iter().map(|v| (v.path, v.message)))
}

/// Validators cached and schemas compiled by this session (superuser; for tests of the cache).
#[pg_extern(volatile, parallel_safe)]
fn _json_schema_cache_stats() -> TableIterator<'static, (name!(cached, i64), name!(compiled, i64))> {
    let (cached, compiled) = cache::stats();
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    TableIterator::once((n(cached as u64), n(compiled)))
}
