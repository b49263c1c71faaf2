//! The analytics routes against a real Prometheus: two days of synthetic series (a filling
//! disk, a leaking container, an over- and an under-provisioned pod, a namespace approaching
//! its quota) are backfilled with `promtool tsdb create-blocks-from openmetrics`, Prometheus
//! serves them on 127.0.0.1, and each route must find the truth the data was built from.

mod go_shapes;
mod mcp_requests;
mod routes;
mod series;
mod setup;
mod thanos;
mod user_metrics;
