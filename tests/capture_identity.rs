//! Create, update and delete under REPLICA IDENTITY DEFAULT and FULL, and unchanged
//! TOASTed values, read through `rowhook tail`.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Tail, TestDatabase, rowhook, text};

const WAIT: Duration = Duration::from_secs(30);

async fn prepared(
    tables_sql: &str,
    models: &str,
    setup_arguments: &[&str],
) -> (TestDatabase, Tail) {
    let database = TestDatabase::create().await;
    database.execute(tables_sql).await;
    let config = database.write_config(models);
    let mut arguments = vec!["setup"];
    arguments.extend_from_slice(setup_arguments);
    let setup = rowhook(&config, &arguments);
    assert!(setup.status.success(), "{}", text(&setup.stderr));
    let tail = Tail::start(&database, &config).await;
    (database, tail)
}

#[tokio::test]
async fn default_identity_knows_keys_only() {
    let (database, tail) = prepared(
        "CREATE TABLE orders (id integer PRIMARY KEY, status text, total numeric(10, 2))",
        "[models.order]\ntable = \"public.orders\"\n",
        &[],
    )
    .await;
    database
        .execute(
            "INSERT INTO orders VALUES (1, 'new', 9.90);
             UPDATE orders SET status = 'paid' WHERE id = 1;
             UPDATE orders SET id = 2 WHERE id = 1;
             DELETE FROM orders WHERE id = 2;",
        )
        .await;

    let created = tail.next_json(WAIT);
    assert_eq!(created["type"], "order.created");
    assert_eq!(
        created["item"],
        json!({"id": 1, "status": "new", "total": "9.90"})
    );

    let updated = tail.next_json(WAIT);
    assert_eq!(updated["action"], "update");
    assert_eq!(
        updated["item"],
        json!({"id": 1, "status": "paid", "total": "9.90"})
    );
    assert_eq!(updated["old"], Value::Null);
    assert_eq!(updated["changed"], Value::Null);

    let rekeyed = tail.next_json(WAIT);
    assert_eq!(
        rekeyed["item"],
        json!({"id": 2, "status": "paid", "total": "9.90"})
    );
    assert_eq!(
        rekeyed["old"],
        json!({"id": 1, "status": null, "total": null})
    );
    assert_eq!(rekeyed["changed"], Value::Null);

    let deleted = tail.next_json(WAIT);
    assert_eq!(deleted["type"], "order.deleted");
    assert_eq!(
        deleted["item"],
        json!({"id": 2, "status": null, "total": null})
    );
    assert_eq!(deleted["old"], deleted["item"]);
}

#[tokio::test]
async fn full_identity_knows_old_rows_and_changed_columns() {
    let (database, tail) = prepared(
        "CREATE TABLE orders (id integer PRIMARY KEY, status text, total numeric(10, 2))",
        "[models.order]\ntable = \"orders\"\n",
        &["--replica-identity-full"],
    )
    .await;
    let identity: String = database
        .client
        .query_one(
            "SELECT relreplident::text FROM pg_class WHERE relname = 'orders'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(identity, "f", "setup --replica-identity-full sets FULL");
    database
        .execute(
            "INSERT INTO orders VALUES (1, 'new', 9.90);
             UPDATE orders SET status = 'paid', total = 10 WHERE id = 1;
             DELETE FROM orders WHERE id = 1;",
        )
        .await;

    let _created = tail.next_json(WAIT);
    let updated = tail.next_json(WAIT);
    assert_eq!(
        updated["item"],
        json!({"id": 1, "status": "paid", "total": "10.00"})
    );
    assert_eq!(
        updated["old"],
        json!({"id": 1, "status": "new", "total": "9.90"})
    );
    assert_eq!(updated["changed"], json!(["status", "total"]));

    let deleted = tail.next_json(WAIT);
    assert_eq!(
        deleted["item"],
        json!({"id": 1, "status": "paid", "total": "10.00"})
    );
    assert_eq!(deleted["old"], deleted["item"]);
    assert_eq!(deleted["changed"], Value::Null);
}

const DOCUMENTS: &str = "
    CREATE TABLE documents_default (id integer PRIMARY KEY, title text, body text);
    CREATE TABLE documents_full (id integer PRIMARY KEY, title text, body text);
    ALTER TABLE documents_default ALTER COLUMN body SET STORAGE EXTERNAL;
    ALTER TABLE documents_full ALTER COLUMN body SET STORAGE EXTERNAL;
    ALTER TABLE documents_full REPLICA IDENTITY FULL;";

#[tokio::test]
async fn untouched_toast_values() {
    let (database, tail) = prepared(
        DOCUMENTS,
        "[models.plain]\ntable = \"documents_default\"\n[models.full]\ntable = \"documents_full\"\n",
        &[],
    )
    .await;
    database
        .execute(
            "INSERT INTO documents_default SELECT 1, 'first', repeat('large body ', 20000);
             INSERT INTO documents_full SELECT 1, 'first', repeat('large body ', 20000);
             UPDATE documents_default SET title = 'second' WHERE id = 1;
             UPDATE documents_full SET title = 'second' WHERE id = 1;",
        )
        .await;
    let large = "large body ".repeat(20000);

    let created = tail.next_json(WAIT);
    assert_eq!(created["item"]["body"], Value::String(large.clone()));
    let _created_full = tail.next_json(WAIT);

    let plain = tail.next_json(WAIT);
    assert_eq!(plain["model"], "plain");
    assert_eq!(plain["item"]["title"], "second");
    assert_eq!(plain["item"]["body"], json!({"unchanged_toast": true}));

    let full = tail.next_json(WAIT);
    assert_eq!(full["model"], "full");
    assert_eq!(full["item"]["title"], "second");
    assert_eq!(full["item"]["body"], Value::String(large));
    assert_eq!(full["changed"], json!(["title"]));
}
