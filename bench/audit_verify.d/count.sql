SELECT count(*) FROM d5.audit_log;
