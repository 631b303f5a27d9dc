//! The retry schedule, failure kinds, an endpoint that goes down and comes back, and the
//! `when` and `columns` filters — against a real PostgreSQL and a real receiver.

#[macro_use]
mod support;

use std::time::Duration;

use rowhook::event::{ErrorKind, Status};
use rowhook::store::{self, EventQuery, EventStore};
use support::receiver::{Receiver, Reply};
use support::{Mode, Service, TestDatabase, rowhook, text};

const WAIT: Duration = Duration::from_secs(30);

async fn prepared(mode: Mode, tables: &str, rest: &str) -> (TestDatabase, std::path::PathBuf) {
    let database = TestDatabase::create_in(mode).await;
    database.execute(tables).await;
    let config = database.write_config(rest);
    let setup = rowhook(&config, &["setup"]);
    assert!(setup.status.success(), "{}", text(&setup.stderr));
    (database, config)
}

/// The store the configuration names, once rowhook has stopped.
async fn open_store(config: &std::path::Path) -> std::sync::Arc<dyn EventStore> {
    let config = rowhook::config::load(config).expect("load the configuration");
    store::open(&config.store)
        .await
        .expect("open the store after rowhook stopped")
}

async fn attempts_follow_the_schedule_and_are_recorded(mode: Mode) {
    let receiver = Receiver::start().await;
    receiver.respond_with(|_| Reply::Status(503));
    let (database, config) = prepared(
        mode,
        "CREATE TABLE orders (id integer PRIMARY KEY)",
        &format!(
            "[models.order]\ntable = \"orders\"\n\n[[webhooks]]\nname = \"flaky\"\nmodel = \"order\"\n\
             url = \"{}\"\nretry = [\"0s\", \"200ms\", \"400ms\"]\n",
            receiver.url("/flaky")
        ),
    )
    .await;
    let service = Service::start(&database, &config).await;
    database.execute("INSERT INTO orders VALUES (1)").await;
    let requests = receiver.wait_for(3, WAIT).await;
    // No fourth attempt: the schedule has three.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.requests().len(), 3);
    service.stop();

    let second_gap = requests[1].at - requests[0].at;
    let third_gap = requests[2].at - requests[1].at;
    assert!(second_gap >= Duration::from_millis(200), "{second_gap:?}");
    assert!(third_gap >= Duration::from_millis(400), "{third_gap:?}");
    assert!(second_gap < Duration::from_millis(1500), "{second_gap:?}");
    assert!(third_gap < Duration::from_millis(1700), "{third_gap:?}");
    let ids: Vec<_> = requests
        .iter()
        .map(|request| request.header("webhook-id").unwrap().to_string())
        .collect();
    assert!(
        ids.iter().all(|id| id == &ids[0]),
        "every attempt carries the same id: {ids:?}"
    );

    let store = open_store(&config).await;
    let event = store.event(&ids[0]).await.unwrap().expect("event stored");
    assert_eq!(event.record.status, Status::Failed);
    assert_eq!(event.record.attempts, 3);
    let attempts = event.attempts;
    assert_eq!(
        attempts
            .iter()
            .map(|attempt| attempt.number)
            .collect::<Vec<_>>(),
        [1, 2, 3]
    );
    for attempt in &attempts {
        assert_eq!(attempt.status_code, Some(503));
        assert_eq!(attempt.error_kind, Some(ErrorKind::Status));
        assert_eq!(attempt.response_body, "answered 503");
    }
}

async fn redirects_timeouts_refusals_and_server_errors_fail_attempts(mode: Mode) {
    let receiver = Receiver::start().await;
    let elsewhere = receiver.url("/elsewhere");
    receiver.respond_with(move |request| match request.target.as_str() {
        "/redirect" => Reply::Redirect(elsewhere.clone()),
        "/hang" => Reply::Hang,
        "/error" => Reply::Status(500),
        _ => Reply::Status(200),
    });
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let webhook = |name: &str, url: String| {
        format!("[[webhooks]]\nname = \"{name}\"\nmodel = \"order\"\nurl = \"{url}\"\n\n")
    };
    let rest = format!(
        "[delivery]\nretry = [\"0s\"]\ntimeout = \"300ms\"\n\n[models.order]\ntable = \"orders\"\n\n{}{}{}{}{}",
        webhook("redirect", receiver.url("/redirect")),
        webhook("hang", receiver.url("/hang")),
        webhook("refused", format!("http://127.0.0.1:{closed_port}/refused")),
        webhook("error", receiver.url("/error")),
        webhook("fine", receiver.url("/fine")),
    );
    let (database, config) =
        prepared(mode, "CREATE TABLE orders (id integer PRIMARY KEY)", &rest).await;
    let service = Service::start(&database, &config).await;
    database.execute("INSERT INTO orders VALUES (1)").await;
    receiver.wait_for(4, WAIT).await;
    // Let the refused and timed-out attempts be recorded too.
    tokio::time::sleep(Duration::from_secs(2)).await;
    service.stop();
    assert!(
        receiver
            .requests()
            .iter()
            .all(|request| request.target != "/elsewhere"),
        "redirects are never followed"
    );

    let store = open_store(&config).await;
    let expectations = [
        ("redirect", Status::Failed, Some(ErrorKind::Redirect)),
        ("hang", Status::Failed, Some(ErrorKind::Timeout)),
        ("refused", Status::Failed, Some(ErrorKind::Connect)),
        ("error", Status::Failed, Some(ErrorKind::Status)),
        ("fine", Status::Delivered, None),
    ];
    for (webhook, status, kind) in expectations {
        let events = store
            .list(&EventQuery {
                webhook: Some(webhook.into()),
                ..EventQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(events.len(), 1, "{webhook}");
        assert_eq!(events[0].status, status, "{webhook}");
        let attempts = store.event(&events[0].id).await.unwrap().unwrap().attempts;
        assert_eq!(attempts.len(), 1, "{webhook}");
        assert_eq!(attempts[0].error_kind, kind, "{webhook}: {:?}", attempts[0]);
        if kind.is_some() {
            assert!(
                attempts[0]
                    .error
                    .as_deref()
                    .is_some_and(|error| !error.is_empty()),
                "{webhook}"
            );
        }
    }
}

async fn a_receiver_that_is_down_and_comes_back_gets_everything(mode: Mode) {
    let receiver = Receiver::start().await;
    let url = receiver.url("/orders");
    let port = receiver.stop();
    let (database, config) = prepared(
        mode,
        "CREATE TABLE orders (id integer PRIMARY KEY)",
        &format!(
            "[models.order]\ntable = \"orders\"\n\n[[webhooks]]\nname = \"later\"\nmodel = \"order\"\n\
             url = \"{url}\"\nretry = [\"0s\", \"500ms\", \"1s\", \"2s\", \"4s\"]\n"
        ),
    )
    .await;
    let service = Service::start(&database, &config).await;
    database
        .execute("INSERT INTO orders SELECT generate_series(1, 10)")
        .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let back = Receiver::start_on(port).await;
    let requests = back.wait_for(10, WAIT).await;
    service.stop();
    let mut ids: Vec<i64> = requests
        .iter()
        .map(|request| request.json()["item"]["id"].as_i64().unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids, (1..=10).collect::<Vec<_>>());
}

async fn when_and_columns_filter_events(mode: Mode) {
    let receiver = Receiver::start().await;
    let rest = format!(
        "[delivery]\nretry = [\"0s\"]\n\n[models.order]\ntable = \"orders\"\n\n\
         [[webhooks]]\nname = \"paid\"\nmodel = \"order\"\nurl = \"{}\"\nwhen = \"item.status == 'paid'\"\n\n\
         [[webhooks]]\nname = \"status\"\nmodel = \"order\"\non = [\"update\"]\nurl = \"{}\"\ncolumns = [\"status\"]\n\n\
         [[webhooks]]\nname = \"off\"\nmodel = \"order\"\nactive = false\nurl = \"{}\"\n",
        receiver.url("/paid"),
        receiver.url("/status"),
        receiver.url("/off"),
    );
    let database = TestDatabase::create_in(mode).await;
    database
        .execute("CREATE TABLE orders (id integer PRIMARY KEY, status text, note text)")
        .await;
    let config = database.write_config(&rest);
    let setup = rowhook(&config, &["setup", "--replica-identity-full"]);
    assert!(setup.status.success(), "{}", text(&setup.stderr));
    let service = Service::start(&database, &config).await;
    database
        .execute(
            "INSERT INTO orders VALUES (1, 'new', '');
             UPDATE orders SET status = 'paid' WHERE id = 1;
             UPDATE orders SET note = 'gift' WHERE id = 1;
             INSERT INTO orders VALUES (2, 'paid', '');",
        )
        .await;
    receiver.wait_for(4, WAIT).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    service.stop();
    let mut seen: Vec<String> = receiver
        .requests()
        .iter()
        .map(|request| {
            let body = request.json();
            format!(
                "{} {} {}",
                request.target,
                body["type"].as_str().unwrap(),
                body["item"]["id"]
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            // `when`: every change whose row is paid, and only those
            "/paid order.created 2",
            "/paid order.updated 1",
            "/paid order.updated 1",
            // `columns`: only the update that changed status
            "/status order.updated 1",
        ]
    );
}

in_both_modes!(attempts_follow_the_schedule_and_are_recorded);

in_both_modes!(redirects_timeouts_refusals_and_server_errors_fail_attempts);

in_both_modes!(a_receiver_that_is_down_and_comes_back_gets_everything);

in_both_modes!(when_and_columns_filter_events);
