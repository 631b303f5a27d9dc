//! The backend-neutral suite, continued: listings, reading one event, pruning, the
//! resume position, concurrent claims and large batches.

use std::sync::Arc;
use std::time::Duration;

use super::suite::{
    T0, append, attempt, claimed_ids, count, event, event_at, fail_all, finished, ids,
};
use crate::change::Lsn;
use crate::event::{Content, ErrorKind, NewEvent, Status};
use crate::store::{EventQuery, EventStore, NewEvents};

pub(crate) async fn listings_page_newest_first(store: &dyn EventStore) {
    let events = (0..7)
        .map(|index| {
            event(
                &format!("evt_{index}"),
                if index % 2 == 0 { "even" } else { "odd" },
            )
        })
        .collect();
    append(store, events).await;
    fail_all(store, "odd").await;
    let page = store
        .list(&EventQuery {
            limit: 3,
            ..EventQuery::default()
        })
        .await
        .unwrap();
    let page_ids: Vec<&str> = page.iter().map(|record| record.id.as_str()).collect();
    assert_eq!(page_ids, ["evt_6", "evt_5", "evt_4"]);
    let next = EventQuery {
        limit: 3,
        before: page.last().map(|record| record.sequence),
        ..EventQuery::default()
    };
    assert_eq!(ids(store, next).await, ["evt_3", "evt_2", "evt_1"]);
    let even = EventQuery {
        webhook: Some("even".into()),
        ..EventQuery::default()
    };
    assert_eq!(ids(store, even).await, ["evt_6", "evt_4", "evt_2", "evt_0"]);
    let failed = EventQuery {
        status: Some(Status::Failed),
        ..EventQuery::default()
    };
    assert_eq!(ids(store, failed).await, ["evt_5", "evt_3", "evt_1"]);
    let pending_odd = EventQuery {
        webhook: Some("odd".into()),
        status: Some(Status::Pending),
        ..EventQuery::default()
    };
    assert!(ids(store, pending_odd).await.is_empty());
    let unknown = EventQuery {
        webhook: Some("nobody".into()),
        ..EventQuery::default()
    };
    assert!(ids(store, unknown).await.is_empty());
}

pub(crate) async fn one_event_whole(store: &dyn EventStore) {
    let mut with_envelope = event("evt_1", "hook");
    if let Content::Rendered { envelope, request } = &mut with_envelope.content {
        *envelope = Some(r#"{"id":"evt_1","type":"order.created"}"#.into());
        request.body = Some("id=1".into());
    }
    append(store, vec![with_envelope, event("evt_2", "hook")]).await;
    let retry = [Duration::ZERO, Duration::ZERO];
    let due = store.claim_due("hook", T0, 10).await.unwrap().events;
    let done = due
        .iter()
        .map(|event| finished(event, Some(ErrorKind::Status), &retry, T0 + 9))
        .collect();
    store.record_attempts(done).await.unwrap();
    let stored = store.event("evt_1").await.unwrap().unwrap();
    assert_eq!(stored.envelope, r#"{"id":"evt_1","type":"order.created"}"#);
    assert_eq!(stored.request.unwrap().body.as_deref(), Some("id=1"));
    assert_eq!(stored.attempts, vec![attempt(1, Some(ErrorKind::Status))]);
    assert_eq!(stored.record.next_attempt_at_ms, Some(T0 + 9));
    let second = store.event("evt_2").await.unwrap().unwrap();
    assert_eq!(
        second.envelope, r#"{"id":"evt_2"}"#,
        "the body is the envelope"
    );
    assert_eq!(
        (second.record.model.as_str(), second.record.kind.as_str()),
        ("order", "order.created")
    );
}

pub(crate) async fn pruning_keeps_what_is_pending(store: &dyn EventStore) {
    let events = (0..6)
        .map(|index| event(&format!("evt_{index}"), "hook"))
        .collect();
    append(store, events).await;
    let due = store.claim_due("hook", T0, 10).await.unwrap().events;
    // Four finish at T0 + 10; evt_4 waits for a retry; evt_5 was never claimed.
    let mut done = Vec::new();
    for event in &due[..4] {
        done.push(finished(event, None, &[Duration::ZERO], T0 + 10));
    }
    done.push(finished(
        &due[4],
        Some(ErrorKind::Timeout),
        &[Duration::ZERO, Duration::from_secs(3600)],
        T0 + 10,
    ));
    store.record_attempts(done).await.unwrap();
    assert_eq!(
        store.prune(T0 + 10).await.unwrap(),
        0,
        "nothing finished before the cutoff"
    );
    let pruned = store.prune(T0 + 11).await.unwrap();
    assert_eq!(pruned, 4);
    for index in 0..4 {
        assert!(
            store
                .event(&format!("evt_{index}"))
                .await
                .unwrap()
                .is_none()
        );
    }
    assert!(store.event("evt_4").await.unwrap().is_some());
    assert!(store.event("evt_5").await.unwrap().is_some());
    assert_eq!(count(store, "hook", Status::Delivered).await, 0);
    assert_eq!(count(store, "hook", Status::Pending).await, 2);
    assert_eq!(ids(store, EventQuery::default()).await, ["evt_5", "evt_4"]);
    // What is left is still claimed as it should be.
    let later = store
        .claim_due("hook", T0 + 3_600_010, 10)
        .await
        .unwrap()
        .events;
    assert_eq!(claimed_ids(&later), ["evt_4"]);
    assert_eq!(store.prune(u64::MAX).await.unwrap(), 0);
    // A pruned id appended again is a new event (its change was read again after retention).
    assert_eq!(append(store, vec![event("evt_0", "hook")]).await, 1);
}

pub(crate) async fn resume_position_only_moves_forward(store: &dyn EventStore) {
    assert_eq!(store.resume_position().await.unwrap(), None);
    for (lsn, expected) in [
        (Some(Lsn(100)), 100),
        (None, 100),
        (Some(Lsn(50)), 100),
        (Some(Lsn(300)), 300),
    ] {
        store
            .append(NewEvents {
                events: Vec::new(),
                resume_after: lsn,
                backfill: None,
                drained_outbox: Vec::new(),
            })
            .await
            .unwrap();
        assert_eq!(store.resume_position().await.unwrap(), Some(Lsn(expected)));
    }
}

pub(crate) async fn concurrent_claims_are_disjoint(store: Arc<dyn EventStore>) {
    let events = (0..2_000)
        .map(|index| event(&format!("evt_{index:05}"), "hook"))
        .collect();
    append(store.as_ref(), events).await;
    let mut claimers = Vec::new();
    for _ in 0..4 {
        let store = store.clone();
        claimers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let due = store.claim_due("hook", T0, 37).await.unwrap();
                if due.events.is_empty() {
                    return mine;
                }
                mine.extend(due.events.into_iter().map(|event| event.id));
                tokio::task::yield_now().await;
            }
        }));
    }
    let mut all = Vec::new();
    for claimer in claimers {
        all.extend(claimer.await.unwrap());
    }
    let total = all.len();
    all.sort();
    all.dedup();
    assert_eq!(
        (total, all.len()),
        (2_000, 2_000),
        "every event claimed exactly once"
    );
}

/// Many events, many chunks: every one claimed once, in order, and findable.
pub(crate) async fn large_batches_stay_whole(store: &dyn EventStore) {
    let events: Vec<NewEvent> = (0..5_000)
        .map(|index| event_at(&format!("evt_{index:06}"), "hook", T0, T0 + index / 1_000))
        .collect();
    assert_eq!(append(store, events).await, 5_000);
    let mut seen = Vec::new();
    loop {
        let due = store.claim_due("hook", T0 + 10, 300).await.unwrap();
        if due.events.is_empty() {
            break;
        }
        let done = due
            .events
            .iter()
            .map(|event| finished(event, None, &[Duration::ZERO], T0 + 20))
            .collect();
        seen.extend(due.events.iter().map(|event| event.id.clone()));
        store.record_attempts(done).await.unwrap();
    }
    let expected: Vec<String> = (0..5_000).map(|index| format!("evt_{index:06}")).collect();
    assert_eq!(seen, expected);
    assert_eq!(count(store, "hook", Status::Delivered).await, 5_000);
    assert!(store.event("evt_002500").await.unwrap().is_some());
    let newest = store
        .list(&EventQuery {
            limit: 2,
            ..EventQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(newest[0].id, "evt_004999");
    assert_eq!(newest[0].status, Status::Delivered);
}
