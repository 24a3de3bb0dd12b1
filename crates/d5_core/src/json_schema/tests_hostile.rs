//! Hostile inputs and the (ignored) speed measurement.

use super::*;
use serde_json::json;
use std::hint::black_box;
use std::time::Instant;

/// `[[[...]]]` `levels` deep, built without recursion.
pub(super) fn deep_array(levels: usize) -> Value {
    let mut v = json!([]);
    for _ in 1..levels {
        v = Value::Array(vec![v]);
    }
    v
}

/// serde_json drops recursively; take deep values apart by hand.
pub(super) fn drop_iteratively(v: Value) {
    let mut stack = vec![v];
    while let Some(mut v) = stack.pop() {
        match &mut v {
            Value::Array(items) => stack.append(items),
            Value::Object(map) => stack.extend(std::mem::take(map).into_iter().map(|(_, c)| c)),
            _ => {}
        }
    }
}

/// xorshift64*: deterministic, no dependency.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

const ATOMS: &[&str] = &[
    "null",
    "true",
    "false",
    "0",
    "-0",
    "1e400",
    "-1e400",
    "1e-400",
    "123456789012345678901234567890",
    "1.7976931348623157e308",
    "-9223372036854775809",
    "18446744073709551616",
    "0.1",
    "-5",
    "\"\"",
    "\"\\ud800\"",
    "\"\\udfff\"",
    "\"\\ud83d\\ude00\"",
    "\"\\u0000\"",
    "\"aws:x\"",
    "\"\u{202e}rtl\u{200b}\"",
    "\"é中🙂\"",
    "\"\\n\\t\"",
    "\"CC-1234\"",
    "\"USD\"",
    "\"monthly\"",
];
const KEYS: &[&str] = &[
    "",
    "aws:x",
    "AWS:y",
    "cost-center",
    "~/",
    "é",
    "\\ud800",
    "estimated_monthly_savings",
    "currency",
    "confidence",
    "amount",
    "period",
    "alert_percentages",
    "notify",
    "x_ok",
    "a\\u0000b",
];

/// Random JSON-ish text: mostly valid, sometimes broken on purpose.
pub(super) fn random_text(rng: &mut Rng, budget: &mut usize, depth: usize, out: &mut String) {
    *budget = budget.saturating_sub(1);
    let pick = if *budget == 0 || depth > 140 {
        0
    } else {
        rng.below(10)
    };
    match pick {
        0..=3 => out.push_str(ATOMS[rng.below(ATOMS.len() as u64) as usize]),
        4 => {
            let n = [1usize, 50, 300, 70_000][rng.below(4) as usize];
            out.push('"');
            for _ in 0..n {
                out.push(['a', ' ', 'é', '!', '中'][rng.below(5) as usize]);
            }
            out.push('"');
        }
        5..=6 => {
            out.push('[');
            for i in 0..rng.below(6) {
                if i > 0 {
                    out.push(',');
                }
                random_text(rng, budget, depth + 1, out);
            }
            out.push(']');
        }
        7..=8 => {
            out.push('{');
            for i in 0..rng.below(60) {
                if i > 0 {
                    out.push(',');
                }
                let key = KEYS[rng.below(KEYS.len() as u64) as usize];
                out.push_str(&format!(
                    "\"{key}{}\":",
                    if rng.below(3) == 0 {
                        i.to_string()
                    } else {
                        String::new()
                    }
                ));
                random_text(rng, budget, depth + 1, out);
            }
            out.push('}');
        }
        _ => out.push_str(
            ["[", "{\"a\":", "\"\\ud800", "tru", "1e", "]", "\"\\uZZZZ\""][rng.below(7) as usize],
        ),
    }
}

/// The shipped schemas and a few with recursion, oneOf, draft-07 tuples.
pub(super) fn all_test_schema_values() -> Vec<Value> {
    let mut schemas: Vec<Value> = SHIPPED
        .iter()
        .map(|(_, text)| serde_json::from_str(text).unwrap())
        .collect();
    schemas.extend([
        json!({"type": "object", "required": ["cost-center"],
               "properties": {"cost-center": {"type": "string", "pattern": "^[A-Z]{2}-[0-9]{4}$"}}}),
        json!({"$defs": {"node": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"$ref": "#/$defs/node"}}]}},
               "$ref": "#/$defs/node"}),
        json!({"oneOf": [{"type": "number", "multipleOf": 0.01}, {"type": "string", "format": "email"}],
               "uniqueItems": true, "propertyNames": {"maxLength": 3}}),
        json!({"$schema": "http://json-schema.org/draft-07/schema#", "items": [{"const": 1e308}], "additionalItems": {"enum": [null, "\u{0}"]}}),
    ]);
    schemas
}

fn all_test_schemas() -> Vec<CompiledSchema> {
    all_test_schema_values().iter().map(|s| compile(s).unwrap()).collect()
}

#[test]
fn hostile_documents_never_panic() {
    let schemas = all_test_schemas();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut parsed, mut refused_parse, mut refused_depth) = (0, 0, 0);
    let mut texts: Vec<String> = vec![
        "1e400".into(),
        "-1e400".into(),
        "[1e400]".into(),
        "\"\\ud800\"".into(),
        "{\"\\ud800\": \"\\udc00\"}".into(),
        format!("\"{}\"", "z".repeat(1 << 20)),
        format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000)),
        format!(
            "{}{}",
            "{\"a\":".repeat(127),
            "1".to_owned() + &"}".repeat(127)
        ),
        "{\"a\":1,\"a\":2}".into(),
        "\u{feff}{}".into(),
        "".into(),
        "  ".into(),
    ];
    for _ in 0..400 {
        let mut text = String::new();
        random_text(&mut rng, &mut 400, 0, &mut text);
        texts.push(text);
    }
    assert!(texts.len() >= 200);
    for text in &texts {
        let Ok(doc) = serde_json::from_str::<Value>(text) else {
            refused_parse += 1;
            continue;
        };
        parsed += 1;
        if check_document_depth(&doc, DEFAULT_MAX_DOCUMENT_DEPTH).is_err() {
            refused_depth += 1;
            continue;
        }
        for s in &schemas {
            let valid = s.is_valid(&doc);
            let (errs, total) = s.errors_counted(&doc, 5);
            assert_eq!(
                valid,
                total == 0,
                "is_valid disagrees with errors for {text:.200}"
            );
            assert!(errs.len() <= 5 && errs.len() <= total);
            for e in &errs {
                assert!(
                    e.message.len() <= MAX_MESSAGE_BYTES + 3 && e.path.len() <= MAX_PATH_BYTES + 3
                );
            }
            let _ = format_detail(&errs, total);
        }
    }
    // Programmatic values bypass the parser's recursion limit.
    let deep = deep_array(100_000);
    assert!(check_document_depth(&deep, DEFAULT_MAX_DOCUMENT_DEPTH).is_err());
    drop_iteratively(deep);
    println!(
        "hostile: {parsed} parsed, {refused_parse} refused by parser, {refused_depth} too deep"
    );
    assert!(
        parsed >= 200,
        "only {parsed} hostile documents reached validation"
    );
}

/// A realistic ~1 KB tag set of 30 tags.
pub(super) fn realistic_tags() -> Value {
    let mut m = serde_json::Map::new();
    let fixed = [
        ("cost-center", "FI-1234"),
        ("env", "production"),
        ("team", "platform-infra"),
        ("owner", "jane.doe@example.com"),
        ("app", "checkout-service"),
        ("Name", "web server 01"),
        ("kubernetes.io/cluster/prod-eu", "owned"),
        ("project", "d5 storage"),
        ("tier", "backend"),
        ("data-classification", "confidential"),
        ("backup", "daily"),
        ("compliance", "iso27001"),
    ];
    for (k, v) in fixed {
        m.insert(k.into(), json!(v));
    }
    for i in 0..18 {
        m.insert(
            format!("custom:tag-{i:02}"),
            json!(format!("value number {i} for reporting")),
        );
    }
    Value::Object(m)
}

/// `cargo test -p d5_core --release json_schema::tests_hostile::bench -- --ignored --nocapture`
#[test]
#[ignore]
fn bench() {
    let text = SHIPPED[0].1;
    let doc = realistic_tags();
    let bytes = doc.to_string().len();
    let tags = compile_str(text).unwrap();
    assert!(tags.is_valid(&doc), "{:?}", tags.errors(&doc, 5));

    let n = 2_000;
    let t = Instant::now();
    for _ in 0..n {
        black_box(compile_str(black_box(text)).unwrap());
    }
    let compile_ns = t.elapsed().as_nanos() / n;
    let value: Value = serde_json::from_str(text).unwrap();
    let t = Instant::now();
    for _ in 0..n {
        black_box(compile(black_box(&value)).unwrap());
    }
    let compile_value_ns = t.elapsed().as_nanos() / n;

    let n = 1_000_000;
    let t = Instant::now();
    for _ in 0..n {
        black_box(tags.is_valid(black_box(&doc)));
    }
    let valid_ns = t.elapsed().as_nanos() / n;

    let mut bad = doc.clone();
    bad["aws:x"] = json!(1);
    let n = 100_000;
    let t = Instant::now();
    for _ in 0..n {
        black_box(tags.errors(black_box(&bad), 20));
    }
    let errors_ns = t.elapsed().as_nanos() / n;
    let t = Instant::now();
    for _ in 0..n {
        black_box(check_document_depth(black_box(&doc), DEFAULT_MAX_DOCUMENT_DEPTH).is_ok());
    }
    let depth_ns = t.elapsed().as_nanos() / n;
    println!(
        "tags doc {bytes} bytes, {} tags: is_valid {valid_ns} ns; errors(invalid, 2 violations) {errors_ns} ns; \
         check_document_depth {depth_ns} ns; compile_str {compile_ns} ns; compile(&Value) {compile_value_ns} ns",
        doc.as_object().map_or(0, |m| m.len())
    );
}
