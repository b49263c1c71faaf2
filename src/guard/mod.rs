//! The GitOps admission guard (SPEC §6): deny manual changes to objects ArgoCD manages.
//!
//! `review` is pure and reads only `GuardView`, an in-memory snapshot kept current by the
//! watchers; nothing remote happens while the API server waits.

pub mod admission;
pub use crate::clip;
pub mod diff;
pub mod doc;
pub mod record;
pub mod review;
pub mod view;

pub use review::{Decision, Outcome, decide, review};
pub use view::{GuardConfig, GuardMode, GuardView, SharedView};
