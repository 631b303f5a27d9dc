//! Relations (CONTRACT §8) end to end, in both capture modes: an order reaches the
//! receiver with its customer and its lines, in templates and in the envelope, looked up
//! in one query per relation per batch, and only for webhooks that include them.

#[macro_use]
mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::receiver::{Received, Receiver};
use support::{Mode, Service, TestDatabase, free_port, rowhook, text};

const TOKEN: &str = "relations-token";
const WAIT: Duration = Duration::from_secs(60);

const SCHEMA: &str = "
    CREATE TABLE customers (id bigint PRIMARY KEY, email text);
    CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint, status text);
    CREATE TABLE order_lines (id bigint PRIMARY KEY, order_id bigint, sku text, position int);
    CREATE INDEX ON order_lines (order_id);";

fn config(receiver: &Receiver, port: u16, webhooks: &str) -> String {
    format!(
        "[admin]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"{TOKEN}\"\n\n\
         [delivery]\nretry = [\"0s\"]\n\n\
         [models.order]\ntable = \"orders\"\n\
         [models.order.relations]\n\
         customer = {{ model = \"customer\", key = \"customer_id\" }}\n\
         lines = {{ model = \"order_line\", foreign_key = \"order_id\", order_by = \"position\" }}\n\n\
         [models.customer]\ntable = \"customers\"\n\n\
         [models.order_line]\ntable = \"order_lines\"\n\n{}",
        webhooks.replace("{receiver}", &receiver.url(""))
    )
}

const WEBHOOKS: &str = r#"
[[webhooks]]
name = "crm"
model = "order"
include = ["customer", "lines"]
url = "{receiver}/crm"
body = """{"order": {{ item.id }}, "email": {% if item.customer %}{{ item.customer.email | json }}{% else %}null{% endif %}, "skus": {{ item.lines | map: 'sku' | json }}}"""

[[webhooks]]
name = "envelope"
model = "order"
include = ["customer", "lines"]
url = "{receiver}/envelope"

[[webhooks]]
name = "plain"
model = "order"
url = "{receiver}/plain"
"#;

async fn relation_queries(port: u16) -> u64 {
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .expect("metrics answer")
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix("rowhook_relation_queries_total "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no relation query counter in {text}"))
}

fn only(requests: &[Received], target: &str) -> Vec<Value> {
    requests
        .iter()
        .filter(|request| request.target == target)
        .map(Received::json)
        .collect()
}

async fn orders_arrive_with_their_customer_and_lines(mode: Mode) {
    let database = TestDatabase::create_in(mode).await;
    database.execute(SCHEMA).await;
    let receiver = Receiver::start().await;
    let port = free_port();
    let config = database.write_config(&config(&receiver, port, WEBHOOKS));
    let setup = rowhook(&config, &["setup"]);
    assert!(setup.status.success(), "{}", text(&setup.stderr));
    let check = rowhook(&config, &["check"]);
    let report = text(&check.stdout);
    assert!(check.status.success(), "{report}{}", text(&check.stderr));
    assert!(
        report.contains("relation \"lines\" to \"order_line\" is ready"),
        "{report}"
    );
    let service = Service::start(&database, &config).await;

    database
        .execute(
            "INSERT INTO customers VALUES (1, 'ann@example.com');
             BEGIN;
             INSERT INTO orders VALUES (10, 1, 'new');
             INSERT INTO order_lines VALUES (101, 10, 'C', 3), (102, 10, 'A', 1), (103, 10, 'B', 2);
             COMMIT;",
        )
        .await;
    let requests = receiver.wait_for(3, WAIT).await;
    assert_eq!(
        only(&requests, "/crm"),
        [json!({"order": 10, "email": "ann@example.com", "skus": ["A", "B", "C"]})]
    );
    let envelope = &only(&requests, "/envelope")[0];
    assert_eq!(envelope["type"], "order.created");
    assert_eq!(
        envelope["item"]["customer"],
        json!({"id": 1, "email": "ann@example.com"})
    );
    let positions: Vec<&Value> = envelope["item"]["lines"]
        .as_array()
        .expect("lines are an array")
        .iter()
        .map(|line| &line["position"])
        .collect();
    assert_eq!(positions, [&json!(1), &json!(2), &json!(3)]);
    assert_eq!(envelope["old"], Value::Null, "old never carries relations");
    let plain = &only(&requests, "/plain")[0];
    assert_eq!(
        plain["item"],
        json!({"id": 10, "customer_id": 1, "status": "new"}),
        "a webhook that includes nothing sees the row alone"
    );

    // `events show` shows the request as it was rendered, relations in it.
    let listed = rowhook(&config, &["events", "list", "--webhook", "crm", "--json"]);
    let listed: Value = serde_json::from_slice(&listed.stdout).expect("a JSON list");
    let id = listed[0]["id"].as_str().expect("an event id").to_string();
    let shown = rowhook(&config, &["events", "show", &id]);
    assert!(
        text(&shown.stdout).contains("ann@example.com"),
        "{}",
        text(&shown.stdout)
    );

    // Related rows are read as they are when the change is routed: a deleted customer
    // is nil.
    database
        .execute(
            "DELETE FROM customers WHERE id = 1; UPDATE orders SET status = 'paid' WHERE id = 10",
        )
        .await;
    let requests = receiver.wait_for(6, WAIT).await;
    let crm = only(&requests, "/crm");
    assert_eq!(
        crm[1],
        json!({"order": 10, "email": null, "skus": ["A", "B", "C"]})
    );
    let updated = &only(&requests, "/envelope")[1];
    assert_eq!(updated["type"], "order.updated");
    assert_eq!(updated["item"]["customer"], Value::Null);

    // A thousand orders in one transaction: one query per relation per batch.
    let before = relation_queries(port).await;
    database
        .execute(
            "INSERT INTO customers VALUES (2, 'bo@example.com');
             INSERT INTO orders SELECT n, 2, 'new' FROM generate_series(1000, 1999) n;",
        )
        .await;
    let requests = receiver.wait_for(6 + 3_000, WAIT).await;
    let queries = relation_queries(port).await - before;
    println!("1000 orders in one transaction took {queries} relation queries");
    assert!(
        (2..=20).contains(&queries),
        "{queries} relation queries for 1000 orders and two relations"
    );
    let emails: Vec<Value> = only(&requests, "/crm")[2..]
        .iter()
        .map(|body| body["email"].clone())
        .collect();
    assert!(emails.iter().all(|email| email == "bo@example.com"));

    // A lookup that fails for another reason than an unreachable database fails the
    // events it was for, with the reason; webhooks without relations go on.
    database.execute("DROP TABLE order_lines").await;
    database
        .execute("UPDATE orders SET status = 'shipped' WHERE id = 10")
        .await;
    let requests = receiver.wait_for(6 + 3_000 + 1, WAIT).await;
    assert_eq!(requests.last().unwrap().target, "/plain");
    let mut failed = Value::Null;
    for _ in 0..100 {
        let listed = rowhook(
            &config,
            &[
                "events",
                "list",
                "--webhook",
                "crm",
                "--status",
                "failed",
                "--json",
            ],
        );
        failed = serde_json::from_slice(&listed.stdout).expect("a JSON list");
        if failed.as_array().is_some_and(|events| !events.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let id = failed[0]["id"]
        .as_str()
        .expect("a failed crm event")
        .to_string();
    let shown = text(&rowhook(&config, &["events", "show", &id]).stdout);
    assert!(shown.contains("relation lookup failed"), "{shown}");
    assert!(shown.contains("order_lines"), "{shown}");
    service.stop();
}

in_both_modes!(
    orders_arrive_with_their_customer_and_lines,
    tokio::test(flavor = "multi_thread", worker_threads = 2)
);

#[tokio::test]
async fn a_webhook_that_includes_nothing_makes_no_lookup() {
    let database = TestDatabase::create().await;
    database.execute(SCHEMA).await;
    let receiver = Receiver::start().await;
    let port = free_port();
    let webhooks =
        "[[webhooks]]\nname = \"plain\"\nmodel = \"order\"\nurl = \"{receiver}/plain\"\n";
    let config = database.write_config(&config(&receiver, port, webhooks));
    let setup = rowhook(&config, &["setup"]);
    assert!(setup.status.success(), "{}", text(&setup.stderr));
    let service = Service::start(&database, &config).await;
    database
        .execute(
            "INSERT INTO customers VALUES (1, 'ann@example.com');
             INSERT INTO orders SELECT n, 1, 'new' FROM generate_series(1, 50) n;",
        )
        .await;
    let requests = receiver.wait_for(50, WAIT).await;
    assert!(requests.iter().all(|request| request.target == "/plain"));
    assert_eq!(relation_queries(port).await, 0);
    // Models used only in relations are not captured: the customers insert sent nothing.
    let published = database
        .client
        .query(
            "SELECT tablename::text FROM pg_publication_tables WHERE pubname = $1",
            &[&database.name],
        )
        .await
        .unwrap();
    let tables: Vec<String> = published.iter().map(|row| row.get(0)).collect();
    assert_eq!(tables, ["orders"]);
    service.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_test_looks_relations_up() {
    let database = TestDatabase::create().await;
    database.execute(SCHEMA).await;
    database
        .execute(
            "INSERT INTO customers VALUES (5, 'cy@example.com');
             INSERT INTO orders VALUES (77, 5, 'new');
             INSERT INTO order_lines VALUES (1, 77, 'Z', 1);",
        )
        .await;
    let receiver = Receiver::start().await;
    let config = database.write_config(&config(&receiver, free_port(), WEBHOOKS));
    let output = rowhook(&config, &["send-test", "crm"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let requests = receiver.wait_for(1, WAIT).await;
    assert_eq!(
        requests[0].json(),
        json!({"order": 77, "email": "cy@example.com", "skus": ["Z"]})
    );
    // From --item too: its keys find the related rows.
    let output = rowhook(
        &config,
        &[
            "send-test",
            "crm",
            "--item",
            r#"{"id": 77, "customer_id": 5}"#,
        ],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let requests = receiver.wait_for(2, WAIT).await;
    assert_eq!(requests[1].json()["email"], "cy@example.com");
}
