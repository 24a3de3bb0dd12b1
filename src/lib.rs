//! d5_storage: one Postgres database as the storage layer of a multi-tenant
//! FinOps platform. Each capability is a module; this file only wires them.

use pgrx::prelude::*;

mod audit;
mod cost;
mod error;
mod gucs;
mod json_schema;
mod lifecycle;
mod prepared;
mod privilege;
mod tenancy;
mod version;

#[cfg(any(test, feature = "pg_test"))]
mod pg_tests;

::pgrx::pg_module_magic!();

extension_sql_file!("../sql/bootstrap.sql", name = "bootstrap", bootstrap);
extension_sql_file!(
    "../sql/tenancy.sql",
    name = "tenancy",
    requires = [tenancy::current_tenant, tenancy::check_credentials_ref]
);
extension_sql_file!(
    "../sql/audit.sql",
    name = "audit",
    requires = ["tenancy", audit::capture::_audit_row]
);
extension_sql_file!("../sql/partitions.sql", name = "partitions", requires = ["audit"]);
extension_sql_file!("../sql/cost.sql", name = "cost", requires = ["partitions"]);
extension_sql_file!("../sql/rollup.sql", name = "rollup", requires = ["cost"]);
extension_sql_file!("../sql/cost_queries.sql", name = "cost_queries", requires = ["rollup"]);
extension_sql_file!("../sql/version.sql", name = "version", requires = [version::_library_version]);
extension_sql_file!("../sql/self_check.sql", name = "self_check", requires = ["cost_queries", "version"]);
extension_sql_file!(
    "../sql/json_schema.sql",
    name = "json_schema",
    requires = [
        "audit",
        json_schema::_json_schema_install_shipped,
        json_schema::trigger::_json_schema_check,
        json_schema::trigger::_json_schema_invalidate
    ]
);
extension_sql_file!(
    "../sql/lifecycle.sql",
    name = "lifecycle",
    requires = ["rollup", audit::_audit_event, audit::seal::_audit_seal]
);
extension_sql_file!(
    "../sql/lifecycle_steps.sql",
    name = "lifecycle_steps",
    requires = ["lifecycle", lifecycle::_run_maintenance]
);
extension_sql_file!("../sql/finalize.sql", name = "finalize", finalize);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    gucs::init();
    json_schema::init();
    lifecycle::worker::register_scheduler();
}

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
