//! Wake-ups from other instances: a session LISTENs on the store's channel and wakes the
//! local delivery lane of every webhook named. While it is down (the database restarting)
//! lanes still look for due events every second, so a missed wake-up only delays.

use std::sync::Arc;
use std::time::Duration;

use tracing::debug;

use super::WAKE_CHANNEL;
use crate::postgres::{self, DatabaseUrl};
use crate::store::Wakeups;

const RECONNECT_AFTER: Duration = Duration::from_secs(1);
const PROBE_INTERVAL: Duration = Duration::from_secs(15);

pub(super) async fn wake_on_notifications(url: DatabaseUrl, wakeups: Arc<Wakeups>) {
    loop {
        match postgres::connect_listening(&url).await {
            Ok((client, mut notifications)) => {
                match client
                    .batch_execute(&format!("LISTEN {WAKE_CHANNEL}"))
                    .await
                {
                    Ok(()) => loop {
                        tokio::select! {
                            notification = notifications.recv() => match notification {
                                Some(notification) => wakeups.wake(notification.payload()),
                                None => break,
                            },
                            // A listening session only reads; asking something now and
                            // then lets a dead peer be noticed (the connection is watched).
                            _ = tokio::time::sleep(PROBE_INTERVAL) => {
                                if client.batch_execute("SELECT 1").await.is_err() {
                                    break;
                                }
                            }
                        }
                    },
                    Err(error) => {
                        debug!(error = %postgres::describe(&error), "cannot listen for wake-ups")
                    }
                }
            }
            Err(error) => debug!(%error, "cannot connect to listen for wake-ups"),
        }
        tokio::time::sleep(RECONNECT_AFTER).await;
    }
}
