//! d5.self_check(): empty on a fresh install, and each finding fires when its
//! fault is introduced (by a superuser, as a careless DBA would).

mod common;

use common::*;

fn findings(c: &mut Client) -> Vec<(String, String)> {
    c.query("SELECT check_name, object FROM d5.self_check()", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[test]
fn a_fresh_install_has_no_findings() {
    let db = TestDb::new();
    let (_, mut admin) = db.login("d5_admin");
    assert_eq!(findings(&mut admin), vec![]);
    let (_, mut auditor) = db.login("d5_auditor");
    assert_eq!(findings(&mut auditor), vec![]);
    let (_, mut app) = db.login("d5_app");
    let err = app.query("SELECT * FROM d5.self_check()", &[]).unwrap_err();
    assert_eq!(sqlstate(&err), "42501");
}

#[test]
fn each_finding_fires_when_its_fault_is_introduced() {
    let db = TestDb::new();
    let (_, mut admin) = db.login("d5_admin");
    let mut su = db.superuser();
    let suffix = db.name.clone();
    let cases: Vec<(String, &str, &str)> = vec![
        ("ALTER TABLE d5.resources NO FORCE ROW LEVEL SECURITY".into(), "rls_not_forced", "d5.resources"),
        ("ALTER TABLE d5.policies DISABLE ROW LEVEL SECURITY".into(), "rls_not_enabled", "d5.policies"),
        ("DROP POLICY d5_tenant_delete ON d5.users".into(), "missing_policy", "d5.users"),
        (
            "CREATE TABLE d5.gadgets (tenant_id uuid NOT NULL, id uuid PRIMARY KEY);
             SELECT d5.enable_tenancy('d5.gadgets')"
                .into(),
            "primary_key_without_tenant",
            "d5.gadgets",
        ),
        (
            "CREATE TABLE d5.gadget_parts (tenant_id uuid NOT NULL, id uuid, gadget uuid REFERENCES d5.gadgets (id),
                                           PRIMARY KEY (tenant_id, id));
             SELECT d5.enable_tenancy('d5.gadget_parts')"
                .into(),
            "foreign_key_without_tenant",
            "d5.gadget_parts (gadget_parts_gadget_fkey)",
        ),
        (
            "CREATE FUNCTION d5.leaky() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1'".into(),
            "security_definer_without_search_path",
            "d5.leaky()",
        ),
        (format!("CREATE ROLE bypass_{suffix} LOGIN BYPASSRLS IN ROLE d5_app"), "app_role_privileged", ""),
        (
            format!("CREATE ROLE owner_{suffix} LOGIN IN ROLE d5_app; CREATE TABLE public.mine (x int); ALTER TABLE public.mine OWNER TO owner_{suffix}"),
            "app_role_owns_tables",
            "",
        ),
        ("ALTER TABLE d5.audit_log DISABLE TRIGGER audit_log_append_only".into(), "audit_guard_disabled", "d5.audit_log (audit_log_append_only)"),
        ("ALTER TABLE d5.users DISABLE TRIGGER d5_audit".into(), "audit_guard_disabled", "d5.users (d5_audit)"),
        ("DROP TRIGGER d5_audit ON d5.policies".into(), "audit_guard_disabled", "d5.policies (d5_audit)"),
    ];
    for (fault, check, object) in &cases {
        su.batch_execute(fault).unwrap();
        let found = findings(&mut admin);
        assert!(
            found.iter().any(|(c, o)| c == check && (object.is_empty() || o == object)),
            "{fault}: expected {check} on {object}, got {found:?}"
        );
    }
    su.batch_execute(&format!(
        "DROP TABLE public.mine; DROP ROLE bypass_{suffix}; DROP ROLE owner_{suffix}"
    ))
    .unwrap();
}
