-- Cost queries over the last week.
\set t random(1, :tenants)
BEGIN;
SELECT d5.set_tenant(id) FROM public.soak_tenants WHERE n = :t;
SELECT count(*), sum(billed_cost) FROM d5.daily_costs(current_date - 7, current_date + 1);
SELECT * FROM d5.cost_by_service(current_date - 7, current_date + 1);
COMMIT;
