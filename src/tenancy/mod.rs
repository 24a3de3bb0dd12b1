//! Tenant context: `d5.set_tenant`, tokens, `d5.current_tenant`, and the
//! tables, policies and provisioning functions in `sql/tenancy.sql`.

pub mod context;

use pgrx::prelude::*;
use pgrx::{PgSqlErrorCode, Uuid};

use crate::error::{raise, spi, SqlError};
use crate::gucs;
use crate::prepared;

#[derive(Debug, thiserror::Error)]
pub enum TenancyError {
    #[error("tenant must not be NULL")]
    NullTenant,
    #[error("tenant {0} does not exist")]
    UnknownTenant(Uuid),
    #[error("tenant {0} is suspended")]
    Suspended(Uuid),
    #[error("d5.require_tenant_token is on: set the tenant with d5.set_tenant(tenant, token)")]
    TokenRequired,
    #[error("{0}")]
    BadToken(d5_core::token::TokenError),
    #[error("no tenant token key exists yet")]
    NoTokenKey,
    #[error("token lifetime must be positive and at most 366 days, got {0}")]
    BadTtl(String),
    #[error("{0}")]
    BadCredentialsRef(d5_core::credentials::CredentialsRefError),
    #[error("actor must be at most 256 characters without NUL bytes")]
    BadActor,
}

impl SqlError for TenancyError {
    fn sqlstate(&self) -> PgSqlErrorCode {
        use TenancyError::*;
        match self {
            NullTenant | BadTtl(_) | BadCredentialsRef(_) | BadActor => {
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE
            }
            UnknownTenant(_) => PgSqlErrorCode::ERRCODE_NO_DATA_FOUND,
            Suspended(_) | TokenRequired => PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            BadToken(_) | NoTokenKey => PgSqlErrorCode::ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
        }
    }

    fn hint(&self) -> Option<String> {
        use TenancyError::*;
        match self {
            Suspended(_) => Some("A d5_admin can call d5.reactivate_tenant().".into()),
            TokenRequired | BadToken(_) => {
                Some("Ask the auth service for a fresh token (see README, \"Tenant tokens\").".into())
            }
            NoTokenKey => Some("A d5_admin mints the first token with d5.mint_tenant_token(), which creates the key.".into()),
            _ => None,
        }
    }
}

/// Sets the tenant for the current transaction only.
#[pg_extern(volatile, parallel_unsafe)]
fn set_tenant(tenant: Option<Uuid>) {
    let tenant = tenant.unwrap_or_else(|| raise(TenancyError::NullTenant));
    if gucs::REQUIRE_TENANT_TOKEN.get() && !may_skip_token() {
        raise(TenancyError::TokenRequired);
    }
    authorize(tenant, None);
    activate(tenant);
}

/// Sets the tenant for the current transaction, given a valid token for it.
#[pg_extern(volatile, parallel_unsafe, name = "set_tenant")]
fn set_tenant_with_token(tenant: Option<Uuid>, token: Option<&str>) {
    let tenant = tenant.unwrap_or_else(|| raise(TenancyError::NullTenant));
    authorize(tenant, Some(token.unwrap_or("")));
    activate(tenant);
}

/// The tenant in force, or NULL.
#[pg_extern(stable, parallel_safe)]
fn current_tenant() -> Option<Uuid> {
    context::current_tenant()
}

/// Forgets the tenant for the rest of the transaction.
#[pg_extern(volatile, parallel_unsafe)]
fn clear_tenant() {
    context::set_tenant_local(None);
}

/// Names the application user behind the following changes, for the audit log.
#[pg_extern(volatile, parallel_unsafe)]
fn set_actor(actor: Option<&str>) {
    let actor = actor.unwrap_or("");
    if actor.len() > 256 || actor.contains('\0') {
        raise(TenancyError::BadActor);
    }
    context::set_actor_local(actor);
}

fn activate(tenant: Uuid) {
    if !context::in_transaction_block() {
        pgrx::warning!(
            "d5.set_tenant() outside a transaction block lasts only for this statement; \
             use BEGIN; SELECT d5.set_tenant(...); ...; COMMIT;"
        );
    }
    context::set_tenant_local(Some(tenant));
}

/// Superusers and d5_admin may set a tenant without a token even when tokens are required.
fn may_skip_token() -> bool {
    // SAFETY: reads the current user id of this backend.
    if unsafe { pg_sys::superuser() } {
        return true;
    }
    spi(Spi::get_one::<bool>(
        "SELECT pg_catalog.pg_has_role('d5_admin', 'USAGE')",
    ))
    .unwrap_or(false)
}

thread_local! {
    static AUTHORIZE: prepared::Kept = const { prepared::Kept::new() };
    static TENANT_STATUS: prepared::Kept = const { prepared::Kept::new() };
}

/// Checks status (and token) through the SECURITY DEFINER `d5._authorize_tenant`,
/// which can read what the caller cannot. It decides, it never sets.
fn authorize(tenant: Uuid, token: Option<&str>) {
    // Kept plans here and in _authorize_tenant: parsing and planning the two
    // statements on every call was most of what d5.set_tenant cost.
    let sql = "SELECT d5._authorize_tenant($1, $2)";
    prepared::run(&AUTHORIZE, sql, &[pg_sys::UUIDOID, pg_sys::TEXTOID], &[tenant.into(), token.into()]);
}

/// The status of `tenant` (read inside `_authorize_tenant`, as its owner).
fn tenant_status(tenant: Uuid) -> Option<String> {
    let sql = "SELECT (SELECT status FROM d5.tenants WHERE id = $1)";
    prepared::with(&TENANT_STATUS, sql, &[pg_sys::UUIDOID], |plan| {
        Spi::connect(|client| spi(spi(client.select(plan, None, &[tenant.into()])).first().get_one::<String>()))
    })
}

/// Raises unless `tenant` is active and, when `token` is given, the token is valid for it.
/// Owned by the extension owner; grants nothing by itself.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn _authorize_tenant(tenant: Option<Uuid>, token: Option<&str>) {
    // Callable directly by every d5 role: a NULL tenant must be 22023, not a
    // pgrx "argument must not be null" panic (XX000); the function is not
    // STRICT because token may be NULL.
    let tenant = tenant.unwrap_or_else(|| raise(TenancyError::NullTenant));
    match tenant_status(tenant).as_deref() {
        None => raise(TenancyError::UnknownTenant(tenant)),
        Some("active") => {}
        Some(_) => raise(TenancyError::Suspended(tenant)),
    }
    if let Some(token) = token {
        let key = token_key().unwrap_or_else(|| raise(TenancyError::NoTokenKey));
        let now = spi(Spi::get_one::<i64>(
            "SELECT extract(epoch FROM pg_catalog.statement_timestamp())::bigint",
        ))
        .unwrap_or(0);
        let core_tenant = uuid::Uuid::from_bytes(*tenant.as_bytes());
        if let Err(e) = d5_core::token::verify(&key, token, core_tenant, now) {
            raise(TenancyError::BadToken(e));
        }
    }
}

fn token_key() -> Option<Vec<u8>> {
    spi(Spi::get_one::<Vec<u8>>("SELECT (SELECT key FROM d5.tenant_token_key)"))
}

/// Issues a token for `tenant` valid for `ttl` (d5_admin only).
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn mint_tenant_token(tenant: Uuid, ttl: pgrx::datum::Interval) -> String {
    let expires_at = spi(Spi::get_one_with_args::<i64>(
        "SELECT CASE WHEN $1 > interval '0' AND $1 <= interval '366 days'
                     THEN extract(epoch FROM statement_timestamp() + $1)::bigint END",
        &[ttl.into()],
    ))
    .unwrap_or_else(|| raise(TenancyError::BadTtl(ttl.to_string())));
    authorize_exists(tenant);
    let key = token_key().unwrap_or_else(create_token_key);
    let core_tenant = uuid::Uuid::from_bytes(*tenant.as_bytes());
    d5_core::token::mint(&key, core_tenant, expires_at)
        .unwrap_or_else(|e| raise(TenancyError::BadToken(e)))
}

fn authorize_exists(tenant: Uuid) {
    let exists = spi(Spi::get_one_with_args::<bool>(
        "SELECT EXISTS (SELECT 1 FROM d5.tenants WHERE id = $1)",
        &[tenant.into()],
    ));
    if exists != Some(true) {
        raise(TenancyError::UnknownTenant(tenant));
    }
}

/// Made on first use rather than at CREATE EXTENSION, so that pg_restore
/// brings back the original key and every issued token stays valid.
fn create_token_key() -> Vec<u8> {
    let key = random_bytes::<32>();
    spi(Spi::run_with_args(
        "INSERT INTO d5.tenant_token_key (key) VALUES ($1) ON CONFLICT DO NOTHING",
        &[key.to_vec().into()],
    ));
    token_key().unwrap_or_else(|| raise(TenancyError::NoTokenKey))
}

/// Replaces the token key; every token issued before becomes invalid (d5_admin only).
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn rotate_tenant_token_key() {
    spi(Spi::run("DELETE FROM d5.tenant_token_key"));
    create_token_key();
}

/// The raw key, hex-encoded, for an external auth service that mints tokens (d5_admin only).
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn export_tenant_token_key() -> String {
    hex::encode(token_key().unwrap_or_else(create_token_key))
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // SAFETY: buf is a valid writable buffer of N bytes.
    let ok = unsafe { pg_sys::pg_strong_random(buf.as_mut_ptr().cast(), N) };
    if !ok {
        raise(crate::error::InternalError("no strong random source available".into()));
    }
    buf
}

/// Raises 22023 unless `value` reads as a reference to a secret, not a secret.
#[pg_extern(immutable, parallel_safe)]
fn check_credentials_ref(value: Option<&str>) -> bool {
    if let Some(v) = value {
        if let Err(e) = d5_core::credentials::check_credentials_ref(v) {
            raise(TenancyError::BadCredentialsRef(e));
        }
    }
    true
}
