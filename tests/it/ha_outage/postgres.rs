//! A private PostgreSQL server the test can stop and start again.

use std::path::PathBuf;
use std::process::Command;

/// A PostgreSQL server of this test alone (the shared one must not be restarted under other
/// tests), started with `scripts/test-postgres.sh` and removed when dropped.
pub(super) struct PrivatePostgres {
    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    url: String,
    dir: PathBuf,
    bin: PathBuf,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/test-postgres.sh")
}

impl PrivatePostgres {
    /// `None` (the test skips) where no PostgreSQL can be started, unless `REQUIRE_PEERS`.
    pub(super) fn start() -> Option<PrivatePostgres> {
        let output = Command::new(script())
            .arg("start")
            .output()
            .expect("run scripts/test-postgres.sh");
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            assert!(
                std::env::var_os("REQUIRE_PEERS").is_none(),
                "cannot start a PostgreSQL server: {stderr}"
            );
            eprintln!("skipping: cannot start a PostgreSQL server: {stderr}");
            return None;
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let var = |name: &str| {
            stdout
                .lines()
                .filter_map(|line| line.strip_prefix("export "))
                .filter_map(|line| line.split_once('='))
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_string())
                .unwrap_or_else(|| panic!("the script printed no {name}: {stdout}"))
        };
        Some(PrivatePostgres {
            url: var("TEST_DATABASE_URL"),
            dir: var("TEST_POSTGRES_DIR").into(),
            bin: var("TEST_POSTGRES_BIN").into(),
        })
    }

    fn port(&self) -> u16 {
        url::Url::parse(&self.url)
            .ok()
            .and_then(|url| url.port())
            .expect("the server URL has a port")
    }

    /// `pg_ctl` as the `postgres` user (the server refuses to run as root), as the script does.
    fn pg_ctl(&self, args: &[&str]) {
        let pg_ctl = self.bin.join("pg_ctl");
        let data = self.dir.join("pg/d");
        let mut command = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]);
            c
        } else {
            let mut c = Command::new("sudo");
            c.args(["-u", "postgres", "--"]);
            c
        };
        let output = command
            .arg(pg_ctl)
            .arg("-D")
            .arg(data)
            .args(args)
            .output()
            .expect("run pg_ctl");
        assert!(
            output.status.success(),
            "pg_ctl {args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// A fast shutdown: open sessions are terminated, as in a failover or an upgrade.
    pub(super) fn stop(&self) {
        self.pg_ctl(&["-m", "fast", "-w", "stop"]);
    }

    /// Starts the server again on its port with the script's options; returns once it accepts
    /// connections.
    pub(super) fn start_again(&self) {
        let log = self.dir.join("pg/log").display().to_string();
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300",
            self.port(),
            self.dir.join("pg").display()
        );
        self.pg_ctl(&["-l", &log, "-w", "start", "-o", &options]);
    }

    /// A new database on this server; returns its URL.
    pub(super) async fn create_database(&self, name: &str) -> String {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let mut admin = sqlx::AnyConnection::connect(&self.url)
            .await
            .expect("connect to the private server");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create database");
        let _ = admin.close().await;
        let mut url = url::Url::parse(&self.url).expect("server URL");
        url.set_path(name);
        url.to_string()
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = Command::new(script()).arg("stop").arg(&self.dir).status();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
