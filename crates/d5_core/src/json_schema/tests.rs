use super::*;
use serde_json::json;

fn shipped(name: &str) -> CompiledSchema {
    let text = SHIPPED
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .unwrap_or_else(|| panic!("no shipped schema {name}"));
    compile_str(text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Paths of all violations, in reported order.
fn paths(schema: &CompiledSchema, doc: &Value) -> Vec<String> {
    schema
        .errors(doc, 100)
        .into_iter()
        .map(|v| v.path)
        .collect()
}

/// Assert invalid, reported exactly at `expected` paths, and each message mentions `needle`.
fn assert_fails(schema: &CompiledSchema, doc: Value, expected: &[&str], needle: &str) {
    assert!(!schema.is_valid(&doc), "should be invalid: {doc}");
    let errs = schema.errors(&doc, 100);
    let got: Vec<&str> = errs.iter().map(|v| v.path.as_str()).collect();
    assert_eq!(got, expected, "paths for {doc}: {errs:#?}");
    for v in &errs {
        assert!(
            v.message.contains(needle),
            "{:?} lacks {needle:?}",
            v.message
        );
    }
}

#[test]
fn shipped_schemas_compile_with_urn_ids_and_docs() {
    assert_eq!(SHIPPED.len(), 3);
    for (name, text) in SHIPPED {
        let value: Value = serde_json::from_str(text).unwrap();
        assert_eq!(value["$id"], json!(format!("urn:d5:schema:{name}")));
        assert_eq!(
            value["$schema"],
            json!("https://json-schema.org/draft/2020-12/schema")
        );
        assert!(value["title"].is_string() && value["description"].is_string());
        assert_eq!(shipped(name).draft(), "draft 2020-12");
    }
}

#[test]
fn resource_tags_valid() {
    let tags = shipped("resource_tags");
    let long_key = "k".repeat(128);
    let long_value = "v".repeat(256);
    for doc in [
        json!({}),
        json!({"cost-center": "CC-1234", "Name": "web server 1", "env": ""}),
        json!({"kubernetes.io/cluster/prod": "owned", "a+b=c@d_e.f:g": "x/y"}),
        json!({"Größe": "groß", "部署": "生产", "équipe": "données 2"}),
        json!({ long_key: long_value }),
        json!({"awsome": "not the reserved prefix", "my:aws:x": "ok"}),
    ] {
        assert!(tags.is_valid(&doc), "{doc}: {:?}", tags.errors(&doc, 10));
    }
    let fifty: serde_json::Map<String, Value> =
        (0..50).map(|i| (format!("k{i}"), json!("v"))).collect();
    assert!(tags.is_valid(&Value::Object(fifty)));
}

#[test]
fn resource_tags_invalid_paths() {
    let tags = shipped("resource_tags");
    assert_fails(&tags, json!(["a"]), &[""], "type");
    assert_fails(
        &tags,
        json!({"aws:createdBy": "x"}),
        &["/aws:createdBy"],
        "invalid key",
    );
    assert_fails(&tags, json!({"AwS:x": "x"}), &["/AwS:x"], "must not match");
    assert_fails(&tags, json!({"bad!": "x"}), &["/bad!"], "does not match");
    assert_fails(&tags, json!({"a~b": "x"}), &["/a~0b"], "invalid key");
    // Empty key: both minLength and the `+` pattern object to it.
    assert_fails(&tags, json!({"": "x"}), &["/", "/"], "invalid key");
    let long = "k".repeat(129);
    assert_fails(
        &tags,
        json!({ long.clone(): "x" }),
        &[&format!("/{long}")],
        "longer than 128 characters",
    );
    assert_fails(
        &tags,
        json!({"k": "v".repeat(257)}),
        &["/k"],
        "257 characters",
    );
    assert_fails(
        &tags,
        json!({"k": "line\nbreak"}),
        &["/k"],
        "does not match",
    );
    assert_fails(&tags, json!({"k": 5}), &["/k"], "is not of type \"string\"");
    assert_fails(
        &tags,
        json!({"k": {"nested": "x"}}),
        &["/k"],
        "an object (1 key)",
    );
    assert_fails(&tags, json!({"k": null}), &["/k"], "null");
    let fifty_one: serde_json::Map<String, Value> =
        (0..51).map(|i| (format!("k{i}"), json!("v"))).collect();
    assert_fails(&tags, Value::Object(fifty_one), &[""], "more than 50");
    // Several problems, sorted by path.
    let doc = json!({"z": 1, "a": 2, "aws:m": "x"});
    assert_eq!(paths(&tags, &doc), ["/a", "/aws:m", "/z"]);
}

#[test]
fn recommendation_impact_valid_and_invalid() {
    let ri = shipped("recommendation_impact");
    let full = json!({
        "estimated_monthly_savings": 120.5, "currency": "USD", "confidence": 0.8,
        "effort": "low", "estimated_monthly_cost_before": 300,
        "estimated_monthly_cost_after": 179.5, "basis": "rightsizing m5.2xlarge -> m5.xlarge",
        "x_source": {"tool": "d5", "run": 7}
    });
    assert!(ri.is_valid(&full), "{:?}", ri.errors(&full, 10));
    let minimal = json!({"estimated_monthly_savings": 0, "currency": "EUR", "confidence": 1});
    assert!(ri.is_valid(&minimal));

    assert_fails(
        &ri,
        json!({"estimated_monthly_savings": 1, "confidence": 0.5}),
        &[""],
        "\"currency\" is a required property",
    );
    let with = |k: &str, v: Value| {
        let mut d = minimal.clone();
        d[k] = v;
        d
    };
    assert_fails(
        &ri,
        with("estimated_monthly_savings", json!(-1)),
        &["/estimated_monthly_savings"],
        "minimum",
    );
    assert_fails(
        &ri,
        with("estimated_monthly_savings", json!("12")),
        &["/estimated_monthly_savings"],
        "type",
    );
    assert_fails(
        &ri,
        with("currency", json!("usd")),
        &["/currency"],
        "does not match",
    );
    assert_fails(
        &ri,
        with("currency", json!("EURO")),
        &["/currency"],
        "does not match",
    );
    assert_fails(
        &ri,
        with("confidence", json!(1.5)),
        &["/confidence"],
        "maximum",
    );
    assert_fails(
        &ri,
        with("confidence", json!("high")),
        &["/confidence"],
        "type",
    );
    assert_fails(
        &ri,
        with("effort", json!("huge")),
        &["/effort"],
        "is not one of",
    );
    assert_fails(
        &ri,
        with("estimated_monthly_cost_after", json!(-0.01)),
        &["/estimated_monthly_cost_after"],
        "minimum",
    );
    assert_fails(
        &ri,
        with("estimated_savings", json!(3)),
        &[""],
        "estimated_savings",
    );
    assert_fails(
        &ri,
        with("X_vendor", json!(3)),
        &[""],
        "Additional properties",
    );
}

#[test]
fn policy_thresholds_valid_and_invalid() {
    let pt = shipped("policy_thresholds");
    let full = json!({
        "amount": 1000, "currency": "EUR", "period": "monthly",
        "alert_percentages": [50, 80, 100, 120.5], "forecast": true,
        "notify": ["finops@example.com", "#cost-alerts"], "x_owner": "team-a"
    });
    assert!(pt.is_valid(&full), "{:?}", pt.errors(&full, 10));
    let minimal = json!({"amount": 0.01, "currency": "JPY", "period": "yearly"});
    assert!(pt.is_valid(&minimal));

    let all = pt.errors(&json!({}), 10);
    assert_eq!(all.len(), 3);
    assert!(all
        .iter()
        .all(|v| v.path.is_empty() && v.message.contains("required")));
    let with = |k: &str, v: Value| {
        let mut d = minimal.clone();
        d[k] = v;
        d
    };
    assert_fails(&pt, with("amount", json!(0)), &["/amount"], "minimum");
    assert_fails(
        &pt,
        with("period", json!("biweekly")),
        &["/period"],
        "is not one of",
    );
    assert_fails(
        &pt,
        with("alert_percentages", json!([])),
        &["/alert_percentages"],
        "",
    );
    assert_fails(
        &pt,
        with("alert_percentages", json!([50, 50])),
        &["/alert_percentages"],
        "unique",
    );
    assert_fails(
        &pt,
        with("alert_percentages", json!([0, 10, 1001])),
        &["/alert_percentages/0", "/alert_percentages/2"],
        "imum",
    );
    assert_fails(
        &pt,
        with("alert_percentages", json!((1..=11).collect::<Vec<_>>())),
        &["/alert_percentages"],
        "",
    );
    assert_fails(
        &pt,
        with("forecast", json!("yes")),
        &["/forecast"],
        "boolean",
    );
    assert_fails(
        &pt,
        with("notify", json!(["ok", ""])),
        &["/notify/1"],
        "shorter",
    );
    assert_fails(
        &pt,
        with("budget", json!(1)),
        &[""],
        "Additional properties",
    );
}

#[test]
fn errors_sorted_numerically_and_capped() {
    let s = compile(&json!({"type": "array", "items": {"type": "string"}})).unwrap();
    let doc = json!((0..12).collect::<Vec<_>>());
    let (errs, total) = s.errors_counted(&doc, 3);
    assert_eq!(total, 12);
    assert_eq!(
        errs.iter().map(|v| v.path.as_str()).collect::<Vec<_>>(),
        ["/0", "/1", "/2"]
    );
    let all = paths(&s, &doc);
    assert_eq!(all[2], "/2");
    assert_eq!(all[10], "/10");
    let detail = format_detail(&errs, total);
    assert_eq!(
        detail,
        "/0: 0 is not of type \"string\"\n/1: 1 is not of type \"string\"\n\
         /2: 2 is not of type \"string\"\n… and 9 more"
    );
    assert_eq!(s.errors(&doc, 0), vec![]);
}

#[test]
fn format_detail_root_and_empty() {
    let v = vec![Violation {
        path: String::new(),
        message: "\"a\" is a required property".into(),
    }];
    assert_eq!(format_detail(&v, 1), "/: \"a\" is a required property");
    assert_eq!(format_detail(&[], 0), "");
    assert_eq!(format_detail(&[], 4), "… and 4 more");
}

#[test]
fn long_values_are_abbreviated_in_messages() {
    let tags = shipped("resource_tags");
    let errs = tags.errors(&json!({"k": "x".repeat(100_000)}), 5);
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].message.contains("100000 characters"),
        "{}",
        errs[0].message
    );
    assert!(errs[0].message.len() <= MAX_MESSAGE_BYTES + 3);
}

#[test]
fn tenant_tag_policy_is_a_separate_schema() {
    // The extension checks tags against the shipped schema AND the tenant's own;
    // the tenant schema need not (and cannot) $ref the shipped one.
    let tenant = compile(&json!({
        "type": "object",
        "required": ["cost-center"],
        "properties": {"cost-center": {"type": "string", "pattern": "^[A-Z]{2}-[0-9]{4}$"}}
    }))
    .unwrap();
    let tags = shipped("resource_tags");
    let ok = json!({"cost-center": "FI-1234", "env": "prod"});
    assert!(tags.is_valid(&ok) && tenant.is_valid(&ok));

    let missing = json!({"env": "prod"});
    assert!(tags.is_valid(&missing));
    let errs = tenant.errors(&missing, 10);
    assert_eq!(
        errs,
        vec![Violation {
            path: String::new(),
            message: "\"cost-center\" is a required property".into()
        }]
    );
    assert_eq!(
        format_detail(&errs, 1),
        "/: \"cost-center\" is a required property"
    );

    let bad = json!({"cost-center": "x"});
    assert!(tags.is_valid(&bad));
    let errs = tenant.errors(&bad, 10);
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].path, "/cost-center");
    assert_eq!(
        errs[0].message,
        "\"x\" does not match \"^[A-Z]{2}-[0-9]{4}$\""
    );

    let combined =
        json!({"allOf": [{"$ref": "urn:d5:schema:resource_tags"}], "required": ["cost-center"]});
    assert!(matches!(
        compile(&combined),
        Err(SchemaError::ExternalRef { .. })
    ));
}

#[test]
fn document_depth_check() {
    assert!(check_document_depth(&json!({"a": [1, {"b": 2}]}), 3).is_ok());
    let err = check_document_depth(&json!({"a": [1, {"b": []}]}), 3).unwrap_err();
    assert_eq!(
        err,
        DepthError {
            path: "/a/1/b".into(),
            max: 3
        }
    );
    assert_eq!(
        err.to_string(),
        "document nesting is deeper than 3 levels (at /a/1/b)"
    );
    assert!(check_document_depth(&json!("scalar"), 0).is_ok());
    let e = check_document_depth(&json!([]), 0).unwrap_err();
    assert_eq!(
        e.to_string(),
        "document nesting is deeper than 0 levels (at /)"
    );
    let deep = super::tests_hostile::deep_array(100_000);
    assert!(check_document_depth(&deep, DEFAULT_MAX_DOCUMENT_DEPTH).is_err());
    super::tests_hostile::drop_iteratively(deep);
}
