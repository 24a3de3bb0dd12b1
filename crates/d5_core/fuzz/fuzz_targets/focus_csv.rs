//! FOCUS CSV reader: never panics, and what it reports is consistent.
//!
//! * accepted + rejected = rows handed out; the summary's counts agree;
//! * line numbers strictly increase; a reject's raw text is part of the input;
//! * an accepted row has every mandatory column, ordered periods, one COPY
//!   line with exactly RAW_COLUMN_COUNT fields, and timestamps that re-parse
//!   to the same instant;
//! * the digest is SHA-256 of the accepted COPY lines;
//! * normalizing is idempotent: writing an accepted row back as CSV (under
//!   the canonical header) and reading it again gives the same COPY line.
#![no_main]

use d5_core::focus::{
    parse_timestamp_micros, timestamp_micros_to_string, Col, FocusReader, RAW_COLUMNS, RAW_COLUMN_COUNT,
};
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

fn csv_quote(v: &str, out: &mut String) {
    out.push('"');
    out.push_str(&v.replace('"', "\"\""));
    out.push('"');
}

fn canonical_csv(values: &[Option<String>]) -> String {
    let header: Vec<&str> = RAW_COLUMNS.iter().map(|s| s.focus_name).collect();
    let mut out = header.join(",");
    out.push('\n');
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        if let Some(v) = v {
            csv_quote(v, &mut out);
        }
    }
    out.push('\n');
    out
}

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    let input: &str = &input;
    let Ok(mut reader) = FocusReader::new(input) else { return };
    let range = input.as_ptr() as usize..input.as_ptr() as usize + input.len() + 1;
    let (mut accepted, mut rejected, mut last_line) = (0u64, 0u64, 0u64);
    let mut hasher = Sha256::new();
    let mut reprints: Vec<(Vec<Option<String>>, String)> = Vec::new();
    while let Some(r) = reader.next_row() {
        match r {
            Ok(row) => {
                accepted += 1;
                assert!(row.line_number() > last_line, "line numbers go back");
                last_line = row.line_number();
                for spec in RAW_COLUMNS.iter().filter(|s| s.mandatory) {
                    let col = Col::from_name(spec.name).unwrap();
                    assert!(row.get(col).is_some(), "mandatory {} is NULL", spec.name);
                }
                assert!(row.charge_period_end_micros() >= row.charge_period_start_micros());
                assert!(row.billing_period_end_micros() >= row.billing_period_start_micros());
                let copy = row.copy_text_str();
                assert!(copy.ends_with('\n') && copy.matches('\n').count() == 1, "COPY line: {copy:?}");
                assert_eq!(copy.matches('\t').count(), RAW_COLUMN_COUNT - 1, "COPY fields: {copy:?}");
                for (col, micros) in [
                    (Col::ChargePeriodStart, row.charge_period_start_micros()),
                    (Col::ChargePeriodEnd, row.charge_period_end_micros()),
                    (Col::BillingPeriodStart, row.billing_period_start_micros()),
                    (Col::BillingPeriodEnd, row.billing_period_end_micros()),
                ] {
                    let text = row.get(col).unwrap();
                    assert_eq!(text, timestamp_micros_to_string(micros));
                    assert_eq!(parse_timestamp_micros(text), Ok(micros), "{text} does not re-parse");
                }
                hasher.update(row.copy_text());
                if reprints.len() < 4 {
                    let vals = row.values().map(|v| v.map(str::to_owned)).collect();
                    reprints.push((vals, copy.to_owned()));
                }
            }
            Err(rej) => {
                rejected += 1;
                assert!(rej.line_number > last_line, "line numbers go back");
                last_line = rej.line_number;
                assert!(rej.line_number >= 2, "a data row on the header line");
                let p = rej.raw_line.as_ptr() as usize;
                assert!(range.contains(&p) && range.contains(&(p + rej.raw_line.len())));
                let cut = rej.raw_line_truncated(7);
                assert!(cut.len() <= 7 && rej.raw_line.starts_with(cut));
                assert!(!rej.reason.is_empty());
            }
        }
    }
    let summary = reader.finish();
    assert_eq!((summary.rows_accepted, summary.rows_rejected), (accepted, rejected));
    assert_eq!(summary.digest, hex::encode(hasher.finalize()));
    assert!(summary.billing_periods.len() as u64 <= accepted);
    assert_eq!(summary.min_charge_period_start.is_some(), accepted > 0);
    assert!(summary.min_charge_period_start <= summary.max_charge_period_start);
    for (vals, copy) in reprints {
        let text = canonical_csv(&vals);
        let mut again = FocusReader::new(&text).expect("canonical header");
        match again.next_row() {
            Some(Ok(row)) => assert_eq!(row.copy_text_str(), copy, "re-read of {text:?}"),
            Some(Err(rej)) => panic!("re-read of {text:?} rejected: {}", rej.reason),
            None => panic!("re-read of {text:?} found no row"),
        }
    }
});
