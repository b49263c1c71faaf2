//! Panics anywhere in the server, not only in a request handler: a panic in a spawned task
//! (the denial recorder, its closer, the pipeline) drops no connection, so the answers alone
//! do not show it, yet a dead recorder turns every later denial into `queue_full`.
//!
//! The server runs in this process (`spawn_app`), so a panic hook sees every panic. One is
//! blamed on a fuzz target when it happened during the target's run on the target's own
//! thread (its tasks run on the test's current-thread runtime) or on a thread that is not a
//! test thread (actix workers, tokio and sqlx threads; test threads are named
//! `module::test`). A server thread of another test's server panicking at the same time is
//! blamed too: it is a server panic all the same.

use std::sync::{Mutex, Once};

/// Every panic of the process since the hook was installed: (thread, message).
static PANICS: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

/// Installs the counting hook once; the default hook still prints each panic.
fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current()
                .name()
                .unwrap_or("unnamed")
                .to_string();
            PANICS
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push((thread, info.to_string()));
            previous(info);
        }));
    });
}

/// The panics of the server while one fuzz target runs.
pub struct Watch {
    thread: String,
    seen: usize,
}

impl Watch {
    /// Starts watching, from the target's own (test) thread.
    pub fn start() -> Self {
        install();
        Watch {
            thread: std::thread::current()
                .name()
                .unwrap_or("unnamed")
                .to_string(),
            seen: PANICS.lock().unwrap_or_else(|p| p.into_inner()).len(),
        }
    }

    /// The server panics since the last call, described; `None` when there were none.
    pub fn new_panics(&mut self) -> Option<String> {
        let panics = PANICS.lock().unwrap_or_else(|p| p.into_inner());
        let found: Vec<String> = panics[self.seen..]
            .iter()
            .filter(|(thread, _)| *thread == self.thread || !thread.contains("::"))
            .map(|(thread, message)| format!("thread {thread:?}: {message}"))
            .collect();
        self.seen = panics.len();
        (!found.is_empty()).then(|| {
            format!(
                "{} panic(s) in the server (one in a spawned task may come from an earlier \
                 input): {}",
                found.len(),
                found.join("; ")
            )
        })
    }
}
