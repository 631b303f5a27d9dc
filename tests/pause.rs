//! Pausing a webhook (CONTRACT §9): its events are created and wait, other webhooks go
//! on, the pause survives restarts and shows in the CLI, the API, the pages and
//! `/metrics`; resuming delivers what waited. Both capture modes, a real receiver.

#[macro_use]
mod support;

use std::time::Duration;

use serde_json::Value;
use support::receiver::Receiver;
use support::{Mode, Service, TestDatabase, free_port, rowhook, text};

const TOKEN: &str = "pause-token";
const WAIT: Duration = Duration::from_secs(30);

fn webhooks_json(config: &std::path::Path) -> Value {
    let listed = rowhook(config, &["webhooks", "list", "--json"]);
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    serde_json::from_slice(&listed.stdout).expect("a JSON list")
}

fn sink(webhooks: &Value) -> &Value {
    webhooks
        .as_array()
        .unwrap()
        .iter()
        .find(|webhook| webhook["name"] == "sink")
        .expect("the sink webhook")
}

async fn a_paused_webhook_waits_across_restarts(mode: Mode) {
    let database = TestDatabase::create_in(mode).await;
    database
        .execute("CREATE TABLE orders (id integer PRIMARY KEY, status text)")
        .await;
    let receiver = Receiver::start().await;
    let port = free_port();
    let config = database.write_config(&format!(
        "[admin]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"{TOKEN}\"\n\n\
         [delivery]\nretry = [\"0s\"]\n\n[models.order]\ntable = \"orders\"\n\n\
         [[webhooks]]\nname = \"sink\"\nmodel = \"order\"\nurl = \"{}\"\n\n\
         [[webhooks]]\nname = \"other\"\nmodel = \"order\"\nurl = \"{}\"\n",
        receiver.url("/sink"),
        receiver.url("/other"),
    ));
    let setup = rowhook(&config, &["setup"]);
    assert!(setup.status.success(), "{}", text(&setup.stderr));

    // Paused with no service running: straight in the store.
    let paused = rowhook(&config, &["webhooks", "pause", "sink"]);
    assert!(paused.status.success(), "{}", text(&paused.stderr));
    let unknown = rowhook(&config, &["webhooks", "pause", "nope"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(text(&unknown.stderr).contains("no webhook named \"nope\""));

    let service = Service::start(&database, &config).await;
    database
        .execute("INSERT INTO orders SELECT n, 'new' FROM generate_series(1, 20) n")
        .await;
    receiver.wait_for(20, WAIT).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let requests = receiver.requests();
    assert!(requests.iter().all(|request| request.target == "/other"));
    let listed = webhooks_json(&config);
    assert_eq!(sink(&listed)["paused"], true);
    assert_eq!(sink(&listed)["counts"]["pending"], 20);

    // The state shows in /metrics and on the pages; a cross-site form is refused.
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("rowhook_webhook_paused{webhook=\"sink\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("rowhook_webhook_paused{webhook=\"other\"} 0"),
        "{metrics}"
    );
    let page = client
        .get(format!("{base}/webhooks/sink"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("action=\"/webhooks/sink/resume\""), "{page}");
    let home = client
        .get(format!("{base}/"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert!(home.text().await.unwrap().contains("paused"));
    let forged = client
        .post(format!("{base}/webhooks/sink/resume"))
        .bearer_auth(TOKEN)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);

    // A restart keeps the pause.
    service.stop();
    let service = Service::start(&database, &config).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(receiver.count_where(|request| request.target == "/sink"), 0);

    // Resumed through the running service, everything that waited goes.
    let resumed = rowhook(&config, &["webhooks", "resume", "sink"]);
    assert!(resumed.status.success(), "{}", text(&resumed.stderr));
    receiver.wait_for(40, WAIT).await;
    assert_eq!(
        receiver.count_where(|request| request.target == "/sink"),
        20
    );
    assert_eq!(sink(&webhooks_json(&config))["paused"], false);

    // The API pauses too.
    let answer = client
        .post(format!("{base}/api/webhooks/sink/pause"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let body: Value = serde_json::from_str(&answer.text().await.unwrap()).unwrap();
    assert_eq!(body["paused"], true);
    let missing = client
        .post(format!("{base}/api/webhooks/nope/pause"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    service.stop();
}

in_both_modes!(
    a_paused_webhook_waits_across_restarts,
    tokio::test(flavor = "multi_thread", worker_threads = 2)
);

/// `pause_after`: a webhook whose endpoint refuses every attempt pauses itself once it
/// has failed, without a single success, for that long; its events wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_failing_for_pause_after_pauses_itself() {
    let database = TestDatabase::create().await;
    database
        .execute("CREATE TABLE orders (id integer PRIMARY KEY, status text)")
        .await;
    // Nothing listens there: every attempt is refused at once.
    let down = free_port();
    let config = database.write_config(&format!(
        "[delivery]\nretry = [\"0s\", \"1s\", \"1s\", \"1s\", \"1s\", \"1s\", \"1s\"]\n\n\
         [models.order]\ntable = \"orders\"\n\n\
         [[webhooks]]\nname = \"sink\"\nmodel = \"order\"\n\
         url = \"http://127.0.0.1:{down}/hook\"\npause_after = \"2s\"\n"
    ));
    let setup = rowhook(&config, &["setup"]);
    assert!(setup.status.success(), "{}", text(&setup.stderr));
    let service = Service::start(&database, &config).await;
    database
        .execute("INSERT INTO orders SELECT n, 'new' FROM generate_series(1, 3) n")
        .await;
    let mut paused = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if service.log_text().contains("webhook paused") {
            paused = true;
            break;
        }
    }
    assert!(paused, "{}", service.log_text());
    service.stop();
    let listed = webhooks_json(&config);
    assert_eq!(sink(&listed)["paused"], true);
    assert_eq!(
        sink(&listed)["counts"]["pending"],
        3,
        "its events wait: {listed}"
    );
}
