//! Every parser of outside input, fed seeded hostile inputs through the real server (TLS,
//! token, routing, extractors, handlers, store): Alertmanager notifications, audit event
//! lists, admission reviews, trigger shapes, query strings and path ids, and the other API
//! bodies. Each answer must be a status the route documents, with the JSON error shape on a
//! 4xx; never a panic, a 5xx where no peer is missing, or a body that is not JSON. A panic in
//! a handler drops the connection; one in a spawned task (denial recorder, closer, pipeline)
//! is caught by a panic hook (`panics.rs`), checked after every input and at the end.
//!
//! Bounded by iteration counts: the inputs are the same on every run and every machine
//! (fixed seeds), so a failure names the seed and input number that reproduce it, and the
//! input is saved in the temp dir. All six targets send 7 000 inputs in about 10 s here
//! (2 cores); a wall-time cap per target only shortens the run on a machine far slower
//! than that. `FUZZ_SCALE=20` sends twenty times as many inputs (no cap), `FUZZ_SEED=n`
//! other ones.

mod bodies;
mod harness;
mod mutate;
mod panics;
mod queries;
mod values;
