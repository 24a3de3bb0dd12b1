\set n random(1, 100 * :res)
\set t (:n - 1) / :res + 1
\set r random(1, 1000000000)
BEGIN;
SELECT d5.set_tenant(md5('t' || :t)::uuid);
UPDATE d5.resources SET name = 'resource ' || :n || ' rev ' || :r WHERE id = md5('r' || :n)::uuid;
COMMIT;
