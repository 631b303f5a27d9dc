//! How the store tells delivery that a webhook has events due now: one `Notify` per
//! webhook, made on first use. A wake-up that nobody waits for is kept for the next wait
//! (`Notify::notify_one`), so none is lost between a look at the store and the wait.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

#[derive(Default)]
pub struct Wakeups(Mutex<HashMap<String, Arc<Notify>>>);

impl Wakeups {
    /// What `webhook`'s delivery lane waits on.
    pub fn waiter(&self, webhook: &str) -> Arc<Notify> {
        let mut waiters = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        waiters.entry(webhook.to_string()).or_default().clone()
    }

    pub fn wake(&self, webhook: &str) {
        self.waiter(webhook).notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_wake_before_the_wait_is_kept() {
        let wakeups = Wakeups::default();
        wakeups.wake("hook");
        tokio::time::timeout(
            std::time::Duration::from_secs(1),
            wakeups.waiter("hook").notified(),
        )
        .await
        .expect("the earlier wake-up counts");
    }
}
