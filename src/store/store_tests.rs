use std::collections::HashSet;

use super::records::{AttemptRecord, ErrorKind, EventRecord, Schedule, Status, StoredRequest};
use super::{EventQuery, Store, StoreError};
use crate::change::Lsn;

fn temporary_store() -> (Store, std::path::PathBuf) {
    let directory = std::env::temp_dir().join(format!(
        "rowhook-store-test-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    (Store::open(&directory).unwrap(), directory)
}

fn event(store: &Store, id: &str, webhook: &str, due_at: u64) -> EventRecord {
    EventRecord {
        id: id.to_string(),
        webhook: webhook.to_string(),
        model: "order".into(),
        kind: "order.created".into(),
        envelope: Some(serde_json::json!({"id": id})),
        request: StoredRequest {
            method: "POST".into(),
            url: "http://127.0.0.1:9/".into(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: Some("{}".into()),
        },
        created_at_ms: due_at,
        sequence: store.next_sequence().unwrap(),
        status: Status::Pending,
        attempts: 0,
        schedule: Schedule::Regular,
        next_attempt_at_ms: Some(due_at),
        last_status_code: None,
        last_error: None,
        finished_at_ms: None,
        render_error: None,
    }
}

fn attempt(number: u32, error_kind: Option<ErrorKind>) -> AttemptRecord {
    AttemptRecord {
        number,
        started_at_ms: 1,
        duration_ms: 2,
        status_code: if error_kind.is_none() {
            Some(200)
        } else {
            Some(500)
        },
        error_kind,
        error: error_kind.map(|kind| kind.as_str().to_string()),
        response_body: "ok".into(),
    }
}

#[test]
fn an_event_read_again_is_not_stored_twice() {
    let (store, _directory) = temporary_store();
    let first = event(&store, "evt_1", "hook", 10);
    assert!(store.insert(&first).unwrap());
    let again = event(&store, "evt_1", "hook", 99);
    assert!(!store.insert(&again).unwrap());
    assert_eq!(
        store.event("evt_1").unwrap().unwrap().next_attempt_at_ms,
        Some(10)
    );
    assert_eq!(store.counts()["hook"][&Status::Pending], 1);
    assert_eq!(store.list(&EventQuery::default()).unwrap().len(), 1);
}

#[test]
fn due_events_come_in_time_order_per_webhook() {
    let (store, _directory) = temporary_store();
    for (id, webhook, at) in [
        ("evt_a", "hook", 30),
        ("evt_b", "hook", 10),
        ("evt_c", "other", 5),
        ("evt_d", "hook", 50),
    ] {
        store.insert(&event(&store, id, webhook, at)).unwrap();
    }
    let none = HashSet::new();
    let due = |limit: usize, skip: &HashSet<String>, after: Option<&[u8]>| {
        let found = store.due("hook", 40, limit, skip, after).unwrap();
        (found.found, found.next, found.cursor)
    };
    let (found, next, cursor) = due(10, &none, None);
    assert_eq!(found, [(10, "evt_b".to_string()), (30, "evt_a".into())]);
    assert_eq!(next, Some(50));
    let (found, next, first_cursor) = due(1, &none, None);
    assert_eq!((found, next), (vec![(10, "evt_b".to_string())], Some(30)));
    let skip: HashSet<String> = ["evt_b".to_string()].into();
    let (found, next, _) = due(10, &skip, None);
    assert_eq!((found, next), (vec![(30, "evt_a".to_string())], Some(50)));
    // A cursor continues after the entries already handed out.
    let (found, next, _) = due(10, &none, first_cursor.as_deref());
    assert_eq!((found, next), (vec![(30, "evt_a".to_string())], Some(50)));
    let (found, next, _) = due(10, &none, cursor.as_deref());
    assert_eq!((found, next), (vec![], Some(50)));
    let nobody = store.due("nobody", 40, 10, &none, None).unwrap();
    assert_eq!((nobody.found, nobody.next), (vec![], None));
}

#[test]
fn attempts_move_events_through_their_statuses() {
    let (store, _directory) = temporary_store();
    store.insert(&event(&store, "evt_1", "hook", 10)).unwrap();
    let failed_once_status = store
        .finish_attempt("evt_1", &attempt(1, Some(ErrorKind::Status)), Some(500), 20)
        .unwrap();
    let failed_once = store.event("evt_1").unwrap().unwrap();
    assert_eq!(failed_once.status, failed_once_status);
    assert_eq!(failed_once.status, Status::Pending);
    assert_eq!(failed_once.attempts, 1);
    assert_eq!(failed_once.last_status_code, Some(500));
    let nothing = HashSet::new();
    let later = store.due("hook", 100, 10, &nothing, None).unwrap();
    assert_eq!((later.found, later.next), (vec![], Some(500)));
    assert_eq!(
        store.due("hook", 500, 10, &nothing, None).unwrap().found,
        [(500, "evt_1".to_string())]
    );
    assert!(store.event_if_due("hook", 500, "evt_1").unwrap().is_some());
    assert!(store.event_if_due("hook", 10, "evt_1").unwrap().is_none());

    let gave_up_status = store
        .finish_attempt("evt_1", &attempt(2, Some(ErrorKind::Timeout)), None, 600)
        .unwrap();
    let gave_up = store.event("evt_1").unwrap().unwrap();
    assert_eq!(gave_up.status, gave_up_status);
    assert_eq!(gave_up.status, Status::Failed);
    assert_eq!(gave_up.finished_at_ms, Some(600));
    assert_eq!(
        store.due("hook", 10_000, 10, &nothing, None).unwrap(),
        Default::default()
    );

    let queued = store.redeliver("evt_1", 700).unwrap();
    assert_eq!(queued.status, Status::Pending);
    assert_eq!(queued.schedule, Schedule::Redelivery { after_attempts: 2 });
    assert_eq!(
        store
            .due("hook", 700, 10, &HashSet::new(), None)
            .unwrap()
            .found,
        [(700, "evt_1".to_string())]
    );
    let delivered_status = store
        .finish_attempt("evt_1", &attempt(3, None), None, 710)
        .unwrap();
    let delivered = store.event("evt_1").unwrap().unwrap();
    assert_eq!(delivered.status, delivered_status);
    assert_eq!(delivered.status, Status::Delivered);
    assert_eq!(delivered.attempts, 3);

    let numbers: Vec<u32> = store
        .attempts("evt_1")
        .unwrap()
        .iter()
        .map(|a| a.number)
        .collect();
    assert_eq!(numbers, [1, 2, 3]);
    let counts = &store.counts()["hook"];
    assert_eq!(counts.get(&Status::Delivered), Some(&1));
    assert_eq!(counts.get(&Status::Pending), Some(&0));
    assert_eq!(counts.get(&Status::Failed), Some(&0));
}

#[test]
fn render_failures_cannot_be_redelivered() {
    let (store, _directory) = temporary_store();
    let mut broken = event(&store, "evt_1", "hook", 10);
    broken.status = Status::Failed;
    broken.next_attempt_at_ms = None;
    broken.render_error = Some("webhooks[0].url: boom".into());
    store.insert(&broken).unwrap();
    assert!(matches!(
        store.redeliver("evt_1", 20),
        Err(StoreError::NotRedeliverable { .. })
    ));
    assert!(matches!(
        store.redeliver("evt_missing", 20),
        Err(StoreError::NotFound(_))
    ));
}

#[test]
fn listing_filters_and_pages_newest_first() {
    let (store, _directory) = temporary_store();
    for index in 0..5 {
        let webhook = if index % 2 == 0 { "even" } else { "odd" };
        store
            .insert(&event(&store, &format!("evt_{index}"), webhook, index))
            .unwrap();
    }
    store
        .finish_attempt("evt_2", &attempt(1, None), None, 9)
        .unwrap();
    let ids = |query: EventQuery| -> Vec<String> {
        store
            .list(&query)
            .unwrap()
            .into_iter()
            .map(|event| event.id)
            .collect()
    };
    assert_eq!(
        ids(EventQuery::default()),
        ["evt_4", "evt_3", "evt_2", "evt_1", "evt_0"]
    );
    let even = EventQuery {
        webhook: Some("even".into()),
        ..EventQuery::default()
    };
    assert_eq!(ids(even.clone()), ["evt_4", "evt_2", "evt_0"]);
    let page = store
        .list(&EventQuery {
            limit: 2,
            ..EventQuery::default()
        })
        .unwrap();
    assert_eq!(page.len(), 2);
    let next = EventQuery {
        limit: 2,
        before: Some(page[1].sequence),
        ..EventQuery::default()
    };
    assert_eq!(ids(next), ["evt_2", "evt_1"]);
    let delivered = EventQuery {
        status: Some(Status::Delivered),
        ..even
    };
    assert_eq!(ids(delivered), ["evt_2"]);
}

#[test]
fn pruning_removes_only_finished_old_events() {
    let (store, _directory) = temporary_store();
    for index in 0..4 {
        store
            .insert(&event(&store, &format!("evt_{index}"), "hook", index * 10))
            .unwrap();
    }
    store
        .finish_attempt("evt_0", &attempt(1, None), None, 5)
        .unwrap();
    store
        .finish_attempt("evt_1", &attempt(1, Some(ErrorKind::Connect)), None, 15)
        .unwrap();
    store
        .finish_attempt("evt_2", &attempt(1, None), None, 500)
        .unwrap();
    assert_eq!(store.prune(100).unwrap(), 2);
    assert!(store.event("evt_0").unwrap().is_none());
    assert!(store.attempts("evt_0").unwrap().is_empty());
    assert!(
        store.event("evt_2").unwrap().is_some(),
        "finished after the cutoff"
    );
    assert!(store.event("evt_3").unwrap().is_some(), "still pending");
    let counts = &store.counts()["hook"];
    assert_eq!(counts.get(&Status::Delivered), Some(&1));
    assert_eq!(counts.get(&Status::Failed), Some(&0));
    assert_eq!(store.list(&EventQuery::default()).unwrap().len(), 2);
}

#[test]
fn the_checkpoint_survives_reopening() {
    let (store, directory) = temporary_store();
    assert_eq!(store.checkpoint().unwrap(), Lsn(0));
    store.set_checkpoint(Lsn(42)).unwrap();
    futures_flush(&store);
    drop(store);
    let reopened = Store::open(&directory).unwrap();
    assert_eq!(reopened.checkpoint().unwrap(), Lsn(42));
}

fn futures_flush(store: &Store) {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(store.flush())
        .unwrap();
}

#[test]
fn requests_round_trip_with_and_without_a_body() {
    let (store, _directory) = temporary_store();
    let mut with_body = event(&store, "evt_body", "hook", 1);
    with_body.request.body = Some("{\"a\": \"ü\"}".into());
    let mut without_body = event(&store, "evt_none", "hook", 1);
    without_body.request.body = None;
    without_body.request.method = "GET".into();
    for record in [&with_body, &without_body] {
        store.insert(record).unwrap();
        let read = store.event(&record.id).unwrap().unwrap();
        assert_eq!(read.request, record.request);
        assert_eq!(read.envelope, record.envelope);
    }
}
