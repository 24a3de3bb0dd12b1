-- bench/soak setup (as the superuser): tenants, accounts, tokens, a CSV maker.
CREATE EXTENSION d5_storage;
CREATE ROLE soak_app LOGIN IN ROLE d5_app;
CREATE ROLE soak_admin LOGIN IN ROLE d5_admin;
CREATE TABLE public.soak_tenants (n int PRIMARY KEY, id uuid NOT NULL, account uuid NOT NULL, token text NOT NULL);
GRANT SELECT ON public.soak_tenants TO soak_app;
DO $$
DECLARE t uuid; a uuid;
BEGIN
    FOR i IN 1..:tenants LOOP
        t := d5.create_tenant('soak' || i, 'pro');
        INSERT INTO d5.cloud_accounts (tenant_id, provider, external_account_id) VALUES (t, 'aws', 'acct' || i)
            RETURNING id INTO a;
        INSERT INTO public.soak_tenants VALUES (i, t, a, d5.mint_tenant_token(t, interval '1 day'));
    END LOOP;
END
$$;
-- A small FOCUS CSV: :rows hourly rows in the last 12 hours, billing account
-- ba-<ba> (so a repeated ba replaces that account's period, a new one adds).
CREATE FUNCTION public.soak_csv(ba int, nrows int) RETURNS text LANGUAGE sql VOLATILE AS $f$
    SELECT 'BilledCost,EffectiveCost,ListCost,ContractedCost,ChargePeriodStart,ChargePeriodEnd,'
        || 'BillingPeriodStart,BillingPeriodEnd,BillingAccountId,BillingCurrency,ChargeCategory,'
        || 'ServiceName,ProviderName,RegionId,Tags' || E'\n'
        || string_agg(format('%s,%s,%s,%s,%s,%s,%s,%s,ba-%s,USD,Usage,%s,AWS,eu-west-1,"{""env"":""prod""}"',
                             c, c, c * 1.1, c, to_char(s, 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                             to_char(s + interval '1 hour', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                             to_char(date_trunc('month', s), 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                             to_char(date_trunc('month', s) + interval '1 month', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                             ba, (ARRAY['EC2', 'S3', 'RDS', 'Lambda'])[1 + g % 4]), E'\n')
    FROM generate_series(1, nrows) g,
         LATERAL (SELECT date_trunc('hour', now() AT TIME ZONE 'UTC') - (g % 12) * interval '1 hour' AS s,
                         round((random() * 10)::numeric, 6) AS c) x
$f$;
GRANT EXECUTE ON FUNCTION public.soak_csv(int, int) TO soak_app;
