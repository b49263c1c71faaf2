//! Test support shared by the unit tests, the integration tests and the benchmarks: a fresh
//! PostgreSQL database per test on the throwaway server `./scripts/test.sh` starts.

use sqlx::{AssertSqlSafe, Connection};

/// The server the tests use (`postgres://…/postgres`), set by `./scripts/test-postgres.sh`.
pub const SERVER_ENV: &str = "TEST_DATABASE_URL";

/// A URL to a new, empty database, or `None` (the test skips) when no server is configured.
/// Under `REQUIRE_PEERS` (CI) a missing server fails the test instead.
pub async fn fresh_postgres_database() -> Option<String> {
    let Ok(server) = std::env::var(SERVER_ENV) else {
        assert!(
            std::env::var_os("REQUIRE_PEERS").is_none(),
            "{SERVER_ENV} is not set and REQUIRE_PEERS is: start one with scripts/test-postgres.sh"
        );
        eprintln!("skipping the PostgreSQL half: {SERVER_ENV} is not set");
        return None;
    };
    sqlx::any::install_default_drivers();
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::AnyConnection::connect(&server)
        .await
        .unwrap_or_else(|e| panic!("{SERVER_ENV}={server}: {e}"));
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("create database {name}: {e}"));
    let _ = admin.close().await;
    let mut url = url::Url::parse(&server).unwrap_or_else(|e| panic!("{SERVER_ENV}: {e}"));
    url.set_path(&name);
    Some(url.to_string())
}
