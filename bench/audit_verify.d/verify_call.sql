SELECT count(*), sum(records), count(*) FILTER (WHERE NOT ok) FROM d5.verify_audit_chain();
