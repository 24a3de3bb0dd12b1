//! jsonb values as the audit log needs them: the datum to store and the exact
//! `jsonb_out` text to hash (the text the external verifier will see).

use std::ffi::{CStr, CString};

use pgrx::pg_sys;

use super::chain::Jsonb;
use super::AuditError;
use crate::error::raise;

/// A jsonb made here: the datum and its `jsonb_out` text, both palloc'd in
/// the memory context current when it was made. Used within the call that
/// made it (a trigger call, an event's append), never kept past it. A clone
/// is another handle on the same jsonb, which is never written once made.
#[derive(Clone)]
pub struct OwnedJsonb {
    pub datum: pg_sys::Datum,
    text: *const u8,
    len: usize,
}

impl OwnedJsonb {
    /// The datum and its text (UTF-8, checked when it was made), without a copy.
    pub fn as_ref(&self) -> Jsonb<'_> {
        // SAFETY: the text is jsonb_out's palloc'd output, alive as long as
        // self (see above), never written after it was made, and checked to
        // be UTF-8 by `new`.
        let text = unsafe { std::str::from_utf8_unchecked(std::slice::from_raw_parts(self.text, self.len)) };
        Jsonb { datum: self.datum, text }
    }

    /// A copy of the datum and its text in `context` (for a record kept
    /// past the statement that made it).
    pub fn copy_into(&self, context: pg_sys::MemoryContext) -> OwnedJsonb {
        // SAFETY: the datum is a plain jsonb varlena (see `new`) and the text
        // `len` bytes; both are copied whole into fresh chunks of `context`.
        unsafe {
            let size = pgrx::varlena::varsize(self.datum.cast_mut_ptr::<pg_sys::varlena>());
            let datum = pg_sys::MemoryContextAlloc(context, size);
            std::ptr::copy_nonoverlapping(self.datum.cast_mut_ptr::<u8>(), datum.cast::<u8>(), size);
            let text = pg_sys::MemoryContextAlloc(context, self.len.max(1)).cast::<u8>();
            std::ptr::copy_nonoverlapping(self.text, text, self.len);
            OwnedJsonb { datum: pg_sys::Datum::from(datum), text, len: self.len }
        }
    }

    /// Bytes the datum and its text take.
    pub fn size(&self) -> usize {
        // SAFETY: a plain jsonb varlena (see `new`).
        unsafe { pgrx::varlena::varsize(self.datum.cast_mut_ptr::<pg_sys::varlena>()) + self.len }
    }

    /// Pairs a jsonb datum (made here: plain, not toasted) with its
    /// `jsonb_out` text, written by the function `jsonb_out` calls. Text that
    /// is not UTF-8 (a database in another encoding) is refused: the hash
    /// covers UTF-8 text, and the verifiers would read such text as one
    /// replacement character, whatever its bytes.
    fn new(datum: pg_sys::Datum) -> OwnedJsonb {
        // SAFETY: datum is a valid, untoasted jsonb with a 4-byte header, as
        // JsonbValueToJsonb and to_jsonb return it; JsonbToCString returns
        // a palloc'd cstring.
        let text = unsafe {
            let jsonb = datum.cast_mut_ptr::<pg_sys::Jsonb>();
            let size = pgrx::varlena::varsize(jsonb.cast()) as i32;
            CStr::from_ptr(pg_sys::JsonbToCString(std::ptr::null_mut(), &mut (*jsonb).root, size)).to_bytes()
        };
        if std::str::from_utf8(text).is_err() {
            raise(AuditError::NotUtf8(database_encoding()));
        }
        OwnedJsonb { datum, text: text.as_ptr(), len: text.len() }
    }
}

/// The name of the database's encoding.
fn database_encoding() -> String {
    // SAFETY: reads the backend's encoding name, a static C string.
    unsafe { CStr::from_ptr(pg_sys::GetDatabaseEncodingName()) }.to_string_lossy().into_owned()
}

/// Parses JSON text into jsonb (raising Postgres' own error on bad JSON).
pub fn from_text(json: &str) -> OwnedJsonb {
    let c = CString::new(json).unwrap_or_else(|_| CString::from(c"null"));
    // SAFETY: jsonb_in takes a cstring datum and returns a palloc'd jsonb.
    let datum = unsafe {
        pgrx::direct_function_call_as_datum(pg_sys::jsonb_in, &[Some(pg_sys::Datum::from(c.as_ptr()))])
    }
    .unwrap_or(pg_sys::Datum::from(0));
    OwnedJsonb::new(datum)
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
        OwnedJsonb::new(datum)
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
        OwnedJsonb::new(datum)
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
        let datum = pg_sys::FunctionCall1Coll(to_jsonb_of(pg_sys::RECORDOID), pg_sys::InvalidOid, composite);
        OwnedJsonb::new(datum)
    }
}

/// `to_jsonb(new)` of an UPDATE's new row, built from the old row's jsonb:
/// the unchanged columns' values are taken over as they are and only the
/// `changed` attributes (0-based, from [`changed_attributes`]) are converted,
/// each by `to_jsonb` of its own type, which converts a value exactly as
/// `to_jsonb` of a row converts that column. The pairs then go through the
/// same jsonb construction (`pushJsonbValue`, which sorts the keys), so the
/// result is the same jsonb, byte for byte, as `to_jsonb(new)`.
///
/// # Safety
/// `old_row` is [`from_row`] of the old version of the row; `new` is the new
/// version, described by `desc`.
pub unsafe fn from_updated_row(
    old_row: &OwnedJsonb,
    new: pg_sys::HeapTuple,
    desc: pg_sys::TupleDesc,
    changed: &[usize],
) -> OwnedJsonb {
    // SAFETY: per the function contract. Values pushed from the old jsonb
    // point into it, and it outlives the build; containers are pushed as
    // jbvBinary, which pushJsonbValue unpacks.
    unsafe {
        use pg_sys::JsonbIteratorToken::{WJB_BEGIN_OBJECT, WJB_DONE, WJB_END_OBJECT, WJB_KEY, WJB_VALUE};
        // An UPDATE that changed nothing (an application writing back every
        // column): the new row is the old row.
        if changed.is_empty() {
            return old_row.clone();
        }
        let replacements: Vec<(&[u8], pg_sys::JsonbValue)> = changed
            .iter()
            .map(|&i| {
                let att = &*(*desc).attrs.as_ptr().add(i);
                (CStr::from_ptr(att.attname.data.as_ptr()).to_bytes(), column_value(new, desc, att, i))
            })
            .collect();
        let old = old_row.datum.cast_mut_ptr::<pg_sys::Jsonb>();
        let mut it = pg_sys::JsonbIteratorInit(&mut (*old).root);
        let mut state: *mut pg_sys::JsonbParseState = std::ptr::null_mut();
        let mut object = std::ptr::null_mut();
        let mut replaced = 0;
        let mut replacement: Option<pg_sys::JsonbValue> = None;
        let mut v: pg_sys::JsonbValue = std::mem::zeroed();
        loop {
            let token = pg_sys::JsonbIteratorNext(&mut it, &mut v, true);
            match token {
                WJB_DONE => break,
                WJB_BEGIN_OBJECT | WJB_END_OBJECT => object = pg_sys::pushJsonbValue(&mut state, token, std::ptr::null_mut()),
                WJB_KEY => {
                    let key = std::slice::from_raw_parts(v.val.string.val.cast::<u8>(), v.val.string.len as usize);
                    replacement = replacements.iter().find(|(name, _)| *name == key).map(|(_, value)| *value);
                    pg_sys::pushJsonbValue(&mut state, token, &mut v);
                }
                WJB_VALUE => {
                    let mut value = match replacement.take() {
                        Some(value) => {
                            replaced += 1;
                            value
                        }
                        None => v,
                    };
                    pg_sys::pushJsonbValue(&mut state, token, &mut value);
                }
                // to_jsonb of a row is an object of its columns: nothing else.
                _ => return from_row(new, desc),
            }
        }
        if object.is_null() || replaced != replacements.len() {
            return from_row(new, desc);
        }
        let datum = pg_sys::Datum::from(pg_sys::JsonbValueToJsonb(object));
        OwnedJsonb::new(datum)
    }
}

/// A column's value as the `JsonbValue` that `to_jsonb` of its row holds
/// for it: null, a scalar, or a container (jbvBinary) to be unpacked.
unsafe fn column_value(
    tuple: pg_sys::HeapTuple,
    desc: pg_sys::TupleDesc,
    att: &pg_sys::FormData_pg_attribute,
    index: usize,
) -> pg_sys::JsonbValue {
    // SAFETY: per the caller, the tuple is described by desc and index is
    // one of its attributes; to_jsonb returns a palloc'd jsonb.
    unsafe {
        let mut value: pg_sys::JsonbValue = std::mem::zeroed();
        let mut isnull = false;
        let datum = pg_sys::heap_getattr(tuple, index as i32 + 1, desc, &mut isnull);
        if isnull {
            value.type_ = pg_sys::jbvType::jbvNull;
            return value;
        }
        let jsonb = pg_sys::FunctionCall1Coll(to_jsonb_of(att.atttypid), pg_sys::InvalidOid, datum)
            .cast_mut_ptr::<pg_sys::Jsonb>();
        let root = &mut (*jsonb).root;
        if root.header & pg_sys::JB_FSCALAR != 0 {
            pg_sys::JsonbExtractScalar(root, &mut value);
        } else {
            value.type_ = pg_sys::jbvType::jbvBinary;
            value.val.binary.data = root;
            value.val.binary.len = (pgrx::varlena::varsize_any(jsonb.cast()) - pg_sys::VARHDRSZ) as i32;
        }
        value
    }
}

/// `to_jsonb(anyelement)` with a call expression that says its argument is
/// of type `type_oid` (to_jsonb asks its call site for the argument type).
/// Made once per type and backend, in TopMemoryContext.
fn to_jsonb_of(type_oid: pg_sys::Oid) -> *mut pg_sys::FmgrInfo {
    thread_local! {
        static FLINFOS: std::cell::RefCell<Vec<(pg_sys::Oid, *mut pg_sys::FmgrInfo)>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }
    if let Some(flinfo) = FLINFOS.with_borrow(|f| f.iter().find(|(t, _)| *t == type_oid).map(|(_, f)| *f)) {
        return flinfo;
    }
    // SAFETY: everything is allocated in TopMemoryContext and lives as long
    // as the backend; fmgr_info resolves a built-in function.
    let flinfo = unsafe {
        let old = pg_sys::MemoryContextSwitchTo(pg_sys::TopMemoryContext);
        let arg = pg_sys::makeNullConst(type_oid, -1, pg_sys::InvalidOid);
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
        flinfo
    };
    FLINFOS.with_borrow_mut(|f| f.push((type_oid, flinfo)));
    flinfo
}

/// The attributes (0-based) whose stored values differ between two versions
/// of a row, compared as `datum_image_eq` does, value by value on the
/// tuples: no row is printed or parsed for it.
///
/// # Safety
/// `old` and `new` are valid heap tuples described by `desc`.
pub unsafe fn changed_attributes(old: pg_sys::HeapTuple, new: pg_sys::HeapTuple, desc: pg_sys::TupleDesc) -> Vec<usize> {
    let mut changed = Vec::new();
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
                changed.push(i as usize);
            }
        }
    }
    changed
}

/// The names of `attributes` as a jsonb array, in byte order of the names
/// (the order the changed-column list has always had in the hash input).
///
/// # Safety
/// Every attribute index is one of `desc`'s.
pub unsafe fn names_of(desc: pg_sys::TupleDesc, attributes: &[usize]) -> OwnedJsonb {
    // SAFETY: per the function contract.
    let mut names: Vec<&CStr> = attributes
        .iter()
        .map(|&i| unsafe { CStr::from_ptr((*(*desc).attrs.as_ptr().add(i)).attname.data.as_ptr()) })
        .collect();
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
