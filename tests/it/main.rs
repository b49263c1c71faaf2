//! The one integration-test binary: the real server on port 0 with real TLS.

mod alertmanager;
mod alertmanager_e2e;
mod analytics;
mod api_errors;
mod argocd;
mod audit;
mod auth;
mod channels;
mod compat;
mod durability;
mod execute;
mod guard;
mod guard_watch;
mod health;
mod helpers;
mod incidents;
mod kube_mock;
mod ladder;
mod layers;
mod leases;
mod peers;
mod process;
mod prometheus;
mod remediation;
mod tls_reload;
mod workflows;
