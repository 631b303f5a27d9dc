//! The backend-neutral suite, continued: appending, claiming, retries and redelivery.

use std::time::Duration;

use super::suite::{
    T0, append, claimed_ids, count, event, event_at, fail_all, finished, ids, unrendered,
};
use super::{ClaimedEvent, EventQuery, EventStore, StoreError};
use crate::event::{ErrorKind, NewEvent, Status};

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
