//! In-backend tests (`cargo pgrx test`): behaviour inside one session.
//! Isolation between roles and sessions is tested in `tests/` as real logins.

#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    #[pg_test]
    fn current_tenant_is_null_until_set() {
        assert_eq!(Spi::get_one::<pgrx::Uuid>("SELECT d5.current_tenant()").unwrap(), None);
    }

    #[pg_test]
    fn set_tenant_is_visible_in_same_transaction() {
        let t = Spi::get_one::<pgrx::Uuid>("SELECT d5.create_tenant('acme', 'pro')").unwrap().unwrap();
        Spi::run_with_args("SELECT d5.set_tenant($1)", &[t.into()]).unwrap();
        assert_eq!(Spi::get_one::<pgrx::Uuid>("SELECT d5.current_tenant()").unwrap(), Some(t));
        Spi::run("SELECT d5.clear_tenant()").unwrap();
        assert_eq!(Spi::get_one::<pgrx::Uuid>("SELECT d5.current_tenant()").unwrap(), None);
    }

    #[pg_test(error = "tenant 00000000-0000-0000-0000-000000000001 does not exist")]
    fn unknown_tenant_is_refused() {
        Spi::run("SELECT d5.set_tenant('00000000-0000-0000-0000-000000000001')").unwrap();
    }

    #[pg_test]
    fn minted_token_round_trips() {
        let t = Spi::get_one::<pgrx::Uuid>("SELECT d5.create_tenant('acme', 'pro')").unwrap().unwrap();
        let token = Spi::get_one_with_args::<String>(
            "SELECT d5.mint_tenant_token($1, interval '5 minutes')",
            &[t.into()],
        )
        .unwrap()
        .unwrap();
        Spi::run_with_args("SELECT d5.set_tenant($1, $2)", &[t.into(), token.as_str().into()]).unwrap();
        assert_eq!(Spi::get_one::<pgrx::Uuid>("SELECT d5.current_tenant()").unwrap(), Some(t));
    }
}
