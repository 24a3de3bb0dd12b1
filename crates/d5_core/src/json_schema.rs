//! JSON Schema compile/validate core for `d5.register_json_schema`,
//! `d5.validate_json`, `d5.json_errors` and write-time checks of JSONB columns.
//!
//! Safety rules, because tenant-supplied schemas run inside a database backend:
//! * nothing is ever fetched: every `$ref` must be document-local (checked by
//!   our own walk, and the validator gets a retriever that refuses everything);
//! * schema size and nesting are bounded before any recursive code sees them;
//! * `pattern` uses the linear-time `regex` engine (no catastrophic backtracking;
//!   lookbehind, backreferences and most lookaheads are refused at compile time).
//!
//! Documents are validated either as `serde_json::Value`s ([`compile`]) or in
//! place as Postgres `jsonb` container bytes ([`compile_jsonb`]): the
//! extension uses the latter, so a validation parses and allocates nothing.
//!
//! `format` follows the draft's default: asserted in draft-07, annotation only in
//! 2019-09 and 2020-12 (as the specification says).

mod arena;
mod jsonb;
mod walk;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_compile;
#[cfg(test)]
mod tests_hostile;
#[cfg(test)]
mod tests_jsonb;

use std::cmp::Ordering;
use std::fmt::Write as _;

use jsonschema::error::ValidationErrorKind;
use jsonschema::json::{Json, SerdeJson};
use jsonschema::{Draft, PatternOptions, Retrieve, Uri, ValidationError, Validator};
use serde_json::Value;

pub use arena::{Arena, ArenaDoc, ArenaNode};
pub use jsonb::check_jsonb_depth;
pub use jsonschema::json::Jsonb;
pub use walk::{check_document_depth, DepthError};

/// Largest schema document accepted, in bytes of compact JSON.
pub const MAX_SCHEMA_BYTES: usize = 256 * 1024;
/// Deepest nesting of objects/arrays accepted in a schema document.
pub const MAX_SCHEMA_DEPTH: usize = 64;
/// Suggested bound for `check_document_depth` on validated documents.
pub const DEFAULT_MAX_DOCUMENT_DEPTH: usize = 64;
/// At most this many meta-schema problems are kept in `SchemaError::Invalid`.
const MAX_SCHEMA_PROBLEMS: usize = 20;
/// Violations are collected (then sorted) up to this many; beyond it only counted,
/// so a hostile document cannot make us hold millions of errors.
const MAX_COLLECTED: usize = 10_000;
/// Longest message / path kept in a `Violation` (bytes), so DETAIL stays readable.
const MAX_MESSAGE_BYTES: usize = 300;
const MAX_PATH_BYTES: usize = 300;
/// Instance strings longer than this are abbreviated in messages.
const MAX_QUOTED_CHARS: usize = 40;

/// The schemas shipped with the extension: `(name, JSON text)`.
pub const SHIPPED: &[(&str, &str)] = &[
    (
        "resource_tags",
        include_str!("json_schema/schemas/resource_tags.json"),
    ),
    (
        "recommendation_impact",
        include_str!("json_schema/schemas/recommendation_impact.json"),
    ),
    (
        "policy_thresholds",
        include_str!("json_schema/schemas/policy_thresholds.json"),
    ),
];

/// Why a schema was refused.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SchemaError {
    #[error("schema is not valid JSON: {0}")]
    Parse(String),
    #[error("schema document is larger than {max} bytes")]
    TooLarge { max: usize },
    #[error(
        "schema nesting is deeper than {max} levels (at {})",
        display_path(path)
    )]
    TooDeep { path: String, max: usize },
    #[error("\"$schema\" at {} must be a string", display_path(path))]
    SchemaNotString { path: String },
    #[error(
        "unsupported \"$schema\" {uri:?} at {}: use draft-07 \
         (http://json-schema.org/draft-07/schema#), 2019-09 \
         (https://json-schema.org/draft/2019-09/schema) or 2020-12 \
         (https://json-schema.org/draft/2020-12/schema); absent means 2020-12",
        display_path(path)
    )]
    UnsupportedDraft { path: String, uri: String },
    #[error(
        "\"$schema\" at {} names a different draft than the root; mixing drafts is not supported",
        display_path(path)
    )]
    MixedDrafts { path: String },
    #[error(
        "{keyword} at {} points outside the schema ({reference:?}); only local references \
         starting with '#' are allowed, nothing is ever fetched",
        display_path(path)
    )]
    ExternalRef {
        path: String,
        keyword: String,
        reference: String,
    },
    #[error(
        "schema is not valid JSON Schema ({draft}): {}",
        join_problems(problems)
    )]
    Invalid {
        draft: &'static str,
        /// `path` is the JSON Pointer inside the schema document.
        problems: Vec<Violation>,
    },
    #[error("schema cannot be compiled{}: {message}", at_path(path))]
    Compile {
        /// JSON Pointer inside the schema, "" when the validator gave none.
        path: String,
        message: String,
    },
}

/// One reason a document does not conform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON Pointer of the instance location; "" for the root.
    pub path: String,
    pub message: String,
}

/// A compiled, reusable validator for documents in representation `F`
/// (`serde_json::Value` by default, or [`Jsonb`]). Cheap to share: `Send + Sync`.
pub struct CompiledSchema<F: Json = SerdeJson> {
    validator: Validator<F>,
    draft: Draft,
}

/// A validator for Postgres `jsonb` container bytes (see [`compile_jsonb`]).
pub type CompiledJsonbSchema = CompiledSchema<Jsonb>;
/// A validator for decoded jsonb documents (see [`compile_arena`]).
pub type CompiledArenaSchema = CompiledSchema<Arena>;

impl<F: Json> std::fmt::Debug for CompiledSchema<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledSchema").field("draft", &draft_name(self.draft)).finish()
    }
}

// The extension caches compiled schemas per backend; keep this a compile-time fact.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<CompiledSchema>();
    assert_send_sync::<CompiledJsonbSchema>();
    assert_send_sync::<CompiledArenaSchema>();
};

/// Refuses every retrieval: the second line of defence behind our own `$ref` walk.
struct NoRetrieval;

impl Retrieve for NoRetrieval {
    fn retrieve(
        &self,
        uri: &Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        Err(format!("retrieving {uri} is not allowed: schemas must be self-contained").into())
    }
}

/// Parse then compile; refuses oversized text before parsing it.
pub fn compile_str(text: &str) -> Result<CompiledSchema, SchemaError> {
    compile_for(&parse_schema(text)?)
}

/// [`compile_str`] for validating `jsonb` bytes.
pub fn compile_jsonb_str(text: &str) -> Result<CompiledJsonbSchema, SchemaError> {
    compile_for(&parse_schema(text)?)
}

/// [`compile_str`] for validating [`ArenaDoc`]s.
pub fn compile_arena_str(text: &str) -> Result<CompiledArenaSchema, SchemaError> {
    compile_for(&parse_schema(text)?)
}

fn parse_schema(text: &str) -> Result<Value, SchemaError> {
    if text.len() > MAX_SCHEMA_BYTES {
        return Err(SchemaError::TooLarge {
            max: MAX_SCHEMA_BYTES,
        });
    }
    // serde_json's recursion limit (128) bounds parsing; our walk bounds the rest.
    serde_json::from_str(text).map_err(|e| SchemaError::Parse(e.to_string()))
}

/// Check and compile a schema (drafts 7, 2019-09, 2020-12; default 2020-12).
pub fn compile(schema: &Value) -> Result<CompiledSchema, SchemaError> {
    compile_for(schema)
}

/// [`compile`] for validating Postgres `jsonb` container bytes in place.
pub fn compile_jsonb(schema: &Value) -> Result<CompiledJsonbSchema, SchemaError> {
    compile_for(schema)
}

/// [`compile`] for validating jsonb documents decoded into an [`ArenaDoc`]
/// (the fastest way to validate a jsonb value; see `arena.rs`).
pub fn compile_arena(schema: &Value) -> Result<CompiledArenaSchema, SchemaError> {
    compile_for(schema)
}

/// The same checks for every representation; only the instance side differs.
fn compile_for<F: Json>(schema: &Value) -> Result<CompiledSchema<F>, SchemaError> {
    // Iterative, bounded walk first: everything after it may recurse.
    let draft = walk::preflight(schema, MAX_SCHEMA_DEPTH)?;
    if walk::serialized_len_exceeds(schema, MAX_SCHEMA_BYTES) {
        return Err(SchemaError::TooLarge {
            max: MAX_SCHEMA_BYTES,
        });
    }
    meta_check(schema, draft)?;
    let validator = jsonschema::options_for::<F>()
        .with_draft(draft)
        .with_retriever(NoRetrieval)
        // Linear-time engine: a tenant pattern must not stall a backend.
        .with_pattern_options(PatternOptions::regex())
        .build(schema)
        .map_err(|e| {
            let mut message = clip(e.to_string(), MAX_MESSAGE_BYTES);
            if matches!(e.kind(), ValidationErrorKind::Format { format } if format == "regex") {
                message.push_str(
                    " (patterns run on a linear-time engine: lookbehind, \
                     backreferences and most lookaheads are not supported)",
                );
            }
            SchemaError::Compile {
                path: e.instance_path().as_str().to_owned(),
                message,
            }
        })?;
    Ok(CompiledSchema { validator, draft })
}

/// Validate the schema against its draft's meta-schema, reporting every problem.
fn meta_check(schema: &Value, draft: Draft) -> Result<(), SchemaError> {
    let meta = match draft {
        Draft::Draft7 => jsonschema::draft7::meta::validator(),
        Draft::Draft201909 => jsonschema::draft201909::meta::validator(),
        _ => jsonschema::draft202012::meta::validator(),
    };
    if meta.is_valid(schema) {
        return Ok(());
    }
    let (problems, _) = collect(meta.iter_errors(schema), MAX_SCHEMA_PROBLEMS);
    Err(SchemaError::Invalid {
        draft: draft_name(draft),
        problems,
    })
}

fn draft_name(draft: Draft) -> &'static str {
    match draft {
        Draft::Draft7 => "draft-07",
        Draft::Draft201909 => "draft 2019-09",
        _ => "draft 2020-12",
    }
}

impl<F: Json> CompiledSchema<F> {
    /// True when `instance` conforms. The hot path: no allocation on success.
    /// For [`Jsonb`], pass `Jsonb::root(bytes)` after [`check_jsonb_depth`].
    #[inline]
    pub fn is_valid(&self, instance: F::Node<'_>) -> bool {
        self.validator.is_valid(instance)
    }

    /// Up to `cap` violations, sorted by instance path.
    pub fn errors<'i>(&'i self, instance: F::Node<'i>, cap: usize) -> Vec<Violation> {
        self.errors_counted(instance, cap).0
    }

    /// Up to `cap` violations sorted by path, plus the exact total. Only the first
    /// 10,000 (in validator order) are kept for sorting, which bounds memory.
    pub fn errors_counted<'i>(&'i self, instance: F::Node<'i>, cap: usize) -> (Vec<Violation>, usize) {
        collect(self.validator.iter_errors(instance), cap)
    }

    /// The draft the schema was compiled for, e.g. "draft 2020-12".
    pub fn draft(&self) -> &'static str {
        draft_name(self.draft)
    }
}

/// Gather errors, sort deterministically, then render only the first `cap`.
fn collect<'a>(
    iter: impl Iterator<Item = ValidationError<'a>>,
    cap: usize,
) -> (Vec<Violation>, usize) {
    let mut kept: Vec<(String, ValidationError<'a>)> = Vec::new();
    let mut total = 0usize;
    for err in iter {
        total += 1;
        if kept.len() < MAX_COLLECTED {
            kept.push((error_path(&err), err));
        }
    }
    // Stable: ties keep the validator's (deterministic) keyword order.
    kept.sort_by(|a, b| cmp_pointer(&a.0, &b.0));
    let out = kept
        .into_iter()
        .take(cap)
        .map(|(path, err)| Violation {
            path: clip(path, MAX_PATH_BYTES),
            message: clip(error_message(&err), MAX_MESSAGE_BYTES),
        })
        .collect();
    (out, total)
}

/// Instance path; for a bad object key, point at the key itself.
fn error_path(err: &ValidationError<'_>) -> String {
    let mut path = err.instance_path().as_str().to_owned();
    if let ValidationErrorKind::PropertyNames { error } = err.kind() {
        if let Value::String(key) = error.instance().as_ref() {
            path.push('/');
            push_escaped(&mut path, key);
        }
    }
    path
}

/// The crate's message, with big instance values abbreviated and a few
/// kinds reworded where the crate's text is vague.
fn error_message(err: &ValidationError<'_>) -> String {
    let instance = err.instance();
    let preview = short_rendering(instance.as_ref());
    match err.kind() {
        // The crate prints the inner error unmasked; abbreviate it ourselves.
        ValidationErrorKind::PropertyNames { error } => {
            format!("invalid key: {}", error_message(error))
        }
        ValidationErrorKind::Not { schema } => {
            let shown = preview.unwrap_or_else(|| instance.to_string());
            format!("{shown} must not match {}", clip(schema.to_string(), 120))
        }
        // "not valid under any of the schemas" alone does not say what was wanted.
        ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } => {
            let shown = preview.unwrap_or_else(|| instance.to_string());
            let mut out = format!("{shown} matches none of the allowed alternatives");
            let own_path = err.instance_path().as_str();
            for (i, branch) in context.iter().take(3).enumerate() {
                let Some(first) = branch.first() else {
                    continue;
                };
                out.push_str(if i == 0 { ": " } else { "; " });
                let path = first.instance_path().as_str();
                if path != own_path {
                    let _ = write!(out, "{}: ", display_path(path));
                }
                out.push_str(&error_message(first));
            }
            out
        }
        _ => match preview {
            None => err.to_string(),
            Some(preview) => err.masked_with(preview).to_string(),
        },
    }
}

/// `None` when the value is small enough to print as is.
fn short_rendering(value: &Value) -> Option<String> {
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    match value {
        Value::String(s) => {
            let count = s.chars().count();
            if count <= MAX_QUOTED_CHARS {
                return None;
            }
            let head: String = s.chars().take(MAX_QUOTED_CHARS).collect();
            let quoted = serde_json::to_string(&head).unwrap_or_default();
            Some(format!(
                "{}…\" ({count} characters)",
                quoted.trim_end_matches('"')
            ))
        }
        Value::Object(map) if !map.is_empty() => {
            Some(format!("an object ({})", plural(map.len(), "key", "keys")))
        }
        Value::Array(items) if !items.is_empty() => Some(format!(
            "an array ({})",
            plural(items.len(), "item", "items")
        )),
        _ => None,
    }
}

/// The DETAIL text for a SQL error: one "path: message" per line, root as "/".
pub fn format_detail(violations: &[Violation], total: usize) -> String {
    let mut out = String::new();
    for (i, v) in violations.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = write!(out, "{}: {}", display_path(&v.path), v.message);
    }
    if total > violations.len() {
        if !out.is_empty() {
            out.push('\n');
        }
        let _ = write!(out, "… and {} more", total - violations.len());
    }
    out
}

/// Root shown as "/" so it is never an empty prefix.
fn display_path(path: &str) -> &str {
    if path.is_empty() {
        "/"
    } else {
        path
    }
}

fn at_path(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!(" at {path}")
    }
}

fn join_problems(problems: &[Violation]) -> String {
    problems
        .iter()
        .map(|v| format!("{}: {}", display_path(&v.path), v.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// RFC 6901 escaping of one reference token.
fn push_escaped(out: &mut String, token: &str) {
    for c in token.chars() {
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            _ => out.push(c),
        }
    }
}

/// Order pointers token by token, array indexes numerically ("/2" before "/10").
fn cmp_pointer(a: &str, b: &str) -> Ordering {
    let mut ta = a.split('/');
    let mut tb = b.split('/');
    loop {
        match (ta.next(), tb.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let ord = match (x.parse::<u64>(), y.parse::<u64>()) {
                    (Ok(nx), Ok(ny)) => nx.cmp(&ny).then_with(|| x.cmp(y)),
                    _ => x.cmp(y),
                };
                if ord != Ordering::Equal {
                    return ord;
                }
            }
        }
    }
}

/// Cut to at most `max` bytes on a char boundary, marking the cut.
fn clip(mut s: String, max: usize) -> String {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.push('…');
    s
}
