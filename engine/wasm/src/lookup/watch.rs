//! The thread that checks a processor's lookup files for changes.

use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::time::Duration;

use super::Inner;

/// Runs [`Inner::check`] every `every` on a thread of its own until it is
/// dropped.
#[derive(Debug)]
pub(super) struct Watcher {
    /// Never sent on: dropping it wakes the thread and ends it.
    _stop: Sender<()>,
}

impl Watcher {
    pub(super) fn start(tables: Arc<Inner>, every: Duration) -> Watcher {
        let (stop, stopped) = mpsc::channel::<()>();
        let name = format!("weir-lookups-{}", tables.component);
        let spawned = std::thread::Builder::new().name(name).spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                tables.check();
            }
        });
        if let Err(e) = spawned {
            // The tables still serve what was loaded at start.
            tracing::warn!(error = %e, "cannot start the thread that reloads changed lookup files");
        }
        Watcher { _stop: stop }
    }
}
