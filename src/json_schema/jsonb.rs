//! jsonb datums for validation: the size limit is checked on the datum
//! header before anything else, the depth limit by an iterative walk.
//!
//! Documents are decoded from the jsonb bytes into a borrowed flat tree
//! (`d5_core::json_schema::ArenaDoc`, see there) by [`with_doc`]: measured on
//! a 1.2 KB tag set, converting to `serde_json::Value` cost more than
//! validating it (pgrx's `JsonB`, via `jsonb_out` text and
//! `serde_json::from_str`, twice as much again, and it panics on numbers
//! beyond f64 or nesting beyond 128), and validating the bytes in place
//! re-decodes strings at every access. [`to_value`] converts schemas on
//! registration, with Postgres' own iterator (no recursion on hostile nesting).

use std::ffi::CStr;

use pgrx::callconv::{Arg, ArgAbi};
use pgrx::{pg_sys, FromDatum, IntoDatum};
use d5_core::json_schema::{ArenaDoc, ArenaNode};
use serde_json::{Map, Number, Value};

use super::JsonSchemaError;

/// A jsonb argument kept as the raw datum, so nothing is parsed before the
/// size check.
#[derive(Clone, Copy)]
pub struct RawJsonb(pg_sys::Datum);

impl RawJsonb {
    pub fn from_datum(datum: pg_sys::Datum) -> Self {
        RawJsonb(datum)
    }

    pub fn datum(&self) -> pg_sys::Datum {
        self.0
    }

    /// The document as `jsonb_out` prints it. Unlike pgrx's `JsonB`, which
    /// re-parses it with serde_json and panics on what serde cannot hold
    /// (numbers beyond f64, nesting past 128), this cannot fail.
    pub fn to_text(&self) -> String {
        let mut out_fn = pg_sys::Oid::INVALID;
        let mut varlena = false;
        // SAFETY: the datum is a jsonb argument of the current call;
        // jsonb_out detoasts it and returns a palloc'd C string.
        unsafe {
            pg_sys::getTypeOutputInfo(pg_sys::JSONBOID, &mut out_fn, &mut varlena);
            let text = pg_sys::OidOutputFunctionCall(out_fn, self.0);
            std::ffi::CStr::from_ptr(text).to_string_lossy().into_owned()
        }
    }
}

impl FromDatum for RawJsonb {
    unsafe fn from_polymorphic_datum(datum: pg_sys::Datum, is_null: bool, _: pg_sys::Oid) -> Option<Self> {
        (!is_null).then_some(RawJsonb(datum))
    }
}

impl IntoDatum for RawJsonb {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        Some(self.0)
    }

    fn type_oid() -> pg_sys::Oid {
        pg_sys::JSONBOID
    }
}

// SAFETY: the datum is only read during the call it was passed to.
unsafe impl<'fcx> ArgAbi<'fcx> for RawJsonb {
    unsafe fn unbox_arg_unchecked(arg: Arg<'_, 'fcx>) -> Self {
        let index = arg.index();
        // SAFETY: pgrx calls this with the argument of our declared type jsonb.
        unsafe { arg.unbox_arg_using_from_datum() }
            .unwrap_or_else(|| panic!("argument {index} must not be null"))
    }
}

pgrx::impl_sql_translatable!(RawJsonb, arg_only = "jsonb");

/// What a conversion may cost.
#[derive(Clone, Copy)]
pub struct Limits {
    /// Largest uncompressed datum, header included.
    pub max_bytes: usize,
    /// Deepest container nesting; the root container is depth 1.
    pub max_depth: usize,
}

/// Uncompressed size of a varlena datum without detoasting it.
pub fn raw_size(datum: pg_sys::Datum) -> usize {
    // SAFETY: callers pass a non-NULL varlena datum (a jsonb value).
    unsafe { pg_sys::toast_raw_datum_size(datum) }
}

/// Calls `f` with a non-NULL jsonb datum decoded for validation, after the
/// size check (on the header) and the depth check (while decoding).
pub fn with_doc<R>(doc: RawJsonb, limits: Limits, f: impl FnOnce(ArenaNode<'_>) -> R) -> Result<R, JsonSchemaError> {
    let size = raw_size(doc.0);
    if size > limits.max_bytes {
        return Err(JsonSchemaError::DocumentTooLarge { size, max: limits.max_bytes });
    }
    let raw = doc.0.cast_mut_ptr::<pg_sys::varlena>();
    // SAFETY: a valid jsonb varlena; a short header is kept (no copy), as the
    // byte reader needs no alignment.
    let detoasted = unsafe { pg_sys::pg_detoast_datum_packed(raw) };
    // SAFETY: `detoasted` is a complete in-memory varlena.
    let bytes = unsafe { pgrx::varlena::varlena_to_byte_slice(detoasted) };
    let result = ArenaDoc::from_jsonb(bytes, limits.max_depth)
        .map(|decoded| f(decoded.root()))
        .map_err(|e| JsonSchemaError::DocumentTooDeep { path: e.path, max: e.max });
    if detoasted != raw {
        // SAFETY: the copy was palloc'd by the detoast call and is ours; `bytes` is no longer used.
        unsafe { pg_sys::pfree(detoasted.cast()) };
    }
    result
}

/// Converts a non-NULL jsonb datum.
pub fn to_value(doc: RawJsonb, limits: Limits) -> Result<Value, JsonSchemaError> {
    let size = raw_size(doc.0);
    if size > limits.max_bytes {
        return Err(JsonSchemaError::DocumentTooLarge { size, max: limits.max_bytes });
    }
    let raw = doc.0.cast_mut_ptr::<pg_sys::varlena>();
    // SAFETY: a valid jsonb varlena; pg_detoast_datum gives a 4-byte-header
    // copy when needed, which the Jsonb struct layout requires.
    let detoasted = unsafe { pg_sys::pg_detoast_datum(raw) };
    // SAFETY: `detoasted` is a complete, aligned jsonb value.
    let result = unsafe { walk(detoasted.cast::<pg_sys::Jsonb>(), limits.max_depth) };
    if detoasted != raw {
        // SAFETY: the copy was palloc'd by pg_detoast_datum and is ours.
        unsafe { pg_sys::pfree(detoasted.cast()) };
    }
    result
}

/// A container being built. Object members are collected first: building
/// the map from them in one go (sort + bulk load) is much cheaper than
/// inserting them one at a time.
enum Frame {
    Array(Vec<Value>),
    Object(Vec<(String, Value)>, String),
}

/// JSON Pointer of the next value to be added inside `stack`.
fn pointer(stack: &[Frame]) -> String {
    let mut out = String::new();
    for frame in stack {
        out.push('/');
        match frame {
            Frame::Array(items) => out.push_str(&items.len().to_string()),
            Frame::Object(_, key) => {
                for c in key.chars() {
                    match c {
                        '~' => out.push_str("~0"),
                        '/' => out.push_str("~1"),
                        _ => out.push(c),
                    }
                }
            }
        }
    }
    out
}

/// Adds a finished value to the innermost container.
fn push(stack: &mut [Frame], value: Value) {
    match stack.last_mut() {
        Some(Frame::Array(items)) => items.push(value),
        Some(Frame::Object(members, key)) => members.push((std::mem::take(key), value)),
        None => {}
    }
}

/// # Safety
/// `jb` points to a complete jsonb value with a 4-byte header.
unsafe fn walk(jb: *mut pg_sys::Jsonb, max_depth: usize) -> Result<Value, JsonSchemaError> {
    use pg_sys::JsonbIteratorToken::*;
    // SAFETY: per the function contract; the iterator only reads the container.
    let mut it = unsafe { pg_sys::JsonbIteratorInit(&mut (*jb).root) };
    // SAFETY: JsonbValue is plain data; the iterator fills it before we read it.
    let mut v: pg_sys::JsonbValue = unsafe { std::mem::zeroed() };
    let mut stack: Vec<Frame> = Vec::with_capacity(8);
    let mut raw_scalar = false;
    loop {
        // SAFETY: `it` came from JsonbIteratorInit and is advanced only here.
        let token = unsafe { pg_sys::JsonbIteratorNext(&mut it, &mut v, false) };
        match token {
            WJB_BEGIN_ARRAY | WJB_BEGIN_OBJECT => {
                // SAFETY: BEGIN tokens fill the array / object member of the union.
                let (is_raw, n) = unsafe {
                    if token == WJB_BEGIN_ARRAY {
                        (v.val.array.rawScalar, v.val.array.nElems)
                    } else {
                        (false, v.val.object.nPairs)
                    }
                };
                if is_raw {
                    // A bare scalar is stored as a one-element pseudo array.
                    raw_scalar = true;
                    stack.push(Frame::Array(Vec::with_capacity(1)));
                    continue;
                }
                if stack.len() >= max_depth {
                    return Err(JsonSchemaError::DocumentTooDeep { path: pointer(&stack), max: max_depth });
                }
                let n = usize::try_from(n).unwrap_or(0).min(4096);
                stack.push(if token == WJB_BEGIN_ARRAY {
                    Frame::Array(Vec::with_capacity(n))
                } else {
                    Frame::Object(Vec::with_capacity(n), String::new())
                });
            }
            WJB_KEY => {
                // SAFETY: a key is always a jbvString.
                let key = unsafe { string(&v) }.ok_or_else(|| JsonSchemaError::NotUtf8 { path: pointer(&stack) })?;
                if let Some(Frame::Object(_, pending)) = stack.last_mut() {
                    *pending = key;
                }
            }
            WJB_VALUE | WJB_ELEM => {
                // SAFETY: with skipNested = false, values here are scalars.
                let value = unsafe { scalar(&v) }.map_err(|bad| match bad {
                    BadScalar::Number => JsonSchemaError::NumberOutOfRange { path: pointer(&stack) },
                    BadScalar::Utf8 => JsonSchemaError::NotUtf8 { path: pointer(&stack) },
                })?;
                push(&mut stack, value);
            }
            WJB_END_ARRAY | WJB_END_OBJECT => {
                let value = match stack.pop() {
                    Some(Frame::Array(mut items)) if raw_scalar && stack.is_empty() => {
                        items.pop().unwrap_or(Value::Null)
                    }
                    Some(Frame::Array(items)) => Value::Array(items),
                    Some(Frame::Object(members, _)) => Value::Object(members.into_iter().collect::<Map<_, _>>()),
                    None => Value::Null,
                };
                if stack.is_empty() {
                    return Ok(value);
                }
                push(&mut stack, value);
            }
            _ => return Ok(Value::Null),
        }
    }
}

enum BadScalar {
    Number,
    Utf8,
}

/// # Safety
/// `v` holds a string value filled in by the jsonb iterator.
unsafe fn string(v: &pg_sys::JsonbValue) -> Option<String> {
    // SAFETY: per the contract, `string` is the active union member and
    // points at `len` bytes inside the jsonb container.
    let bytes = unsafe {
        let s = v.val.string;
        std::slice::from_raw_parts(s.val.cast::<u8>(), usize::try_from(s.len).unwrap_or(0))
    };
    std::str::from_utf8(bytes).ok().map(str::to_owned)
}

/// # Safety
/// `v` holds a scalar filled in by the jsonb iterator.
unsafe fn scalar(v: &pg_sys::JsonbValue) -> Result<Value, BadScalar> {
    use pg_sys::jbvType;
    // SAFETY: each arm reads the union member that matches `type_`.
    unsafe {
        match v.type_ {
            jbvType::jbvString => string(v).map(Value::String).ok_or(BadScalar::Utf8),
            jbvType::jbvBool => Ok(Value::Bool(v.val.boolean)),
            jbvType::jbvNumeric => number(v.val.numeric).map(Value::Number).ok_or(BadScalar::Number),
            _ => Ok(Value::Null),
        }
    }
}

/// A jsonb numeric as a JSON number; `None` when f64 cannot hold it.
///
/// # Safety
/// `num` points at a valid numeric inside the jsonb container.
unsafe fn number(num: pg_sys::Numeric) -> Option<Number> {
    // SAFETY: numeric_normalize returns a palloc'd C string (no trailing zeros).
    let text = unsafe { pg_sys::numeric_normalize(num) };
    // SAFETY: a valid NUL-terminated string from Postgres.
    let parsed = parse_number(unsafe { CStr::from_ptr(text) }.to_str().unwrap_or("NaN"));
    // SAFETY: allocated above, used no more.
    unsafe { pg_sys::pfree(text.cast()) };
    parsed
}

/// Integers stay integers (so `multipleOf` and `integer` are exact); the rest is f64.
pub(super) fn parse_number(text: &str) -> Option<Number> {
    if !text.contains(['.', 'e', 'E']) {
        if let Ok(i) = text.parse::<i64>() {
            return Some(i.into());
        }
        if let Ok(u) = text.parse::<u64>() {
            return Some(u.into());
        }
    }
    text.parse::<f64>().ok().filter(|f| f.is_finite()).and_then(Number::from_f64)
}
