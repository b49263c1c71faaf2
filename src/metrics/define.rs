//! Constructors of one metric each, under the engine's prefix. The definitions are constant,
//! so a failure here is a bug in this module, never a runtime condition.

use super::PREFIX;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
};

const VALID: &str = "valid metric definition";

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(format!("{PREFIX}_{name}"), help)
}

fn histogram_opts(name: &str, help: &str, buckets: &[f64]) -> HistogramOpts {
    HistogramOpts::new(format!("{PREFIX}_{name}"), help).buckets(buckets.to_vec())
}

pub(super) fn counter(name: &str, help: &str) -> IntCounter {
    IntCounter::with_opts(opts(name, help)).expect(VALID)
}

pub(super) fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(opts(name, help), labels).expect(VALID)
}

pub(super) fn gauge(name: &str, help: &str) -> IntGauge {
    IntGauge::with_opts(opts(name, help)).expect(VALID)
}

pub(super) fn gauge_vec(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    IntGaugeVec::new(opts(name, help), labels).expect(VALID)
}

pub(super) fn histogram(name: &str, help: &str, buckets: &[f64]) -> Histogram {
    Histogram::with_opts(histogram_opts(name, help, buckets)).expect(VALID)
}

pub(super) fn histogram_vec(
    name: &str,
    help: &str,
    buckets: &[f64],
    labels: &[&str],
) -> HistogramVec {
    HistogramVec::new(histogram_opts(name, help, buckets), labels).expect(VALID)
}
