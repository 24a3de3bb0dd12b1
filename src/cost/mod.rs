//! Cost data: FOCUS ingestion into day-partitioned raw storage (this module),
//! rollups and queries (sql/rollup.sql, sql/cost_queries.sql).

mod copy;
mod ingest;

use pgrx::prelude::*;
use pgrx::{PgSqlErrorCode, Uuid};

use crate::error::SqlError;

#[derive(Debug, thiserror::Error)]
pub enum CostError {
    #[error("no tenant set: call d5.set_tenant() in this transaction first")]
    NoTenant,
    #[error("cloud account {0} does not exist for the current tenant")]
    UnknownAccount(Uuid),
    #[error("unsupported format \"{0}\": only 'csv' (FOCUS CSV with a header row) is supported")]
    UnknownFormat(String),
    #[error("FOCUS file refused: {0}")]
    Header(String),
}

impl SqlError for CostError {
    fn sqlstate(&self) -> PgSqlErrorCode {
        match self {
            CostError::NoTenant => PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            CostError::UnknownAccount(_) => PgSqlErrorCode::ERRCODE_NO_DATA_FOUND,
            CostError::UnknownFormat(_) => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            CostError::Header(_) => PgSqlErrorCode::ERRCODE_BAD_COPY_FILE_FORMAT,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            CostError::Header(_) => Some(
                "The header needs at least BilledCost, EffectiveCost, ListCost, ContractedCost, ChargePeriodStart, \
                 ChargePeriodEnd, BillingPeriodStart, BillingPeriodEnd, BillingAccountId, BillingCurrency, \
                 ChargeCategory, ServiceName and ProviderName (or ServiceProviderName)."
                    .into(),
            ),
            _ => None,
        }
    }
}

/// Loads FOCUS rows (CSV with a header) for the current tenant into
/// d5.cost_metrics_raw. Re-ingesting a billing period of an account replaces
/// it atomically; bad rows go to d5.ingest_rejects with their reason.
#[pg_extern(volatile, parallel_unsafe)]
fn ingest_focus(
    cloud_account: Uuid,
    rows: &str,
    format: default!(&str, "'csv'"),
) -> TableIterator<
    'static,
    (name!(inserted, i64), name!(rejected, i64), name!(replaced, i64), name!(batch_id, Uuid)),
> {
    let o = ingest::ingest(cloud_account, rows, format);
    TableIterator::once((o.inserted, o.rejected, o.replaced, o.batch_id))
}
