//! Alerts (CONTRACT §9) end to end: a webhook whose endpoint fails raises
//! `event_failed` (coalesced, with the count), `webhook_failing`, then
//! `webhook_recovered` when it answers again; `pause_after` raises `webhook_paused`;
//! capture down for longer than the threshold raises `capture_down`. Alerts are signed,
//! rendered from the target's template, retried and kept in the history.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::receiver::{Received, Receiver, Reply};
use support::{PrivateCluster, Service, TestDatabase, rowhook, text};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const WAIT: Duration = Duration::from_secs(30);

fn alerts_of(receiver: &Receiver, path: &str) -> Vec<Value> {
    receiver
        .requests()
        .iter()
        .filter(|request| request.target == path)
        .map(Received::json)
        .collect()
}

fn kinds(alerts: &[Value]) -> Vec<&str> {
    alerts
        .iter()
        .map(|alert| alert["kind"].as_str().unwrap_or_default())
        .collect()
}

async fn wait_for_kind(receiver: &Receiver, path: &str, kind: &str) -> Vec<Value> {
    support::eventually(&format!("a {kind} alert at {path}"), WAIT, || async {
        kinds(&alerts_of(receiver, path)).contains(&kind)
    })
    .await;
    alerts_of(receiver, path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_webhook_raises_alerts_then_recovers() {
    let database = TestDatabase::create().await;
    database
        .execute("CREATE TABLE orders (id integer PRIMARY KEY, status text)")
        .await;
    let receiver = Receiver::start().await;
    // The ERP refuses everything until told otherwise; the chat target refuses its first
    // alert, which is then retried.
    let erp_up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let chat_seen = std::sync::atomic::AtomicUsize::new(0);
    let up = erp_up.clone();
    receiver.respond_with(move |request: &Received| match request.target.as_str() {
        "/erp" if !up.load(std::sync::atomic::Ordering::SeqCst) => Reply::Status(500),
        "/wms" => Reply::Status(503),
        "/chat" if chat_seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 => {
            Reply::Status(500)
        }
        _ => Reply::Status(200),
    });
    let config = database.write_config(&format!(
        "[delivery]\nretry = [\"0s\"]\n\n[models.order]\ntable = \"orders\"\n\n\
         [[webhooks]]\nname = \"erp\"\nmodel = \"order\"\nurl = \"{erp}\"\nalerts = [\"ops\", \"chat\"]\n\n\
         [[webhooks]]\nname = \"wms\"\nmodel = \"order\"\nurl = \"{wms}\"\n\
         retry = [\"0s\", \"1s\", \"1s\", \"1s\", \"1s\"]\npause_after = \"2s\"\nalerts = [\"ops\"]\n\n\
         [[alerts]]\nname = \"ops\"\nurl = \"{ops}\"\nsecret = \"{SECRET}\"\n\
         on = [\"event_failed\", \"webhook_failing\", \"webhook_recovered\", \"webhook_paused\"]\n\n\
         [[alerts]]\nname = \"chat\"\nurl = \"{chat}\"\nretry = [\"0s\", \"1s\"]\n\
         on = [\"webhook_failing\"]\n\
         body = \"\"\"{{\"text\": \"rowhook: {{{{ alert.webhook }}}} {{{{ alert.kind }}}} ({{{{ alert.count }}}})\"}}\"\"\"\n",
        erp = receiver.url("/erp"),
        wms = receiver.url("/wms"),
        ops = receiver.url("/ops"),
        chat = receiver.url("/chat"),
    ));
    let setup = rowhook(&config, &["setup"]);
    assert!(setup.status.success(), "{}", text(&setup.stderr));
    let service = Service::start(&database, &config).await;

    database
        .execute("INSERT INTO orders SELECT n, 'new' FROM generate_series(1, 50) n")
        .await;
    let ops = wait_for_kind(&receiver, "/ops", "event_failed").await;
    let failing: Vec<&Value> = ops
        .iter()
        .filter(|alert| alert["kind"] == "webhook_failing")
        .collect();
    assert!(
        failing.iter().any(|alert| alert["webhook"] == "erp"),
        "{ops:?}"
    );
    // Coalesced: 50 failures make one or a few alerts, whose counts add up to 50.
    // A slow machine may split the failures over two gatherings: the second comes a
    // minute after the first.
    support::eventually(
        "every erp failure counted",
        Duration::from_secs(90),
        || async {
            let counted: u64 = alerts_of(&receiver, "/ops")
                .iter()
                .filter(|alert| alert["kind"] == "event_failed" && alert["webhook"] == "erp")
                .map(|alert| alert["count"].as_u64().unwrap_or(0))
                .sum();
            counted == 50
        },
    )
    .await;
    let erp_failed: Vec<Value> = alerts_of(&receiver, "/ops")
        .into_iter()
        .filter(|alert| alert["kind"] == "event_failed" && alert["webhook"] == "erp")
        .collect();
    assert!(erp_failed.len() <= 3, "{erp_failed:?}");
    let first = &erp_failed[0];
    assert!(first["first_event_id"].as_str().unwrap().ends_with("_erp"));
    assert!(
        first["message"].as_str().unwrap().contains("HTTP 500"),
        "{first}"
    );

    // Signed like any webhook's request.
    let signed = receiver
        .requests()
        .into_iter()
        .find(|request| request.target == "/ops")
        .unwrap();
    assert!(rowhook::signature::verify(
        SECRET,
        signed.header("webhook-id").unwrap(),
        signed.header("webhook-timestamp").unwrap(),
        signed.body.as_bytes(),
        signed.header("webhook-signature").unwrap(),
    ));
    assert!(signed.header("webhook-id").unwrap().starts_with("alr_"));

    // The chat target's template, its first attempt refused and retried.
    support::eventually("the chat alert retried", WAIT, || async {
        receiver.count_where(|request| request.target == "/chat") >= 2
    })
    .await;
    let chat = alerts_of(&receiver, "/chat");
    assert!(
        chat.iter()
            .all(|alert| alert["text"].as_str().unwrap().contains("webhook_failing")),
        "{chat:?}"
    );
    assert_eq!(chat[0], chat[1], "the same alert, attempted again");

    // pause_after pauses the WMS webhook, and says so.
    let ops = wait_for_kind(&receiver, "/ops", "webhook_paused").await;
    let paused = ops
        .iter()
        .find(|alert| alert["kind"] == "webhook_paused")
        .unwrap();
    assert_eq!(paused["webhook"], "wms");

    // The ERP answers again: the first success says so.
    erp_up.store(true, std::sync::atomic::Ordering::SeqCst);
    database
        .execute("INSERT INTO orders VALUES (51, 'new')")
        .await;
    let ops = wait_for_kind(&receiver, "/ops", "webhook_recovered").await;
    let recovered = ops
        .iter()
        .find(|alert| alert["kind"] == "webhook_recovered")
        .unwrap();
    assert_eq!(recovered["webhook"], "erp");

    // Alerts are in the history like events, under their target.
    service.stop();
    let listed = rowhook(
        &config,
        &["events", "list", "--webhook", "alert:chat", "--json"],
    );
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let events: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let chat_events = events.as_array().unwrap();
    assert_eq!(chat_events.len(), 1, "{events}");
    assert_eq!(chat_events[0]["type"], "alert.webhook_failing");
    assert_eq!(chat_events[0]["status"], "delivered");
    assert_eq!(chat_events[0]["attempts"], 2);
}

// Several threads: pg_ctl blocks one while the service keeps running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_down_is_said_after_the_threshold() {
    let cluster = PrivateCluster::start("wal_level = logical");
    let database = TestDatabase::create_on(&cluster.url()).await;
    database
        .execute("CREATE TABLE orders (id integer PRIMARY KEY)")
        .await;
    let receiver = Receiver::start().await;
    let config = database.write_config(&format!(
        "[models.order]\ntable = \"orders\"\n\n\
         [[alerts]]\nname = \"ops\"\nurl = \"{}\"\ncapture_down_after = \"2s\"\n",
        receiver.url("/ops"),
    ));
    let setup = rowhook(&config, &["setup"]);
    assert!(setup.status.success(), "{}", text(&setup.stderr));
    let service = Service::start(&database, &config).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(receiver.count(), 0, "streaming: nothing to say");
    drop(database);
    tokio::task::block_in_place(|| cluster.stop());
    let shared_store = support::store_backend() == "postgres";
    if shared_store {
        // The store lives in the stopped cluster too: the alert waits for it, and is
        // said once the database is back.
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert_eq!(receiver.count(), 0, "nowhere to store the alert yet");
        tokio::task::block_in_place(|| cluster.start_again());
    }
    let alerts = wait_for_kind(&receiver, "/ops", "capture_down").await;
    assert_eq!(alerts.len(), 1, "said once per outage: {alerts:?}");
    assert_eq!(alerts[0]["webhook"], Value::Null);
    assert!(
        alerts[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("capture has not been streaming for 2s"),
        "{}",
        alerts[0]
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(receiver.count(), 1, "{:?}", alerts_of(&receiver, "/ops"));
    if !shared_store {
        tokio::task::block_in_place(|| cluster.start_again());
    }
    service.stop();
}
