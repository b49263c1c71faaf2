//! # coordination-engine
//!
//! Keeps Kubernetes/OpenShift clusters healthy without fighting GitOps.
//!
//! ```text
//! sources (alertmanager, audit, admission, api)
//!     → incident → detect → plan → gate → execute → verify → (escalate | resolve)
//! guard: admission reviews → decision (from memory only)
//! ```
//!
//! This build provides the foundation: configuration, TLS with hot reload, authentication,
//! the error shape, health, metrics and the OpenAPI document. `startup` is the only place
//! that wires concrete types together.

pub mod analytics;
pub mod api;
pub mod auth;
pub mod banner;
pub mod cli;
pub mod clip;
pub mod cluster;
pub mod config;
pub mod detect;
pub mod error;
pub mod execute;
pub mod expiring;
pub mod gate;
pub mod guard;
pub mod http;
pub mod incident;
pub mod leader;
pub mod metrics;
pub mod ml;
pub mod pipeline;
pub mod plan;
pub mod request_context;
pub mod sources;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod token_file;
pub mod validate;
pub mod verify;
pub mod watch;
pub mod workflow;
