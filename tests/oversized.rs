//! A row larger than `source.max_row` (CONTRACT §12): a 100 MB value under a 64 MB limit
//! becomes one failed event with the reason, the rows before and after it are delivered,
//! and rowhook never holds the row (peak memory printed), in both capture modes.

#[macro_use]
mod support;

use std::time::Duration;

use serde_json::Value;
use support::receiver::Receiver;
use support::{Mode, Service, TestDatabase, rowhook, text};

const WAIT: Duration = Duration::from_secs(120);
const LARGE_BYTES: usize = 100 * 1024 * 1024;

async fn an_oversized_row_fails_alone(mode: Mode) {
    let receiver = Receiver::start().await;
    let database = TestDatabase::create_in(mode).await;
    database
        .execute("CREATE TABLE documents (id integer PRIMARY KEY, body text)")
        .await;
    let config = database.write_config(&format!(
        "[delivery]\nretry = [\"0s\"]\n\n[models.document]\ntable = \"documents\"\n\n\
         [[webhooks]]\nname = \"documents\"\nmodel = \"document\"\nurl = \"{}\"\n",
        receiver.url("/documents")
    ));
    // `max_row` belongs to [source], which `write_config` writes.
    let written = std::fs::read_to_string(&config).expect("read config");
    let written = written.replacen("[source]\n", "[source]\nmax_row = \"64MB\"\n", 1);
    std::fs::write(&config, written).expect("write config");
    let setup = rowhook(&config, &["setup"]);
    assert!(setup.status.success(), "{}", text(&setup.stderr));

    let service = Service::start(&database, &config).await;
    database
        .execute(&format!(
            "INSERT INTO documents VALUES (1, 'before');
             INSERT INTO documents VALUES (2, repeat('x', {LARGE_BYTES}));
             INSERT INTO documents VALUES (3, 'after');"
        ))
        .await;
    let requests = receiver.wait_for(2, WAIT).await;
    // The two are delivered concurrently: in either order.
    let mut delivered: Vec<i64> = requests
        .iter()
        .filter_map(|request| request.json()["item"]["id"].as_i64())
        .collect();
    delivered.sort_unstable();
    assert_eq!(delivered, [1, 3], "the rows before and after are delivered");
    let peak_mib = support::peak_rss_kib(service.pid()) / 1024;
    println!(
        "{mode:?} mode: a {} MB row under max_row = 64MB; peak RSS of rowhook run {peak_mib} MiB",
        LARGE_BYTES / 1024 / 1024
    );
    assert!(
        service.log_text().contains("larger than source.max_row"),
        "the log says so: {}",
        service.log_text()
    );
    service.stop();

    let listed = rowhook(
        &config,
        &[
            "events",
            "list",
            "--webhook",
            "documents",
            "--status",
            "failed",
            "--json",
        ],
    );
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let failed: Value = serde_json::from_slice(&listed.stdout).expect("a JSON list");
    let failed = failed.as_array().expect("a list");
    assert_eq!(failed.len(), 1, "one failed event: {failed:?}");
    let shown = rowhook(
        &config,
        &["events", "show", failed[0]["id"].as_str().expect("id")],
    );
    let shown = text(&shown.stdout);
    assert!(
        shown.contains("larger than source.max_row (67108864 bytes); it was not read"),
        "the reason is shown: {shown}"
    );
    assert!(
        receiver.requests().len() == 2,
        "the oversized row was never sent"
    );
}

in_both_modes!(
    an_oversized_row_fails_alone,
    tokio::test(flavor = "multi_thread", worker_threads = 2)
);
