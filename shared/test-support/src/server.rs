//! What every throwaway server shares: its child process, its directory, and — for the one
//! instance per test process — being stopped when the process exits.

use std::process::Child;
use std::sync::{Mutex, Once, OnceLock};
use std::time::Duration;

use crate::process::stop_child;

/// A spawned server and the directory it lives in.
pub(crate) struct OwnedServer {
    child: Mutex<Option<Child>>,
    dir: Mutex<Option<tempfile::TempDir>>,
    signal: i32,
    grace: Duration,
}

impl OwnedServer {
    /// Owns `child` (stopped with `signal`, then SIGKILL after `grace`) and `dir`.
    pub(crate) fn new(child: Child, dir: Option<tempfile::TempDir>, signal: i32, grace: Duration) -> Self {
        Self {
            child: Mutex::new(Some(child)),
            dir: Mutex::new(dir),
            signal,
            grace,
        }
    }

    /// Stops the process and removes the directory; later calls do nothing.
    pub(crate) fn stop(&self) {
        let child = self.child.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(mut child) = child {
            stop_child(&mut child, self.signal, self.grace);
        }
        drop(self.dir.lock().unwrap_or_else(|p| p.into_inner()).take());
    }
}

impl Drop for OwnedServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A server that can be shared by all tests of a process.
pub(crate) trait SharedServer: Send + Sync + 'static {
    /// The owned process.
    fn owned(&self) -> &OwnedServer;
}

static AT_EXIT: Mutex<Vec<&'static dyn SharedServer>> = Mutex::new(Vec::new());

extern "C" fn stop_all() {
    if let Ok(servers) = AT_EXIT.lock() {
        for server in servers.iter() {
            server.owned().stop();
        }
    }
}

/// The instance in `cell`, started by `start` on first use and stopped at process exit
/// (statics are never dropped, so `atexit` does it).
pub(crate) fn shared<T: SharedServer>(cell: &'static OnceLock<T>, start: fn() -> T) -> &'static T {
    static REGISTER_AT_EXIT: Once = Once::new();
    let mut started_here = false;
    let server = cell.get_or_init(|| {
        started_here = true;
        start()
    });
    if started_here {
        // SAFETY: registering a plain extern "C" function, once.
        REGISTER_AT_EXIT.call_once(|| unsafe {
            libc::atexit(stop_all);
        });
        AT_EXIT.lock().unwrap_or_else(|p| p.into_inner()).push(server);
    }
    server
}
