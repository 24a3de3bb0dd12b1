//! Iterative walks over untrusted JSON: no recursion, so a 100,000-deep
//! value cannot overflow the stack before we refuse it.

use std::io;

use jsonschema::Draft;
use serde_json::Value;

use super::{push_escaped, SchemaError};

/// A validated document nests deeper than the caller allows.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error(
    "document nesting is deeper than {max} levels (at {})",
    super::display_path(path)
)]
pub struct DepthError {
    /// JSON Pointer of the first container found beyond the bound.
    pub path: String,
    pub max: usize,
}

/// One step of a JSON Pointer, kept borrowed until an error needs the text.
#[derive(Clone, Copy)]
enum Seg<'a> {
    Root,
    Key(&'a str),
    Index(usize),
}

/// Parent links of every visited container, so paths are built only on error.
struct Trail<'a> {
    nodes: Vec<(usize, Seg<'a>)>,
}

impl<'a> Trail<'a> {
    fn new() -> Self {
        Trail {
            nodes: vec![(usize::MAX, Seg::Root)],
        }
    }

    fn push(&mut self, parent: usize, seg: Seg<'a>) -> usize {
        self.nodes.push((parent, seg));
        self.nodes.len() - 1
    }

    fn path(&self, mut at: usize) -> String {
        let mut segs = Vec::new();
        while let Some(&(parent, seg)) = self.nodes.get(at) {
            segs.push(seg);
            at = parent;
        }
        let mut out = String::new();
        for seg in segs.iter().rev() {
            match seg {
                Seg::Root => {}
                Seg::Key(k) => {
                    out.push('/');
                    push_escaped(&mut out, k);
                }
                Seg::Index(i) => {
                    out.push('/');
                    out.push_str(&i.to_string());
                }
            }
        }
        out
    }
}

/// Refuse `value` if any container sits deeper than `max_depth` (root = depth 1).
pub fn check_document_depth(value: &Value, max_depth: usize) -> Result<(), DepthError> {
    let mut trail = Trail::new();
    let mut stack: Vec<(&Value, usize, usize)> = vec![(value, 0, 1)];
    while let Some((v, at, depth)) = stack.pop() {
        let is_container = matches!(v, Value::Object(_) | Value::Array(_));
        if is_container && depth > max_depth {
            return Err(DepthError {
                path: trail.path(at),
                max: max_depth,
            });
        }
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    if matches!(child, Value::Object(_) | Value::Array(_)) {
                        let id = trail.push(at, Seg::Key(k));
                        stack.push((child, id, depth + 1));
                    }
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    if matches!(child, Value::Object(_) | Value::Array(_)) {
                        let id = trail.push(at, Seg::Index(i));
                        stack.push((child, id, depth + 1));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// What a value is inside a schema document; decides whether `$ref` is a keyword there.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// A (sub)schema: its keys are keywords.
    Schema,
    /// A name -> subschema map (`properties`, `$defs`, ...): keys are names.
    Map,
    /// Plain data (`const`, `enum`, ...): never interpreted.
    Data,
}

/// Keywords whose value is data, not schemas.
const DATA_KEYWORDS: &[&str] = &["const", "enum", "default", "examples"];
/// Keywords whose value maps arbitrary names to subschemas.
const MAP_KEYWORDS: &[&str] = &[
    "properties",
    "patternProperties",
    "$defs",
    "definitions",
    "dependentSchemas",
    "dependencies",
];
const REF_KEYWORDS: &[&str] = &["$ref", "$dynamicRef", "$recursiveRef"];

/// Depth bound, `$schema` checks and local-only `$ref` in one iterative pass.
/// Returns the draft to compile with. Unknown keywords are treated as schemas,
/// so a `$ref` hidden under them is still refused (safe side).
pub(super) fn preflight(schema: &Value, max_depth: usize) -> Result<Draft, SchemaError> {
    let mut root_draft = Draft::Draft202012;
    let mut trail = Trail::new();
    let mut stack: Vec<(&Value, usize, usize, Role, bool)> =
        vec![(schema, 0, 1, Role::Schema, true)];
    while let Some((v, at, depth, role, is_root)) = stack.pop() {
        let is_container = matches!(v, Value::Object(_) | Value::Array(_));
        if is_container && depth > max_depth {
            return Err(SchemaError::TooDeep {
                path: trail.path(at),
                max: max_depth,
            });
        }
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    let key = k.as_str();
                    if role == Role::Schema {
                        if REF_KEYWORDS.contains(&key) {
                            check_ref(key, child, &trail, at)?;
                        } else if key == "$schema" {
                            let path = || child_path(&trail, at, key);
                            let uri = child
                                .as_str()
                                .ok_or_else(|| SchemaError::SchemaNotString { path: path() })?;
                            let draft = supported_draft(uri).ok_or_else(|| {
                                SchemaError::UnsupportedDraft {
                                    path: path(),
                                    uri: uri.to_owned(),
                                }
                            })?;
                            if is_root {
                                root_draft = draft;
                            } else if draft != root_draft {
                                return Err(SchemaError::MixedDrafts { path: path() });
                            }
                        }
                    }
                    if !matches!(child, Value::Object(_) | Value::Array(_)) {
                        continue;
                    }
                    let child_role = match role {
                        Role::Data => Role::Data,
                        Role::Map => Role::Schema,
                        Role::Schema if DATA_KEYWORDS.contains(&key) => Role::Data,
                        Role::Schema if MAP_KEYWORDS.contains(&key) => Role::Map,
                        Role::Schema => Role::Schema,
                    };
                    let id = trail.push(at, Seg::Key(key));
                    stack.push((child, id, depth + 1, child_role, false));
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    if matches!(child, Value::Object(_) | Value::Array(_)) {
                        let id = trail.push(at, Seg::Index(i));
                        // Arrays of subschemas (allOf, prefixItems, ...) keep the role.
                        stack.push((child, id, depth + 1, role, false));
                    }
                }
            }
            _ => {}
        }
    }
    // The root is popped first, so `root_draft` was final before any nested `$schema`.
    Ok(root_draft)
}

fn child_path(trail: &Trail<'_>, at: usize, key: &str) -> String {
    let mut p = trail.path(at);
    p.push('/');
    push_escaped(&mut p, key);
    p
}

/// Only fragment references ("#", "#/$defs/x", "#anchor") stay inside the document.
fn check_ref(
    keyword: &str,
    value: &Value,
    trail: &Trail<'_>,
    at: usize,
) -> Result<(), SchemaError> {
    match value.as_str() {
        // Non-strings are left to meta-schema validation.
        None => Ok(()),
        Some(r) if r.starts_with('#') => Ok(()),
        Some(r) => Err(SchemaError::ExternalRef {
            path: child_path(trail, at, keyword),
            keyword: keyword.to_owned(),
            reference: super::clip(r.to_owned(), 200),
        }),
    }
}

/// The drafts we accept, by `$schema` URI (trailing '#' and http/https tolerated).
fn supported_draft(uri: &str) -> Option<Draft> {
    match Draft::from_schema_uri(uri) {
        d @ (Draft::Draft7 | Draft::Draft201909 | Draft::Draft202012) => Some(d),
        _ => None,
    }
}

/// True when compact JSON of `value` is longer than `max` bytes. Call only after
/// the depth bound held: serde_json's serializer recurses.
pub(super) fn serialized_len_exceeds(value: &Value, max: usize) -> bool {
    struct Counter {
        left: usize,
    }
    impl io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            // Failing early stops serialization of a huge document.
            self.left = self
                .left
                .checked_sub(buf.len())
                .ok_or_else(|| io::Error::other("limit"))?;
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    serde_json::to_writer(&mut Counter { left: max }, value).is_err()
}
