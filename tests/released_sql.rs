//! Released SQL scripts are never edited (no cluster needed; runs in
//! milliseconds). `sql/RELEASED` lists the sha256 of every released script
//! in `sha256sum` format (`cd sql && sha256sum -c RELEASED` checks it too).
//!
//! A script is released when the version it installs or updates to is
//! released: `d5_storage--0.1.0.sql` since 0.1.0, `d5_storage--A--B.sql`
//! when B is. Until then (B is the version in Cargo.toml, being developed)
//! statements are appended to it. Releasing B = adding its scripts to
//! sql/RELEASED (`scripts/release-sql`) and tagging; the next change to the
//! SQL bumps Cargo.toml to the next version and starts `d5_storage--B--C.sql`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

const CURRENT: &str = env!("CARGO_PKG_VERSION");
const FIRST_RELEASE: &str = "0.1.0";

fn sql_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("sql")
}

fn version(v: &str) -> Vec<u64> {
    v.split('.').map(|p| p.parse().unwrap_or_else(|_| panic!("version {v:?} is not x.y.z"))).collect()
}

/// file name -> sha256 (hex), from sql/RELEASED.
fn released() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(sql_dir().join("RELEASED")).expect("sql/RELEASED exists");
    let mut out = BTreeMap::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (hash, file) = line.split_once(char::is_whitespace).unwrap_or_else(|| panic!("bad line in sql/RELEASED: {line:?}"));
        let file = file.trim().trim_start_matches('*').to_string();
        assert!(out.insert(file.clone(), hash.to_lowercase()).is_none(), "{file} listed twice in sql/RELEASED");
    }
    out
}

/// The extension scripts in sql/: (file, from version or None for an install script, to version).
fn scripts() -> Vec<(String, Option<String>, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(sql_dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let Some(rest) = name.strip_prefix("d5_storage--").and_then(|r| r.strip_suffix(".sql")) else { continue };
        match rest.split_once("--") {
            Some((from, to)) => out.push((name.clone(), Some(from.to_string()), to.to_string())),
            None => out.push((name.clone(), None, rest.to_string())),
        }
    }
    out.sort();
    out
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn released_scripts_are_unchanged() {
    let released = released();
    assert!(released.contains_key(&format!("d5_storage--{FIRST_RELEASE}.sql")), "the {FIRST_RELEASE} install script is released");
    for (file, hash) in &released {
        let bytes = std::fs::read(sql_dir().join(file)).unwrap_or_else(|e| panic!("released script sql/{file} is missing: {e}"));
        assert_eq!(
            &sha256_hex(&bytes),
            hash,
            "sql/{file} was released and must never change: put the change into the update script of \
             version {CURRENT} (sql/d5_storage--<previous>--{CURRENT}.sql) instead"
        );
    }
}

#[test]
fn scripts_of_released_versions_are_listed() {
    let released = released();
    let current = version(CURRENT);
    for (file, _, to) in scripts() {
        if version(&to) < current {
            assert!(released.contains_key(&file), "sql/{file} belongs to released version {to}: add it to sql/RELEASED");
        }
        assert!(version(&to) <= current, "sql/{file} goes beyond the version in Cargo.toml ({CURRENT})");
    }
}

#[test]
fn every_released_version_updates_to_the_current_one() {
    let scripts = scripts();
    for (file, from, to) in &scripts {
        // cargo pgrx generates the current install script; one in sql/ would
        // be shadowed by it (install) or shadow it (scripts/install-sql).
        assert!(from.is_some() || to != CURRENT, "sql/{file}: the install script of {CURRENT} is generated, not kept in sql/");
        // cargo pgrx install rewrites these tokens in update scripts with the
        // version being installed, so the installed text would change later.
        let text = std::fs::read_to_string(sql_dir().join(file)).unwrap();
        for token in ["@CARGO_VERSION@", "@GIT_HASH@"] {
            assert!(!text.contains(token), "sql/{file} contains {token}, which cargo pgrx install rewrites");
        }
    }
    let mut versions: Vec<&String> = scripts.iter().flat_map(|(_, f, t)| f.iter().chain([t])).collect();
    versions.sort();
    versions.dedup();
    for v in versions.into_iter().filter(|v| v.as_str() != CURRENT) {
        // Follow update scripts forward from v; Postgres takes the shortest path.
        let mut reach = vec![v.clone()];
        let mut i = 0;
        while i < reach.len() {
            let at = reach[i].clone();
            for (_, from, to) in &scripts {
                if from.as_deref() == Some(at.as_str()) && !reach.contains(to) {
                    reach.push(to.clone());
                }
            }
            i += 1;
        }
        assert!(
            reach.iter().any(|r| r == CURRENT),
            "no update path from {v} to {CURRENT}: add sql/d5_storage--<previous>--{CURRENT}.sql"
        );
    }
}
