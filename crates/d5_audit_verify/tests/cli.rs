//! End-to-end tests of the `d5-audit-verify` binary: a generated export
//! passes; each kind of tampering fails with exit 1 and the right
//! first_bad_seq; malformed input and bad usage exit 2.

use std::path::PathBuf;
use std::process::{Command, Output};

use d5_audit_verify::generate::{digest_json, generate, GenOptions, Row};
use d5_core::audit::{hash_hex, SEAL_OPERATION};
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_d5-audit-verify");

/// A generated export: 4 chains of 30 records, the first the system chain.
struct Export {
    lines: Vec<String>,
    digest: String,
}

impl Export {
    fn new() -> Export {
        let mut out = Vec::new();
        let digest = generate(&mut out, GenOptions { records: 120, chains: 4, seed: 42 }).expect("generate");
        let text = String::from_utf8(out).expect("utf8");
        Export { lines: text.lines().map(str::to_string).collect(), digest }
    }

    fn row(&self, i: usize) -> Row {
        Row::from_line(&self.lines[i]).expect("generated line parses")
    }

    /// Tenant of the second chain (a tenant chain, not the system one).
    fn tenant(&self) -> Uuid {
        self.row(30).tenant_id
    }

    /// Index of the line holding `seq` of the tampered chain.
    fn idx(&self, seq: i64) -> usize {
        let t = self.tenant();
        self.lines
            .iter()
            .position(|l| {
                let r = Row::from_line(l).expect("parses");
                r.tenant_id == t && r.seq == seq
            })
            .expect("line exists")
    }

    fn set(&mut self, i: usize, row: &Row) {
        self.lines[i] = row.to_line(0);
    }

    /// Recomputes prev_hash and hash from line `from` to the end of its
    /// chain, as a forger with write access would.
    fn relink_from(&mut self, from: usize) {
        let t = self.row(from).tenant_id;
        let mut prev = if self.row(from).seq == 1 { [0; 32] } else { self.row(from - 1).hash };
        let mut i = from;
        while i < self.lines.len() && self.row(i).tenant_id == t {
            let mut r = self.row(i);
            r.prev_hash = prev;
            r.rehash();
            prev = r.hash;
            self.set(i, &r);
            i += 1;
        }
    }
}

fn tmp(name: &str, content: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("d5_audit_verify_cli");
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write tmp file");
    path
}

/// Runs the verifier on the export (and digest, if given); each test uses
/// its own file names so tests can run in parallel.
fn run(name: &str, export: &Export, with_digest: bool) -> Output {
    let log = tmp(&format!("{name}.jsonl"), &(export.lines.join("\n") + "\n"));
    let mut cmd = Command::new(BIN);
    cmd.arg("--log").arg(&log);
    if with_digest {
        cmd.arg("--digest").arg(tmp(&format!("{name}.digest.json"), &export.digest));
    }
    cmd.output().expect("run d5-audit-verify")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// (records, ok, first_bad_seq, reason) of one chain in the printed table.
fn chain_line(o: &Output, tenant: Uuid) -> (i64, bool, Option<i64>, String) {
    let out = stdout(o);
    let line = out
        .lines()
        .find(|l| l.starts_with(&tenant.to_string()))
        .unwrap_or_else(|| panic!("no line for {tenant} in:\n{out}"));
    let cells: Vec<&str> = line.splitn(5, '|').map(str::trim).collect();
    (
        cells[1].parse().expect("records"),
        cells[2] == "t",
        cells[3].parse().ok(),
        cells.get(4).unwrap_or(&"").to_string(),
    )
}

fn assert_fails_at(o: &Output, tenant: Uuid, seq: i64, reason: &str) {
    assert_eq!(o.status.code(), Some(1), "stdout:\n{}\nstderr:\n{}", stdout(o), String::from_utf8_lossy(&o.stderr));
    let (_, ok, bad, why) = chain_line(o, tenant);
    assert!(!ok);
    assert_eq!(bad, Some(seq), "{}", stdout(o));
    assert!(why.starts_with(reason), "reason {why:?}, expected {reason:?}");
    // Only the tampered chain fails.
    assert_eq!(stdout(o).lines().filter(|l| l.contains("| f  |")).count(), 1, "{}", stdout(o));
}

fn assert_passes(o: &Output) {
    assert_eq!(o.status.code(), Some(0), "stdout:\n{}\nstderr:\n{}", stdout(o), String::from_utf8_lossy(&o.stderr));
}

#[test]
fn clean_export_passes() {
    let e = Export::new();
    let o = run("clean", &e, true);
    assert_passes(&o);
    let out = stdout(&o);
    assert!(out.starts_with("tenant_id "), "{out}");
    assert_eq!(out.lines().count(), 2 + 4, "{out}");
    assert_eq!(chain_line(&o, Uuid::nil()), (30, true, None, String::new()));
}

#[test]
fn interleaved_chains_pass() {
    let mut e = Export::new();
    // Same records, ordered by seq then tenant: chains interleave.
    e.lines.sort_by_key(|l| {
        let r = Row::from_line(l).expect("parses");
        (r.seq, r.tenant_id)
    });
    assert_passes(&run("interleaved", &e, true));
}

#[test]
fn edited_field_fails_at_that_seq() {
    let mut e = Export::new();
    let i = e.idx(7);
    let mut r = e.row(i);
    r.actor = Some("mallory@example.com".into());
    e.set(i, &r);
    assert_fails_at(&run("edited", &e, false), e.tenant(), 7, "hash mismatch");
}

#[test]
fn edited_jsonb_text_fails() {
    let mut e = Export::new();
    let i = e.idx(12);
    // Change one byte of embedded jsonb in the raw line, as a text edit would.
    assert!(e.lines[i].contains("\"service\": \"compute\""));
    e.lines[i] = e.lines[i].replace("\"service\": \"compute\"", "\"service\": \"storage\"");
    assert_fails_at(&run("edited_jsonb", &e, false), e.tenant(), 12, "hash mismatch");
}

#[test]
fn deleted_line_fails_at_the_missing_seq() {
    let mut e = Export::new();
    let i = e.idx(10);
    e.lines.remove(i);
    assert_fails_at(&run("deleted", &e, false), e.tenant(), 10, "gap: expected seq 10, found seq 11");
}

#[test]
fn forged_inserted_line_fails() {
    let mut e = Export::new();
    let i = e.idx(10);
    let mut forged = e.row(i);
    forged.new_row = Some(r#"{"id": 1, "cost": 0.01, "note": "forged", "service": "compute"}"#.into());
    forged.prev_hash = e.row(i - 1).hash; // links correctly to seq 9
    forged.rehash();
    e.lines.insert(i, forged.to_line(0));
    assert_fails_at(&run("forged", &e, false), e.tenant(), 10, "duplicate seq 10");
}

#[test]
fn swapped_lines_fail() {
    let mut e = Export::new();
    let i = e.idx(10);
    e.lines.swap(i, i + 1);
    assert_fails_at(&run("swapped", &e, false), e.tenant(), 10, "gap: expected seq 10, found seq 11");

    // Contents swapped, seq values left in place.
    let mut e = Export::new();
    let (mut a, mut b) = (e.row(i), e.row(i + 1));
    std::mem::swap(&mut a.seq, &mut b.seq);
    e.set(i, &b);
    e.set(i + 1, &a);
    assert_fails_at(&run("swapped_contents", &e, false), e.tenant(), 10, "hash mismatch");
}

#[test]
fn truncated_tail_fails_against_the_digest() {
    let mut e = Export::new();
    let i = e.idx(28);
    e.lines.drain(i..i + 3); // seqs 28, 29, 30
    assert_passes(&run("truncated_nodigest", &e, false));
    assert_fails_at(
        &run("truncated", &e, true),
        e.tenant(),
        28,
        "chain is shorter than the digest: digest has seq 30, chain ends at seq 27",
    );
}

#[test]
fn rewritten_chain_fails_against_the_digest() {
    let mut e = Export::new();
    let i = e.idx(3);
    let mut r = e.row(i);
    r.row_count = Some(1_000_000);
    e.set(i, &r);
    e.relink_from(i);
    assert_passes(&run("rewritten_nodigest", &e, false));
    assert_fails_at(
        &run("rewritten", &e, true),
        e.tenant(),
        30,
        "chain rewritten since the digest: hash of seq 30 differs",
    );
}

#[test]
fn chain_missing_from_export_fails_against_the_digest() {
    let mut e = Export::new();
    let t = e.tenant();
    e.lines.retain(|l| Row::from_line(l).expect("parses").tenant_id != t);
    let o = run("missing", &e, true);
    assert_fails_at(&o, t, 1, "chain is missing");
    assert_eq!(chain_line(&o, t).0, 0);
}

/// Drops seqs 1..=9 of the tenant chain after appending a SEAL for them.
fn retained(anchor_ok: bool) -> Export {
    let mut e = Export::new();
    let t = e.tenant();
    let last = e.idx(30);
    let anchor = if anchor_ok { e.row(e.idx(9)).hash } else { [9; 32] };
    let mut seal = e.row(last);
    seal.seq = 31;
    seal.prev_hash = seal.hash;
    seal.operation = SEAL_OPERATION.into();
    seal.actor = None;
    seal.table_name = None;
    (seal.row_pk, seal.old_row, seal.new_row, seal.changed_cols) = (None, None, None, None);
    (seal.row_count, seal.rows_digest) = (None, None);
    seal.detail = Some(format!(
        r#"{{"anchor_hash": "{}", "dropped_before": "2026-10-01 00:00:00+00", "first_kept_seq": 10, "records_dropped": 9}}"#,
        hash_hex(&anchor)
    ));
    seal.rehash();
    e.lines.insert(last + 1, seal.to_line(0));
    e.lines.retain(|l| {
        let r = Row::from_line(l).expect("parses");
        r.tenant_id != t || r.seq >= 10
    });
    // A digest taken after the seal.
    let heads: Vec<(Uuid, i64, [u8; 32])> = e
        .lines
        .iter()
        .enumerate()
        .filter(|(i, l)| {
            let r = Row::from_line(l).expect("parses");
            e.lines.get(i + 1).is_none_or(|n| Row::from_line(n).expect("parses").tenant_id != r.tenant_id)
        })
        .map(|(_, l)| {
            let r = Row::from_line(l).expect("parses");
            (r.tenant_id, r.seq, r.hash)
        })
        .collect();
    e.digest = digest_json(&heads, "2026-12-01T00:00:00+00:00");
    e
}

#[test]
fn sealed_retention_passes() {
    let e = retained(true);
    let o = run("sealed", &e, true);
    assert_passes(&o);
    assert_eq!(chain_line(&o, e.tenant()).0, 22); // seqs 10..=31
}

#[test]
fn forged_seal_fails_at_the_first_kept_seq() {
    let e = retained(false);
    assert_fails_at(
        &run("forged_seal", &e, true),
        e.tenant(),
        10,
        "chain does not start at seq 1 and no seal anchors its first record (seq 10)",
    );
}

#[test]
fn jsonb_null_values_still_verify() {
    // A jsonb column holding JSON null prints as null, like SQL NULL.
    let mut e = Export::new();
    let i = e.idx(5);
    let mut r = e.row(i);
    assert!(r.detail.is_none());
    r.detail = Some("null".into());
    r.rehash();
    e.set(i, &r);
    e.relink_from(i + 1);
    assert!(e.lines[i].ends_with(r#""detail":null}"#));
    assert_passes(&run("jsonb_null", &e, false));
}

#[test]
fn tenant_filter_reports_one_chain() {
    let e = Export::new();
    let log = tmp("filter.jsonl", &e.lines.join("\n"));
    let o = Command::new(BIN)
        .args(["--log".as_ref(), log.as_os_str(), "--tenant".as_ref(), e.tenant().to_string().as_ref()])
        .output()
        .expect("run");
    assert_passes(&o);
    assert_eq!(stdout(&o).lines().count(), 3, "{}", stdout(&o));
    assert_eq!(chain_line(&o, e.tenant()).0, 30);
}

fn run_args(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run")
}

#[test]
fn malformed_input_exits_2_naming_the_line() {
    let e = Export::new();
    let cases = [
        ("not json at all".to_string(), "line 3:"),
        (e.lines[2].replace("\"seq\":3", "\"seq\":\"3\""), "line 3: column"),
        (e.lines[2].replace("\"prev_hash\":\"\\\\x", "\"prev_hash\":\"\\\\y"), "line 3: prev_hash: expected"),
        (e.lines[2].replace(",\"detail\":null", ""), "missing field `detail`"),
        (e.lines[2].replace("+00:00", ""), "line 3: logged_at: timestamp"),
    ];
    for (n, (bad, want)) in cases.into_iter().enumerate() {
        let mut lines = e.lines.clone();
        lines[2] = bad;
        let log = tmp(&format!("malformed{n}.jsonl"), &lines.join("\n"));
        let o = run_args(&["--log", log.to_str().expect("utf8 path")]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "case {n}: {err}");
        assert!(err.contains(want), "case {n}: {err:?} lacks {want:?}");
    }
}

#[test]
fn usage_errors_exit_2() {
    let e = Export::new();
    let log = tmp("usage.jsonl", &e.lines.join("\n"));
    let log = log.to_str().expect("utf8 path");
    let bad_digest = tmp("bad.digest.json", r#"{"format": "nope", "chains": []}"#);
    for args in [
        vec![],
        vec!["--log"],
        vec!["--bogus", "x"],
        vec!["--log", "/nonexistent/audit.jsonl"],
        vec!["--log", log, "--tenant", "not-a-uuid"],
        vec!["--log", log, "--digest", bad_digest.to_str().expect("utf8 path")],
        vec!["generate"],
    ] {
        let o = run_args(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        assert!(!o.stderr.is_empty());
    }
    assert_eq!(run_args(&["--help"]).status.code(), Some(0));
}

#[test]
fn generate_subcommand_writes_a_valid_export_and_digest() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("d5_audit_verify_cli");
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let digest = dir.join("gen.digest.json");
    let o = run_args(&["generate", "--records", "50", "--chains", "3", "--digest-out", digest.to_str().expect("utf8")]);
    assert_eq!(o.status.code(), Some(0));
    let log = tmp("gen.jsonl", &String::from_utf8_lossy(&o.stdout));
    let v = run_args(&["--log", log.to_str().expect("utf8"), "--digest", digest.to_str().expect("utf8")]);
    assert_passes(&v);
    assert_eq!(stdout(&v).lines().count(), 2 + 3);
}
