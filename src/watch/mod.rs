//! Long-running watches of the cluster that keep in-memory views current: ArgoCD
//! Applications and their settings (the guard's view), and the metadata of scalable workloads
//! (the guard's parent lookups and ownership detection). They hold a `kube::Client` of their own;
//! the rest of the engine reaches the cluster through `cluster`.

pub mod argocd;
pub mod parents;
