//! The PostgreSQL backend: the common suite, each test in a database of its own on the
//! test cluster (`ROWHOOK_TEST_DATABASE_URL`, set by `scripts/test.sh`), plus what only a
//! shared store has — two instances on one store, leases, the schema version.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::PostgresStore;
use crate::event::{ErrorKind, Status};
use crate::store::suite::{self, T0, append, event, event_store_suite, finished};
use crate::store::{EventStore, StoreError};

const SERVER_URL: &str = "ROWHOOK_TEST_DATABASE_URL";

/// A database of its own on the test cluster: its URL.
pub(crate) async fn temporary_database() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let server = std::env::var(SERVER_URL)
        .unwrap_or_else(|_| panic!("{SERVER_URL} is not set: run the tests with scripts/test.sh"));
    let name = format!(
        "rowhook_store_{}_{}_{}",
        std::process::id(),
        crate::time::now_ms(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let (client, connection) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
        .await
        .expect("connect to the test cluster");
    tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create a test database");
    let (base, _) = server.rsplit_once('/').expect("the URL names a database");
    format!("{base}/{name}")
}

async fn open(url: &str, lease: Duration) -> PostgresStore {
    PostgresStore::open(url, lease, false)
        .await
        .expect("open the store")
}

pub(crate) async fn temporary_store() -> Arc<dyn EventStore> {
    let url = temporary_database().await;
    Arc::new(open(&url, Duration::from_secs(60)).await)
}

event_store_suite!(temporary_store());

#[tokio::test]
async fn two_instances_share_the_events_and_a_dead_ones_claims_come_back() {
    let url = temporary_database().await;
    let first = open(&url, Duration::from_millis(300)).await;
    let second = open(&url, Duration::from_secs(60)).await;
    let events = (0..10)
        .map(|index| event(&format!("evt_{index}"), "hook"))
        .collect();
    assert_eq!(append(&first, events).await, 10);
    let mine = first.claim_due("hook", T0, 4).await.unwrap().events;
    let theirs = second.claim_due("hook", T0, 100).await.unwrap().events;
    assert_eq!(mine.len() + theirs.len(), 10, "disjoint and complete");
    // The first instance dies with its claims: they come back when the lease ends.
    drop(first);
    assert!(
        second
            .claim_due("hook", T0, 100)
            .await
            .unwrap()
            .events
            .is_empty()
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let back = second.claim_due("hook", T0, 100).await.unwrap().events;
    assert_eq!(suite::claimed_ids(&back), suite::claimed_ids(&mine));
    // Its late record of a lost claim does not undo the new claim's outcome.
    let late = finished(
        &mine[0],
        Some(ErrorKind::Timeout),
        &[Duration::ZERO],
        T0 + 1,
    );
    let fresh = finished(&back[0], None, &[Duration::ZERO], T0 + 2);
    assert_eq!(
        second.record_attempts(vec![fresh]).await.unwrap(),
        [Status::Delivered]
    );
    assert_eq!(
        second.record_attempts(vec![late]).await.unwrap(),
        [Status::Delivered]
    );
    let stored = second.event(&mine[0].id).await.unwrap().unwrap();
    assert_eq!(stored.record.status, Status::Delivered);
    assert_eq!(stored.attempts.len(), 1);
    assert!(stored.attempts[0].succeeded());
}

#[tokio::test]
async fn a_rate_holds_across_instances() {
    let url = temporary_database().await;
    let first = open(&url, Duration::from_secs(60)).await;
    let second = open(&url, Duration::from_secs(60)).await;
    let events = (0..20)
        .map(|index| event(&format!("evt_{index}"), "hook"))
        .collect();
    append(&first, events).await;
    let rate = crate::rate::parse_rate("10/s").ok();
    let now = T0 + 10_000;
    let one = first
        .claim_due_at_rate("hook", now, 100, rate)
        .await
        .unwrap();
    let other = second
        .claim_due_at_rate("hook", now, 100, rate)
        .await
        .unwrap();
    assert_eq!(
        one.events.len() + other.events.len(),
        2,
        "one rate for both"
    );
    assert_eq!(other.next_due_at_ms, Some(now + 100));
    let later = second
        .claim_due_at_rate("hook", now + 100, 100, rate)
        .await
        .unwrap();
    assert_eq!(later.events.len(), 1);
}

#[tokio::test]
async fn a_schema_of_a_newer_version_is_refused() {
    let url = temporary_database().await;
    drop(open(&url, Duration::from_secs(60)).await);
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute("UPDATE rowhook.store_version SET version = version + 1")
        .await
        .unwrap();
    match PostgresStore::open(&url, Duration::from_secs(60), false).await {
        Err(error @ StoreError::SchemaTooNew { .. }) => {
            assert!(error.to_string().contains("newer rowhook"), "{error}");
        }
        Err(other) => panic!("expected SchemaTooNew, got {other}"),
        Ok(_) => panic!("a newer schema was accepted"),
    }
}

#[tokio::test]
async fn an_unreachable_database_is_a_clear_error() {
    let url = "postgres://rowhook@127.0.0.1:9/rowhook?connect_timeout=2";
    match PostgresStore::open(url, Duration::from_secs(60), false).await {
        Err(error @ StoreError::Unreachable { .. }) => {
            assert!(error.to_string().contains("127.0.0.1:9"), "{error}");
        }
        Err(other) => panic!("expected Unreachable, got {other}"),
        Ok(_) => panic!("opened a store on a closed port"),
    }
}

#[tokio::test]
async fn drained_outbox_rows_go_with_their_events() {
    let url = temporary_database().await;
    let store = PostgresStore::open(&url, Duration::from_secs(60), true)
        .await
        .unwrap();
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(
            "CREATE TABLE rowhook.outbox (id bigint PRIMARY KEY); \
             INSERT INTO rowhook.outbox SELECT generate_series(1, 5)",
        )
        .await
        .unwrap();
    store
        .append(crate::store::NewEvents {
            events: vec![event("evt_1", "hook")],
            drained_outbox: vec![1, 2, 3],
            ..crate::store::NewEvents::default()
        })
        .await
        .unwrap();
    let left: Vec<i64> = client
        .query("SELECT id FROM rowhook.outbox ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(left, [4, 5]);
    assert!(store.event("evt_1").await.unwrap().is_some());
}
