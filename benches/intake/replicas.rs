//! Three servers on one PostgreSQL database: alert intake spread over the replicas, then pages
//! read from all three while the leader works (and after it is idle).

use crate::common::{self, Server, ms};
use crate::load::{get_from_replicas, notifications, post_to_replicas, total_incidents};
use coordination_engine::incident::Incident;
use coordination_engine::metrics::Metrics;
use coordination_engine::store::{SqlStore, Store};
use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;

/// Three servers on one PostgreSQL database: alert intake (each replica its own notifications,
/// then the same notifications to all three), then pages of 50 out of `rows` incidents.
/// Returns the report section.
pub(crate) async fn three_replicas(
    url: &str,
    notifications_per_row: usize,
    rows: usize,
    runs: usize,
) -> String {
    let servers = spawn_replicas(url).await;
    let mut section = String::new();
    let expected = intake_table(&servers, notifications_per_row, &mut section).await;
    // Each alert is one incident, whichever replicas received it.
    for server in &servers {
        assert_eq!(total_incidents(server).await, expected as i64);
    }

    // Fill the database up to `rows` incidents, then page through all three replicas at once.
    fill_to(url, expected, rows).await;
    assert_eq!(total_incidents(&servers[0]).await, rows as i64);
    read_table(&servers, url, expected, rows, runs, &mut section).await;
    for server in servers {
        if let Ok(server) = Arc::try_unwrap(server) {
            server.stop().await;
        }
    }
    section
}

async fn spawn_replicas(url: &str) -> Vec<Arc<Server>> {
    let mut servers = Vec::new();
    for replica in 1..=3 {
        servers.push(Arc::new(
            common::spawn_server(Some(url), &format!("replica-{replica}")).await,
        ));
    }
    servers
}

/// The intake heading and table: each replica its own notifications (1 and 4 senders each),
/// then every notification to all three. Returns the distinct alerts committed.
async fn intake_table(
    servers: &[Arc<Server>],
    notifications_per_row: usize,
    section: &mut String,
) -> usize {
    section.push_str(
        "## Three replicas on one PostgreSQL database\n\nThree servers in-process on one fresh \
         database of the server above, each with its own HTTPS listener and pool of 10 \
         connections (as three engine processes: they elect one executor on a row, and every \
         one takes webhooks and API requests). Notifications of 100 new alerts; each sender \
         posts its notifications back to back, all senders at once; a notification is answered \
         after its commit.\n\n",
    );
    let _ = writeln!(
        section,
        "| load | notifications | alerts/s committed (all replicas) | p50 per notification | p99 per notification |\n|---|---|---|---|---|"
    );
    let mut next_batch = 1_000_000;
    let mut expected = 0;
    for senders in [1, 4] {
        let bodies = notifications(&mut next_batch, 100, notifications_per_row);
        let timed =
            post_to_replicas(servers, senders, bodies, false, 100 * notifications_per_row).await;
        expected += 100 * notifications_per_row;
        let _ = writeln!(
            section,
            "| {senders} sender(s) per replica, {} at once, each notification to one replica | {notifications_per_row} | {:.0} | {} | {} |",
            3 * senders,
            timed.rate,
            ms(timed.p50),
            ms(timed.p99)
        );
    }
    let bodies = notifications(&mut next_batch, 100, notifications_per_row / 3);
    let timed = post_to_replicas(servers, 1, bodies, true, 100 * (notifications_per_row / 3)).await;
    expected += 100 * (notifications_per_row / 3);
    let _ = writeln!(
        section,
        "| every notification to all three at once (Alertmanager HA peers), distinct alerts counted | {} × 3 | {:.0} | {} | {} |",
        notifications_per_row / 3,
        timed.rate,
        ms(timed.p50),
        ms(timed.p99)
    );
    expected
}

/// Inserts incidents from `expected` up to `rows` directly (as the store benchmark writes
/// them), then `ANALYZE`.
async fn fill_to(url: &str, expected: usize, rows: usize) {
    let store = SqlStore::connect_postgres(url, None, Duration::from_secs(5), Metrics::new())
        .await
        .expect("store");
    let now = chrono::Utc::now();
    for start in (expected..rows).step_by(500) {
        let batch: Vec<Incident> = (start..(start + 500).min(rows))
            .map(|i| common::incident(i, rows, now))
            .collect();
        store.insert_incidents(&batch).await.expect("fill");
    }
    store.close().await;
    common::analyze(url).await;
}

/// The read paragraph and table: both pages from 1 and 4 clients per replica, first while the
/// leader works through its queue, then with the queue emptied.
async fn read_table(
    servers: &[Arc<Server>],
    url: &str,
    expected: usize,
    rows: usize,
    runs: usize,
    section: &mut String,
) {
    let _ = writeln!(
        section,
        "\n{rows} incidents in the database ({expected} from the intake above, the rest as the \
         store benchmark writes them), then `ANALYZE` (as autovacuum would run); every client sends {runs} requests back to back over \
         HTTPS keep-alive, all clients at once; the time is until the whole answer (page and \
         summary) is read.\n"
    );
    let _ = writeln!(
        section,
        "| the leader's pipeline | request | clients (3 replicas) | requests/s | p50 | p99 |\n|---|---|---|---|---|---|"
    );
    // Every alert above was actionable, so the leader is still working through their queue
    // (triggers, gates, workflows) while the replicas serve the list: measured as it is, then
    // again with the queue emptied, to see the reads alone.
    let queued = common::count(url, "SELECT COUNT(*) FROM incident_queue").await;
    for leader in [
        format!("working through {queued} queued alerts"),
        "idle (queue emptied)".to_string(),
    ] {
        if leader.starts_with("idle") {
            common::execute(url, "DELETE FROM incident_queue").await;
        }
        for readers in [1, 4] {
            for path in [
                "/api/v1/incidents?limit=50",
                "/api/v1/incidents?namespace=team-8&status=active&limit=50",
            ] {
                let want = 50.min(rows / 100);
                let timed = get_from_replicas(servers, readers, runs, path, want).await;
                let _ = writeln!(
                    section,
                    "| {leader} | `GET {path}` | {} | {:.0} | {} | {} |",
                    3 * readers,
                    timed.rate,
                    ms(timed.p50),
                    ms(timed.p99)
                );
            }
        }
    }
}
