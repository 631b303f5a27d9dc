//! Inbound webhooks (CONTRACT §11) against a real PostgreSQL: who may send, what is
//! refused and how, values landing in typed columns, exactly one row per event id, the
//! request log, a 503 while the database is down, an inbox table that is a model
//! delivered on, and rowhook's own outbound webhooks received across a `kill -9`.

mod support;

use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};
use support::receiver::Receiver;
use support::{PrivateCluster, Service, TestDatabase, free_port, rowhook, text};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const TOKEN: &str = "inbound-token";
const WAIT: Duration = Duration::from_secs(30);

const INBOX: &str = "CREATE TABLE inbox (id bigserial PRIMARY KEY, event_id text UNIQUE,
     title text, qty integer, payload jsonb, source text, received_at timestamptz,
     kind text)";

fn endpoints(inbound_port: u16, admin_port: u16, receiver: &Receiver) -> String {
    format!(
        "[admin]\nlisten = \"127.0.0.1:{admin_port}\"\ntoken = \"{TOKEN}\"\n\n\
         [models.inbox]\ntable = \"inbox\"\n\n\
         [[webhooks]]\nname = \"forward\"\nmodel = \"inbox\"\non = [\"create\"]\nretry = [\"0s\"]\n\
         url = \"{}\"\n\n\
         [inbound]\nlisten = \"127.0.0.1:{inbound_port}\"\n\n\
         [[inbound.endpoints]]\nname = \"tasks\"\ntable = \"inbox\"\n\
         basic = {{ user = \"bpium\", password = \"s3cret\" }}\n\
         columns = {{ event_id = \"headers.webhook-id\", title = \"body.task.title\", \
         qty = \"body.task.lines[0].qty\", payload = \"body\", source = \"query.source\", \
         received_at = \"now\", kind = \"'bpium'\" }}\n\
         dedupe = \"event_id\"\nrespond = {{ status = 202, body = \"queued\" }}\nmax_body = \"1MB\"\n\n\
         [[inbound.endpoints]]\nname = \"signed\"\ntable = \"inbox\"\nsecret = \"{SECRET}\"\n\
         columns = {{ event_id = \"headers.webhook-id\", payload = \"body\" }}\ndedupe = \"event_id\"\n",
        receiver.url("/forward")
    )
}

/// The inbox table, a receiver for the webhook that sends its rows on, and the
/// configuration with both endpoints, set up.
async fn set_up_inbox(database: &TestDatabase) -> (Receiver, u16, u16, std::path::PathBuf) {
    database.execute(INBOX).await;
    let receiver = Receiver::start().await;
    let (inbound_port, admin_port) = (free_port(), free_port());
    let config = database.write_config(&endpoints(inbound_port, admin_port, &receiver));
    let setup = rowhook(&config, &["setup"]);
    assert!(setup.status.success(), "{}", text(&setup.stderr));
    (receiver, inbound_port, admin_port, config)
}

fn basic(user_password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(user_password)
    )
}

fn signed_headers(id: &str, timestamp: i64, body: &str) -> Vec<(&'static str, String)> {
    let signature = rowhook::signature::sign(SECRET, id, timestamp, body.as_bytes()).unwrap();
    vec![
        ("webhook-id", id.to_string()),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", signature),
        ("content-type", "application/json".to_string()),
    ]
}

async fn post(
    url: &str,
    headers: &[(&'static str, String)],
    body: impl Into<reqwest::Body>,
) -> (u16, String) {
    let mut request = reqwest::Client::new().post(url).body(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_requests_are_checked_stored_once_and_logged() {
    let database = TestDatabase::create().await;
    let (receiver, inbound_port, admin_port, config) = set_up_inbox(&database).await;
    let check = rowhook(&config, &["check"]);
    assert!(check.status.success(), "{}", text(&check.stdout));
    assert!(text(&check.stdout).contains("inbound endpoint \"tasks\" writes to public.inbox"));
    let service = Service::start(&database, &config).await;
    let base = format!("http://127.0.0.1:{inbound_port}");
    let tasks = format!("{base}/in/tasks?source=crm");
    let client = reqwest::Client::new();

    let get = client.get(&tasks).send().await.unwrap();
    assert_eq!(get.status(), 405);
    assert_eq!(get.headers()["allow"], "POST");
    let put = client.put(&tasks).send().await.unwrap();
    assert_eq!(put.status(), 405);
    let json_type = ("content-type", "application/json".to_string());
    let (status, _) = post(&tasks, std::slice::from_ref(&json_type), "{}").await;
    assert_eq!(status, 401);
    let anonymous = client.post(&tasks).body("{}").send().await.unwrap();
    assert!(
        anonymous.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    let wrong = ("authorization", basic("bpium:guess"));
    assert_eq!(post(&tasks, &[wrong, json_type.clone()], "{}").await.0, 401);
    let right = ("authorization", basic("bpium:s3cret"));
    let (status, _) = post(
        &format!("{base}/in/nope"),
        std::slice::from_ref(&right),
        "{}",
    )
    .await;
    assert_eq!(status, 404);
    // Refused from its Content-Length, before the body is read: sent by hand, because
    // a client still writing the 2 MB may see the connection close under it instead.
    assert_eq!(
        too_large(inbound_port, 2 * 1024 * 1024).await,
        "HTTP/1.1 413"
    );
    let (status, answer) = post(&tasks, &[right.clone(), json_type.clone()], "{not json").await;
    assert_eq!(status, 400, "{answer}");

    // The same webhook three times: one row, answered alike each time.
    let task = json!({"task": {"title": "Call back Ada", "lines": [{"qty": 3}]}}).to_string();
    let headers = [
        right.clone(),
        json_type.clone(),
        ("webhook-id", "msg_1".to_string()),
    ];
    for _ in 0..3 {
        let (status, answer) = post(&tasks, &headers, task.clone()).await;
        assert_eq!((status, answer.as_str()), (202, "queued"));
    }
    let rows = database
        .client
        .query(
            "SELECT title, qty, payload, source, received_at IS NOT NULL, kind FROM inbox \
             WHERE event_id = 'msg_1'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.get::<_, String>(0), "Call back Ada");
    assert_eq!(row.get::<_, i32>(1), 3);
    assert_eq!(
        row.get::<_, Value>(2),
        json!({"task": {"title": "Call back Ada", "lines": [{"qty": 3}]}})
    );
    assert_eq!(row.get::<_, String>(3), "crm");
    assert!(row.get::<_, bool>(4));
    assert_eq!(row.get::<_, String>(5), "bpium");

    // Standard Webhooks: good, stale, forged.
    let signed = format!("{base}/in/signed");
    let body = r#"{"order":7}"#;
    let (status, _) = post(
        &signed,
        &signed_headers("msg_s1", now_seconds(), body),
        body,
    )
    .await;
    assert_eq!(status, 200);
    let stale = signed_headers("msg_s2", now_seconds() - 600, body);
    assert_eq!(post(&signed, &stale, body).await.0, 401);
    let forged = signed_headers("msg_s3", now_seconds(), body);
    assert_eq!(post(&signed, &forged, r#"{"order":8}"#).await.0, 401);

    // The inbox is a model: the received row is delivered on.
    let forwarded = receiver.wait_for(2, WAIT).await;
    let titles: Vec<Value> = forwarded
        .iter()
        .map(|request| request.json()["item"]["title"].clone())
        .collect();
    assert!(titles.contains(&json!("Call back Ada")), "{titles:?}");

    // The request log, through the running service's API.
    let listed = rowhook(
        &config,
        &[
            "inbound",
            "list",
            "--endpoint",
            "tasks",
            "--limit",
            "0",
            "--json",
        ],
    );
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let log: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let outcomes: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|entry| entry["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        [
            "method",
            "method",
            "unauthorized",
            "unauthorized",
            "unauthorized",
            "too_large",
            "bad_json",
            "accepted",
            "duplicate",
            "duplicate"
        ]
    );
    let shown = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(
        !shown.contains("s3cret") && !shown.contains("guess"),
        "{shown}"
    );
    let accepted = &log.as_array().unwrap()[2];
    assert_eq!(accepted["event_id"], "msg_1");
    assert_eq!(accepted["status"], 202);
    let (status, page) =
        support::admin_get(&format!("http://127.0.0.1:{admin_port}/inbound"), TOKEN).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("duplicate") && page.contains("msg_1"),
        "{page}"
    );
    let (_, metrics) =
        support::admin_get(&format!("http://127.0.0.1:{admin_port}/metrics"), TOKEN).await;
    assert!(
        metrics
            .contains("rowhook_inbound_requests_total{endpoint=\"tasks\",outcome=\"duplicate\"} 2"),
        "{metrics}"
    );
    hostile_connections(inbound_port, &tasks).await;
    service.stop();
    // Written to the store before the service exits: read directly now.
    let direct = rowhook(
        &config,
        &["inbound", "list", "--endpoint", "tasks", "--json"],
    );
    assert!(direct.status.success(), "{}", text(&direct.stderr));
    let direct: Value = serde_json::from_slice(&direct.stdout).unwrap();
    assert_eq!(direct.as_array().unwrap().len(), 11, "{direct}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_database_answers_503_and_the_retry_lands_once() {
    let cluster = PrivateCluster::start("wal_level = logical");
    let database = TestDatabase::create_on(&cluster.url()).await;
    let (_receiver, inbound_port, _, config) = set_up_inbox(&database).await;
    let service = Service::start(&database, &config).await;
    let signed = format!("http://127.0.0.1:{inbound_port}/in/signed");
    let body = r#"{"order":9}"#;
    let url = database.url.clone();
    drop(database);
    tokio::task::block_in_place(|| cluster.stop());
    let (status, _) = post(&signed, &signed_headers("msg_9", now_seconds(), body), body).await;
    assert_eq!(status, 503);
    tokio::task::block_in_place(|| cluster.start_again());
    support::eventually("the database to answer again", WAIT, || async {
        post(&signed, &signed_headers("msg_9", now_seconds(), body), body)
            .await
            .0
            == 200
    })
    .await;
    // Sent again after its 200: still one row.
    assert_eq!(
        post(&signed, &signed_headers("msg_9", now_seconds(), body), body)
            .await
            .0,
        200
    );
    let client = support::connect(&url).await;
    let count: i64 = client
        .query_one("SELECT count(*) FROM inbox WHERE event_id = 'msg_9'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 1);
    service.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn its_own_webhooks_are_received_once_across_a_kill_9() {
    let database = TestDatabase::create().await;
    database
        .execute(
            "CREATE TABLE orders (id integer PRIMARY KEY, status text);
             CREATE TABLE received (event_id text PRIMARY KEY, order_id integer, body jsonb)",
        )
        .await;
    let inbound_port = free_port();
    let config = database.write_config(&format!(
        "[delivery]\nretry = [\"0s\", \"1s\", \"1s\", \"1s\"]\n\n\
         [models.order]\ntable = \"orders\"\n\n\
         [[webhooks]]\nname = \"loop\"\nmodel = \"order\"\nsecret = \"{SECRET}\"\n\
         url = \"http://127.0.0.1:{inbound_port}/in/orders\"\n\n\
         [inbound]\nlisten = \"127.0.0.1:{inbound_port}\"\n\n\
         [[inbound.endpoints]]\nname = \"orders\"\ntable = \"received\"\nsecret = \"{SECRET}\"\n\
         columns = {{ event_id = \"headers.webhook-id\", order_id = \"body.item.id\", body = \"body\" }}\n\
         dedupe = \"event_id\"\n"
    ));
    let setup = rowhook(&config, &["setup"]);
    assert!(setup.status.success(), "{}", text(&setup.stderr));
    let service = Service::start(&database, &config).await;
    database
        .execute("INSERT INTO orders SELECT n, 'new' FROM generate_series(1, 2000) n")
        .await;
    let received = || async {
        let row = database
            .client
            .query_one("SELECT count(*) FROM received", &[])
            .await
            .unwrap();
        row.get::<_, i64>(0)
    };
    support::eventually("some orders received", WAIT, || async {
        received().await >= 200
    })
    .await;
    service.kill();
    let service = Service::start(&database, &config).await;
    support::eventually("every order received", Duration::from_secs(60), || async {
        received().await >= 2000
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let row = database
        .client
        .query_one(
            "SELECT count(*), count(DISTINCT order_id) FROM received",
            &[],
        )
        .await
        .unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (2000, 2000));
    service.stop();
    let log = rowhook(&config, &["inbound", "list", "--limit", "0", "--json"]);
    assert!(log.status.success(), "{}", text(&log.stderr));
    let entries: Value = serde_json::from_slice(&log.stdout).unwrap();
    let count = |outcome: &str| {
        entries
            .as_array()
            .unwrap()
            .iter()
            .filter(|entry| entry["outcome"] == outcome)
            .count()
    };
    println!(
        "across the kill -9: {} accepted, {} duplicates answered 200 and added no row",
        count("accepted"),
        count("duplicate")
    );
    assert!(count("accepted") <= 2000);
}

/// Garbage and silence on the inbound socket: answered or cut off, and the endpoint
/// goes on serving.
async fn hostile_connections(port: u16, url: &str) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut garbage = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    garbage
        .write_all(b"\x00\xff\xfeNOT HTTP AT ALL\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(WAIT, garbage.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 400"),
        "{answer}"
    );
    // A connection that never sends its headers is closed after the header timeout.
    let mut silent = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut byte = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(20), silent.read(&mut byte)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "a silent connection still open after {:?}",
        started.elapsed()
    );
    println!(
        "a silent connection was closed after {:?}",
        started.elapsed()
    );
    let (status, _) = post(url, &[], "{}").await;
    assert_eq!(status, 401, "still serving");
}

/// Sends the headers of a POST of `length` bytes and no body; the answer's status line
/// start.
async fn too_large(port: u16, length: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let head = format!(
        "POST /in/tasks HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: {}\r\n\
         content-type: application/json\r\ncontent-length: {length}\r\n\r\n",
        basic("bpium:s3cret")
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = [0u8; 12];
    tokio::time::timeout(WAIT, stream.read_exact(&mut answer))
        .await
        .expect("an answer in time")
        .expect("an answer");
    String::from_utf8_lossy(&answer).into_owned()
}
