//! `cloud_accounts.credentials_ref` must name a secret, never hold one.
//!
//! A reference is a short URI-like pointer into a secret manager
//! (`arn:aws:secretsmanager:…`, `vault://…`, `gcp-sm://…`,
//! `https://<vault>.vault.azure.net/secrets/…`, `projects/…/secrets/…`).
//! We refuse values that look like key material instead: PEM blocks, AWS
//! access keys and secret keys, service-account JSON, long random strings.

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CredentialsRefError {
    #[error("credentials_ref looks like a secret itself ({0}); store the secret in a secret manager and put its reference here")]
    LooksLikeSecret(&'static str),
    #[error("credentials_ref is not a secret reference: {0}")]
    NotAReference(&'static str),
}

const MAX_REF_LEN: usize = 512;

/// Accepts `value` when it reads as a reference to a secret.
pub fn check_credentials_ref(value: &str) -> Result<(), CredentialsRefError> {
    use CredentialsRefError::*;
    if value.contains("-----BEGIN") || value.contains("PRIVATE KEY") {
        return Err(LooksLikeSecret("a PEM block"));
    }
    if value.contains("\"private_key\"") || value.contains("\"client_secret\"") {
        return Err(LooksLikeSecret("a service-account JSON key"));
    }
    if find_aws_access_key_id(value).is_some() {
        return Err(LooksLikeSecret("an AWS access key id"));
    }
    if value.split(|c: char| !(c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '='))
        .any(|tok| tok.len() == 40 && looks_random(tok))
    {
        return Err(LooksLikeSecret("a 40-character AWS secret access key"));
    }
    if value.len() > MAX_REF_LEN {
        return Err(NotAReference("longer than 512 characters"));
    }
    if value.trim().is_empty() {
        return Err(NotAReference("empty"));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(NotAReference("contains whitespace"));
    }
    let has_scheme = value
        .split_once(':')
        .is_some_and(|(scheme, rest)| !scheme.is_empty() && !rest.is_empty()
            && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)));
    let is_gcp_path = value.starts_with("projects/") && value.contains("/secrets/");
    if !(has_scheme || is_gcp_path) {
        return Err(NotAReference(
            "expected a URI such as arn:aws:secretsmanager:…, vault://…, gcp-sm://… or projects/<p>/secrets/<s>",
        ));
    }
    // A long token of random-looking characters anywhere (a password or API
    // key pasted after a scheme) is refused too.
    if value
        .split(|c: char| "/:?#&=.@".contains(c))
        .any(|tok| tok.len() >= 32 && looks_random(tok))
    {
        return Err(LooksLikeSecret("a long random token such as an API key"));
    }
    Ok(())
}

fn find_aws_access_key_id(value: &str) -> Option<&str> {
    const PREFIXES: [&str; 4] = ["AKIA", "ASIA", "AGPA", "AIDA"];
    value
        .split(|c: char| !c.is_ascii_alphanumeric())
        .find(|tok| tok.len() == 20 && PREFIXES.iter().any(|p| tok.starts_with(p))
            && tok.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()))
}

/// Mixed upper, lower and digits with few repeats: what generated keys look like
/// and what human-chosen path segments (`prod-db-password`) do not.
fn looks_random(tok: &str) -> bool {
    let upper = tok.chars().filter(|c| c.is_ascii_uppercase()).count();
    let lower = tok.chars().filter(|c| c.is_ascii_lowercase()).count();
    let digit = tok.chars().filter(|c| c.is_ascii_digit()).count();
    let classes = [upper, lower, digit].iter().filter(|n| **n > 0).count();
    let mut distinct: Vec<char> = tok.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    classes >= 3 || (classes == 2 && distinct.len() * 2 > tok.len() && digit * 4 > tok.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_references() {
        for ok in [
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/finops-reader-AbCdEf",
            "vault://secret/data/finops/aws-prod",
            "gcp-sm://projects/acme/secrets/billing-reader/versions/latest",
            "projects/acme-billing/secrets/bq-reader/versions/3",
            "https://acme-kv.vault.azure.net/secrets/cost-reader",
            "arn:aws:iam::123456789012:role/FinOpsReadOnly",
        ] {
            assert_eq!(check_credentials_ref(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn refuses_secrets() {
        for (bad, what) in [
            ("-----BEGIN RSA PRIVATE KEY-----\nMIIE...", "PEM"),
            ("AKIAIOSFODNN7EXAMPLE", "access key"),
            ("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "secret key"),
            ("{\"type\":\"service_account\",\"private_key\":\"x\"}", "json"),
            ("vault://x/sk_live_4eC39HqLyjWDarjtT1zdp7dc9Kq2", "api key"),
            ("hunter2", "no scheme"),
            ("", "empty"),
            ("vault://a b", "space"),
        ] {
            assert!(check_credentials_ref(bad).is_err(), "{what}: {bad}");
        }
    }
}
