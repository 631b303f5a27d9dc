//! The test suite every backend passes, through the [`EventStore`] interface alone, and
//! the helpers other tests build stores with. A backend runs it with
//! `event_store_suite!(async_factory)`.

use std::sync::Arc;
use std::time::Duration;

use crate::event::{Attempt, Content, ErrorKind, Lane, NewEvent, Request, Status};
use crate::store::{ClaimedEvent, EventQuery, EventStore, FinishedAttempt, NewEvents};

/// A time far from zero, so that "due before now" arithmetic is real.
pub(crate) const T0: u64 = 1_700_000_000_000;

/// A rendered event of `webhook`, captured at `created` and due at `due`.
pub(crate) fn event_at(id: &str, webhook: &str, created: u64, due: u64) -> NewEvent {
    NewEvent {
        id: id.to_string(),
        webhook: webhook.to_string(),
        model: "order".into(),
        kind: "order.created".into(),
        created_at_ms: created,
        first_attempt_at_ms: due,
        content: Content::Rendered {
            request: Request {
                method: "POST".into(),
                url: format!("http://127.0.0.1:9/{webhook}"),
                headers: vec![("content-type".into(), "application/json".into())],
                body: Some(format!(r#"{{"id":"{id}"}}"#)),
            },
            envelope: None,
        },
        lane: Lane::Live,
        row_key: None,
        ordered: false,
    }
}

pub(crate) fn event(id: &str, webhook: &str) -> NewEvent {
    event_at(id, webhook, T0, T0)
}

/// An event whose request could not be rendered.
pub(crate) fn unrendered(id: &str, webhook: &str) -> NewEvent {
    NewEvent {
        content: Content::Unrendered {
            reason: "url: template error".into(),
            envelope: format!(r#"{{"id":"{id}"}}"#),
        },
        ..event(id, webhook)
    }
}

pub(crate) async fn append(store: &dyn EventStore, events: Vec<NewEvent>) -> usize {
    store
        .append(NewEvents {
            events,
            ..NewEvents::default()
        })
        .await
        .unwrap()
        .created
}

pub(crate) fn attempt(number: u32, error_kind: Option<ErrorKind>) -> Attempt {
    Attempt {
        number,
        started_at_ms: T0 + u64::from(number),
        duration_ms: 3,
        status_code: Some(if error_kind.is_some() { 500 } else { 200 }),
        error_kind,
        error: error_kind.map(|kind| format!("{} failed", kind.as_str())),
        response_body: "<b>answer</b>".into(),
    }
}

pub(crate) fn finished(
    event: &ClaimedEvent,
    error_kind: Option<ErrorKind>,
    retry: &[Duration],
    at: u64,
) -> FinishedAttempt {
    FinishedAttempt {
        webhook: event.webhook.clone(),
        claim: event.claim.clone(),
        attempt: attempt(event.attempts + 1, error_kind),
        retry: Arc::from(retry),
        finished_at_ms: at,
    }
}

/// Claims every due event of `webhook` and fails each for good (a one-attempt schedule).
pub(crate) async fn fail_all(store: &dyn EventStore, webhook: &str) {
    let due = store.claim_due(webhook, u64::MAX, 10_000).await.unwrap();
    let done = due
        .events
        .iter()
        .map(|event| finished(event, Some(ErrorKind::Status), &[Duration::ZERO], T0 + 100))
        .collect();
    store.record_attempts(done).await.unwrap();
}

pub(crate) async fn ids(store: &dyn EventStore, query: EventQuery) -> Vec<String> {
    let listed = store.list(&query).await.unwrap();
    listed.into_iter().map(|record| record.id).collect()
}

/// Whether `webhook` has nothing to claim at `at`.
pub(crate) async fn nothing_due(store: &dyn EventStore, webhook: &str, at: u64) -> bool {
    store
        .claim_due(webhook, at, 10)
        .await
        .unwrap()
        .events
        .is_empty()
}

pub(crate) fn claimed_ids(events: &[ClaimedEvent]) -> Vec<&str> {
    events.iter().map(|event| event.id.as_str()).collect()
}

pub(crate) async fn count(store: &dyn EventStore, webhook: &str, status: Status) -> u64 {
    let counts = store.counts().await.unwrap();
    counts
        .get(webhook)
        .and_then(|counts| counts.get(&status))
        .copied()
        .unwrap_or(0)
}

/// Runs every check of the suite against stores made by `$factory` (an async expression
/// giving `Arc<dyn EventStore>`; each test gets a fresh one).
macro_rules! event_store_suite {
    ($factory:expr) => {
        mod store_suite {
            use super::*;

            #[tokio::test]
            async fn live_events_go_before_a_backfill() {
                crate::store::suite_control::live_events_go_before_a_backfill(
                    $factory.await.as_ref(),
                )
                .await;
            }
            #[tokio::test]
            async fn a_paused_webhook_waits() {
                crate::store::suite_control::a_paused_webhook_waits($factory.await.as_ref()).await;
            }
            #[tokio::test]
            async fn backfill_jobs_are_kept_with_their_pages() {
                crate::store::suite_control::backfill_jobs_are_kept_with_their_pages(
                    $factory.await.as_ref(),
                )
                .await;
            }
            #[tokio::test]
            async fn a_row_history_comes_from_the_index() {
                crate::store::suite_rows::a_row_history_comes_from_the_index(
                    $factory.await.as_ref(),
                )
                .await;
            }
            #[tokio::test]
            async fn pruning_leaves_no_row_entries() {
                crate::store::suite_rows::pruning_leaves_no_row_entries($factory.await.as_ref())
                    .await;
            }
            #[tokio::test]
            async fn a_row_waits_for_its_earlier_event() {
                crate::store::suite_rows::a_row_waits_for_its_earlier_event(
                    $factory.await.as_ref(),
                )
                .await;
            }
            #[tokio::test]
            async fn unordered_events_of_a_row_go_together() {
                crate::store::suite_rows::unordered_events_of_a_row_go_together(
                    $factory.await.as_ref(),
                )
                .await;
            }
            #[tokio::test]
            async fn a_redelivery_keeps_its_row_in_order() {
                crate::store::suite_rows::a_redelivery_keeps_its_row_in_order(
                    $factory.await.as_ref(),
                )
                .await;
            }
            #[tokio::test]
            async fn the_inbound_log_lists_newest_first_and_prunes() {
                crate::store::suite_control::the_inbound_log_lists_newest_first_and_prunes(
                    $factory.await.as_ref(),
                )
                .await;
            }
            #[tokio::test]
            async fn claims_in_order_once() {
                crate::store::suite_delivery::claims_in_order_once($factory.await.as_ref()).await;
            }
            #[tokio::test]
            async fn appends_are_idempotent() {
                crate::store::suite_delivery::appends_are_idempotent($factory.await.as_ref()).await;
            }
            #[tokio::test]
            async fn ids_in_any_order() {
                crate::store::suite_delivery::ids_in_any_order($factory.await.as_ref()).await;
            }
            #[tokio::test]
            async fn retries_follow_the_schedule() {
                crate::store::suite_delivery::retries_follow_the_schedule($factory.await.as_ref())
                    .await;
            }
            #[tokio::test]
            async fn redelivery_is_one_more_attempt() {
                crate::store::suite_delivery::redelivery_is_one_more_attempt(
                    $factory.await.as_ref(),
                )
                .await;
            }
            #[tokio::test]
            async fn redelivery_during_an_attempt_is_still_owed() {
                crate::store::suite_delivery::redelivery_during_an_attempt_is_still_owed(
                    $factory.await.as_ref(),
                )
                .await;
            }
            #[tokio::test]
            async fn listings_page_newest_first() {
                crate::store::suite_history::listings_page_newest_first($factory.await.as_ref())
                    .await;
            }
            #[tokio::test]
            async fn one_event_whole() {
                crate::store::suite_history::one_event_whole($factory.await.as_ref()).await;
            }
            #[tokio::test]
            async fn pruning_keeps_what_is_pending() {
                crate::store::suite_history::pruning_keeps_what_is_pending($factory.await.as_ref())
                    .await;
            }
            #[tokio::test]
            async fn resume_position_only_moves_forward() {
                crate::store::suite_history::resume_position_only_moves_forward(
                    $factory.await.as_ref(),
                )
                .await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_claims_are_disjoint() {
                crate::store::suite_history::concurrent_claims_are_disjoint($factory.await).await;
            }
            #[tokio::test]
            async fn large_batches_stay_whole() {
                crate::store::suite_history::large_batches_stay_whole($factory.await.as_ref())
                    .await;
            }
        }
    };
}

pub(crate) use event_store_suite;
