//! Catalog entries of a container's own resources: CPU, memory, its filesystem.

use super::{BY, CONTAINER, Entry, braces, rate_of};

pub(super) const CPU: Entry = Entry {
    names: &["cpu", "cpu_usage"],
    needs: "container_cpu_usage_seconds_total (cAdvisor)",
    query: |c| rate_of("container_cpu_usage_seconds_total", &[CONTAINER], c),
    on_spike: "check the workload's recent change and load; scale out or raise the CPU limit",
    throttling: true,
};

pub(super) const MEMORY: Entry = Entry {
    names: &["memory", "memory_usage"],
    needs: "container_memory_working_set_bytes (cAdvisor)",
    query: |c| {
        format!(
            "{BY} (container_memory_working_set_bytes{})",
            braces(&[CONTAINER], c.selector)
        )
    },
    on_spike: "check for a memory leak (/api/v1/predict/memory-leak); raise the memory limit if the growth is expected",
    throttling: false,
};

pub(super) const DISK: Entry = Entry {
    names: &[
        "disk",
        "disk_usage",
        "filesystem",
        "filesystem_usage",
        "fs_usage",
    ],
    needs: "container_fs_usage_bytes (cAdvisor)",
    query: |c| {
        format!(
            "{BY} (container_fs_usage_bytes{})",
            braces(&[CONTAINER], c.selector)
        )
    },
    on_spike: "find what fills the container's filesystem; clean up or add storage",
    throttling: false,
};
