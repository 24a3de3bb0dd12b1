# Sourced by bench/audit_overhead, bench/audit_cost and bench/audit_chain_lock.

# The ALTER TABLE statements that enable the audit trigger of configuration
# $1 on d5.resources and disable the other: noaudit (neither), audit
# (d5_audit) or ref (the PL/pgSQL reference, bench_ref_audit).
audit_config_sql() {
    local audit=DISABLE ref=DISABLE
    case $1 in
        noaudit) ;;
        audit) audit=ENABLE ;;
        ref) ref=ENABLE ;;
        *) echo "unknown configuration $1 (noaudit, audit or ref)" >&2; return 1 ;;
    esac
    echo "ALTER TABLE d5.resources $audit TRIGGER d5_audit;"
    echo "ALTER TABLE d5.resources $ref TRIGGER bench_ref_audit;"
}

# Makes the database d5_audbench with "${PSQL[@]}" (psql of the server under
# test): the extension and login (setup.sql), 100 tenants with $1 resources
# each (load.sql), the reference trigger (ref_trigger.sql). Output to $2.
audit_bench_database() {
    local d
    d=$(dirname "${BASH_SOURCE[0]}")
    "${PSQL[@]}" -d postgres -f "$d/setup.sql" >"$2" 2>&1
    "${PSQL[@]}" -d d5_audbench -v res="$1" -f "$d/load.sql" >>"$2" 2>&1
    "${PSQL[@]}" -d d5_audbench -f "$d/ref_trigger.sql" >>"$2" 2>&1
}
