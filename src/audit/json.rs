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

/// A jsonb object of string (or null) members, built as a `JsonbValue`:
/// nothing is printed as JSON text and parsed back. Members are given as
/// NUL-terminated names and values.
///
/// # Safety
/// Every pointer is a valid C string in the database encoding.
pub unsafe fn object_of_texts(members: &[(*const std::ffi::c_char, Option<*const std::ffi::c_char>)]) -> OwnedJsonb {
    // SAFETY: the standard way to build a jsonb (pushJsonbValue copies each
    // value into its parse state; END_OBJECT sorts and de-duplicates keys).
    unsafe {
        use pg_sys::JsonbIteratorToken::{WJB_BEGIN_OBJECT, WJB_END_OBJECT, WJB_KEY, WJB_VALUE};
        let mut state: *mut pg_sys::JsonbParseState = std::ptr::null_mut();
        pg_sys::pushJsonbValue(&mut state, WJB_BEGIN_OBJECT, std::ptr::null_mut());
        for (name, value) in members {
            let mut key = jsonb_string(*name);
            pg_sys::pushJsonbValue(&mut state, WJB_KEY, &mut key);
            let mut value = match value {
                Some(v) => jsonb_string(*v),
                None => std::mem::zeroed(),
            };
            pg_sys::pushJsonbValue(&mut state, WJB_VALUE, &mut value);
        }
        let object = pg_sys::pushJsonbValue(&mut state, WJB_END_OBJECT, std::ptr::null_mut());
        let datum = pg_sys::Datum::from(pg_sys::JsonbValueToJsonb(object));
        OwnedJsonb { text: text_of(datum), datum }
    }
}

/// A string `JsonbValue` pointing at `s`.
///
/// # Safety
/// `s` is a valid C string that outlives the build.
unsafe fn jsonb_string(s: *const std::ffi::c_char) -> pg_sys::JsonbValue {
    // SAFETY: zero is a valid JsonbValue (jbvNull); then made a string
    // pointing at the caller's C string.
    unsafe {
        let mut v: pg_sys::JsonbValue = std::mem::zeroed();
        v.type_ = pg_sys::jbvType::jbvString;
        v.val.string.len = CStr::from_ptr(s).to_bytes().len() as i32;
        v.val.string.val = s.cast_mut();
        v
    }
}

/// A jsonb array of strings (in the database encoding), built as a
/// `JsonbValue` like [`object_of_texts`].
pub fn array_of_texts(elements: &[&CStr]) -> OwnedJsonb {
    // SAFETY: as in object_of_texts; each element is a C string that
    // outlives the build.
    unsafe {
        use pg_sys::JsonbIteratorToken::{WJB_BEGIN_ARRAY, WJB_ELEM, WJB_END_ARRAY};
        let mut state: *mut pg_sys::JsonbParseState = std::ptr::null_mut();
        pg_sys::pushJsonbValue(&mut state, WJB_BEGIN_ARRAY, std::ptr::null_mut());
        for element in elements {
            let mut value = jsonb_string(element.as_ptr());
            pg_sys::pushJsonbValue(&mut state, WJB_ELEM, &mut value);
        }
        let array = pg_sys::pushJsonbValue(&mut state, WJB_END_ARRAY, std::ptr::null_mut());
        let datum = pg_sys::Datum::from(pg_sys::JsonbValueToJsonb(array));
        OwnedJsonb { text: text_of(datum), datum }
    }
}

/// jsonb of a whole row: `to_jsonb(row)`, called directly so the row goes
/// straight to jsonb (not through json text and a second parse).
///
/// # Safety
/// `tuple` and `desc` must describe the same valid heap tuple.
pub unsafe fn from_row(tuple: pg_sys::HeapTuple, desc: pg_sys::TupleDesc) -> OwnedJsonb {
    // SAFETY: per the function contract; to_jsonb reads the row type from the
    // composite datum header once its argument is known to be a record.
    unsafe {
        let composite = pg_sys::heap_copy_tuple_as_datum(tuple, desc);
        let datum = pg_sys::FunctionCall1Coll(to_jsonb_of_record(), pg_sys::InvalidOid, composite);
        OwnedJsonb { text: text_of(datum), datum }
    }
}

/// `to_jsonb(anyelement)` with a call expression that says its argument is a
/// record (to_jsonb asks its call site for the argument type). Made once per
/// backend, in TopMemoryContext.
fn to_jsonb_of_record() -> *mut pg_sys::FmgrInfo {
    thread_local! {
        static FLINFO: std::cell::Cell<*mut pg_sys::FmgrInfo> = const { std::cell::Cell::new(std::ptr::null_mut()) };
    }
    FLINFO.with(|cell| {
        if cell.get().is_null() {
            // SAFETY: everything is allocated in TopMemoryContext and lives as
            // long as the backend; fmgr_info resolves a built-in function.
            unsafe {
                let old = pg_sys::MemoryContextSwitchTo(pg_sys::TopMemoryContext);
                let arg = pg_sys::makeNullConst(pg_sys::RECORDOID, -1, pg_sys::InvalidOid);
                let args = pg_sys::lappend(std::ptr::null_mut(), arg.cast());
                let call = pg_sys::makeFuncExpr(
                    pg_sys::Oid::from(pg_sys::F_TO_JSONB),
                    pg_sys::JSONBOID,
                    args,
                    pg_sys::InvalidOid,
                    pg_sys::InvalidOid,
                    pg_sys::CoercionForm::COERCE_EXPLICIT_CALL,
                );
                let flinfo = pg_sys::palloc0(std::mem::size_of::<pg_sys::FmgrInfo>()).cast::<pg_sys::FmgrInfo>();
                pg_sys::fmgr_info_cxt(pg_sys::Oid::from(pg_sys::F_TO_JSONB), flinfo, pg_sys::TopMemoryContext);
                (*flinfo).fn_expr = call.cast();
                pg_sys::MemoryContextSwitchTo(old);
                cell.set(flinfo);
            }
        }
        cell.get()
    })
}

fn text_of(datum: pg_sys::Datum) -> String {
    // SAFETY: datum is a valid jsonb; jsonb_out returns a palloc'd cstring.
    unsafe {
        let out = pgrx::direct_function_call_as_datum(pg_sys::jsonb_out, &[Some(datum)])
            .unwrap_or(pg_sys::Datum::from(0));
        CStr::from_ptr(out.cast_mut_ptr::<std::ffi::c_char>()).to_string_lossy().into_owned()
    }
}

/// The columns whose stored values differ between two versions of a row, as
/// a jsonb array of their names in byte order of the names (the order this
/// list has always had in the hash input). Compared as `datum_image_eq`
/// does, value by value on the tuples: no row is printed or parsed for it.
///
/// # Safety
/// `old` and `new` are valid heap tuples described by `desc`.
pub unsafe fn changed_columns(old: pg_sys::HeapTuple, new: pg_sys::HeapTuple, desc: pg_sys::TupleDesc) -> OwnedJsonb {
    let mut names: Vec<&CStr> = Vec::new();
    // SAFETY: per the function contract; attribute numbers come from desc.
    unsafe {
        for i in 0..(*desc).natts {
            let att = &*(*desc).attrs.as_ptr().add(i as usize);
            if att.attisdropped {
                continue;
            }
            let (mut old_null, mut new_null) = (false, false);
            let old_value = pg_sys::heap_getattr(old, i + 1, desc, &mut old_null);
            let new_value = pg_sys::heap_getattr(new, i + 1, desc, &mut new_null);
            let same = match (old_null, new_null) {
                (true, true) => true,
                (false, false) => same_image(old_value, new_value, att.attbyval, att.attlen),
                _ => false,
            };
            if !same {
                names.push(CStr::from_ptr(att.attname.data.as_ptr()));
            }
        }
    }
    names.sort_by(|a, b| a.to_bytes().cmp(b.to_bytes()));
    array_of_texts(&names)
}

/// Whether two non-null values of one type are the same bytes (varlenas
/// compared detoasted, whatever their compression or storage).
unsafe fn same_image(a: pg_sys::Datum, b: pg_sys::Datum, by_value: bool, len: i16) -> bool {
    // SAFETY: the datums are values of a column with this byval/len.
    unsafe {
        if by_value {
            return a == b;
        }
        match len {
            -1 => {
                let a = pg_sys::pg_detoast_datum_packed(a.cast_mut_ptr());
                let b = pg_sys::pg_detoast_datum_packed(b.cast_mut_ptr());
                let (a_len, b_len) = (pgrx::varlena::varsize_any_exhdr(a), pgrx::varlena::varsize_any_exhdr(b));
                a_len == b_len
                    && std::slice::from_raw_parts(pgrx::varlena::vardata_any(a).cast::<u8>(), a_len)
                        == std::slice::from_raw_parts(pgrx::varlena::vardata_any(b).cast::<u8>(), b_len)
            }
            -2 => CStr::from_ptr(a.cast_mut_ptr()) == CStr::from_ptr(b.cast_mut_ptr()),
            n => {
                let n = n as usize;
                std::slice::from_raw_parts(a.cast_mut_ptr::<u8>(), n) == std::slice::from_raw_parts(b.cast_mut_ptr::<u8>(), n)
            }
        }
    }
}
