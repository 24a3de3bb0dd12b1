-- Tenants and cloud accounts named by a gen_focus manifest (psql variable
-- manifest: path of manifest.tsv). Run as the superuser. Also used by
-- bench/cost_query.
\set ON_ERROR_STOP on
CREATE TEMP TABLE manifest (file text, tenant_index int, tenant_id uuid, account_index int, cloud_account_id uuid,
                            provider text, billing_account_id text, rows bigint, first_line bigint, last_line bigint,
                            bad_rows bigint);
\set cmd '\\copy manifest FROM ' :'manifest' ' WITH (FORMAT text, HEADER true)'
:cmd
INSERT INTO d5.tenants (id, name, plan)
SELECT DISTINCT tenant_id, 'bench tenant ' || tenant_index, 'enterprise' FROM manifest
ON CONFLICT DO NOTHING;
INSERT INTO d5.cloud_accounts (tenant_id, id, provider, external_account_id, name, credentials_ref)
SELECT tenant_id, cloud_account_id,
       CASE provider WHEN 'AWS' THEN 'aws' WHEN 'Microsoft' THEN 'azure' WHEN 'Google Cloud' THEN 'gcp' ELSE 'other' END,
       billing_account_id, 'bench account ' || tenant_index || '/' || account_index,
       'vault://secret/data/bench/' || cloud_account_id
  FROM manifest
ON CONFLICT DO NOTHING;
-- With -v param_accounts=1: a second, empty account per file for
-- bench/cost_ingest's ingest_param variant (the same rows under another cloud
-- account id: again a pure insert).
\if :{?param_accounts}
INSERT INTO d5.cloud_accounts (tenant_id, id, provider, external_account_id, name, credentials_ref)
SELECT tenant_id, md5('param' || cloud_account_id)::uuid,
       CASE provider WHEN 'AWS' THEN 'aws' WHEN 'Microsoft' THEN 'azure' WHEN 'Google Cloud' THEN 'gcp' ELSE 'other' END,
       billing_account_id || '-param', 'bench account ' || tenant_index || '/' || account_index || ' (param)',
       'vault://secret/data/bench/' || cloud_account_id || '-param'
  FROM manifest
ON CONFLICT DO NOTHING;
\endif
