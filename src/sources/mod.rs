//! Incident sources: payload → validated records (parsing and mapping only; no I/O).

pub mod alertmanager;
pub mod audit;
pub mod bounded_time;
pub mod coordination;
pub mod manual;
pub mod trigger;
