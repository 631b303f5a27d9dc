//! The backend-neutral suite, continued: a backfill's lane and its jobs, and pausing.

use std::time::Duration;

use super::suite::{T0, append, event, finished, nothing_due};
use super::{EventQuery, EventStore, NewEvents};
use crate::backfill::{BackfillJob, JobState};
use crate::event::{Lane, NewEvent, Status};

fn backfill_event(id: &str, webhook: &str) -> NewEvent {
    NewEvent {
        lane: Lane::Backfill,
        kind: "order.read".into(),
        ..event(id, webhook)
    }
}

pub(crate) fn job(id: u32) -> BackfillJob {
    BackfillJob {
        id,
        model: "order".into(),
        webhooks: vec!["hook".into()],
        condition: Some("id > 0".into()),
        batch: 500,
        state: JobState::Running,
        error: None,
        cursor: None,
        rows_done: 0,
        rows_estimated: 1_000,
        events_created: 0,
        started_at_ms: T0,
        updated_at_ms: T0,
        finished_at_ms: None,
    }
}

/// Live events are claimed before a backfill's, however many of those wait; the history
/// shows both as the webhook's.
pub(crate) async fn live_events_go_before_a_backfill(store: &dyn EventStore) {
    let backlog: Vec<NewEvent> = (0..300)
        .map(|index| backfill_event(&format!("evt_b{index:04}"), "hook"))
        .collect();
    assert_eq!(append(store, backlog).await, 300);
    assert_eq!(append(store, vec![event("evt_live", "hook")]).await, 1);

    let first = store.claim_due("hook", T0, 1).await.unwrap();
    assert_eq!(first.events[0].id, "evt_live");
    assert_eq!(first.events[0].webhook, "hook");
    let next = store.claim_due("hook", T0, 2).await.unwrap();
    let ids: Vec<&str> = next.events.iter().map(|event| event.id.as_str()).collect();
    assert_eq!(ids, ["evt_b0000", "evt_b0001"]);
    assert_eq!(next.events[0].webhook, "hook");

    let done = [first.events, next.events]
        .concat()
        .iter()
        .map(|event| finished(event, None, &[Duration::ZERO], T0 + 10))
        .collect();
    assert_eq!(
        store.record_attempts(done).await.unwrap(),
        vec![Status::Delivered; 3]
    );
    let counts = store.counts().await.unwrap();
    assert_eq!(
        counts.len(),
        1,
        "one webhook, whatever its lanes: {counts:?}"
    );
    assert_eq!(counts["hook"][&Status::Delivered], 3);
    assert_eq!(counts["hook"][&Status::Pending], 298);

    let listed = store
        .list(&EventQuery {
            webhook: Some("hook".into()),
            limit: 2,
            ..EventQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(listed[0].id, "evt_live");
    assert!(listed.iter().all(|record| record.webhook == "hook"));
    let one = store.event("evt_b0001").await.unwrap().expect("stored");
    assert_eq!(one.record.webhook, "hook");
    assert_eq!(one.record.status, Status::Delivered);
    let redelivered = store.redeliver("evt_b0001", T0 + 20).await.unwrap();
    assert_eq!(redelivered.webhook, "hook");
    let again = store.claim_due("hook", T0 + 20, 10).await.unwrap();
    assert!(again.events.iter().any(|event| event.id == "evt_b0001"));
}

/// A job's state is stored with the events of its page, in one write, and read back.
pub(crate) async fn backfill_jobs_are_kept_with_their_pages(store: &dyn EventStore) {
    store.save_backfill(&job(1)).await.unwrap();
    let mut advanced = job(1);
    advanced.cursor = Some(vec!["42".into()]);
    advanced.rows_done = 1;
    let appended = store
        .append(NewEvents {
            events: vec![backfill_event("evt_b1", "hook")],
            resume_after: None,
            backfill: Some(advanced.clone()),
            drained_outbox: Vec::new(),
        })
        .await
        .unwrap();
    assert_eq!(appended.created, 1);
    store.save_backfill(&job(2)).await.unwrap();
    assert_eq!(store.backfills().await.unwrap(), vec![advanced, job(2)]);
    // A page read again after a crash stores nothing twice, and the job still moves on.
    let mut further = job(1);
    further.rows_done = 2;
    let again = store
        .append(NewEvents {
            events: vec![backfill_event("evt_b1", "hook")],
            resume_after: None,
            backfill: Some(further.clone()),
            drained_outbox: Vec::new(),
        })
        .await
        .unwrap();
    assert_eq!(again.created, 0);
    assert_eq!(store.backfills().await.unwrap()[0], further);
}

/// A paused webhook's events are stored and wait; other webhooks go on; resuming hands
/// them out and wakes delivery.
pub(crate) async fn a_paused_webhook_waits(store: &dyn EventStore) {
    store.set_paused("hook", true).await.unwrap();
    append(store, vec![event("evt_1", "hook"), event("evt_2", "other")]).await;
    assert!(nothing_due(store, "hook", T0).await);
    assert_eq!(
        store.claim_due("other", T0, 10).await.unwrap().events.len(),
        1
    );
    assert_eq!(store.counts().await.unwrap()["hook"][&Status::Pending], 1);
    assert!(store.paused().await.unwrap().contains("hook"));

    let woken = store.wakeups().waiter("hook");
    store.set_paused("hook", false).await.unwrap();
    tokio::time::timeout(Duration::from_secs(1), woken.notified())
        .await
        .expect("resuming wakes delivery");
    assert!(store.paused().await.unwrap().is_empty());
    let due = store.claim_due("hook", T0, 10).await.unwrap();
    assert_eq!(due.events[0].id, "evt_1");
}

pub(crate) async fn the_inbound_log_lists_newest_first_and_prunes(store: &dyn EventStore) {
    use crate::inbound::{InboundOutcome, InboundQuery, InboundRecord};
    let record = |at: u64, endpoint: &str, outcome| InboundRecord {
        sequence: 0,
        received_at_ms: at,
        endpoint: endpoint.to_string(),
        outcome,
        status: 200,
        event_id: Some(format!("msg_{at}")),
        body_bytes: 10,
        reason: None,
    };
    store
        .log_inbound(vec![
            record(T0, "tasks", InboundOutcome::Accepted),
            record(T0 + 1, "tasks", InboundOutcome::Duplicate),
            record(T0 + 2, "other", InboundOutcome::Unauthorized),
        ])
        .await
        .unwrap();
    let all = store.inbound_log(&InboundQuery::default()).await.unwrap();
    let times: Vec<u64> = all.iter().map(|entry| entry.received_at_ms).collect();
    assert_eq!(times, [T0 + 2, T0 + 1, T0]);
    assert!(all[0].sequence > all[1].sequence);
    let duplicates = InboundQuery {
        endpoint: Some("tasks".into()),
        outcome: Some(InboundOutcome::Duplicate),
        limit: 0,
    };
    assert_eq!(store.inbound_log(&duplicates).await.unwrap().len(), 1);
    store.prune(T0 + 2).await.unwrap();
    let left = store.inbound_log(&InboundQuery::default()).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].endpoint, "other");
}
