//! The definition of every object of the extension in one database, as a map
//! from a stable name ("function d5.set_tenant(uuid)") to its definition
//! text, so an upgraded database can be compared with a fresh install. OIDs,
//! attnums and creation order never appear; ACLs are sorted.
//!
//! In scope: the extension row (version, config tables and their dump
//! conditions), every member object (pg_depend deptype 'e') with its
//! owner, ACL and comment, and of member tables their columns, constraints,
//! indexes, triggers (with enabled state), RLS flags and policies;
//! initial privileges (pg_init_privs, what pg_dump relies on); the
//! extension's schema; the configuration rows the install ships (SHIPPED).
//! Objects made later by maintenance (dated partitions, archives) are not
//! members and are not compared. Cluster-wide objects (the group roles,
//! GRANT SET ON PARAMETER) are the same for both databases by construction.

use std::collections::BTreeMap;

use super::Client;

/// (class, object) pairs in scope: the members, plus the extension's schema,
/// plus the sub-objects of member tables and types.
const SCOPE: &str = "
WITH ext AS (SELECT oid, extnamespace FROM pg_extension WHERE extname = 'd5_storage'),
members AS (
    SELECT d.classid, d.objid FROM pg_depend d, ext
     WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'
), rels AS (
    SELECT objid AS oid FROM members WHERE classid = 'pg_class'::regclass
), scope AS (
    SELECT classid, objid FROM members
    UNION SELECT 'pg_namespace'::regclass, extnamespace FROM ext
    UNION SELECT 'pg_class'::regclass, i.indexrelid FROM pg_index i JOIN rels r ON r.oid = i.indrelid
    UNION SELECT 'pg_constraint'::regclass, k.oid FROM pg_constraint k JOIN rels r ON r.oid = k.conrelid
    UNION SELECT 'pg_constraint'::regclass, k.oid FROM pg_constraint k
           JOIN members m ON m.classid = 'pg_type'::regclass AND m.objid = k.contypid
    UNION SELECT 'pg_trigger'::regclass, t.oid FROM pg_trigger t JOIN rels r ON r.oid = t.tgrelid WHERE NOT t.tgisinternal
    UNION SELECT 'pg_policy'::regclass, p.oid FROM pg_policy p JOIN rels r ON r.oid = p.polrelid
    UNION SELECT 'pg_rewrite'::regclass, w.oid FROM pg_rewrite w JOIN rels r ON r.oid = w.ev_class
)";

/// Sorted, space-separated ACL items; 'default' for a NULL ACL.
fn acl(col: &str) -> String {
    format!("coalesce((SELECT string_agg(a::text, ' ' ORDER BY a::text) FROM unnest({col}) a), 'default')")
}

/// Each query returns (name, definition).
fn queries() -> Vec<String> {
    let relacl = acl("c.relacl");
    let attacl = acl("a.attacl");
    let proacl = acl("p.proacl");
    let nspacl = acl("n.nspacl");
    let typacl = acl("t.typacl");
    let initprivs = acl("ip.initprivs");
    vec![
        // The extension itself and its pg_dump configuration.
        "SELECT 'extension d5_storage', concat_ws(E'\\n',
                'version ' || e.extversion, 'schema ' || e.extnamespace::regnamespace,
                'relocatable ' || e.extrelocatable, 'owner ' || pg_get_userbyid(e.extowner),
                (SELECT string_agg(format('config_dump %s %L', c::regclass, w), E'\\n' ORDER BY c::regclass::text)
                   FROM unnest(e.extconfig, e.extcondition) u(c, w)))
           FROM pg_extension e WHERE e.extname = 'd5_storage'"
            .to_string(),
        // Membership: every object the extension owns.
        format!(
            "{SCOPE} SELECT 'member ' || o.type || ' ' || o.identity, 'deptype e'
               FROM members m, pg_identify_object(m.classid, m.objid, 0) o"
        ),
        // Comments on anything in scope (columns included).
        format!(
            "{SCOPE} SELECT 'comment on ' || o.type || ' ' || o.identity, d.description
               FROM pg_description d JOIN scope s ON s.classid = d.classoid AND s.objid = d.objoid,
                    pg_identify_object(d.classoid, d.objoid, d.objsubid) o"
        ),
        // Initial privileges recorded for the extension's objects (pg_dump
        // dumps only what differs from them).
        format!(
            "{SCOPE} SELECT 'init privs ' || o.type || ' ' || o.identity, ip.privtype::text || ' ' || {initprivs}
               FROM pg_init_privs ip JOIN scope s ON s.classid = ip.classoid AND s.objid = ip.objoid,
                    pg_identify_object(ip.classoid, ip.objoid, ip.objsubid) o"
        ),
        format!(
            "{SCOPE} SELECT 'schema ' || n.nspname, 'owner ' || pg_get_userbyid(n.nspowner) || E'\\nacl ' || {nspacl}
               FROM pg_namespace n JOIN scope s ON s.classid = 'pg_namespace'::regclass AND s.objid = n.oid"
        ),
        // Functions: pg_get_functiondef covers arguments and defaults, result,
        // language, volatility, strictness, SECURITY DEFINER, leakproof,
        // parallel safety, cost, rows, SET clauses and the body or C symbol.
        format!(
            "{SCOPE} SELECT 'function ' || p.oid::regprocedure, concat_ws(E'\\n',
                    CASE WHEN p.prokind = 'a' THEN 'aggregate ' || pg_get_function_arguments(p.oid)
                         ELSE pg_get_functiondef(p.oid) END,
                    'language ' || l.lanname || ', volatility ' || p.provolatile::text || ', strict ' || p.proisstrict
                        || ', security definer ' || p.prosecdef || ', parallel ' || p.proparallel::text,
                    'config ' || coalesce(array_to_string(p.proconfig, ', '), 'none'),
                    'owner ' || pg_get_userbyid(p.proowner), 'acl ' || {proacl})
               FROM pg_proc p JOIN members m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid
               JOIN pg_language l ON l.oid = p.prolang"
        ),
        // Relations: kind, owner, ACL, RLS, partitioning, view text, columns in order.
        format!(
            "{SCOPE} SELECT 'relation ' || c.oid::regclass, concat_ws(E'\\n',
                    'kind ' || c.relkind::text || ', persistence ' || c.relpersistence::text || ', replica identity ' || c.relreplident::text,
                    'owner ' || pg_get_userbyid(c.relowner), 'acl ' || {relacl},
                    'row level security ' || c.relrowsecurity || ', forced ' || c.relforcerowsecurity,
                    'options ' || array_to_string(c.reloptions, ', '),
                    'partition key ' || pg_get_partkeydef(c.oid),
                    'partition of ' || (SELECT i.inhparent::regclass || ' ' || pg_get_expr(c.relpartbound, c.oid)
                                          FROM pg_inherits i WHERE i.inhrelid = c.oid),
                    'inherits ' || (SELECT string_agg(i.inhparent::regclass::text, ', ') FROM pg_inherits i
                                     WHERE i.inhrelid = c.oid AND NOT c.relispartition),
                    CASE WHEN c.relkind::text IN ('v', 'm') THEN 'view ' || pg_get_viewdef(c.oid) END,
                    (SELECT string_agg(concat_ws(' ', 'column', quote_ident(a.attname), format_type(a.atttypid, a.atttypmod),
                                CASE WHEN a.attcollation <> t.typcollation THEN 'collate ' || a.attcollation::regcollation END,
                                CASE WHEN a.attnotnull THEN 'not null' END,
                                CASE WHEN a.attidentity::text <> '' THEN 'identity ' || a.attidentity::text END,
                                CASE WHEN a.attgenerated <> '' THEN 'generated' END,
                                'default ' || pg_get_expr(ad.adbin, ad.adrelid),
                                CASE WHEN a.attacl IS NOT NULL THEN 'acl ' || {attacl} END,
                                'storage ' || a.attstorage::text,
                                -- (this server stamps attoptions with a per-database pg_attver)
                                'options ' || nullif(array_to_string(ARRAY(SELECT o FROM unnest(a.attoptions) o WHERE o NOT LIKE 'pg\\_%'), ', '), '')), E'\\n' ORDER BY a.attnum)
                       FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
                       LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
                      WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
                    (SELECT format('sequence %s start %s increment %s min %s max %s cache %s cycle %s',
                                   s.seqtypid::regtype, s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle)
                       FROM pg_sequence s WHERE s.seqrelid = c.oid),
                    (SELECT 'owned by ' || d.refobjid::regclass || '.' || quote_ident(a.attname)
                       FROM pg_depend d JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                      WHERE c.relkind::text = 'S' AND d.classid = 'pg_class'::regclass AND d.objid = c.oid
                        AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')))
               FROM pg_class c JOIN rels r ON r.oid = c.oid"
        ),
        format!(
            "{SCOPE} SELECT 'index ' || i.indexrelid::regclass || ' on ' || i.indrelid::regclass,
                    pg_get_indexdef(i.indexrelid) || CASE WHEN i.indisvalid THEN '' ELSE ' (INVALID)' END
                        || CASE WHEN i.indisreplident THEN ' (replica identity)' ELSE '' END
               FROM pg_index i JOIN rels r ON r.oid = i.indrelid"
        ),
        format!(
            "{SCOPE} SELECT 'constraint ' || quote_ident(k.conname) || ' on '
                        || coalesce(k.conrelid::regclass::text, 'domain ' || k.contypid::regtype),
                    pg_get_constraintdef(k.oid) || CASE WHEN k.convalidated THEN '' ELSE ' (not validated)' END
               FROM pg_constraint k JOIN scope s ON s.classid = 'pg_constraint'::regclass AND s.objid = k.oid"
        ),
        format!(
            "{SCOPE} SELECT 'trigger ' || quote_ident(t.tgname) || ' on ' || t.tgrelid::regclass,
                    pg_get_triggerdef(t.oid) || E'\\nenabled ' || t.tgenabled::text
               FROM pg_trigger t JOIN scope s ON s.classid = 'pg_trigger'::regclass AND s.objid = t.oid"
        ),
        format!(
            "{SCOPE} SELECT 'policy ' || quote_ident(p.polname) || ' on ' || p.polrelid::regclass, concat_ws(E'\\n',
                    'command ' || p.polcmd::text || ', permissive ' || p.polpermissive,
                    'roles ' || (SELECT string_agg(n, ', ' ORDER BY n) FROM unnest(p.polroles) r,
                                        LATERAL (SELECT CASE WHEN r = 0 THEN 'public' ELSE r::regrole::text END) x(n)),
                    'using ' || pg_get_expr(p.polqual, p.polrelid),
                    'with check ' || pg_get_expr(p.polwithcheck, p.polrelid))
               FROM pg_policy p JOIN scope s ON s.classid = 'pg_policy'::regclass AND s.objid = p.oid"
        ),
        // Types made by CREATE TYPE / CREATE DOMAIN (a table's row type goes with its table).
        format!(
            "{SCOPE} SELECT 'type ' || t.oid::regtype, concat_ws(E'\\n',
                    'typtype ' || t.typtype::text || ', owner ' || pg_get_userbyid(t.typowner) || ', acl ' || {typacl},
                    'base ' || nullif(t.typbasetype, 0)::regtype || CASE WHEN t.typnotnull THEN ' not null' ELSE '' END,
                    'default ' || t.typdefault,
                    'labels ' || (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)
                                    FROM pg_enum e WHERE e.enumtypid = t.oid),
                    (SELECT string_agg('attribute ' || quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod),
                                       E'\\n' ORDER BY a.attnum)
                       FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped))
               FROM pg_type t JOIN members m ON m.classid = 'pg_type'::regclass AND m.objid = t.oid"
        ),
        // Default privileges someone set for the extension's schemas.
        format!(
            "{SCOPE} SELECT 'default privileges ' || d.defaclrole::regrole || ' ' || d.defaclobjtype::text,
                    {}
               FROM pg_default_acl d JOIN scope s ON s.classid = 'pg_namespace'::regclass AND s.objid = d.defaclnamespace",
            acl("d.defaclacl")
        ),
    ]
}

/// Rows that CREATE EXTENSION ships (defaults an update script must also
/// insert or change): (table, name of a row, its value, which rows). The
/// test's data load leaves them alone. A table missing here is skipped.
const SHIPPED: &[(&str, &str, &str, &str)] = &[
    ("d5.partition_config", "parent::text", "granularity || ' premake ' || premake", "true"),
    ("d5.retention_policies", "table_name::text", "retention || ' ' || action", "true"),
    ("d5.json_schemas", "name || ' version ' || version", "schema::text", "shipped"),
    (
        "d5.json_schema_bindings",
        "table_name || '.' || column_name || coalesce(' tenant ' || tenant_id, '')",
        "coalesce(schema_name, 'none')",
        "shipped",
    ),
];

/// The extension's objects in the database `c` is connected to.
pub fn snapshot(c: &mut Client) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut queries = queries();
    for (table, name, value, filter) in SHIPPED {
        if c.query_one("SELECT to_regclass($1) IS NOT NULL", &[table]).unwrap().get(0) {
            queries.push(format!("SELECT 'shipped row {table} ' || {name}, {value} FROM {table} WHERE {filter}"));
        }
    }
    for q in queries {
        for row in c.query(q.as_str(), &[]).unwrap_or_else(|e| panic!("catalog query failed: {e:?}\n{q}")) {
            let (name, def): (String, Option<String>) = (row.get(0), row.get(1));
            let def = def.unwrap_or_default();
            if let Some(old) = out.insert(name.clone(), def.clone()) {
                // Two objects with one name would hide each other: keep both.
                out.insert(format!("{name} (second)"), old);
            }
        }
    }
    out
}

/// A readable diff: `-` lines are the upgraded database, `+` lines the
/// fresh install. Empty when they are equal.
pub fn diff(upgraded: &BTreeMap<String, String>, fresh: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    for (name, def) in upgraded {
        match fresh.get(name) {
            None => out += &format!("- {name}  (only in the upgraded database)\n{}\n", indent(def, "-     ")),
            Some(f) if f != def => out += &format!("~ {name}\n{}", line_diff(def, f)),
            Some(_) => {}
        }
    }
    for (name, def) in fresh {
        if !upgraded.contains_key(name) {
            out += &format!("+ {name}  (only in the fresh install)\n{}\n", indent(def, "+     "));
        }
    }
    out
}

fn indent(text: &str, prefix: &str) -> String {
    text.lines().map(|l| format!("{prefix}{l}")).collect::<Vec<_>>().join("\n")
}

/// Line diff by longest common subsequence; unchanged lines are kept only
/// around changes.
fn line_diff(a: &str, b: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let mut ops = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            ops.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            ops.push(('+', b[j]));
            j += 1;
        } else {
            ops.push(('-', a[i]));
            i += 1;
        }
    }
    let near = |k: usize| ops[k.saturating_sub(2)..(k + 3).min(ops.len())].iter().any(|(op, _)| *op != ' ');
    let mut out = String::new();
    for (k, (op, line)) in ops.iter().enumerate() {
        if *op != ' ' || near(k) {
            out += &format!("    {op} {line}\n");
        }
    }
    out
}
