//! jsonb values as the audit log needs them: the datum to store and the exact
//! `jsonb_out` text to hash (the text the external verifier will see).

use std::ffi::{CStr, CString};

use pgrx::pg_sys;

use super::chain::Jsonb;

/// An owned jsonb: datum (palloc'd in the current memory context) and text.
pub struct OwnedJsonb {
    pub datum: pg_sys::Datum,
    pub text: String,
}

impl OwnedJsonb {
    pub fn as_ref(&self) -> Jsonb<'_> {
        Jsonb { datum: self.datum, text: &self.text }
    }
}

/// Parses JSON text into jsonb (raising Postgres' own error on bad JSON).
pub fn from_text(json: &str) -> OwnedJsonb {
    let c = CString::new(json).unwrap_or_else(|_| CString::from(c"null"));
    // SAFETY: jsonb_in takes a cstring datum and returns a palloc'd jsonb.
    let datum = unsafe {
        pgrx::direct_function_call_as_datum(pg_sys::jsonb_in, &[Some(pg_sys::Datum::from(c.as_ptr()))])
    }
    .unwrap_or(pg_sys::Datum::from(0));
    OwnedJsonb { text: text_of(datum), datum }
}

/// jsonb of a whole row, as `to_jsonb(row)` would give.
///
/// # Safety
/// `tuple` and `desc` must describe the same valid heap tuple.
pub unsafe fn from_row(tuple: pg_sys::HeapTuple, desc: pg_sys::TupleDesc) -> OwnedJsonb {
    // SAFETY: per the function contract; row_to_json reads the type from the
    // composite datum header, so no fn_expr is needed.
    unsafe {
        let composite = pg_sys::heap_copy_tuple_as_datum(tuple, desc);
        let json = pgrx::direct_function_call_as_datum(pg_sys::row_to_json, &[Some(composite)])
            .unwrap_or(pg_sys::Datum::from(0));
        let cstr = pg_sys::text_to_cstring(json.cast_mut_ptr());
        let datum = pgrx::direct_function_call_as_datum(pg_sys::jsonb_in, &[Some(pg_sys::Datum::from(cstr))])
            .unwrap_or(pg_sys::Datum::from(0));
        OwnedJsonb { text: text_of(datum), datum }
    }
}

fn text_of(datum: pg_sys::Datum) -> String {
    // SAFETY: datum is a valid jsonb; jsonb_out returns a palloc'd cstring.
    unsafe {
        let out = pgrx::direct_function_call_as_datum(pg_sys::jsonb_out, &[Some(datum)])
            .unwrap_or(pg_sys::Datum::from(0));
        CStr::from_ptr(out.cast_mut_ptr::<std::ffi::c_char>()).to_string_lossy().into_owned()
    }
}

/// Columns whose values differ between two row objects (jsonb_out texts of
/// the old and new row), in key order. Compares the canonical text of each
/// value, which jsonb makes unique.
pub fn changed_columns(old: &str, new: &str) -> Vec<String> {
    use std::collections::BTreeMap;
    type Row<'a> = BTreeMap<String, &'a serde_json::value::RawValue>;
    let (Ok(old), Ok(new)) = (serde_json::from_str::<Row>(old), serde_json::from_str::<Row>(new)) else {
        return Vec::new();
    };
    new.iter()
        .filter(|(k, v)| old.get(*k).map(|o| o.get()) != Some(v.get()))
        .map(|(k, _)| k.clone())
        .collect()
}
