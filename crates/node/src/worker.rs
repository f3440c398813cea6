//! A service thread that runs one round every so often until it is stopped:
//! the settlement loop and the verifier. The node owns each as a [`Periodic`];
//! stopping it (or dropping it) wakes the thread at once, lets the round in
//! progress finish and joins the thread.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long [`Periodic::stop`] waits for a round in progress. A round sends
/// transactions and waits for their blocks, so it ends within a few block
/// times while the chain runs; past this the thread is left to end on its own
/// (logged), so stopping a node never hangs.
pub const JOIN_LIMIT: Duration = Duration::from_secs(30);

/// A running periodic thread, stopped and joined on [`Periodic::stop`] or drop.
pub struct Periodic {
    name: String,
    /// Dropping it wakes the thread and ends its loop.
    stop: Option<mpsc::Sender<()>>,
    /// Disconnects when the thread has ended (its sender is dropped on exit, even by a panic).
    ended: mpsc::Receiver<()>,
    handle: Option<JoinHandle<()>>,
}

impl Periodic {
    /// Run `round` every `every` on a thread named `name`, first after one period.
    pub fn spawn(name: &str, every: Duration, mut round: impl FnMut() + Send + 'static) -> std::io::Result<Periodic> {
        let (stop, stopped) = mpsc::channel::<()>();
        let (ended_tx, ended) = mpsc::channel::<()>();
        let handle = std::thread::Builder::new().name(name.into()).spawn(move || {
            let _ended = ended_tx;
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                round();
            }
        })?;
        Ok(Periodic { name: name.into(), stop: Some(stop), ended, handle: Some(handle) })
    }

    /// Wake the thread, let the round in progress finish (up to [`JOIN_LIMIT`])
    /// and join it. Idempotent.
    pub fn stop(&mut self) {
        drop(self.stop.take());
        let Some(handle) = self.handle.take() else { return };
        match self.ended.recv_timeout(JOIN_LIMIT) {
            Err(RecvTimeoutError::Disconnected) => {
                if handle.join().is_err() {
                    tracing::error!("the {} thread panicked", self.name);
                }
            }
            _ => tracing::warn!("the {} thread did not end within {JOIN_LIMIT:?}; left to finish", self.name),
        }
    }
}

impl Drop for Periodic {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn stop_joins_the_thread() {
        let rounds = Arc::new(AtomicUsize::new(0));
        let r = rounds.clone();
        let mut p = Periodic::spawn("test-periodic", Duration::from_millis(1), move || {
            r.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
        while rounds.load(Ordering::SeqCst) < 3 {
            std::thread::yield_now();
        }
        p.stop();
        // The round (and its clone of the counter) went with the joined thread.
        assert_eq!(Arc::strong_count(&rounds), 1, "the thread still runs after stop");
        p.stop();
    }

    #[test]
    fn a_long_period_does_not_delay_stop() {
        let started = std::time::Instant::now();
        let p = Periodic::spawn("test-periodic", Duration::from_secs(3600), || {}).unwrap();
        drop(p);
        assert!(started.elapsed() < Duration::from_secs(5), "stop waited for the period");
    }
}
