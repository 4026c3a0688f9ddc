//! A worker's background thread (the JWKS fetcher, the revocation sync): started with its
//! stop flag, and stopped and joined within [`JOIN_BOUND`].

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::fetch::io::Stop;

/// Longest wait for a background thread to end when its worker exits.
pub const JOIN_BOUND: Duration = Duration::from_secs(1);

/// A running background thread.
///
/// Dropped without `stop` (a panic in `exit_process`, say), it still stops and joins the
/// thread: it must never outlive the worker's teardown (OpenSSL's exit handlers, the pool).
pub struct Background {
    stop: Arc<Stop>,
    handle: Option<JoinHandle<()>>,
}

impl Background {
    /// Starts `run` on a thread named `name`, with the flag that asks it to end.
    pub fn spawn(
        name: &str,
        run: impl FnOnce(Arc<Stop>) + Send + 'static,
    ) -> std::io::Result<Self> {
        let stop = Arc::new(Stop::default());
        let flag = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || run(flag))?;
        Ok(Self {
            stop,
            handle: Some(handle),
        })
    }

    /// Asks the thread to end (waking it, and cutting any I/O in flight) and joins it.
    /// Ok(time taken); Err(`JOIN_BOUND`) if it is still running then (a bug: it is left
    /// behind, touching only the zone and its own data).
    pub fn stop(mut self) -> Result<Duration, Duration> {
        self.join()
    }

    fn join(&mut self) -> Result<Duration, Duration> {
        let start = Instant::now();
        let Some(handle) = self.handle.take() else {
            return Ok(Duration::ZERO);
        };
        self.stop.request();
        while !handle.is_finished() {
            if start.elapsed() >= JOIN_BOUND {
                return Err(JOIN_BOUND);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = handle.join();
        Ok(start.elapsed())
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.join();
    }
}
