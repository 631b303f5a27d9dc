//! No secret shows anywhere rowhook shows things (CONTRACT §6, §12): every `${VAR}`
//! value — in the URL's query, in headers, in the body — the signing secret, the admin
//! token and the database password are sent where they belong and masked in the
//! history, the pages, the API, the logs and `send-test`'s output. The receiver echoes
//! what it got in its answer, so the recorded answers carry the secrets too.

mod support;

use std::time::Duration;

use support::receiver::{Receiver, Reply};
use support::{Service, TestDatabase, admin_get, free_port, rowhook, text};

const API_KEY: &str = "api-key-7d1f3c0b";
const BEARER: &str = "bearer-4b2a9e61";
const ADMIN_TOKEN: &str = "admin-token-91c05d";
const DATABASE_PASSWORD: &str = "db-password-55aa17";
const SIGNING_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_is_shown_anywhere() {
    // SAFETY: the only test of this binary, and no thread of it reads the environment;
    // the rowhook processes started below inherit these.
    unsafe {
        std::env::set_var("SCAN_API_KEY", API_KEY);
        std::env::set_var("SCAN_BEARER", BEARER);
        std::env::set_var("SCAN_ADMIN_TOKEN", ADMIN_TOKEN);
        std::env::set_var("SCAN_DATABASE_PASSWORD", DATABASE_PASSWORD);
    }
    let receiver = Receiver::start().await;
    // The first attempt's answer echoes what it got; the second redirects to the URL it
    // was sent (a `Location` with the query's secret, quoted by the attempt's error, which
    // the alerts and the webhook page's last error show).
    let answered = std::sync::atomic::AtomicUsize::new(0);
    receiver.respond_with(move |received| {
        match answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
            0 => Reply::Echo(500),
            _ => Reply::Redirect(format!("http://127.0.0.1:1{}", received.target)),
        }
    });
    let database = TestDatabase::create().await;
    database
        .execute("CREATE TABLE orders (id integer PRIMARY KEY, note text)")
        .await;
    let admin_port = free_port();
    let config = database.write_config(&format!(
        r#"[admin]
listen = "127.0.0.1:{admin_port}"
token = "${{SCAN_ADMIN_TOKEN}}"

[delivery]
retry = ["0s", "500ms"]

[models.order]
table = "orders"

[[webhooks]]
name = "leaky"
model = "order"
url = "{url}?api_key=${{SCAN_API_KEY}}"
secret = "{SIGNING_SECRET}"
body = '''{{"key": "${{SCAN_API_KEY}}", "id": {{{{ item.id }}}}}}'''
headers = {{ "X-Api-Key" = "${{SCAN_API_KEY}}", Authorization = "Bearer ${{SCAN_BEARER}}" }}
"#,
        url = receiver.url("/hook"),
    ));
    // The database password comes from the environment too (the test cluster trusts
    // loopback, so any password does).
    let written = std::fs::read_to_string(&config).expect("read config");
    std::fs::write(
        &config,
        written.replace(
            "postgres://postgres@",
            "postgres://postgres:${SCAN_DATABASE_PASSWORD}@",
        ),
    )
    .expect("write config");
    let setup = rowhook(&config, &["setup"]);
    assert!(setup.status.success(), "{}", text(&setup.stderr));

    let service = Service::start(&database, &config).await;
    database
        .execute("INSERT INTO orders VALUES (1, 'first')")
        .await;
    let requests = receiver.wait_for(2, Duration::from_secs(60)).await;
    // The secrets did go where they belong.
    let first = &requests[0];
    assert!(first.target.contains(API_KEY), "{}", first.target);
    assert_eq!(first.header("x-api-key"), Some(API_KEY));
    assert_eq!(
        first.header("authorization").map(str::to_string),
        Some(format!("Bearer {BEARER}"))
    );
    assert!(first.body.contains(API_KEY));
    support::eventually("the event to fail", Duration::from_secs(30), || async {
        let listed = rowhook(&config, &["events", "list", "--status", "failed", "--json"]);
        text(&listed.stdout).contains("leaky")
    })
    .await;

    let mut shown: Vec<(String, String)> = Vec::new();
    let admin = format!("http://127.0.0.1:{admin_port}");
    let (_, events) = admin_get(&format!("{admin}/api/events?webhook=leaky"), ADMIN_TOKEN).await;
    let listed: serde_json::Value = serde_json::from_str(&events).expect("JSON events");
    let id = listed["events"][0]["id"]
        .as_str()
        .expect("an event")
        .to_string();
    for path in [
        "/api/webhooks".to_string(),
        "/api/events?webhook=leaky".to_string(),
        format!("/api/events/{id}"),
        "/".to_string(),
        "/webhooks/leaky".to_string(),
        format!("/events/{id}"),
        "/metrics".to_string(),
        "/healthz".to_string(),
    ] {
        let (status, body) = admin_get(&format!("{admin}{path}"), ADMIN_TOKEN).await;
        assert_eq!(status, 200, "{path}: {body}");
        shown.push((format!("GET {path}"), body));
    }
    for arguments in [
        vec!["events", "list", "--webhook", "leaky"],
        vec!["events", "list", "--webhook", "leaky", "--json"],
        vec!["events", "show", &id],
        vec!["events", "show", &id, "--json"],
        vec![
            "send-test",
            "leaky",
            "--item",
            r#"{"id": 2, "note": "test"}"#,
        ],
        vec!["check"],
    ] {
        let output = rowhook(&config, &arguments);
        shown.push((
            format!("rowhook {}", arguments.join(" ")),
            format!("{}\n{}", text(&output.stdout), text(&output.stderr)),
        ));
    }
    let detail = &shown[2].1;
    assert!(
        detail.contains("••••") && detail.contains("response_body"),
        "the detail shows the masked request and the echoed answer: {detail}"
    );
    let webhook_page = &shown[4].1;
    assert!(
        webhook_page.contains("last error: redirect to"),
        "the webhook page shows the last error: {webhook_page}"
    );
    let log_path = service.log.clone();
    service.stop();
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(log.contains("rowhook running"), "the log was read");
    shown.push(("the service's log (debug level)".to_string(), log));

    let mut leaks = Vec::new();
    for (place, output) in &shown {
        for (name, secret) in [
            ("the API key", API_KEY),
            ("the bearer token", BEARER),
            ("the admin token", ADMIN_TOKEN),
            ("the database password", DATABASE_PASSWORD),
            ("the signing secret", SIGNING_SECRET),
        ] {
            if output.contains(secret) {
                leaks.push(format!("{name} in {place}"));
            }
        }
    }
    println!(
        "scanned {} outputs ({} bytes) for 5 secrets: {} found",
        shown.len(),
        shown.iter().map(|(_, output)| output.len()).sum::<usize>(),
        leaks.len()
    );
    assert!(leaks.is_empty(), "secrets shown: {leaks:#?}");
}
