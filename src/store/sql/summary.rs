//! The incident summary: from the counters, or from the rows when a `since` filter needs them.

use super::builder::SqlBuilder;
use super::unavailable;
use crate::store::query::{counts_where, incident_where, push_where};
use crate::store::{IncidentFilter, IncidentSummary, StoreError};
use sqlx::{AnyPool, Row};

pub(super) async fn summarize(
    readers: &AnyPool,
    filter: &IncidentFilter,
) -> Result<IncidentSummary, StoreError> {
    // The counters answer in constant time; only a `since` filter needs the rows.
    let mut builder = match counts_where(filter) {
        Some((where_sql, binds)) => {
            // CAST: PostgreSQL sums BIGINTs into NUMERIC.
            let mut b = SqlBuilder::new(
                "SELECT status, severity, CAST(SUM(n) AS BIGINT) FROM incident_counts",
            );
            push_where(&mut b, &where_sql, binds);
            b
        }
        None => {
            let (where_sql, binds) = incident_where(filter, None);
            let mut b = SqlBuilder::new("SELECT status, severity, COUNT(*) FROM incidents");
            push_where(&mut b, &where_sql, binds);
            b
        }
    };
    builder.push(" GROUP BY status, severity");
    let rows = builder
        .build()?
        .fetch_all(readers)
        .await
        .map_err(unavailable)?;
    let mut summary = IncidentSummary::default();
    for row in rows {
        let (status, severity, n): (String, String, i64) = (row.get(0), row.get(1), row.get(2));
        if n == 0 {
            continue;
        }
        summary.total += n;
        match status.as_str() {
            "active" => summary.active += n,
            "resolved" => summary.completed += n,
            "escalated" => summary.failed += n,
            _ => {}
        }
        *summary.by_status.entry(status).or_default() += n;
        *summary.by_severity.entry(severity).or_default() += n;
    }
    Ok(summary)
}
