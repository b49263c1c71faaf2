//! The HTTP layer under the routes: how connections are served and closed (`server`,
//! `linger`) and how request bodies are read (`body`). SPEC §3's promise that every error
//! reaches its client in the JSON shape depends on both halves.

pub mod body;
pub mod budget;
pub mod head_clock;
pub mod linger;
pub mod server;

pub use body::{BodyReadTimeout, Draining};
pub use server::HttpServer;
