//! The WHERE clauses of the list queries, built once for every SQL backend.

use super::sql::builder::SqlBuilder;
use super::{IncidentFilter, PageStart, WorkflowFilter, to_micros};

/// Values bound into a list query (portable: strings and integers only).
pub enum Bind {
    Text(String),
    Int(i64),
}

/// The conditions on the columns that `incidents` and `incident_counts` share.
fn incident_dimensions(filter: &IncidentFilter) -> Clauses {
    let mut clauses = Clauses::default();
    if let Some(ns) = &filter.namespace {
        clauses.eq("namespace", Bind::Text(ns.clone()));
    }
    if !filter.statuses.is_empty() {
        clauses.any_of(
            "status",
            filter
                .statuses
                .iter()
                .map(|s| s.as_str().to_string())
                .collect(),
        );
    }
    if let Some(severity) = filter.severity {
        clauses.eq("severity", Bind::Text(severity.as_str().into()));
    }
    if let Some(source) = filter.source {
        clauses.eq("source", Bind::Text(source.as_str().into()));
    }
    clauses
}

/// Appends ` WHERE …` for an incident filter (and, when given, the keyset position).
pub fn incident_where(filter: &IncidentFilter, after: Option<&PageStart>) -> (String, Vec<Bind>) {
    let mut clauses = incident_dimensions(filter);
    if let Some(since) = filter.since {
        clauses.raw("created_at >= ", Bind::Int(to_micros(since)));
    }
    clauses.after(after);
    clauses.finish()
}

/// Appends ` WHERE …` for a workflow filter.
pub fn workflow_where(filter: &WorkflowFilter, after: Option<&PageStart>) -> (String, Vec<Bind>) {
    let mut clauses = Clauses::default();
    if !filter.statuses.is_empty() {
        clauses.any_of(
            "status",
            filter
                .statuses
                .iter()
                .map(|s| s.as_str().to_string())
                .collect(),
        );
    }
    if let Some(ns) = &filter.namespace {
        clauses.eq("namespace", Bind::Text(ns.clone()));
    }
    if let Some(id) = &filter.incident_id {
        clauses.eq("incident_id", Bind::Text(id.clone()));
    }
    if let Some(kind) = filter.kind {
        clauses.eq("kind", Bind::Text(kind.as_str().into()));
    }
    clauses.after(after);
    clauses.finish()
}

/// The WHERE clause of a summary over `incident_counts`, or `None` when the filter needs the
/// incidents table itself (`since` is not a counter dimension).
pub fn counts_where(filter: &IncidentFilter) -> Option<(String, Vec<Bind>)> {
    if filter.since.is_some() {
        return None;
    }
    Some(incident_dimensions(filter).finish())
}

/// Pushes SQL text with `$n` placeholders and binds the values in order.
pub(crate) fn push_where(builder: &mut SqlBuilder, sql: &str, binds: Vec<Bind>) {
    // The SQL text uses `?` markers; the builder numbers the placeholders.
    let mut pieces = sql.split('?');
    if let Some(first) = pieces.next() {
        builder.push(first);
    }
    for (piece, bind) in pieces.zip(binds) {
        match bind {
            Bind::Text(v) => builder.bind(v),
            Bind::Int(v) => builder.bind(v),
        };
        builder.push(piece);
    }
}

#[derive(Default)]
struct Clauses {
    sql: Vec<String>,
    binds: Vec<Bind>,
}

impl Clauses {
    fn eq(&mut self, column: &str, value: Bind) {
        self.sql.push(format!("{column} = ?"));
        self.binds.push(value);
    }

    fn raw(&mut self, prefix: &str, value: Bind) {
        self.sql.push(format!("{prefix}?"));
        self.binds.push(value);
    }

    fn any_of(&mut self, column: &str, values: Vec<String>) {
        let marks = vec!["?"; values.len()].join(", ");
        self.sql.push(format!("{column} IN ({marks})"));
        self.binds.extend(values.into_iter().map(Bind::Text));
    }

    /// Rows strictly older than the cursor in (created_at DESC, id DESC) order.
    fn after(&mut self, start: Option<&PageStart>) {
        if let Some(PageStart::After { created_at_us, id }) = start {
            // A row-value comparison: both databases turn it into one index range.
            self.sql.push("(created_at, id) < (?, ?)".to_string());
            self.binds.push(Bind::Int(*created_at_us));
            self.binds.push(Bind::Text(id.clone()));
        }
    }

    fn finish(self) -> (String, Vec<Bind>) {
        if self.sql.is_empty() {
            (String::new(), self.binds)
        } else {
            (format!(" WHERE {}", self.sql.join(" AND ")), self.binds)
        }
    }
}
