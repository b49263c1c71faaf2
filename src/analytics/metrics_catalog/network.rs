//! Catalog entries of network traffic: both ways, received, sent.

use super::{Entry, rate_of};

pub(super) const NETWORK: Entry = Entry {
    names: &["network"],
    needs: "container_network_receive_bytes_total and container_network_transmit_bytes_total (cAdvisor)",
    query: |c| {
        format!(
            "{} + {}",
            rate_of("container_network_receive_bytes_total", &[], c),
            rate_of("container_network_transmit_bytes_total", &[], c)
        )
    },
    on_spike: "check for a traffic surge or a retry storm",
    throttling: false,
};

pub(super) const NETWORK_RECEIVE: Entry = Entry {
    names: &[
        "network_receive",
        "network_receive_bytes",
        "network_rx",
        "network_in",
    ],
    needs: "container_network_receive_bytes_total (cAdvisor)",
    query: |c| rate_of("container_network_receive_bytes_total", &[], c),
    on_spike: "check for a traffic surge, a retry storm or a large download",
    throttling: false,
};

pub(super) const NETWORK_TRANSMIT: Entry = Entry {
    names: &[
        "network_transmit",
        "network_transmit_bytes",
        "network_tx",
        "network_out",
    ],
    needs: "container_network_transmit_bytes_total (cAdvisor)",
    query: |c| rate_of("container_network_transmit_bytes_total", &[], c),
    on_spike: "check what the pod is sending: a retry storm, a large upload or an exfiltration",
    throttling: false,
};
