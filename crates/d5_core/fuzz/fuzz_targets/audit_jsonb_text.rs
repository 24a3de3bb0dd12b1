//! The one-pass verifier's jsonb writer on arbitrary bytes (a superuser can
//! store any bytes in a jsonb column): it answers or gives up, never panics,
//! and what it writes is UTF-8 from a container it read to the end.
#![no_main]

use d5_core::audit::jsonb_text::{append_jsonb_text, jsonb_text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let _ = jsonb_text(bytes);
    let mut out = String::new();
    if append_jsonb_text(bytes, &mut out).is_some() {
        assert!(!out.is_empty());
    }
});
