//! The jsonb validator must answer exactly as the serde_json one does.

use super::tests_hostile::{all_test_schema_values, random_text, realistic_tags, Rng};
use super::*;
use jsonschema_value::jsonb::encode::{encode, encode_nested_arrays};
use serde_json::json;
use std::hint::black_box;
use std::time::Instant;

type Three = (CompiledSchema, CompiledJsonbSchema, CompiledArenaSchema);

fn both(schema: &Value) -> Three {
    (compile(schema).unwrap(), compile_jsonb(schema).unwrap(), compile_arena(schema).unwrap())
}

fn assert_same((serde, jsonb, arena): &Three, doc: &Value) {
    let bytes = encode(doc);
    assert!(check_jsonb_depth(&bytes, DEFAULT_MAX_DOCUMENT_DEPTH).is_ok());
    let root = Jsonb::root(&bytes);
    let decoded = ArenaDoc::from_jsonb(&bytes, DEFAULT_MAX_DOCUMENT_DEPTH).unwrap();
    assert_eq!(serde.is_valid(doc), jsonb.is_valid(root), "is_valid differs for {doc:.300}");
    assert_eq!(serde.is_valid(doc), arena.is_valid(decoded.root()), "arena is_valid differs for {doc:.300}");
    assert_eq!(
        jsonb.errors_counted(root, 20),
        arena.errors_counted(decoded.root(), 20),
        "arena errors differ for {doc:.300}"
    );
    // Messages may differ in rendering only: jsonb orders keys by length
    // first, and numeric has no negative zero.
    let paths = |(errors, total): (Vec<Violation>, usize)| {
        (errors.into_iter().map(|v| v.path).collect::<Vec<_>>(), total)
    };
    assert_eq!(
        paths(serde.errors_counted(doc, 20)),
        paths(jsonb.errors_counted(root, 20)),
        "errors differ for {doc:.300}"
    );
}

#[test]
fn shipped_schemas_agree_on_valid_and_invalid_documents() {
    let docs = [
        realistic_tags(),
        json!({}),
        json!({"env": 1, "aws:x": "y", "": "z", "ok": "a\u{7}b"}),
        json!({"k": "x".repeat(300)}),
        json!({"estimated_monthly_savings": 12.5, "currency": "USD", "confidence": 0.8}),
        json!({"estimated_monthly_savings": -1, "currency": "usd", "confidence": 2, "effort": "huge", "typo": 1}),
        json!({"amount": 1000, "currency": "EUR", "period": "monthly", "alert_percentages": [50, 100, 100]}),
        json!({"amount": 0, "currency": "EUR", "period": "hourly", "notify": []}),
        json!([1, "a", null, true, {"x": [2.5e300, -0.0]}]),
        json!("just a string"),
        json!(12345678901234567890u64),
        json!(null),
    ];
    for schema in all_test_schema_values() {
        let three = both(&schema);
        for doc in &docs {
            assert_same(&three, doc);
        }
    }
}

#[test]
fn random_documents_agree() {
    let schemas: Vec<_> = all_test_schema_values().iter().map(both).collect();
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let mut compared = 0;
    for _ in 0..400 {
        let mut text = String::new();
        random_text(&mut rng, &mut 300, 0, &mut text);
        let Ok(doc) = serde_json::from_str::<Value>(&text) else { continue };
        if let Err(e) = check_document_depth(&doc, DEFAULT_MAX_DOCUMENT_DEPTH) {
            let bytes = encode(&doc);
            assert_eq!(check_jsonb_depth(&bytes, DEFAULT_MAX_DOCUMENT_DEPTH).unwrap_err().max, e.max);
            assert!(ArenaDoc::from_jsonb(&bytes, DEFAULT_MAX_DOCUMENT_DEPTH).is_err());
            continue;
        }
        for three in &schemas {
            assert_same(three, &doc);
        }
        compared += 1;
    }
    assert!(compared >= 150, "only {compared} random documents compared");
}

#[test]
fn jsonb_depth_is_bounded_iteratively_and_names_the_path() {
    let deep = encode_nested_arrays(100_000);
    let err = check_jsonb_depth(&deep, 64).unwrap_err();
    assert_eq!(err.path, "/0".repeat(64));
    assert_eq!(err.max, 64);
    assert_eq!(ArenaDoc::from_jsonb(&deep, 64).err(), Some(err));
    let mut doc = json!({"leaf": 1});
    for key in ["c", "a/b", "x~y"] {
        doc = json!({ key: doc, "flat": "s" });
    }
    let bytes = encode(&doc);
    assert!(check_jsonb_depth(&bytes, 4).is_ok());
    let err = check_jsonb_depth(&bytes, 3).unwrap_err();
    assert_eq!(err.path, "/x~0y/a~1b/c");
    assert_eq!(ArenaDoc::from_jsonb(&bytes, 3).err().as_ref(), Some(&err));
    assert!(ArenaDoc::from_jsonb(&bytes, 4).is_ok());
    assert_eq!(Err(err), check_document_depth(&doc, 3));
    // Scalars and flat containers are never too deep.
    assert!(check_jsonb_depth(&encode(&json!("s")), 1).is_ok());
    assert!(check_jsonb_depth(&encode(&json!([1, 2])), 1).is_ok());
    assert!(check_jsonb_depth(&encode(&json!([[1]])), 1).is_err());
}

#[test]
fn arena_meets_the_representation_contract() {
    let bytes = encode(&jsonschema::json::conformance::document());
    let doc = ArenaDoc::from_jsonb(&bytes, 64).unwrap();
    jsonschema::json::conformance::assert_conformance::<Arena>(&doc.root());
    // Materialized back, the document is unchanged (also for scalars and big trees).
    for value in [
        jsonschema::json::conformance::document(),
        json!("s"),
        json!(null),
        json!([[1, [2, {"a": [true]}]], {"b": {"c": "d"}}]),
        realistic_tags(),
    ] {
        let bytes = encode(&value);
        let doc = ArenaDoc::from_jsonb(&bytes, 64).unwrap();
        assert_eq!(jsonschema::json::Node::to_value(&doc.root()).into_owned(), value);
    }
}

/// `cargo test -p d5_core --release json_schema::tests_jsonb::bench -- --ignored --nocapture`
#[test]
#[ignore]
fn bench() {
    let schema: Value = serde_json::from_str(SHIPPED[0].1).unwrap();
    let (serde, jsonb, arena) = both(&schema);
    let doc = realistic_tags();
    let bytes = encode(&doc);
    let n = 1_000_000;
    let t = Instant::now();
    for _ in 0..n {
        black_box(serde.is_valid(black_box(&doc)));
    }
    let serde_ns = t.elapsed().as_nanos() / n;
    let t = Instant::now();
    for _ in 0..n {
        let bytes = black_box(&bytes[..]);
        black_box(check_jsonb_depth(bytes, DEFAULT_MAX_DOCUMENT_DEPTH).is_ok());
        black_box(jsonb.is_valid(Jsonb::root(bytes)));
    }
    let jsonb_ns = t.elapsed().as_nanos() / n;
    let t = Instant::now();
    for _ in 0..n {
        let value = jsonschema::json::Node::to_value(&Jsonb::root(black_box(&bytes[..]))).into_owned();
        black_box(serde.is_valid(&value));
    }
    let both_ns = t.elapsed().as_nanos() / n;
    let t = Instant::now();
    for _ in 0..n {
        let doc = ArenaDoc::from_jsonb(black_box(&bytes[..]), DEFAULT_MAX_DOCUMENT_DEPTH).unwrap();
        black_box(arena.is_valid(doc.root()));
    }
    let arena_ns = t.elapsed().as_nanos() / n;
    println!(
        "tags: serde_json is_valid {serde_ns} ns; jsonb depth check + is_valid {jsonb_ns} ns; \
         jsonb -> Value + serde_json is_valid {both_ns} ns; jsonb -> ArenaDoc + is_valid {arena_ns} ns"
    );
}
