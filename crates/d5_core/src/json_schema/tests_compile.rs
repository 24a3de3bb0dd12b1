//! Schemas that must be refused, and the drafts that must be accepted.

use super::*;
use serde_json::json;

/// Paths of all violations, in reported order.
fn paths(schema: &CompiledSchema, doc: &Value) -> Vec<String> {
    schema
        .errors(doc, 100)
        .into_iter()
        .map(|v| v.path)
        .collect()
}

#[test]
fn drafts_selected_by_dollar_schema() {
    let cases = [
        (
            json!({"$schema": "http://json-schema.org/draft-07/schema#", "type": "string"}),
            "draft-07",
        ),
        (
            json!({"$schema": "http://json-schema.org/draft-07/schema", "type": "string"}),
            "draft-07",
        ),
        (
            json!({"$schema": "https://json-schema.org/draft/2019-09/schema", "type": "string"}),
            "draft 2019-09",
        ),
        (
            json!({"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "string"}),
            "draft 2020-12",
        ),
        (json!({"type": "string"}), "draft 2020-12"),
        (json!(true), "draft 2020-12"),
    ];
    for (schema, draft) in cases {
        let c = compile(&schema).unwrap_or_else(|e| panic!("{schema}: {e}"));
        assert_eq!(c.draft(), draft);
    }
    // Draft-specific keywords behave per draft: draft-07 `items` array = tuple.
    let d7 = compile(
        &json!({"$schema": "http://json-schema.org/draft-07/schema#",
        "items": [{"type": "string"}], "additionalItems": false}),
    )
    .unwrap();
    assert!(d7.is_valid(&json!(["a"])) && !d7.is_valid(&json!(["a", "b"])));
    // `format` follows the draft default: asserted in draft-07, annotation in 2020-12.
    let f7 =
        compile(&json!({"$schema": "http://json-schema.org/draft-07/schema#", "format": "email"}))
            .unwrap();
    assert!(!f7.is_valid(&json!("not-an-email")));
    assert!(compile(&json!({"format": "email"}))
        .unwrap()
        .is_valid(&json!("not-an-email")));
}

#[test]
fn unknown_or_bad_dollar_schema_refused() {
    for uri in [
        "http://json-schema.org/draft-04/schema#",
        "http://json-schema.org/draft-06/schema#",
        "https://example.com/my-meta-schema",
        "",
    ] {
        let err = compile(&json!({"$schema": uri})).unwrap_err();
        assert!(
            matches!(&err, SchemaError::UnsupportedDraft { path, .. } if path == "/$schema"),
            "{err}"
        );
        assert!(err.to_string().contains("unsupported \"$schema\""), "{err}");
    }
    assert!(matches!(
        compile(&json!({"$schema": 7})),
        Err(SchemaError::SchemaNotString { .. })
    ));
    let mixed = json!({"$defs": {"a": {"$id": "urn:x:a", "$schema": "http://json-schema.org/draft-07/schema#"}}});
    assert!(
        matches!(compile(&mixed), Err(SchemaError::MixedDrafts { path }) if path == "/$defs/a/$schema")
    );
    // A property *named* "$schema" is not the keyword.
    assert!(compile(&json!({"properties": {"$schema": {"type": "string"}}})).is_ok());
}

#[test]
fn invalid_schemas_refused_with_paths() {
    let problems = |schema: Value| match compile(&schema) {
        Err(SchemaError::Invalid { problems, .. }) => problems,
        other => panic!("{schema}: expected Invalid, got {other:?}"),
    };
    let p = problems(json!({"type": "strin"}));
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].path, "/type");
    assert!(
        p[0].message
            .contains("\"strin\" matches none of the allowed alternatives"),
        "{}",
        p[0].message
    );
    assert_eq!(problems(json!({"type": 5}))[0].path, "/type");
    let p = problems(json!({"properties": {"a": {"type": "strin", "minLength": -1}}}));
    assert_eq!(
        p.iter().map(|v| v.path.as_str()).collect::<Vec<_>>(),
        ["/properties/a/minLength", "/properties/a/type"]
    );
    assert_eq!(problems(json!({"required": "x"}))[0].path, "/required");
    assert_eq!(
        problems(json!({"$schema": "http://json-schema.org/draft-07/schema#", "maxLength": "3"}))
            [0]
        .path,
        "/maxLength"
    );
    let msg = compile(&json!({"type": "strin"})).unwrap_err().to_string();
    assert!(
        msg.starts_with("schema is not valid JSON Schema (draft 2020-12): /type: "),
        "{msg}"
    );
    assert!(matches!(
        compile_str("{\"type\": "),
        Err(SchemaError::Parse(_))
    ));
    assert!(matches!(compile_str("[1, 2"), Err(SchemaError::Parse(_))));
    // Patterns the linear-time engine cannot run are refused at compile time.
    let err = compile(&json!({"properties": {"a": {"pattern": "(?<=a)b"}}})).unwrap_err();
    assert!(
        matches!(&err, SchemaError::Compile { path, .. } if path == "/properties/a/pattern"),
        "{err}"
    );
    assert!(err.to_string().contains("linear-time"), "{err}");
    assert!(matches!(
        compile(&json!({"pattern": "(a)\\1"})),
        Err(SchemaError::Compile { .. })
    ));
    // A local ref to nothing is refused, not deferred.
    assert!(compile(&json!({"$ref": "#/$defs/missing"})).is_err());
}

#[test]
fn external_refs_refused_local_allowed() {
    let refused = [
        (json!({"$ref": "https://example.com/x.json"}), "/$ref"),
        (json!({"$ref": "other.json"}), "/$ref"),
        (json!({"$ref": "file:///etc/passwd"}), "/$ref"),
        (json!({"$ref": "other.json#/$defs/a"}), "/$ref"),
        (json!({"$ref": "//evil.example/x"}), "/$ref"),
        (
            json!({"properties": {"a": {"$ref": "http://x/y"}}}),
            "/properties/a/$ref",
        ),
        (
            json!({"properties": {"enum": {"$ref": "x.json"}}}),
            "/properties/enum/$ref",
        ),
        (
            json!({"allOf": [{"type": "object"}, {"$ref": "urn:d5:schema:resource_tags"}]}),
            "/allOf/1/$ref",
        ),
        (
            json!({"$defs": {"a~b/c": {"$ref": "x.json"}}}),
            "/$defs/a~0b~1c/$ref",
        ),
        (
            json!({"x-custom": {"$ref": "https://example.com/x"}}),
            "/x-custom/$ref",
        ),
        (
            json!({"$dynamicRef": "https://example.com/meta#meta"}),
            "/$dynamicRef",
        ),
        (
            json!({"$schema": "https://json-schema.org/draft/2019-09/schema", "$recursiveRef": "https://e.com/x"}),
            "/$recursiveRef",
        ),
    ];
    for (schema, at) in refused {
        match compile(&schema) {
            Err(SchemaError::ExternalRef { path, .. }) => assert_eq!(path, at, "{schema}"),
            other => panic!("{schema}: expected ExternalRef, got {other:?}"),
        }
    }
    let msg = compile(&json!({"$ref": "file:///etc/passwd"}))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("/$ref") && msg.contains("file:///etc/passwd") && msg.contains("outside"),
        "{msg}"
    );

    let local = compile(&json!({
        "$id": "urn:d5:tenant:example",
        "$defs": {"x": {"type": "string", "minLength": 2}},
        "type": "object",
        "properties": {"a": {"$ref": "#/$defs/x"}, "self": {"$ref": "#"}}
    }))
    .unwrap();
    assert!(local.is_valid(&json!({"a": "ok", "self": {"a": "yy"}})));
    assert_eq!(
        paths(&local, &json!({"a": "x", "self": {"a": 1}})),
        ["/a", "/self/a"]
    );
    let d7 = compile(
        &json!({"$schema": "http://json-schema.org/draft-07/schema#",
        "definitions": {"n": {"type": "integer"}}, "items": {"$ref": "#/definitions/n"}}),
    )
    .unwrap();
    assert!(!d7.is_valid(&json!([1, "2"])));
    // Data that merely looks like a ref is not a reference.
    assert!(compile(&json!({"const": {"$ref": "https://example.com/x"}})).is_ok());
    assert!(compile(&json!({"enum": [{"$ref": "x.json"}], "default": {"$ref": "y"}})).is_ok());
}

#[test]
fn retriever_refuses_everything() {
    // Second line of defence: even bypassing our walk, nothing is fetched.
    for target in [
        "https://example.com/x.json",
        "file:///etc/passwd",
        "urn:d5:schema:resource_tags",
    ] {
        let err = jsonschema::options()
            .with_retriever(NoRetrieval)
            .build(&json!({"$ref": target}))
            .err()
            .unwrap_or_else(|| panic!("{target} was resolved"));
        assert!(err.to_string().contains("not allowed"), "{target}: {err}");
    }
}

#[test]
fn schema_size_and_depth_bounds() {
    let big = json!({"description": "x".repeat(MAX_SCHEMA_BYTES)});
    assert_eq!(
        compile(&big).unwrap_err(),
        SchemaError::TooLarge {
            max: MAX_SCHEMA_BYTES
        }
    );
    assert!(matches!(
        compile_str(&big.to_string()),
        Err(SchemaError::TooLarge { .. })
    ));

    // 64 levels are fine, 65 are not; the path names the first level too deep.
    let nest = |levels: usize| {
        let mut s = json!({"type": "string"});
        for _ in 1..levels {
            s = json!({ "items": s });
        }
        s
    };
    assert!(compile(&nest(MAX_SCHEMA_DEPTH)).is_ok());
    match compile(&nest(MAX_SCHEMA_DEPTH + 1)) {
        Err(SchemaError::TooDeep { path, max }) => {
            assert_eq!(max, MAX_SCHEMA_DEPTH);
            assert_eq!(path, "/items".repeat(MAX_SCHEMA_DEPTH));
        }
        other => panic!("expected TooDeep, got {other:?}"),
    }
    // 100,000 levels, text and value: refused, no stack overflow.
    let text = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(matches!(compile_str(&text), Err(SchemaError::Parse(_))));
    let deep = super::tests_hostile::deep_array(100_000);
    assert!(matches!(compile(&deep), Err(SchemaError::TooDeep { .. })));
    super::tests_hostile::drop_iteratively(deep);
}
