//! The reconnect loop both capture modes share: after a failure that may fix itself (the
//! server restarting, the network gone), say so, wait with a doubling backoff and try
//! again; after one an operator must fix, stop with it. Capture state is published on
//! the way, for `/healthz` and the pages.

use std::fmt::Display;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{info, warn};

use super::status::{CaptureState, CaptureStatus};
use crate::shutdown::Shutdown;

const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const LAST_BACKOFF: Duration = Duration::from_secs(30);
/// How often an instance that another one's capture keeps waiting tries to take over:
/// a few seconds, so that capture resumes well within 15 s of the other's death.
const TAKEOVER_INTERVAL: Duration = Duration::from_secs(2);

/// A capture failure that says whether trying again later may succeed.
pub(crate) trait Transient: Display {
    fn is_transient(&self) -> bool;

    /// Whether another session holds what capture needs (the slot, the outbox lock):
    /// then this instance waits as a standby and tries again at a steady pace.
    fn is_held_elsewhere(&self) -> bool {
        false
    }
}

/// What to do after a session ended with an error.
pub(crate) enum Next<E> {
    /// Connect again.
    Retry,
    /// Stop capture with this outcome (`Ok` when shutdown came while waiting).
    Stop(Result<(), E>),
}

pub(crate) struct Reconnect<'a> {
    /// What is being reconnected, for the log line: "replication stream", "outbox".
    what: &'static str,
    status: Option<&'a watch::Sender<CaptureStatus>>,
    backoff: Duration,
}

impl<'a> Reconnect<'a> {
    pub(crate) fn new(
        what: &'static str,
        status: Option<&'a watch::Sender<CaptureStatus>>,
    ) -> Reconnect<'a> {
        Reconnect {
            what,
            status,
            backoff: FIRST_BACKOFF,
        }
    }

    /// Publishes `state` with no error: a session is connecting or streaming.
    pub(crate) fn publish(&self, state: CaptureState) {
        self.update(|status| {
            status.state = state;
            if state == CaptureState::Streaming {
                status.last_error = None;
            }
        });
    }

    /// A session got through: the next failure waits the shortest time again.
    pub(crate) fn connected(&mut self) {
        self.backoff = FIRST_BACKOFF;
        self.publish(CaptureState::Streaming);
    }

    /// Decides what follows `error`. A transient one (unless `final_attempt`, for a
    /// source that cannot resume) is published and logged, then waited out with the
    /// backoff; shutdown during the wait stops capture cleanly.
    pub(crate) async fn after_failure<E: Transient>(
        &mut self,
        error: E,
        final_attempt: bool,
        shutdown: &mut Shutdown,
    ) -> Next<E> {
        if final_attempt || !error.is_transient() {
            return Next::Stop(Err(error));
        }
        if error.is_held_elsewhere() {
            return self.stand_by(error, shutdown).await;
        }
        self.update(|status| {
            status.state = CaptureState::Retrying;
            status.last_error = Some(error.to_string());
        });
        warn!(%error, retry_in = ?self.backoff, "{} unavailable; retrying", self.what);
        tokio::select! {
            _ = shutdown.requested() => return Next::Stop(Ok(())),
            _ = tokio::time::sleep(self.backoff) => {}
        }
        self.backoff = next_backoff(self.backoff);
        Next::Retry
    }

    /// Another instance captures: wait and try to take over, without a growing backoff
    /// and without calling it an outage.
    async fn stand_by<E: Transient>(&mut self, error: E, shutdown: &mut Shutdown) -> Next<E> {
        let was_standby = self
            .status
            .is_some_and(|status| status.borrow().state == CaptureState::Standby);
        if !was_standby {
            info!(%error, "another instance captures; standing by to take over");
        }
        self.update(|status| {
            status.state = CaptureState::Standby;
            status.last_error = None;
        });
        self.backoff = FIRST_BACKOFF;
        tokio::select! {
            _ = shutdown.requested() => Next::Stop(Ok(())),
            _ = tokio::time::sleep(TAKEOVER_INTERVAL) => Next::Retry,
        }
    }

    /// Capture has ended with `outcome`.
    pub(crate) fn stopped<E: Display>(&self, outcome: &Result<(), E>) {
        self.update(|status| {
            status.state = CaptureState::Stopped;
            if let Err(error) = outcome {
                status.last_error = Some(error.to_string());
            }
        });
    }

    fn update(&self, change: impl FnOnce(&mut CaptureStatus)) {
        if let Some(status) = self.status {
            status.send_modify(change);
        }
    }
}

/// Doubling, up to a ceiling: quick after a blip, gentle on a server that stays down.
fn next_backoff(current: Duration) -> Duration {
    (current * 2).min(LAST_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Failure(bool);

    impl Display for Failure {
        fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            formatter.write_str("it failed")
        }
    }

    impl Transient for Failure {
        fn is_transient(&self) -> bool {
            self.0
        }
    }

    #[test]
    fn backoff_doubles_up_to_its_ceiling() {
        let mut backoff = FIRST_BACKOFF;
        let mut seen = Vec::new();
        for _ in 0..7 {
            seen.push(backoff.as_secs());
            backoff = next_backoff(backoff);
        }
        assert_eq!(seen, [1, 2, 4, 8, 16, 30, 30]);
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_retry_and_publish_the_error() {
        let (sender, receiver) = watch::channel(CaptureStatus::default());
        let (_trigger, mut shutdown) = crate::shutdown::channel();
        let mut reconnect = Reconnect::new("test source", Some(&sender));
        assert!(matches!(
            reconnect
                .after_failure(Failure(true), false, &mut shutdown)
                .await,
            Next::Retry
        ));
        assert_eq!(receiver.borrow().state, CaptureState::Retrying);
        assert_eq!(receiver.borrow().last_error.as_deref(), Some("it failed"));
        assert_eq!(reconnect.backoff, Duration::from_secs(2));
        reconnect.connected();
        assert_eq!(reconnect.backoff, FIRST_BACKOFF);
        assert_eq!(receiver.borrow().state, CaptureState::Streaming);
        assert_eq!(receiver.borrow().last_error, None);
    }

    #[tokio::test]
    async fn lasting_failures_and_final_attempts_stop() {
        let (_trigger, mut shutdown) = crate::shutdown::channel();
        let mut reconnect = Reconnect::new("test source", None);
        let lasting = reconnect
            .after_failure(Failure(false), false, &mut shutdown)
            .await;
        assert!(matches!(lasting, Next::Stop(Err(Failure(false)))));
        let last = reconnect
            .after_failure(Failure(true), true, &mut shutdown)
            .await;
        assert!(matches!(last, Next::Stop(Err(Failure(true)))));
    }

    #[tokio::test]
    async fn shutdown_while_waiting_stops_cleanly() {
        let (trigger, mut shutdown) = crate::shutdown::channel();
        trigger.trigger();
        let mut reconnect = Reconnect::new("test source", None);
        let next = reconnect
            .after_failure(Failure(true), false, &mut shutdown)
            .await;
        assert!(matches!(next, Next::Stop(Ok(()))));
    }
}
