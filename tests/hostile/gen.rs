//! Seeded generators of hostile SQL argument expressions, one per argument
//! type, refined by argument name where the content matters (CSV rows,
//! tokens, digests, JSON Schemas). Every value is a SQL expression already
//! cast to the parameter's type, so a bad literal either reaches the function
//! or fails in Postgres' own input function — both must be clean errors.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;

/// Ids made by the test's setup, so some inputs are valid enough to get
/// past the first check of a function.
pub struct Known {
    pub tenant: String,
    pub other_tenant: String,
    pub suspended: String,
    pub account: String,
    pub other_account: String,
    pub token: String,
    pub other_token: String,
    pub digest: String,
}

pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn cast(lit: &str, ty: &str) -> String {
    format!("{}::{ty}", quote(lit))
}

fn pick<'a>(rng: &mut StdRng, xs: &[&'a str]) -> &'a str {
    xs.choose(rng).copied().unwrap_or("")
}

/// A random string of awkward characters (quotes, backslashes, controls,
/// non-BMP, combining marks, RTL, format specifiers, SQL fragments).
pub fn nasty_text(rng: &mut StdRng, max: usize) -> String {
    const PIECES: &[&str] = &[
        "'", "''", "\"", "\\", "\\\\", "\\x00", "\\u0000", "%s", "%n", "$1", "\t", "\n", "\r\n", "\u{7f}",
        "\u{1}", "é", "e\u{301}", "\u{202e}", "\u{feff}", "😀", "\u{10ffff}", "NULL", "null", ";", "--",
        "/*", "); DROP TABLE d5.tenants; --", "{", "}", "[", "]", ",", ".", "d5t1", "x_", " ", "\u{a0}",
        "𝕏", "\u{fffd}", "a", "Z", "0", "-1", "1e309", "NaN", "Infinity", "{\"a\":1}",
    ];
    let n = rng.gen_range(0..=max.min(40));
    let mut s = String::new();
    for _ in 0..n {
        s.push_str(pick(rng, PIECES));
    }
    s
}

fn big_int(rng: &mut StdRng) -> String {
    pick(
        rng,
        &[
            "0", "-1", "1", "2147483647", "-2147483648", "9223372036854775807", "-9223372036854775808",
            "9223372036854775808", "1e30", "-0", "99999999999999999999999999999999",
        ],
    )
    .to_owned()
}

fn timestamptz(rng: &mut StdRng) -> String {
    match rng.gen_range(0..10) {
        0 => "NULL::timestamptz".into(),
        1 => "now()".into(),
        2..=4 => cast(
            pick(
                rng,
                &[
                    "infinity", "-infinity", "epoch", "4713-01-01 00:00:00+00 BC", "294276-12-31 23:59:59+00",
                    "1900-01-01", "2024-02-29 12:00:00+14", "1970-01-01 00:00:00.000001+00", "0001-01-01 BC",
                    "2000-01-01 24:00:00", "allballs", "NaN", "2024-13-01", "", "yesterday", "9999-12-31 23:59:59.999999",
                ],
            ),
            "timestamptz",
        ),
        5 => format!("now() + {} * interval '1 day'", big_int(rng)),
        6 => cast(&nasty_text(rng, 6), "timestamptz"),
        _ => {
            let y = rng.gen_range(-4713i64..300_000);
            let (y, bc) = if y <= 0 { (1 - y, " BC") } else { (y, "") };
            cast(&format!("{y:04}-{:02}-{:02} {:02}:00:00+00{bc}", rng.gen_range(1..13), rng.gen_range(1..29), rng.gen_range(0..24)), "timestamptz")
        }
    }
}

fn date(rng: &mut StdRng) -> String {
    match rng.gen_range(0..8) {
        0 => "NULL::date".into(),
        1 => "current_date".into(),
        2..=4 => cast(
            pick(
                rng,
                &[
                    "infinity", "-infinity", "4713-01-01 BC", "5874897-12-31", "5874898-01-01", "1970-01-01",
                    "2024-02-29", "2023-02-29", "0000-01-01", "epoch", "", "today",
                ],
            ),
            "date",
        ),
        5 => format!("current_date + ({})::int", pick(rng, &["2147483647", "-2147483648", "1000000", "-1000000"])),
        _ => {
            let y = rng.gen_range(1i64..200_000);
            cast(&format!("{y:04}-{:02}-{:02}", rng.gen_range(1..13), rng.gen_range(1..29)), "date")
        }
    }
}

fn interval(rng: &mut StdRng) -> String {
    match rng.gen_range(0..6) {
        0 => "NULL::interval".into(),
        1..=3 => cast(
            pick(
                rng,
                &[
                    "1 second", "0", "-1 day", "366 days", "367 days", "1 microsecond", "-1 microsecond",
                    "178000000 years", "-178000000 years", "1 month", "1 year", "P1Y2M3DT4H", "infinity",
                    "2147483647 days", "2562047788 hours", "15 minutes ago", "", "NaN",
                ],
            ),
            "interval",
        ),
        4 => format!("make_interval(secs => {})", pick(rng, &["1e15", "-1e15", "'NaN'::float8", "'Infinity'::float8", "0.0000001"])),
        _ => cast(&format!("{} seconds", big_int(rng)), "interval"),
    }
}

fn uuid(rng: &mut StdRng, k: &Known) -> String {
    match rng.gen_range(0..10) {
        0 => "NULL::uuid".into(),
        1 => "gen_random_uuid()".into(),
        2 => cast(&k.tenant, "uuid"),
        3 => cast(pick(rng, &[&k.other_tenant, &k.suspended, &k.account, &k.other_account]), "uuid"),
        4 => "'00000000-0000-0000-0000-000000000000'::uuid".into(),
        5 => "'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid".into(),
        6 => cast(&k.tenant.to_uppercase().replace('-', ""), "uuid"),
        _ => cast(
            &pick(
                rng,
                &[
                    "not-a-uuid", "", "{00000000-0000-0000-0000-000000000000}", "0000000-0000-0000-0000-0000000000000",
                    "g0000000-0000-0000-0000-000000000000", "00000000-0000-0000-0000-00000000000", "😀",
                ],
            )
            .to_string(),
            "uuid",
        ),
    }
}

fn token(rng: &mut StdRng, k: &Known) -> String {
    let real = pick(rng, &[&k.token, &k.other_token]).to_owned();
    let t = match rng.gen_range(0..10) {
        0 => return "NULL::text".into(),
        1 => real,
        2 => real.to_uppercase(),
        3 => {
            // One character changed.
            let mut b = real.into_bytes();
            let i = rng.gen_range(0..b.len());
            b[i] = *b"AZaz09-_.=+/".choose(rng).unwrap();
            String::from_utf8_lossy(&b).into_owned()
        }
        4 => format!("d5t1.{}.{}.{}", k.tenant, big_int(rng), nasty_text(rng, 5)),
        5 => format!("d5t1.{}.99999999999.{}", k.tenant, "A".repeat(43)),
        6 => "x".repeat(rng.gen_range(200..5000)),
        7 => format!("{real}.{real}"),
        8 => real.replace('.', ".."),
        _ => nasty_text(rng, 20),
    };
    quote(&t)
}

const HDR: &str = "BilledCost,EffectiveCost,ListCost,ContractedCost,ChargePeriodStart,ChargePeriodEnd,\
BillingPeriodStart,BillingPeriodEnd,BillingAccountId,BillingCurrency,ChargeCategory,ServiceName,ProviderName";

/// FOCUS CSV: a valid skeleton with hostile fields, broken quoting, wrong
/// field counts, odd headers, and now and then a gigantic input.
pub fn focus_csv(rng: &mut StdRng) -> String {
    let cell = |rng: &mut StdRng, i: usize| -> String {
        if rng.gen_bool(0.8) {
            return match i {
                0..=3 => pick(rng, &["1.5", "0", "-3.25", "1e1000", "1e-1000", "123456789012345678901234567890.123456789"]).into(),
                4 | 6 => pick(rng, &["2024-09-01T00:00:00Z", "0001-01-01", "9999-12-31T23:00:00Z", "2024-09-18 22:00:00+14:00"]).into(),
                5 | 7 => pick(rng, &["2024-10-01T00:00:00Z", "9999-12-31T23:59:59Z", "2024-09-18T23:00:00-12:00"]).into(),
                8 => pick(rng, &["acct-1", "x", "\"quoted, acct\""]).into(),
                9 => pick(rng, &["USD", "eur", "XXX"]).into(),
                10 => pick(rng, &["Usage", "Purchase", "Tax", "Credit", "Adjustment"]).into(),
                _ => pick(rng, &["EC2", "S3", "AWS"]).into(),
            };
        }
        match rng.gen_range(0..6) {
            0 => String::new(),
            1 => pick(rng, &["NaN", "Infinity", "1,5", "1e1001", "2024-02-30", "24:61", "-", "\"", "\"\"\""]).into(),
            2 => format!("\"{}\"", nasty_text(rng, 10).replace('"', "\"\"")),
            3 => nasty_text(rng, 8),
            4 => "9".repeat(rng.gen_range(100..3000)),
            _ => format!("\"{{\"\"k\"\":{}}}\"", "[".repeat(rng.gen_range(1..200))),
        }
    };
    let mut header: Vec<String> = HDR.split(',').map(str::to_owned).collect();
    match rng.gen_range(0..10) {
        0 => header.push("Tags".into()),
        1 => header.swap(rng.gen_range(0..13), rng.gen_range(0..13)),
        2 => {
            header.remove(rng.gen_range(0..13));
        }
        3 => header.push(header[0].to_lowercase()),
        4 => header.extend((0..rng.gen_range(1..2000)).map(|i| format!("x_col{i}"))),
        5 => header[0] = format!("\u{feff}{}", header[0]),
        _ => {}
    }
    let huge = rng.gen_ratio(1, 60);
    let rows = if huge { rng.gen_range(5_000..20_000) } else { rng.gen_range(0..12) };
    let mut out = header.join(",");
    out.push_str(pick(rng, &["\n", "\r\n", "\r", ""]));
    for _ in 0..rows {
        let n = if rng.gen_ratio(1, 10) { rng.gen_range(0..20) } else { header.len() };
        let cells: Vec<String> = (0..n).map(|i| cell(rng, i)).collect();
        out.push_str(&cells.join(","));
        out.push_str(if rng.gen_ratio(1, 20) { "\r\n" } else { "\n" });
    }
    if rng.gen_ratio(1, 8) {
        // No final newline, odd last bytes (",-0" once made the reader loop forever).
        while out.ends_with(['\n', '\r']) {
            out.pop();
        }
        out.push_str(pick(rng, &[",-0", ",\"#\"", ",\"a\"\"#b\"", ",\u{b}", "\"", ",", "-"]));
    }
    if huge && rng.gen_bool(0.5) {
        out.push('"');
        out.push_str(&"z".repeat(3_000_000)); // unterminated quote spanning megabytes
    }
    out
}

/// jsonb documents: scalars, deep nesting, wide and huge objects, lone
/// surrogates and \u0000 (refused by jsonb_in), digest- and schema-shaped
/// documents with hostile members.
pub fn jsonb(rng: &mut StdRng, arg: &str, k: &Known) -> String {
    if rng.gen_ratio(1, 12) {
        return "NULL::jsonb".into();
    }
    let depth = *[10, 100, 1000, 5000, 20_000].choose(rng).unwrap();
    let text = match rng.gen_range(0..12) {
        0 => pick(rng, &["{}", "[]", "null", "0", "\"s\"", "true", "-0", "1e1000", "{\"a\":\"\\u0000\"}", "{\"a\":\"\\ud800\"}", "", "{", "{\"a\":1,\"a\":2}"]).into(),
        1 => format!("{}1{}", "[".repeat(depth), "]".repeat(depth)),
        2 => format!("{}{}", "{\"a\":".repeat(depth), format!("1{}", "}".repeat(depth))),
        3 => {
            let n = rng.gen_range(1..50_000);
            format!("{{{}}}", (0..n).map(|i| format!("\"k{i}\":{i}")).collect::<Vec<_>>().join(","))
        }
        4 => format!("{{\"s\":\"{}\"}}", "x".repeat(rng.gen_range(1..1_500_000))),
        5 => k.digest.clone(),
        6 => {
            let hash = pick(rng, &["00", &"0".repeat(64), &"G".repeat(64), "", &"a".repeat(6400)]).to_owned();
            let seq = big_int(rng);
            let tenant = pick(rng, &[&k.tenant, "x", "", "00000000-0000-0000-0000-000000000000"]).to_owned();
            let entry = format!("{{\"tenant_id\":\"{tenant}\",\"seq\":{seq},\"hash\":\"{hash}\"}}");
            let n = rng.gen_range(0..4);
            let chains = vec![entry; n].join(",");
            let format = pick(rng, &["d5-audit-digest-v1", "d5-audit-digest-v2", ""]);
            format!("{{\"format\":\"{format}\",\"chains\":[{chains}]}}")
        }
        7 => pick(
            rng,
            &[
                "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\",\"maximum\":1e308}}}",
                "{\"$ref\":\"#\"}",
                "{\"$ref\":\"#/definitions/nope\"}",
                "{\"$ref\":\"http://127.0.0.1:9/schema.json\"}",
                "{\"pattern\":\"(a+)+$\"}",
                "{\"pattern\":\"[\"}",
                "{\"type\":\"nonsense\"}",
                "{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\",\"minLength\":-1}",
                "{\"format\":\"email\",\"type\":\"string\"}",
                "{\"allOf\":[{\"$ref\":\"#/allOf/0\"}]}",
                "{\"enum\":[]}",
                "{\"multipleOf\":0}",
                "{\"multipleOf\":1e-300}",
                "true",
                "false",
            ],
        )
        .into(),
        8 => format!("{{\"amount\":{},\"currency\":\"USD\",\"period\":\"monthly\"}}", big_int(rng)),
        9 => format!("{{\"a\":{}}}", quote_json(&nasty_text(rng, 30))),
        10 if arg == "schema" => {
            format!("{{\"properties\":{}}}", "{\"a\":{\"properties\":".repeat(depth.min(2000)) + "{}" + &"}}".repeat(depth.min(2000)))
        }
        _ => format!("[{}]", (0..rng.gen_range(0..200)).map(|_| big_int(rng)).collect::<Vec<_>>().join(",")),
    };
    cast(&text, "jsonb")
}

fn quote_json(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

fn regclass(rng: &mut StdRng) -> String {
    match rng.gen_range(0..4) {
        0 => "NULL::regclass".into(),
        1 => format!("{}::oid::regclass", pick(rng, &["0", "1", "4294967295", "1259"])),
        _ => cast(
            pick(
                rng,
                &[
                    "d5.tenants", "d5.audit_log", "d5.cost_metrics_raw", "d5.cost_metrics_raw_default", "pg_class",
                    "pg_catalog.pg_authid", "public.hostile_t", "public.hostile_no_tenant", "public.hostile_v",
                    "d5.tenant_token_key", "no_such_table", "\"D5\".\"TENANTS\"", "d5.json_schemas", "",
                ],
            ),
            "regclass",
        ),
    }
}

/// One argument expression for a parameter `name` of SQL type `ty`.
pub fn arg(rng: &mut StdRng, func: &str, name: &str, ty: &str, k: &Known) -> String {
    if rng.gen_ratio(1, 25) {
        return format!("NULL::{ty}");
    }
    match (name, ty) {
        (_, "uuid") => uuid(rng, k),
        (_, "timestamp with time zone") => timestamptz(rng),
        (_, "date") => date(rng),
        (_, "interval") => interval(rng),
        (_, "jsonb") => jsonb(rng, name, k),
        (_, "regclass") => regclass(rng),
        ("token", _) => token(rng, k),
        ("rows", _) => quote(&focus_csv(rng)),
        ("format", _) => quote(pick(rng, &["csv", "CSV", "json", "parquet", "", " csv", "csv\u{0}"]).trim_end_matches('\u{0}')),
        ("plan", _) => quote(pick(rng, &["free", "starter", "pro", "enterprise", "PRO", "", "gold", "pro "])),
        ("app_privileges", _) => quote(pick(rng, &["SELECT", "ALL", "SELECT, INSERT", "TRUNCATE", "SELECT; DROP TABLE d5.tenants", "", "REFERENCES, TRIGGER", "SELECT ON d5.audit_log TO PUBLIC"])),
        ("chain_column" | "col", "name") => cast(pick(rng, &["tenant_id", "id", "", "no_such_col", "tags", "thresholds", &"x".repeat(100)]), "name"),
        ("name" | "schema_name", "text") if func.contains("json") => {
            quote(pick(rng, &["resource_tags", "policy_thresholds", "recommendation_impact", "", "nope", &"s".repeat(10_000)]))
        }
        (_, "name") => cast(&nasty_text(rng, 10), "name"),
        (_, "text") => match rng.gen_range(0..30) {
            0 => quote(&"x".repeat(rng.gen_range(100_000..2_000_000))),
            1..=3 => "convert_from('\\xc3'::bytea, 'UTF8')".into(), // invalid UTF-8: refused by Postgres
            4 => "chr(0)".into(),
            _ => quote(&nasty_text(rng, 40)),
        },
        (_, "integer" | "bigint" | "smallint") => format!("({})::{ty}", big_int(rng)),
        (_, "boolean") => pick(rng, &["true", "false", "NULL::boolean", "'maybe'::boolean"]).into(),
        _ => format!("NULL::{ty}"),
    }
}
