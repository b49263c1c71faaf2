//! Three replicas reading one PostgreSQL database at once (the store benchmark's last table).

use crate::common::percentile;
use crate::measure::{Sizes, filtered, page, page_and_summary};
use coordination_engine::metrics::Metrics;
use coordination_engine::store::{IncidentFilter, PageStart, SqlStore, Store};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Three replicas reading one PostgreSQL database at once: three stores (three pools, as three
/// engine processes hold), `readers` tasks on each, every task running `runs` queries.
/// Returns (what, readers in all, queries/s, p50, p99).
pub(crate) async fn replicas_reading(
    url: &str,
    sizes: &Sizes,
) -> Vec<(String, usize, f64, Duration, Duration)> {
    let mut stores = Vec::new();
    for _ in 0..3 {
        stores.push(Arc::new(
            SqlStore::connect_postgres(url, None, Duration::from_secs(5), Metrics::new())
                .await
                .expect("replica store"),
        ));
    }
    let mut rows = Vec::new();
    for readers in [1, 4] {
        for query in [
            "page of 50, no filter",
            "page of 50, namespace + status=active",
            "GET /api/v1/incidents?namespace=…&status=active (page + summary)",
        ] {
            let started = Instant::now();
            let mut tasks = Vec::new();
            for store in &stores {
                for _ in 0..readers {
                    let (store, runs) = (store.clone(), sizes.query_runs);
                    // Full pages at 100 000 incidents (1 000 active in team-8).
                    let want = 50.min(sizes.rows / 100);
                    tasks.push(tokio::spawn(async move {
                        let filter = match query {
                            "page of 50, no filter" => IncidentFilter::default(),
                            _ => filtered(),
                        };
                        let mut samples = Vec::with_capacity(runs);
                        for _ in 0..runs {
                            let sent = Instant::now();
                            if query.starts_with("GET") {
                                page_and_summary(&store, &filter).await;
                            } else {
                                let rows = store
                                    .list_incidents(&filter, &page(50, PageStart::Offset(0)))
                                    .await
                                    .expect("list");
                                assert!(rows.items.len() >= want, "a page of {want} or more");
                            }
                            samples.push(sent.elapsed());
                        }
                        samples
                    }));
                }
            }
            let mut samples = Vec::new();
            for task in tasks {
                samples.extend(task.await.expect("reader"));
            }
            let rate = samples.len() as f64 / started.elapsed().as_secs_f64();
            rows.push((
                query.to_string(),
                3 * readers,
                rate,
                percentile(&mut samples, 0.5),
                percentile(&mut samples, 0.99),
            ));
        }
    }
    for store in stores {
        store.close().await;
    }
    rows
}
