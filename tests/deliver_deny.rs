//! `delivery.deny`, the SSRF guard (CONTRACT §12), against a real PostgreSQL and real
//! receivers: a denied target is a failed attempt of kind `denied`, on the normal retry
//! schedule, that the receiver never sees — whether the URL names the address, an IPv6
//! form of it, or a host name that resolves to it. Only loopback is ever a target.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use support::receiver::Receiver;
use support::{Service, TestDatabase, admin_get, eventually, free_port, rowhook, text};

const WAIT: Duration = Duration::from_secs(30);
const TOKEN: &str = "deny-test-token";

async fn prepared(rest: &str) -> (TestDatabase, std::path::PathBuf) {
    let database = TestDatabase::create().await;
    database
        .execute("CREATE TABLE orders (id integer PRIMARY KEY)")
        .await;
    let config = database.write_config(rest);
    let setup = rowhook(&config, &["setup"]);
    assert!(setup.status.success(), "{}", text(&setup.stderr));
    (database, config)
}

fn webhook(name: &str, url: &str) -> String {
    format!("[[webhooks]]\nname = \"{name}\"\nmodel = \"order\"\nurl = \"{url}\"\n\n")
}

async fn api(port: u16, path: &str) -> Value {
    let (status, body) = admin_get(&format!("http://127.0.0.1:{port}{path}"), TOKEN).await;
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|error| panic!("{path}: {error}: {body}"))
}

#[tokio::test]
async fn denied_targets_fail_as_denied_and_are_never_contacted() {
    let receiver = Receiver::start().await;
    let port = receiver.address.port();
    // The [::1] target gets a receiver of its own when this host has IPv6 loopback;
    // without one the refusal is still checked, though nothing could have answered.
    let ipv6 = Receiver::start_at(SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 0)))
        .await
        .ok();
    if ipv6.is_none() {
        eprintln!("no IPv6 loopback here: [::1] is checked without a receiver");
    }
    let ipv6_port = ipv6
        .as_ref()
        .map_or_else(free_port, |ipv6| ipv6.address.port());
    let targets = [
        (
            "literal",
            format!("http://127.0.0.1:{port}/literal"),
            "address 127.0.0.1",
        ),
        (
            "ipv6",
            format!("http://[::1]:{ipv6_port}/ipv6"),
            "address ::1",
        ),
        (
            "mapped",
            format!("http://[::ffff:127.0.0.1]:{port}/mapped"),
            "address ::ffff:127.0.0.1",
        ),
        (
            "name",
            format!("http://localhost:{port}/name"),
            "localhost resolves to ",
        ),
    ];
    let admin = free_port();
    let mut rest = format!(
        "[admin]\nlisten = \"127.0.0.1:{admin}\"\ntoken = \"{TOKEN}\"\n\n\
         [delivery]\ndeny = [\"loopback\"]\nretry = [\"0s\", \"300ms\"]\n\n\
         [models.order]\ntable = \"orders\"\n\n"
    );
    for (name, url, _) in &targets {
        rest.push_str(&webhook(name, url));
    }
    let (database, config) = prepared(&rest).await;
    let service = Service::start(&database, &config).await;
    database.execute("INSERT INTO orders VALUES (1)").await;

    eventually("every event failed", WAIT, || async {
        let failed = api(admin, "/api/events?status=failed").await;
        failed["events"].as_array().map_or(0, Vec::len) == targets.len()
    })
    .await;
    let listed = api(admin, "/api/events?status=failed").await;
    for event in listed["events"].as_array().unwrap() {
        let name = event["webhook"].as_str().unwrap();
        let (_, _, expected) = targets.iter().find(|(target, ..)| *target == name).unwrap();
        let detail = api(
            admin,
            &format!("/api/events/{}", event["id"].as_str().unwrap()),
        )
        .await;
        let attempts = detail["attempts"].as_array().unwrap();
        // The normal schedule: two attempts, as `retry` has two delays.
        assert_eq!(attempts.len(), 2, "{name}: {detail}");
        for attempt in attempts {
            assert_eq!(attempt["outcome"], "denied", "{name}: {attempt}");
            assert_eq!(attempt["status_code"], Value::Null, "{name}");
            let error = attempt["error"].as_str().unwrap();
            assert!(error.starts_with(expected), "{name}: {error}");
            assert!(
                error.contains("delivery.deny refuses (range loopback)"),
                "{name}: {error}"
            );
        }
    }
    let (_, metrics) = admin_get(&format!("http://127.0.0.1:{admin}/metrics"), TOKEN).await;
    assert!(
        metrics.contains("rowhook_attempts_total{outcome=\"denied\"} 8"),
        "{metrics}"
    );
    let (_, page) = admin_get(&format!("http://127.0.0.1:{admin}/webhooks/name"), TOKEN).await;
    assert!(page.contains("localhost resolves to"), "{page}");
    service.stop();

    assert_eq!(receiver.count(), 0, "{:?}", receiver.requests());
    if let Some(ipv6) = ipv6 {
        assert_eq!(ipv6.count(), 0, "{:?}", ipv6.requests());
    }
}

#[tokio::test]
async fn targets_outside_the_denied_ranges_are_delivered() {
    let receiver = Receiver::start().await;
    let port = receiver.address.port();
    let rest = format!(
        "[delivery]\ndeny = [\"private\", \"link-local\", \"10.1.0.0/16\"]\nretry = [\"0s\"]\n\n\
         [models.order]\ntable = \"orders\"\n\n{}{}",
        webhook("literal", &format!("http://127.0.0.1:{port}/literal")),
        webhook("name", &format!("http://localhost:{port}/name")),
    );
    let (database, config) = prepared(&rest).await;
    let service = Service::start(&database, &config).await;
    database.execute("INSERT INTO orders VALUES (1)").await;
    let requests = receiver.wait_for(2, WAIT).await;
    service.stop();
    let mut targets: Vec<&str> = requests
        .iter()
        .map(|request| request.target.as_str())
        .collect();
    targets.sort();
    assert_eq!(targets, ["/literal", "/name"]);
}

#[tokio::test]
async fn send_test_is_refused_by_the_same_guard() {
    let receiver = Receiver::start().await;
    let port = receiver.address.port();
    let rest = format!(
        "[delivery]\ndeny = [\"loopback\"]\n\n[models.order]\ntable = \"orders\"\n\n{}",
        webhook("name", &format!("http://localhost:{port}/name")),
    );
    let (_database, config) = prepared(&rest).await;
    let output = rowhook(&config, &["send-test", "name", "--item", r#"{"id": 1}"#]);
    let report = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{report}{}",
        text(&output.stderr)
    );
    assert!(report.contains("  denied after "), "{report}");
    assert!(
        report.contains("  error: localhost resolves to "),
        "{report}"
    );
    assert!(
        text(&output.stderr).contains("which delivery.deny refuses (range loopback)"),
        "{}",
        text(&output.stderr)
    );
    assert_eq!(receiver.count(), 0);
}
