//! Notify mode against a real PostgreSQL: the same changes give the same deliveries as
//! replication mode, a backlog made while rowhook is stopped is delivered whole, rows far
//! larger than a NOTIFY payload arrive whole, and setup/check/tail know the mode.

#[macro_use]
mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;
use support::receiver::{Received, Receiver};
use support::{Mode, Service, Tail, TestDatabase, rowhook, text};

const WAIT: Duration = Duration::from_secs(60);

const SCHEMA: &str = "
    CREATE TYPE mood AS ENUM ('happy', 'sad');
    CREATE TABLE things (
        id bigint PRIMARY KEY,
        small smallint, big bigint, real_value real, double_value double precision,
        not_a_number double precision, price numeric(30, 10), flag boolean,
        name text, fixed char(3), document json, binary_document jsonb, identifier uuid,
        day date, moment timestamptz, local_moment timestamp, clock_zone timetz,
        duration interval, raw bytea, numbers integer[], words text[], moments timestamptz[],
        feeling mood, nothing text, essay text
    );
    CREATE TABLE \"odd, \"\"name\"\"\" (\"key (1)\" integer PRIMARY KEY, \"value, too\" text);";

const CHANGES: &str = r#"
    INSERT INTO things VALUES (
        1, -32768, 9223372036854775807, 1.5, 0.1, 'NaN', '12345678901234567890.0123456789',
        true, 'héllo "quoted", (parens) \ back', 'ab', '{"a": [1, 2]}', '{"b": {"c": null}}',
        'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '2026-11-22', '2026-11-22 10:00:00.123456+02',
        '2026-11-22 10:00:00.5', '10:00:00+02', '1 year 2 months 3 days 04:05:06', '\xdeadbeef',
        '{1,NULL,3}', '{"a,b","NULL",NULL,"with \"quote\" and \\ backslash"}',
        '{"2026-11-22 10:00:00+00"}', 'happy', NULL,
        (SELECT string_agg(md5(n::text), ' ') FROM generate_series(1, 4000) n));
    INSERT INTO things (id, name, essay) VALUES (2, '', '');
    UPDATE things SET flag = false, small = 7 WHERE id = 1;
    UPDATE things SET essay = essay || ' and more' WHERE id = 1;
    BEGIN;
    INSERT INTO "odd, ""name""" VALUES (1, 'a, "b"');
    UPDATE "odd, ""name""" SET "key (1)" = 2;
    COMMIT;
    DELETE FROM things WHERE id = 2;"#;

fn config(receiver: &Receiver) -> String {
    format!(
        r#"[delivery]
retry = ["0s"]

[models.thing]
table = "things"

[models.odd]
table = 'public."odd, ""name"""'

[[webhooks]]
name = "full"
model = "thing"
url = "{full}"

[[webhooks]]
name = "odd"
model = "odd"
url = "{odd}"

[[webhooks]]
name = "template"
model = "thing"
on = ["create", "update"]
url = "{template}?id={{{{ item.id }}}}"
method = "PUT"
format = "text"
body = """{{{{ item.name }}}}|{{{{ item.price }}}}|{{{{ item.moment }}}}|{{{{ item.words | json }}}}|{{{{ item.essay | size }}}}"""

[[webhooks]]
name = "form"
model = "thing"
on = ["update"]
columns = ["flag"]
url = "{form}"
format = "form"
fields = {{ id = "item.id", flag = "item.flag", was = "old.flag" }}
"#,
        full = receiver.url("/full"),
        odd = receiver.url("/odd"),
        template = receiver.url("/template"),
        form = receiver.url("/form"),
    )
}

async fn outbox_rows(database: &TestDatabase) -> i64 {
    database
        .client
        .query_one("SELECT count(*) FROM rowhook.outbox", &[])
        .await
        .expect("count the outbox")
        .get(0)
}

/// A request with what legitimately differs between the modes taken out: the event id,
/// the WAL position, the time, and the signature headers that depend on them.
fn comparable(request: &Received) -> String {
    let body = match serde_json::from_str::<Value>(&request.body) {
        Ok(Value::Object(mut envelope)) => {
            for key in ["id", "lsn", "timestamp"] {
                envelope.remove(key);
            }
            Value::Object(envelope).to_string()
        }
        _ => request.body.clone(),
    };
    format!(
        "{} {} {:?} {body}",
        request.method,
        request.target,
        request.header("content-type")
    )
}

async fn deliveries(mode: Mode) -> Vec<String> {
    let receiver = Receiver::start().await;
    let database = TestDatabase::create_in(mode).await;
    database.execute(SCHEMA).await;
    let config = database.write_config(&config(&receiver));
    // Whole old rows in replication mode, as the trigger always has them.
    let setup = rowhook(&config, &["setup", "--replica-identity-full"]);
    assert!(setup.status.success(), "{}", text(&setup.stderr));
    let service = Service::start(&database, &config).await;
    database.execute(CHANGES).await;
    let requests = receiver.wait_for(12, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    service.stop();
    assert_eq!(
        receiver.requests().len(),
        requests.len(),
        "no extra requests"
    );
    let created = requests
        .iter()
        .filter(|request| request.target == "/full")
        .map(Received::json)
        .find(|envelope| envelope["type"] == "thing.created" && envelope["item"]["id"] == 1)
        .expect("the envelope of the big row");
    let essay = created["item"]["essay"].as_str().map(str::len);
    assert_eq!(
        essay,
        Some(4000 * 33 - 1),
        "{mode:?}: the row arrives whole"
    );
    let mut comparable: Vec<String> = requests.iter().map(comparable).collect();
    comparable.sort();
    comparable
}

#[tokio::test]
async fn both_modes_deliver_the_same_requests_for_the_same_changes() {
    let replication = deliveries(Mode::Replication).await;
    let notify = deliveries(Mode::Notify).await;
    for (replicated, notified) in replication.iter().zip(&notify) {
        assert_eq!(replicated, notified);
    }
    assert_eq!(replication.len(), notify.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_made_while_stopped_is_delivered_and_drained() {
    const CHANGES: i64 = 10_000;
    let receiver = Receiver::start().await;
    let database = TestDatabase::create_in(Mode::Notify).await;
    database
        .execute("CREATE TABLE orders (id integer PRIMARY KEY, note text)")
        .await;
    let config = database.write_config(&format!(
        "[delivery]\nretry = [\"0s\", \"1s\"]\n\n[models.order]\ntable = \"orders\"\n\n\
         [[webhooks]]\nname = \"orders\"\nmodel = \"order\"\nurl = \"{}\"\n",
        receiver.url("/orders")
    ));
    let setup = rowhook(&config, &["setup"]);
    assert!(setup.status.success(), "{}", text(&setup.stderr));
    // Run once and stop, so the backlog arrives at a service that has been there before.
    Service::start(&database, &config).await.stop();
    for first in (1..=CHANGES).step_by(500) {
        database
            .execute(&format!(
                "INSERT INTO orders SELECT n, 'row ' || n FROM generate_series({first}, {}) n",
                first + 499
            ))
            .await;
    }
    let waiting = outbox_rows(&database).await;
    assert_eq!(waiting, CHANGES);

    let service = Service::start(&database, &config).await;
    receiver.wait_for(CHANGES as usize, WAIT).await;
    support::eventually("the outbox to be drained", WAIT, || async {
        let left = outbox_rows(&database).await;
        left == 0
    })
    .await;
    service.stop();
    let rows: BTreeSet<i64> = receiver
        .requests()
        .iter()
        .map(|request| request.json()["item"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(rows.len(), CHANGES as usize);
    let ids: BTreeSet<String> = receiver
        .requests()
        .iter()
        .map(|request| request.header("webhook-id").unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), CHANGES as usize, "one event id per change");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_wait_through_a_schema_change_and_keep_their_columns() {
    let receiver = Receiver::start().await;
    let database = TestDatabase::create_in(Mode::Notify).await;
    database
        .execute("CREATE TABLE orders (id integer PRIMARY KEY, status text, total numeric)")
        .await;
    let config = database.write_config(&format!(
        "[delivery]\nretry = [\"0s\"]\n\n[models.order]\ntable = \"orders\"\n\n\
         [[webhooks]]\nname = \"orders\"\nmodel = \"order\"\nurl = \"{}\"\n",
        receiver.url("/orders")
    ));
    let setup = rowhook(&config, &["setup"]);
    assert!(setup.status.success(), "{}", text(&setup.stderr));
    database
        .execute(
            "INSERT INTO orders VALUES (1, 'new', 9.50);
             ALTER TABLE orders DROP COLUMN status;
             ALTER TABLE orders RENAME COLUMN total TO amount;
             ALTER TABLE orders ADD COLUMN paid boolean;
             INSERT INTO orders VALUES (2, 1.25, true);",
        )
        .await;
    let service = Service::start(&database, &config).await;
    let requests = receiver.wait_for(2, WAIT).await;
    service.stop();
    let mut items: Vec<String> = requests
        .iter()
        .map(|request| request.json()["item"].to_string())
        .collect();
    items.sort();
    assert_eq!(
        items,
        [
            r#"{"id":1,"status":"new","total":"9.50"}"#,
            r#"{"id":2,"amount":"1.25","paid":true}"#,
        ]
    );
}

#[tokio::test]
async fn setup_check_and_tail_in_notify_mode() {
    let database = TestDatabase::create_in(Mode::Notify).await;
    database
        .execute("CREATE TABLE orders (id integer PRIMARY KEY, status text)")
        .await;
    let config = database.write_config(
        "[models.order]\ntable = \"orders\"\n\n[[webhooks]]\nname = \"orders\"\nmodel = \"order\"\n\
         url = \"http://127.0.0.1:9/orders\"\n",
    );
    let before = rowhook(&config, &["check"]);
    assert_eq!(before.status.code(), Some(2));
    let findings = text(&before.stdout);
    assert!(
        findings.contains("the outbox rowhook.outbox does not exist: run `rowhook setup`"),
        "{findings}"
    );
    assert!(
        findings.contains("has no trigger rowhook_capture: run `rowhook setup`"),
        "{findings}"
    );
    let run = rowhook(&config, &["run"]);
    assert_eq!(run.status.code(), Some(1));
    assert!(
        text(&run.stderr).contains("rowhook.outbox does not exist; run `rowhook setup` first"),
        "{}",
        text(&run.stderr)
    );

    let first = rowhook(&config, &["setup"]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    for trigger in ["rowhook_columns", "rowhook_capture", "rowhook_columns_done"] {
        assert!(
            text(&first.stdout).contains(&format!("created trigger {trigger} on public.orders")),
            "{}",
            text(&first.stdout)
        );
    }
    let again = rowhook(&config, &["setup"]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(
        text(&again.stdout).contains("trigger rowhook_capture on public.orders already present"),
        "{}",
        text(&again.stdout)
    );
    let after = rowhook(&config, &["check"]);
    assert!(after.status.success(), "{}", text(&after.stdout));
    assert!(text(&after.stdout).contains("outbox rowhook.outbox is ready (0 change(s) waiting)"));

    database
        .execute("ALTER TABLE orders DISABLE TRIGGER rowhook_capture")
        .await;
    let disabled = rowhook(&config, &["check"]);
    assert_eq!(disabled.status.code(), Some(2));
    assert!(text(&disabled.stdout).contains("is disabled, so changes are not captured"));
    let repaired = rowhook(&config, &["setup"]);
    assert!(text(&repaired.stdout).contains("recreated trigger rowhook_capture on public.orders"));

    // tail reads new rows and leaves them for `run`.
    database
        .execute("INSERT INTO orders VALUES (1, 'old')")
        .await;
    let tail = Tail::start(&database, &config).await;
    database
        .execute(
            "INSERT INTO orders VALUES (2, 'new'); UPDATE orders SET status = 'paid' WHERE id = 2",
        )
        .await;
    let created = tail.next_json(WAIT);
    assert_eq!(created["type"], "order.created");
    assert_eq!(created["item"]["id"], 2);
    let updated = tail.next_json(WAIT);
    assert_eq!(updated["changed"], serde_json::json!(["status"]));
    let left = outbox_rows(&database).await;
    assert_eq!(left, 3, "tail deletes nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_without_logical_replication_and_survives_a_restart() {
    let cluster = support::PrivateCluster::start("wal_level = replica");
    let mut database = TestDatabase::create_on(&cluster.url()).await;
    database.mode = Mode::Notify;
    database
        .execute("CREATE TABLE orders (id integer PRIMARY KEY)")
        .await;
    let receiver = Receiver::start().await;
    let config = database.write_config(&format!(
        "[delivery]\nretry = [\"0s\"]\n\n[models.order]\ntable = \"orders\"\n\n\
         [[webhooks]]\nname = \"orders\"\nmodel = \"order\"\nurl = \"{}\"\n",
        receiver.url("/orders")
    ));
    let setup = rowhook(&config, &["setup"]);
    assert!(setup.status.success(), "{}", text(&setup.stderr));
    let check = rowhook(&config, &["check"]);
    assert!(check.status.success(), "{}", text(&check.stdout));

    let service = Service::start(&database, &config).await;
    database
        .execute("INSERT INTO orders SELECT generate_series(1, 100)")
        .await;
    receiver.wait_for(100, WAIT).await;
    cluster.stop();
    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.start_again();
    let client = support::connect(&database.url).await;
    client
        .batch_execute("INSERT INTO orders SELECT generate_series(101, 200)")
        .await
        .expect("insert after the restart");
    receiver.wait_for(200, WAIT).await;
    let log = service.log_text();
    service.stop();
    assert!(log.contains("outbox unavailable; retrying"), "{log}");
    let rows: BTreeSet<i64> = receiver
        .requests()
        .iter()
        .map(|request| request.json()["item"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(rows, (1..=200).collect());
}

fn one_webhook(receiver: &Receiver, models: &str) -> String {
    format!(
        "[delivery]\nretry = [\"0s\"]\n\n{models}\n\
         [[webhooks]]\nname = \"all\"\nmodel = \"order\"\nurl = \"{}\"\n",
        receiver.url("/orders")
    )
}

async fn partitions_and_inheritance_children_arrive_under_their_model(mode: Mode) {
    let receiver = Receiver::start().await;
    let database = TestDatabase::create_in(mode).await;
    database
        .execute(
            "CREATE TABLE orders (id integer, region text, total numeric) PARTITION BY LIST (region);
             CREATE TABLE orders_eu PARTITION OF orders FOR VALUES IN ('eu');
             -- A partition whose columns are ordered unlike its parent's.
             CREATE TABLE orders_us (total numeric, region text, id integer);
             ALTER TABLE orders ATTACH PARTITION orders_us FOR VALUES IN ('us');
             CREATE TABLE people (id integer);
             CREATE TABLE customers () INHERITS (people);",
        )
        .await;
    let config = database.write_config(&format!(
        "{}\n[[webhooks]]\nname = \"customers\"\nmodel = \"customer\"\nurl = \"{}\"\n",
        one_webhook(
            &receiver,
            "[models.order]\ntable = \"orders\"\n\n[models.customer]\ntable = \"customers\"\n"
        ),
        receiver.url("/customers")
    ));
    // Neither table has a key; replication mode needs whole old rows to publish updates.
    let setup = rowhook(&config, &["setup", "--replica-identity-full"]);
    assert!(setup.status.success(), "{}", text(&setup.stderr));
    let service = Service::start(&database, &config).await;
    database
        .execute(
            "INSERT INTO orders VALUES (1, 'eu', 9.50), (2, 'us', 1.25);
             BEGIN;
             INSERT INTO customers VALUES (1);
             ALTER TABLE customers ADD COLUMN extra integer DEFAULT 7;
             UPDATE people SET id = id + 1;
             COMMIT;",
        )
        .await;
    let requests = receiver.wait_for(4, WAIT).await;
    service.stop();
    let mut seen: Vec<String> = requests
        .iter()
        .map(|request| {
            let body = request.json();
            format!("{} {} {}", body["type"], body["table"], body["item"])
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            r#""customer.created" "public.customers" {"id":1}"#,
            r#""customer.updated" "public.customers" {"id":2,"extra":7}"#,
            r#""order.created" "public.orders" {"id":1,"region":"eu","total":"9.50"}"#,
            // In the model table's column order, whatever the partition's.
            r#""order.created" "public.orders" {"id":2,"region":"us","total":"1.25"}"#,
        ]
    );
}

in_both_modes!(
    partitions_and_inheritance_children_arrive_under_their_model,
    tokio::test(flavor = "multi_thread", worker_threads = 2)
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_row_is_set_aside_and_a_second_drainer_waits() {
    let receiver = Receiver::start().await;
    let database = TestDatabase::create_in(Mode::Notify).await;
    database
        .execute("CREATE TABLE orders (id integer PRIMARY KEY)")
        .await;
    let config = database.write_config(&one_webhook(
        &receiver,
        "[models.order]\ntable = \"orders\"\n",
    ));
    let setup = rowhook(&config, &["setup"]);
    assert!(setup.status.success(), "{}", text(&setup.stderr));
    database
        .execute(
            "INSERT INTO orders VALUES (1);
             INSERT INTO rowhook.outbox (table_schema, table_name, action, item, columns)
                 VALUES ('public', 'orders', 'create', '(2', '{23:id}');
             INSERT INTO orders VALUES (3);",
        )
        .await;
    let service = Service::start(&database, &config).await;
    // The same database, another store: a second service must not drain too.
    let second_config = database.directory.join("second.toml");
    let second_store = database.directory.join("second-store");
    std::fs::write(
        &second_config,
        std::fs::read_to_string(&config).unwrap().replace(
            &database.directory.join("store").display().to_string(),
            &second_store.display().to_string(),
        ),
    )
    .unwrap();
    let second = Service::spawn(&database, &second_config);
    support::eventually("the second service to wait", WAIT, || {
        let waiting = second.log_text().contains("another rowhook is draining");
        async move { waiting }
    })
    .await;
    database.execute("INSERT INTO orders VALUES (4)").await;
    let requests = receiver.wait_for(3, WAIT).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let log = service.log_text();
    service.stop();
    second.stop();
    let mut rows: Vec<i64> = requests
        .iter()
        .map(|request| request.json()["item"]["id"].as_i64().unwrap())
        .collect();
    rows.sort();
    assert_eq!(rows, [1, 3, 4], "each once, the unreadable one set aside");
    assert_eq!(receiver.requests().len(), 3);
    assert!(log.contains("moved to rowhook.rejected"), "{log}");
    let rejected = database
        .client
        .query_one("SELECT item, reason FROM rowhook.rejected", &[])
        .await
        .unwrap();
    assert_eq!(rejected.get::<_, String>(0), "(2");
    assert!(rejected.get::<_, String>(1).contains("unreadable row"));
    let check = rowhook(&config, &["check"]);
    assert!(
        text(&check.stdout).contains("1 outbox row(s) could not be read"),
        "{}",
        text(&check.stdout)
    );
}
