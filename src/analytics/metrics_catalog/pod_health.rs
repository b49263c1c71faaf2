//! Catalog entries of a pod's health as Kubernetes and the kernel see it: restarts, OOM
//! kills, CPU throttling.

use super::{CONTAINER, Entry, increase_of, rate_of};

pub(super) const POD_RESTARTS: Entry = Entry {
    names: &[
        "pod_restarts",
        "restarts",
        "container_restarts",
        "restart_count",
    ],
    needs: "kube_pod_container_status_restarts_total (kube-state-metrics)",
    query: |c| increase_of("kube_pod_container_status_restarts_total", &[], c),
    on_spike: "read the previous container's logs and last termination reason (kubectl logs --previous, kubectl describe pod)",
    throttling: false,
};

pub(super) const OOM_KILLS: Entry = Entry {
    names: &["oom_kills", "oom_killed", "oomkilled", "oom", "oom_events"],
    needs: "container_oom_events_total (cAdvisor)",
    query: |c| increase_of("container_oom_events_total", &[CONTAINER], c),
    on_spike: "raise the memory limit or find what allocates (/api/v1/predict/memory-leak)",
    throttling: false,
};

pub(super) const CPU_THROTTLING: Entry = Entry {
    names: &[
        "cpu_throttling",
        "cpu_throttled",
        "cpu_throttle",
        "throttling",
        "throttled",
    ],
    needs: "container_cpu_cfs_throttled_periods_total and container_cpu_cfs_periods_total (cAdvisor, containers with a CPU limit)",
    query: |c| {
        format!(
            "{} / {}",
            rate_of("container_cpu_cfs_throttled_periods_total", &[], c),
            rate_of("container_cpu_cfs_periods_total", &[], c)
        )
    },
    on_spike: "raise the CPU limit (or remove it) or spread the load over more replicas",
    throttling: true,
};
