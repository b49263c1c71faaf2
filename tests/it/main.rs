//! The one integration-test binary: the real server on port 0 with real TLS.

mod api_errors;
mod auth;
mod health;
mod helpers;
mod peers;
mod process;
mod prometheus;
mod tls_reload;
