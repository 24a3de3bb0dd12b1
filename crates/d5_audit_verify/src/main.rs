//! d5-audit-verify: checks d5_storage audit hash chains from a psql export
//! without trusting any function of the database. See README.md.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::process::ExitCode;
use std::time::Instant;

use d5_audit_verify::generate::{generate, GenOptions};
use d5_audit_verify::{format_table, verify_export};
use d5_core::audit::{parse_digest, DigestEntry};
use uuid::Uuid;

const USAGE: &str = "\
usage: d5-audit-verify --log FILE [--digest FILE] [--tenant UUID]

Verifies the audit hash chains in FILE, an export made with
  psql \"$DB\" -AtX -c \"SELECT row_to_json(a) FROM d5.audit_log a ORDER BY tenant_id, seq\" > audit.jsonl
(FILE may be - for standard input). Prints one line per chain:
tenant_id | records | ok | first_bad_seq | reason.

  --log FILE      the export (one JSON object per line)
  --digest FILE   output of d5.audit_digest() kept outside the database;
                  also catches removed newest records and rewritten chains
  --tenant UUID   verify only this chain

Exit status: 0 every chain ok, 1 some chain failed, 2 usage or input error.

Developer helper (synthetic valid export on standard output):
  d5-audit-verify generate --records N [--chains M] [--seed S] [--digest-out FILE]";

/// Failure that ends the run with status 2.
struct Fatal(String);

impl<E: std::fmt::Display> From<E> for Fatal {
    fn from(e: E) -> Self {
        Fatal(e.to_string())
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("generate") => run_generate(&args[1..]),
        Some("-h" | "--help") => {
            println!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        _ => run_verify(&args),
    };
    match result {
        Ok(code) => code,
        Err(Fatal(msg)) => {
            eprintln!("d5-audit-verify: {msg}");
            ExitCode::from(2)
        }
    }
}

/// Splits `--name value` pairs; every option takes exactly one value.
fn options<'a>(args: &'a [String], allowed: &[&str]) -> Result<Vec<(&'a str, &'a str)>, Fatal> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(name) = it.next() {
        if !allowed.contains(&name.as_str()) {
            return Err(Fatal(format!("unknown argument {name:?}\n\n{USAGE}")));
        }
        let value = it.next().ok_or_else(|| Fatal(format!("{name} needs a value\n\n{USAGE}")))?;
        if out.iter().any(|(n, _)| n == name) {
            return Err(Fatal(format!("{name} given twice")));
        }
        out.push((name.as_str(), value.as_str()));
    }
    Ok(out)
}

fn get<'a>(opts: &[(&str, &'a str)], name: &str) -> Option<&'a str> {
    opts.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

fn run_verify(args: &[String]) -> Result<ExitCode, Fatal> {
    let opts = options(args, &["--log", "--digest", "--tenant"])?;
    let log = get(&opts, "--log").ok_or_else(|| Fatal(format!("--log is required\n\n{USAGE}")))?;
    let tenant = match get(&opts, "--tenant") {
        Some(t) => Some(Uuid::try_parse(t).map_err(|_| Fatal(format!("--tenant: {t:?} is not a UUID")))?),
        None => None,
    };
    let digest: Vec<DigestEntry> = match get(&opts, "--digest") {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| Fatal(format!("--digest {path}: {e}")))?;
            parse_digest(&text).map_err(|e| Fatal(format!("--digest {path}: {e}")))?
        }
        None => Vec::new(),
    };

    let reader: Box<dyn BufRead + Send> = if log == "-" {
        Box::new(BufReader::with_capacity(1 << 20, io::stdin()))
    } else {
        let file = File::open(log).map_err(|e| Fatal(format!("--log {log}: {e}")))?;
        Box::new(BufReader::with_capacity(1 << 20, file))
    };

    let started = Instant::now();
    let reports = verify_export(reader, tenant, &digest).map_err(|e| Fatal(format!("{log}: {e}")))?;
    let elapsed = started.elapsed();

    let mut stdout = io::stdout().lock();
    stdout.write_all(format_table(&reports).as_bytes())?;
    stdout.flush()?;

    let records: i64 = reports.iter().map(|r| r.records).sum();
    let failed = reports.iter().filter(|r| !r.ok).count();
    eprintln!(
        "d5-audit-verify: {records} records in {} chains checked in {:.3} s; {failed} chains failed",
        reports.len(),
        elapsed.as_secs_f64()
    );
    if reports.is_empty() {
        eprintln!("d5-audit-verify: warning: no records and no digest: nothing was verified");
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn run_generate(args: &[String]) -> Result<ExitCode, Fatal> {
    let opts = options(args, &["--records", "--chains", "--seed", "--digest-out"])?;
    let number = |name: &str, default: Option<u64>| -> Result<u64, Fatal> {
        match get(&opts, name) {
            Some(v) => v.parse().map_err(|_| Fatal(format!("{name}: {v:?} is not a non-negative integer"))),
            None => default.ok_or_else(|| Fatal(format!("{name} is required\n\n{USAGE}"))),
        }
    };
    let gen = GenOptions {
        records: number("--records", None)?,
        chains: number("--chains", Some(1))?,
        seed: number("--seed", Some(1))?,
    };
    if gen.chains == 0 {
        return Err(Fatal("--chains must be at least 1".into()));
    }
    let mut out = BufWriter::with_capacity(1 << 20, io::stdout().lock());
    let digest = generate(&mut out, gen)?;
    out.flush()?;
    if let Some(path) = get(&opts, "--digest-out") {
        std::fs::write(path, digest + "\n").map_err(|e| Fatal(format!("--digest-out {path}: {e}")))?;
    }
    Ok(ExitCode::SUCCESS)
}
