//! The shutdown signal handed to every stage's `run` loop.

use std::time::Duration;

use tokio::sync::watch;

/// `rowhook run` exits at the latest this long after the signal, whatever its connections
/// are doing: what is not durable by then was never acknowledged, so it is captured or
/// attempted again after the restart.
pub const STOP_LIMIT: Duration = Duration::from_secs(10);
/// Within that, what attempts under way get to finish and be recorded.
pub const ATTEMPT_GRACE: Duration = Duration::from_secs(8);

/// Held by `main`; triggering it asks every stage to finish what it is doing and stop.
#[derive(Clone)]
pub struct ShutdownTrigger(watch::Sender<bool>);

/// Held by a stage; resolves once shutdown has been asked for.
#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (sender, receiver) = watch::channel(false);
    (ShutdownTrigger(sender), Shutdown(receiver))
}

impl ShutdownTrigger {
    pub fn trigger(&self) {
        self.0.send_replace(true);
    }
}

impl Shutdown {
    pub fn is_requested(&self) -> bool {
        *self.0.borrow()
    }

    /// Waits until shutdown is asked for. Cancel-safe. A dropped trigger counts as a request.
    pub async fn requested(&mut self) {
        let _ = self.0.wait_for(|requested| *requested).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn trigger_wakes_every_clone() {
        let (trigger, shutdown) = channel();
        let mut first = shutdown.clone();
        let mut second = shutdown;
        assert!(!first.is_requested());
        trigger.trigger();
        first.requested().await;
        second.requested().await;
        assert!(second.is_requested());
    }
}
