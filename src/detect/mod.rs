//! Detection (SPEC §5.1): which layer is failing and, with a cluster, how each object is
//! deployed. Pure functions over data the cluster layer fetches.

pub mod layer;
pub mod ownership;
pub mod tracking;

pub use layer::{Layer, LayerFinding, Signal, diagnose, layer_of};
