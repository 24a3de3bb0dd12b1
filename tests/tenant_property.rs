//! Property-style isolation check: many random operations by many tenants on
//! a few pooled connections, in random order (including attempts on other
//! tenants' ids), then each tenant sees exactly the rows a model predicts.

mod common;

use std::collections::BTreeMap;

use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

const TENANTS: usize = 8;
const CONNECTIONS: usize = 3;
const OPERATIONS: usize = 1500;

/// tenant → policy id → (name, enabled)
type Model = BTreeMap<Uuid, BTreeMap<Uuid, (String, bool)>>;

#[test]
fn random_operations_keep_every_tenant_to_its_own_rows() {
    let seed: u64 = std::env::var("D5_PROPERTY_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0xD5);
    let mut rng = StdRng::seed_from_u64(seed);
    let db = TestDb::new();
    let tenants: Vec<Uuid> = (0..TENANTS).map(|i| db.create_tenant(&format!("tenant {i}"))).collect();
    let (role, first) = db.login("d5_app");
    let mut pool = vec![first];
    for _ in 1..CONNECTIONS {
        pool.push(db.connect_as(&role));
    }
    let mut model: Model = tenants.iter().map(|t| (*t, BTreeMap::new())).collect();
    let mut all_ids: Vec<(Uuid, Uuid)> = Vec::new(); // (tenant, id) of every row ever made

    for op in 0..OPERATIONS {
        let conn = &mut pool[rng.gen_range(0..CONNECTIONS)];
        let me = tenants[rng.gen_range(0..TENANTS)];
        let commit = rng.gen_bool(0.85);
        let mut tx = conn.transaction().unwrap();
        tx.execute("SELECT d5.set_tenant($1)", &[&me]).unwrap();
        let mut pending: Vec<Box<dyn FnOnce(&mut Model)>> = Vec::new();
        match rng.gen_range(0..5) {
            0 | 1 => {
                let name = format!("policy {op}");
                let id: Uuid = tx
                    .query_one("INSERT INTO d5.policies (name, type, thresholds) VALUES ($1, 'budget', '{\"amount\": 100, \"currency\": \"USD\", \"period\": \"monthly\"}') RETURNING id", &[&name])
                    .unwrap()
                    .get(0);
                all_ids.push((me, id));
                pending.push(Box::new(move |m: &mut Model| {
                    m.get_mut(&me).unwrap().insert(id, (name, true));
                }));
            }
            2 => {
                // Toggle a random row of any tenant: only own rows may change.
                if let Some(&(owner, id)) = pick(&mut rng, &all_ids) {
                    let n = tx.execute("UPDATE d5.policies SET enabled = NOT enabled WHERE id = $1", &[&id]).unwrap();
                    let exists = model[&owner].contains_key(&id);
                    assert_eq!(n as usize, usize::from(owner == me && exists), "update by {me} of {owner}'s row");
                    if n == 1 {
                        pending.push(Box::new(move |m: &mut Model| {
                            let row = m.get_mut(&me).unwrap().get_mut(&id).unwrap();
                            row.1 = !row.1;
                        }));
                    }
                }
            }
            3 => {
                if let Some(&(owner, id)) = pick(&mut rng, &all_ids) {
                    let n = tx.execute("DELETE FROM d5.policies WHERE id = $1", &[&id]).unwrap();
                    let exists = model[&owner].contains_key(&id);
                    assert_eq!(n as usize, usize::from(owner == me && exists), "delete by {me} of {owner}'s row");
                    if n == 1 {
                        pending.push(Box::new(move |m: &mut Model| {
                            m.get_mut(&me).unwrap().remove(&id);
                        }));
                    }
                }
            }
            _ => {
                // Read: exactly the committed model for this tenant.
                let seen = read_policies(&mut tx);
                assert_eq!(seen, model[&me], "tenant {me} saw other rows at op {op} (seed {seed})");
            }
        }
        if commit {
            tx.commit().unwrap();
            for apply in pending {
                apply(&mut model);
            }
        } else {
            tx.rollback().unwrap();
        }
    }

    let mut checker = db.connect_as(&role);
    let mut total = 0;
    for t in &tenants {
        let mut tx = checker.transaction().unwrap();
        tx.execute("SELECT d5.set_tenant($1)", &[t]).unwrap();
        let seen = read_policies(&mut tx);
        assert_eq!(seen, model[t], "final state of tenant {t} (seed {seed})");
        total += seen.len();
        tx.commit().unwrap();
    }
    let stored: i64 = db.superuser().query_one("SELECT count(*) FROM d5.policies", &[]).unwrap().get(0);
    assert_eq!(stored as usize, total, "rows exist that no tenant can see");
    assert!(total > 100, "the run made too few rows to prove anything: {total}");
}

fn pick<'a, T>(rng: &mut StdRng, v: &'a [T]) -> Option<&'a T> {
    (!v.is_empty()).then(|| &v[rng.gen_range(0..v.len())])
}

fn read_policies(tx: &mut postgres::Transaction) -> BTreeMap<Uuid, (String, bool)> {
    tx.query("SELECT id, name, enabled FROM d5.policies", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect()
}
