//! Opening the store: the SQLite file with its pragmas, or a PostgreSQL pool. Both retry a
//! cold start that only times out or finds the database busy or not yet reachable.

use super::rows::migrate;
use crate::store::StoreError;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyConnection, AnyPool, AssertSqlSafe, Connection, Executor};
use std::path::Path;
use std::time::{Duration, Instant};

/// The database file under `DATA_DIR`.
pub const DB_FILE: &str = "coordination-engine.db";
const SQLITE_READERS: u32 = 4;
/// PostgreSQL connections per replica (a busy replica uses a handful; three replicas stay far
/// below PostgreSQL's default `max_connections` of 100).
const POSTGRES_CONNECTIONS: u32 = 10;
/// How long startup keeps retrying a database that is only slow, busy or not yet up.
const OPEN_DEADLINE: Duration = Duration::from_secs(30);
const OPEN_RETRY_PAUSE: Duration = Duration::from_millis(200);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgresql",
        }
    }
}

/// Worth trying again while starting: a pool timeout, SQLite's BUSY/LOCKED, or a server that
/// refuses connections or is still starting (unlike a bad path, a corrupt file or a bad
/// password).
fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) => true,
        sqlx::Error::Database(db) => {
            let code = db.code();
            // 57P03 cannot_connect_now (PostgreSQL starting up or shutting down).
            if code.as_deref() == Some("57P03") {
                return true;
            }
            let primary = code
                .as_deref()
                .and_then(|c| c.parse::<i32>().ok())
                .map(|c| c & 0xff);
            matches!(primary, Some(5 | 6))
        }
        _ => false,
    }
}

async fn with_open_retries<T, F, Fut>(what: &str, mut open: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, sqlx::Error>>,
{
    sqlx::any::install_default_drivers();
    let started = Instant::now();
    loop {
        match open().await {
            Ok(opened) => return Ok(opened),
            Err(error) if is_transient(&error) && started.elapsed() < OPEN_DEADLINE => {
                tracing::warn!(%error, store = what, "store busy or unreachable while opening; trying again");
                tokio::time::sleep(OPEN_RETRY_PAUSE).await;
            }
            Err(error) => {
                return Err(StoreError::Unavailable(format!("{what}: {error}")));
            }
        }
    }
}

/// Characters of a file path that mean something in a `sqlite:` URL.
const PATH_IN_URL: &AsciiSet = &CONTROLS.add(b'%').add(b'?').add(b'#').add(b' ');

/// The writer pool and the read-only pool of the SQLite file at `path`.
///
/// `busy_timeout` bounds each request, not a cold start: on a loaded node the first
/// connection (opening the file, switching to WAL) or a migration can take longer than a short
/// busy timeout, so opening retries for up to [`OPEN_DEADLINE`].
pub(super) async fn open_sqlite(
    path: &Path,
    busy_timeout: Duration,
) -> Result<(AnyPool, AnyPool), StoreError> {
    let encoded = utf8_percent_encode(&path.to_string_lossy(), PATH_IN_URL).to_string();
    let url = |mode: &str| format!("sqlite://{encoded}?mode={mode}");
    let busy_ms = busy_timeout.as_millis();
    let pool = |mode: &str, connections: u32| {
        let url = url(mode);
        async move {
            AnyPoolOptions::new()
                .max_connections(connections)
                .acquire_timeout(busy_timeout)
                .after_connect(move |conn, _| {
                    Box::pin(async move {
                        // WAL and synchronous=FULL: a commit is on disk before we acknowledge
                        // it, and readers run beside the writer.
                        conn.execute(AssertSqlSafe(format!(
                            "PRAGMA busy_timeout = {busy_ms}; PRAGMA foreign_keys = ON; \
                             PRAGMA synchronous = FULL;"
                        )))
                        .await?;
                        Ok(())
                    })
                })
                .connect(&url)
                .await
        }
    };
    with_open_retries(&path.display().to_string(), || async {
        // One connection outside a pool first: a pool retries a failing `after_connect`
        // until its acquire timeout and reports only that it timed out, so a corrupt file
        // would look busy (retried for `OPEN_DEADLINE`) and lose its cause.
        let mut probe = AnyConnection::connect(&url("rwc")).await?;
        let pragmas = probe.execute(AssertSqlSafe(format!(
            "PRAGMA busy_timeout = {busy_ms}; PRAGMA schema_version;"
        )));
        let checked = pragmas.await.map(|_| ());
        let _ = probe.close().await;
        checked?;
        let writer = pool("rwc", 1).await?;
        let setup = async {
            writer.execute("PRAGMA journal_mode = WAL").await?;
            migrate(&writer).await
        };
        if let Err(error) = setup.await {
            writer.close().await;
            return Err(error);
        }
        match pool("ro", SQLITE_READERS).await {
            Ok(readers) => Ok((writer, readers)),
            Err(error) => {
                writer.close().await;
                Err(error)
            }
        }
    })
    .await
}

/// A PostgreSQL pool for `url` (the password, when given separately, is added to it), and the
/// URL without its password for logs and `/api/v1/health`.
pub(super) async fn open_postgres(
    url: &str,
    password: Option<&str>,
    busy_timeout: Duration,
) -> Result<(AnyPool, String), StoreError> {
    let mut parsed = url::Url::parse(url)
        .map_err(|e| StoreError::Unavailable(format!("DATABASE_URL is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "postgres" | "postgresql") {
        return Err(StoreError::Unavailable(format!(
            "DATABASE_URL must start with postgres:// (got {}://)",
            parsed.scheme()
        )));
    }
    if let Some(password) = password
        && parsed.set_password(Some(password)).is_err()
    {
        return Err(StoreError::Unavailable(
            "DATABASE_URL has no user to give the password to".into(),
        ));
    }
    let mut redacted = parsed.clone();
    let _ = redacted.set_password(None);
    let redacted = redacted.to_string();
    let pool = with_open_retries(&redacted, || async {
        // One direct connection first: the pool retries a refused connection until its
        // acquire timeout and then reports only "pool timed out", hiding the cause (refused,
        // unknown host, bad password) that the operator needs to read.
        {
            use sqlx::Connection;
            sqlx::AnyConnection::connect(parsed.as_str())
                .await?
                .close()
                .await?;
        }
        let pool = AnyPoolOptions::new()
            .max_connections(POSTGRES_CONNECTIONS)
            .acquire_timeout(busy_timeout)
            // A connection broken by a database restart is found and replaced before use.
            .test_before_acquire(true)
            .connect(parsed.as_str())
            .await?;
        if let Err(error) = migrate(&pool).await {
            pool.close().await;
            return Err(error);
        }
        Ok(pool)
    })
    .await?;
    Ok((pool, redacted))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_timeouts_busy_databases_and_unreachable_servers_are_worth_retrying() {
        assert!(is_transient(&sqlx::Error::PoolTimedOut));
        assert!(is_transient(&sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused
        ))));
        assert!(!is_transient(&sqlx::Error::PoolClosed));
        assert!(!is_transient(&sqlx::Error::RowNotFound));
    }

    #[test]
    fn a_path_with_url_characters_is_escaped() {
        let encoded = utf8_percent_encode("/data/a b?c#d%e.db", PATH_IN_URL).to_string();
        assert_eq!(encoded, "/data/a%20b%3Fc%23d%25e.db");
    }
}
