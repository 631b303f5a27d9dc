//! The test suite every backend passes, through the [`EventStore`] interface alone, and
//! the helpers other tests build stores with. A backend runs it with
//! `event_store_suite!(async_factory)`.

use std::sync::Arc;
use std::time::Duration;

use crate::event::{Attempt, Content, ErrorKind, Lane, NewEvent, Request, Status};
use crate::store::{ClaimedEvent, EventQuery, EventStore, FinishedAttempt, NewEvents, StoreError};

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

pub(crate) async fn claims_in_order_once(store: &dyn EventStore) {
    let events = (0..5)
        .map(|index| event_at(&format!("evt_{index}"), "hook", T0, T0 + index))
        .collect();
    assert_eq!(append(store, events).await, 5);
    let early = store.claim_due("hook", T0 + 1, 10).await.unwrap();
    assert_eq!(claimed_ids(&early.events), ["evt_0", "evt_1"]);
    assert_eq!(early.next_due_at_ms, Some(T0 + 2));
    // Claimed events are not handed out again until recorded.
    let rest = store.claim_due("hook", T0 + 10, 2).await.unwrap();
    assert_eq!(claimed_ids(&rest.events), ["evt_2", "evt_3"]);
    assert!(
        rest.next_due_at_ms.is_some_and(|at| at <= T0 + 10),
        "more are due"
    );
    let last = store.claim_due("hook", T0 + 10, 10).await.unwrap();
    assert_eq!(claimed_ids(&last.events), ["evt_4"]);
    assert!(
        store
            .claim_due("hook", T0 + 10, 10)
            .await
            .unwrap()
            .events
            .is_empty()
    );
    assert_eq!(last.events[0].attempts, 0);
    assert_eq!(
        last.events[0].request.body.as_deref(),
        Some(r#"{"id":"evt_4"}"#)
    );

    let all: Vec<ClaimedEvent> = [early.events, rest.events, last.events].concat();
    let done = all
        .iter()
        .map(|event| finished(event, None, &[Duration::ZERO], T0 + 20))
        .collect();
    let statuses = store.record_attempts(done).await.unwrap();
    assert_eq!(statuses, vec![Status::Delivered; 5]);
    assert_eq!(count(store, "hook", Status::Delivered).await, 5);
    assert_eq!(count(store, "hook", Status::Pending).await, 0);
    assert!(
        store
            .claim_due("hook", u64::MAX, 10)
            .await
            .unwrap()
            .events
            .is_empty()
    );
}

pub(crate) async fn appends_are_idempotent(store: &dyn EventStore) {
    let batch = || {
        vec![
            event("evt_a", "hook"),
            event("evt_b", "hook"),
            event("evt_c", "other"),
        ]
    };
    assert_eq!(append(store, batch()).await, 3);
    assert_eq!(
        append(store, batch()).await,
        0,
        "a replayed batch adds nothing"
    );
    // Part old, part new, and one id twice in one batch.
    let mixed = vec![
        event("evt_b", "hook"),
        event("evt_d", "hook"),
        event("evt_d", "hook"),
        event("evt_0", "hook"),
    ];
    assert_eq!(append(store, mixed).await, 2);
    assert_eq!(count(store, "hook", Status::Pending).await, 4);
    assert_eq!(
        ids(store, EventQuery::default()).await,
        ["evt_0", "evt_d", "evt_c", "evt_b", "evt_a"]
    );
    // A replay of events already delivered leaves them delivered.
    let due = store.claim_due("hook", u64::MAX, 10).await.unwrap();
    let done = due
        .events
        .iter()
        .map(|event| finished(event, None, &[Duration::ZERO], T0))
        .collect();
    store.record_attempts(done).await.unwrap();
    assert_eq!(append(store, batch()).await, 0);
    assert_eq!(count(store, "hook", Status::Delivered).await, 4);
    assert!(
        store
            .claim_due("hook", u64::MAX, 10)
            .await
            .unwrap()
            .events
            .is_empty()
    );
}

/// Ids that do not grow (notify mode's transaction ids, rows that committed late) are
/// found and deduplicated as well as growing ones.
pub(crate) async fn ids_in_any_order(store: &dyn EventStore) {
    let first: Vec<NewEvent> = ["evt_10", "evt_20", "evt_30"]
        .into_iter()
        .map(|id| event(id, "hook"))
        .collect();
    append(store, first).await;
    let late: Vec<NewEvent> = ["evt_15", "evt_05", "evt_40", "evt_20", "evt_25"]
        .into_iter()
        .map(|id| event(id, "hook"))
        .collect();
    assert_eq!(append(store, late).await, 4, "evt_20 is stored already");
    let again: Vec<NewEvent> = ["evt_05", "evt_15", "evt_25", "evt_30", "evt_40", "evt_35"]
        .into_iter()
        .map(|id| event(id, "hook"))
        .collect();
    assert_eq!(append(store, again).await, 1, "only evt_35 is new");
    for id in [
        "evt_05", "evt_10", "evt_15", "evt_20", "evt_25", "evt_30", "evt_35", "evt_40",
    ] {
        let found = store.event(id).await.unwrap();
        assert_eq!(found.map(|event| event.record.id), Some(id.to_string()));
    }
    assert!(store.event("evt_12").await.unwrap().is_none());
    assert!(store.event("evt_99").await.unwrap().is_none());
    assert_eq!(count(store, "hook", Status::Pending).await, 8);
}

pub(crate) async fn retries_follow_the_schedule(store: &dyn EventStore) {
    let retry = [Duration::ZERO, Duration::from_millis(50)];
    append(store, vec![event("evt_1", "hook")]).await;
    let first = store.claim_due("hook", T0, 10).await.unwrap().events;
    let failed = finished(&first[0], Some(ErrorKind::Timeout), &retry, T0 + 5);
    assert_eq!(
        store.record_attempts(vec![failed]).await.unwrap(),
        [Status::Pending]
    );
    let waiting = store.claim_due("hook", T0 + 54, 10).await.unwrap();
    assert!(waiting.events.is_empty());
    assert_eq!(waiting.next_due_at_ms, Some(T0 + 55));
    let second = store.claim_due("hook", T0 + 55, 10).await.unwrap().events;
    assert_eq!(claimed_ids(&second), ["evt_1"]);
    assert_eq!(second[0].attempts, 1);
    let failed = finished(&second[0], Some(ErrorKind::Status), &retry, T0 + 60);
    assert_eq!(
        store.record_attempts(vec![failed]).await.unwrap(),
        [Status::Failed]
    );
    assert!(
        store
            .claim_due("hook", u64::MAX, 10)
            .await
            .unwrap()
            .events
            .is_empty()
    );
    let stored = store.event("evt_1").await.unwrap().unwrap();
    assert_eq!(stored.record.status, Status::Failed);
    assert_eq!(stored.record.attempts, 2);
    assert_eq!(stored.record.last_status_code, Some(500));
    assert_eq!(stored.record.finished_at_ms, Some(T0 + 60));
    let numbers: Vec<u32> = stored
        .attempts
        .iter()
        .map(|attempt| attempt.number)
        .collect();
    assert_eq!(numbers, [1, 2]);
    let failed_only = EventQuery {
        status: Some(Status::Failed),
        ..EventQuery::default()
    };
    assert_eq!(ids(store, failed_only).await, ["evt_1"]);
}

pub(crate) async fn redelivery_is_one_more_attempt(store: &dyn EventStore) {
    append(
        store,
        vec![event("evt_1", "hook"), unrendered("evt_broken", "hook")],
    )
    .await;
    fail_all(store, "hook").await;
    assert_eq!(count(store, "hook", Status::Failed).await, 2);
    let record = store.redeliver("evt_1", T0 + 1_000).await.unwrap();
    assert_eq!((record.status, record.attempts), (Status::Pending, 1));
    assert_eq!(record.next_attempt_at_ms, Some(T0 + 1_000));
    assert_eq!(count(store, "hook", Status::Failed).await, 1);
    let due = store
        .claim_due("hook", T0 + 1_000, 10)
        .await
        .unwrap()
        .events;
    assert_eq!(claimed_ids(&due), ["evt_1"]);
    assert_eq!(due[0].attempts, 1, "numbering continues");
    let failed = finished(
        &due[0],
        Some(ErrorKind::Connect),
        &[Duration::ZERO, Duration::ZERO],
        T0 + 1_001,
    );
    assert_eq!(
        store.record_attempts(vec![failed]).await.unwrap(),
        [Status::Failed]
    );

    assert!(matches!(
        store.redeliver("evt_missing", T0).await,
        Err(StoreError::NotFound(_))
    ));
    match store.redeliver("evt_broken", T0).await {
        Err(StoreError::NotRedeliverable { reason, .. }) => assert!(reason.contains("template")),
        other => panic!("expected NotRedeliverable, got {other:?}"),
    }
    let broken = store.event("evt_broken").await.unwrap().unwrap();
    assert_eq!(broken.record.status, Status::Failed);
    assert!(broken.request.is_none());
    assert_eq!(broken.envelope, r#"{"id":"evt_broken"}"#);
}

pub(crate) async fn redelivery_during_an_attempt_is_still_owed(store: &dyn EventStore) {
    append(store, vec![event("evt_1", "hook")]).await;
    let under_way = store.claim_due("hook", T0, 10).await.unwrap().events;
    store.redeliver("evt_1", T0 + 1).await.unwrap();
    // The redelivery's due entry does not hand the event out twice.
    assert!(
        store
            .claim_due("hook", T0 + 1, 10)
            .await
            .unwrap()
            .events
            .is_empty()
    );
    let failed = finished(
        &under_way[0],
        Some(ErrorKind::Timeout),
        &[Duration::ZERO],
        T0 + 2,
    );
    assert_eq!(
        store.record_attempts(vec![failed]).await.unwrap(),
        [Status::Pending]
    );
    let owed = store.claim_due("hook", T0 + 2, 10).await.unwrap().events;
    assert_eq!(claimed_ids(&owed), ["evt_1"]);
    assert_eq!(owed[0].attempts, 1);
    let done = finished(&owed[0], None, &[Duration::ZERO], T0 + 3);
    assert_eq!(
        store.record_attempts(vec![done]).await.unwrap(),
        [Status::Delivered]
    );
}

/// Runs every check of the suite against stores made by `$factory` (an async expression
/// giving `Arc<dyn EventStore>`; each test gets a fresh one).
macro_rules! event_store_suite {
    ($factory:expr) => {
        mod store_suite {
            use super::*;
            use crate::store::suite;

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
                suite::claims_in_order_once($factory.await.as_ref()).await;
            }
            #[tokio::test]
            async fn appends_are_idempotent() {
                suite::appends_are_idempotent($factory.await.as_ref()).await;
            }
            #[tokio::test]
            async fn ids_in_any_order() {
                suite::ids_in_any_order($factory.await.as_ref()).await;
            }
            #[tokio::test]
            async fn retries_follow_the_schedule() {
                suite::retries_follow_the_schedule($factory.await.as_ref()).await;
            }
            #[tokio::test]
            async fn redelivery_is_one_more_attempt() {
                suite::redelivery_is_one_more_attempt($factory.await.as_ref()).await;
            }
            #[tokio::test]
            async fn redelivery_during_an_attempt_is_still_owed() {
                suite::redelivery_during_an_attempt_is_still_owed($factory.await.as_ref()).await;
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
