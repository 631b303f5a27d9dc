//! The shutdown signal handed to every stage's `run` loop.

use tokio::sync::watch;

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
