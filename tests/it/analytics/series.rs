//! The two days of synthetic series the analytics tests backfill into Prometheus: each
//! family is built from a known truth (a fill rate, a leak, a request) the routes must find.

use std::fmt::Write;

pub(super) const GIB: f64 = 1_073_741_824.0;
pub(super) const MIB: f64 = 1_048_576.0;
const STEP: i64 = 60;
const SPAN: i64 = 2 * 86_400;
/// The disk fills by this much per day: 100 GiB left → 10 days.
pub(super) const FILL_PER_DAY: f64 = 10.0 * GIB;
pub(super) const LEAK_PER_DAY: f64 = 100.0 * MIB;
/// busy-0 restarts once a minute over the last this many seconds.
const CRASH_LOOP: i64 = 600;
/// A raw series (no catalog entry) that spikes to QUEUE_SPIKE in its last minutes.
pub(super) const QUEUE_METRIC: &str = "shop_queue_depth";
pub(super) const QUEUE_SPIKE: f64 = 100.0;

/// One metric family: `(labels, value at t)` per series, sampled every STEP over SPAN.
fn family(
    out: &mut String,
    name: &str,
    kind: &str,
    series: &[(&str, &dyn Fn(f64) -> f64)],
    now: i64,
) {
    let family_name = if kind == "counter" {
        name.trim_end_matches("_total")
    } else {
        name
    };
    writeln!(out, "# TYPE {family_name} {kind}").expect("write");
    for (labels, value) in series {
        let mut t = now - SPAN;
        while t <= now {
            let age_days = (now - t) as f64 / 86_400.0;
            let elapsed = (t - (now - SPAN)) as f64;
            let v = value(if kind == "counter" { elapsed } else { age_days });
            writeln!(out, "{name}{{{labels}}} {v} {t}").expect("write");
            t += STEP;
        }
    }
}

/// A small deterministic wobble so fits are not trivially perfect.
fn wobble(x: f64, amplitude: f64) -> f64 {
    (x * 37.0).sin() * amplitude
}

/// The labels of a container of the `shop` namespace.
fn shop(pod: &str) -> String {
    format!(r#"namespace="shop",pod="{pod}",container="app""#)
}

/// The whole backfill, in OpenMetrics text, ending at `now`.
pub(super) fn openmetrics(now: i64) -> String {
    let mut out = String::new();
    filesystems(&mut out, now);
    container_usage(&mut out, now);
    requests_limits_and_quota(&mut out, now);
    restarts_queue_and_pods(&mut out, now);
    out.push_str("# EOF\n");
    out
}

/// worker-1's /var fills by FILL_PER_DAY; / holds steady; a tmpfs (left out) drains.
fn filesystems(out: &mut String, now: i64) {
    family(
        out,
        "node_filesystem_avail_bytes",
        "gauge",
        &[
            (
                r#"instance="worker-1:9100",device="/dev/sda1",fstype="xfs",mountpoint="/var""#,
                &|age| 100.0 * GIB + FILL_PER_DAY * age,
            ),
            (
                r#"instance="worker-1:9100",device="/dev/sda2",fstype="xfs",mountpoint="/""#,
                &|age| 40.0 * GIB + wobble(age, MIB),
            ),
            (
                r#"instance="worker-2:9100",device="tmpfs",fstype="tmpfs",mountpoint="/run""#,
                &|age| GIB - 0.5 * GIB * age,
            ),
        ],
        now,
    );
    family(
        out,
        "node_filesystem_size_bytes",
        "gauge",
        &[
            (
                r#"instance="worker-1:9100",device="/dev/sda1",fstype="xfs",mountpoint="/var""#,
                &|_| 500.0 * GIB,
            ),
            (
                r#"instance="worker-1:9100",device="/dev/sda2",fstype="xfs",mountpoint="/""#,
                &|_| 100.0 * GIB,
            ),
        ],
        now,
    );
}

/// leaky-0 grows by LEAK_PER_DAY; busy-0 uses 0.5 cores and is throttled in half its periods.
fn container_usage(out: &mut String, now: i64) {
    let (leaky, steady, fat, busy) = (
        shop("leaky-0"),
        shop("steady-0"),
        shop("fat-0"),
        shop("busy-0"),
    );
    family(
        out,
        "container_memory_working_set_bytes",
        "gauge",
        &[
            (&leaky, &|age| {
                200.0 * MIB + LEAK_PER_DAY * (2.0 - age) + wobble(age, 5.0 * MIB)
            }),
            (&steady, &|age| 300.0 * MIB + wobble(age, 5.0 * MIB)),
            (&fat, &|age| 100.0 * MIB + wobble(age, MIB)),
            (&busy, &|age| 450.0 * MIB + wobble(age, MIB)),
        ],
        now,
    );
    family(
        out,
        "container_cpu_usage_seconds_total",
        "counter",
        &[
            (&leaky, &|s| 0.05 * s),
            (&steady, &|s| 0.05 * s),
            (&fat, &|s| 0.1 * s),
            (&busy, &|s| 0.5 * s),
        ],
        now,
    );
    family(
        out,
        "container_cpu_cfs_periods_total",
        "counter",
        &[(&fat, &|s| 10.0 * s), (&busy, &|s| 10.0 * s)],
        now,
    );
    family(
        out,
        "container_cpu_cfs_throttled_periods_total",
        "counter",
        &[(&fat, &|_| 0.0), (&busy, &|s| 5.0 * s)],
        now,
    );
}

/// fat-0 asks for far more than it uses, busy-0 for far less; the namespace has a 2 GiB quota.
fn requests_limits_and_quota(out: &mut String, now: i64) {
    let (fat, busy) = (shop("fat-0"), shop("busy-0"));
    let fat_cpu = format!(r#"{fat},resource="cpu",unit="core""#);
    let fat_memory = format!(r#"{fat},resource="memory",unit="byte""#);
    let busy_cpu = format!(r#"{busy},resource="cpu",unit="core""#);
    let busy_memory = format!(r#"{busy},resource="memory",unit="byte""#);
    family(
        out,
        "kube_pod_container_resource_requests",
        "gauge",
        &[
            (&fat_cpu, &|_| 2.0),
            (&fat_memory, &|_| 2.0 * GIB),
            (&busy_cpu, &|_| 0.1),
            (&busy_memory, &|_| 256.0 * MIB),
        ],
        now,
    );
    family(
        out,
        "kube_pod_container_resource_limits",
        "gauge",
        &[
            (&fat_cpu, &|_| 4.0),
            (&fat_memory, &|_| 4.0 * GIB),
            (&busy_cpu, &|_| 0.2),
            (&busy_memory, &|_| 512.0 * MIB),
        ],
        now,
    );
    family(
        out,
        "kube_resourcequota",
        "gauge",
        &[(
            r#"namespace="shop",resourcequota="shop-quota",resource="limits.memory",type="hard""#,
            &|_| 2.0 * GIB,
        )],
        now,
    );
}

/// busy-0's crash loop and queue spike, and the four pods' kube_pod_info.
fn restarts_queue_and_pods(out: &mut String, now: i64) {
    let (steady, busy) = (shop("steady-0"), shop("busy-0"));
    // busy-0 starts crash-looping 10 minutes before now: one restart a minute.
    family(
        out,
        "kube_pod_container_status_restarts_total",
        "counter",
        &[
            (&busy, &|s| {
                ((s - (SPAN - CRASH_LOOP) as f64) / 60.0).floor().max(0.0)
            }),
            (&steady, &|_| 0.0),
        ],
        now,
    );
    // An application's own gauge, not in the catalog: busy-0's queue jumps in the last minutes.
    family(
        out,
        QUEUE_METRIC,
        "gauge",
        &[
            (r#"namespace="shop",pod="busy-0""#, &|age| {
                if age * 86_400.0 < 200.0 {
                    QUEUE_SPIKE
                } else {
                    10.0
                }
            }),
            (r#"namespace="shop",pod="steady-0""#, &|_| 10.0),
        ],
        now,
    );
    let pods: Vec<String> = ["leaky-0", "steady-0", "fat-0", "busy-0"]
        .iter()
        .map(|p| format!(r#"namespace="shop",pod="{p}""#))
        .collect();
    let one: &dyn Fn(f64) -> f64 = &|_| 1.0;
    let pod_series: Vec<(&str, &dyn Fn(f64) -> f64)> =
        pods.iter().map(|p| (p.as_str(), one)).collect();
    family(out, "kube_pod_info", "gauge", &pod_series, now);
}
