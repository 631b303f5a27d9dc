//! The backend-neutral suite, continued: a row's history and per-row ordering.

use std::time::{Duration, Instant};

use super::suite::{T0, append, claimed_ids, event, finished, ids};
use crate::event::{ErrorKind, NewEvent};
use crate::store::{EventQuery, EventStore, RowQuery};

/// An event of row `key`, ordered or not.
pub(crate) fn row_event(id: &str, webhook: &str, key: &str, ordered: bool) -> NewEvent {
    NewEvent {
        row_key: Some(key.to_string()),
        ordered,
        ..event(id, webhook)
    }
}

fn of_row(key: &str) -> EventQuery {
    EventQuery {
        row: Some(RowQuery {
            model: "order".into(),
            key: key.into(),
        }),
        ..EventQuery::default()
    }
}

pub(crate) async fn a_row_history_comes_from_the_index(store: &dyn EventStore) {
    // 100,000 events of 20,000 rows, for two webhooks: row 42 changes three times.
    let total = 100_000u64;
    for batch in 0..(total / 5_000) {
        let events = (batch * 5_000..(batch + 1) * 5_000)
            .map(|number| {
                let webhook = if number % 2 == 0 { "erp" } else { "wms" };
                let row = (number / 2) % 20_000;
                row_event(&format!("evt_{number}"), webhook, &row.to_string(), false)
            })
            .collect();
        append(store, events).await;
    }
    let started = Instant::now();
    let found = ids(store, of_row("42")).await;
    let took = started.elapsed();
    println!("row history of 1 row among {total} events: {took:?}");
    let expected: Vec<String> = (0..total)
        .rev()
        .filter(|number| (number / 2) % 20_000 == 42)
        .map(|number| format!("evt_{number}"))
        .collect();
    assert_eq!(expected.len(), 6);
    assert_eq!(found, expected, "exactly the row's events, newest first");
    let one_webhook = EventQuery {
        webhook: Some("wms".into()),
        limit: 2,
        ..of_row("42")
    };
    assert_eq!(ids(store, one_webhook).await, ["evt_80085", "evt_40085"]);
    let listed = store.list(&of_row("42")).await.unwrap();
    assert!(
        listed
            .iter()
            .all(|record| record.row_key.as_deref() == Some("42"))
    );
    assert!(ids(store, of_row("20000")).await.is_empty());
    let other_model = EventQuery {
        row: Some(RowQuery {
            model: "customer".into(),
            key: "42".into(),
        }),
        ..EventQuery::default()
    };
    assert!(ids(store, other_model).await.is_empty());
}

pub(crate) async fn pruning_leaves_no_row_entries(store: &dyn EventStore) {
    append(
        store,
        vec![
            row_event("evt_1", "hook", "7", false),
            row_event("evt_2", "hook", "7", false),
        ],
    )
    .await;
    let due = store.claim_due("hook", u64::MAX, 10).await.unwrap();
    let done = due
        .events
        .iter()
        .map(|event| finished(event, None, &[Duration::ZERO], T0 + 10))
        .collect();
    store.record_attempts(done).await.unwrap();
    assert_eq!(ids(store, of_row("7")).await.len(), 2);
    assert_eq!(store.prune(T0 + 1_000).await.unwrap(), 2);
    assert!(ids(store, of_row("7")).await.is_empty());
    // What claim_ids reads is still the order of storing.
    append(store, vec![row_event("evt_3", "hook", "7", false)]).await;
    let due = store.claim_due("hook", u64::MAX, 10).await.unwrap();
    assert_eq!(claimed_ids(&due.events), ["evt_3"]);
}

/// Claims what is due at `at` and records each with `outcome` under a two-attempt
/// schedule (the retry 10 s after a failure); the ids claimed.
pub(crate) async fn claim_and_record(
    store: &dyn EventStore,
    webhook: &str,
    at: u64,
    outcome: Option<ErrorKind>,
) -> Vec<String> {
    let due = store.claim_due(webhook, at, 100).await.unwrap();
    let retry = [Duration::ZERO, Duration::from_secs(10)];
    let done = due
        .events
        .iter()
        .map(|event| finished(event, outcome, &retry, at))
        .collect();
    store.record_attempts(done).await.unwrap();
    claimed_ids(&due.events)
        .into_iter()
        .map(str::to_string)
        .collect()
}

/// Row 42's events, ordered, with one of row 7 among them.
pub(crate) fn two_rows() -> Vec<NewEvent> {
    vec![
        row_event("evt_1", "hook", "42", true),
        row_event("evt_2", "hook", "42", true),
        row_event("evt_3", "7", "7", true),
        row_event("evt_4", "hook", "42", true),
        row_event("evt_5", "hook", "7", true),
    ]
}

pub(crate) async fn a_row_waits_for_its_earlier_event(store: &dyn EventStore) {
    append(store, two_rows()).await;
    // Row 42's first event fails; row 7's goes by.
    assert_eq!(
        claim_and_record(store, "hook", T0, Some(ErrorKind::Status)).await,
        ["evt_1", "evt_5"]
    );
    // evt_2 and evt_4 wait while evt_1 waits for its retry.
    assert!(
        claim_and_record(store, "hook", T0 + 1_000, None)
            .await
            .is_empty()
    );
    assert_eq!(
        claim_and_record(store, "hook", T0 + 10_000, None).await,
        ["evt_1", "evt_5"]
    );
    assert_eq!(
        claim_and_record(store, "hook", T0 + 10_001, None).await,
        ["evt_2"]
    );
    // A failed event lets the next go too.
    let failed = claim_and_record(store, "hook", T0 + 10_002, Some(ErrorKind::Status)).await;
    assert_eq!(failed, ["evt_4"]);
    let failed = claim_and_record(store, "hook", T0 + 30_000, Some(ErrorKind::Status)).await;
    assert_eq!(failed, ["evt_4"]);
    assert!(
        claim_and_record(store, "hook", u64::MAX, None)
            .await
            .is_empty()
    );
    // Another webhook's queue is its own.
    assert_eq!(claim_and_record(store, "7", T0, None).await, ["evt_3"]);
}

pub(crate) async fn unordered_events_of_a_row_go_together(store: &dyn EventStore) {
    append(
        store,
        vec![
            row_event("evt_1", "hook", "42", false),
            row_event("evt_2", "hook", "42", false),
        ],
    )
    .await;
    let claimed = claim_and_record(store, "hook", T0, Some(ErrorKind::Status)).await;
    assert_eq!(claimed, ["evt_1", "evt_2"]);
}

pub(crate) async fn a_redelivery_keeps_its_row_in_order(store: &dyn EventStore) {
    append(
        store,
        vec![
            row_event("evt_1", "hook", "42", true),
            row_event("evt_2", "hook", "42", true),
        ],
    )
    .await;
    assert_eq!(claim_and_record(store, "hook", T0, None).await, ["evt_1"]);
    // evt_2 is claimed; evt_1 redelivered meanwhile waits for it.
    let due = store.claim_due("hook", T0 + 1, 10).await.unwrap();
    assert_eq!(claimed_ids(&due.events), ["evt_2"]);
    store.redeliver("evt_1", T0 + 2).await.unwrap();
    assert!(
        store
            .claim_due("hook", T0 + 3, 10)
            .await
            .unwrap()
            .events
            .is_empty()
    );
    let done = due
        .events
        .iter()
        .map(|event| finished(event, None, &[Duration::ZERO], T0 + 4))
        .collect();
    store.record_attempts(done).await.unwrap();
    assert_eq!(
        claim_and_record(store, "hook", T0 + 5, None).await,
        ["evt_1"]
    );
}
