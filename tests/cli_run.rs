//! `rowhook run` meeting bad input: a clear message, the right exit code, never a panic.

mod support;

use std::time::Duration;

use support::{Service, TestDatabase, rowhook, text};

const MODEL: &str = "[models.order]\ntable = \"orders\"\n";

#[tokio::test]
async fn a_template_that_does_not_compile_is_a_configuration_error() {
    let database = TestDatabase::create().await;
    let config = database.write_config(&format!(
        "{MODEL}\n[[webhooks]]\nname = \"broken\"\nmodel = \"order\"\nurl = \"http://127.0.0.1:9/{{{{ item.id | jsn }}}}\"\n"
    ));
    for command in [&["run"][..], &["check", "--offline"][..]] {
        let output = rowhook(&config, command);
        assert_eq!(output.status.code(), Some(2), "{command:?}");
        let stderr = text(&output.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains("webhooks[0].url: unknown filter \"jsn\""),
            "{stderr}"
        );
    }
}

#[tokio::test]
async fn a_missing_slot_and_a_wrong_password_end_run_with_a_clear_message() {
    let database = TestDatabase::create().await;
    database
        .execute("CREATE TABLE orders (id integer PRIMARY KEY)")
        .await;
    let config = database.write_config(MODEL);
    let (status, log) = Service::spawn(&database, &config).wait();
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(
        log.contains("does not exist; run `rowhook setup` first"),
        "{log}"
    );
    assert!(!log.contains("panicked"), "{log}");

    let wrong = database.directory.join("wrong.toml");
    let text_with_password = std::fs::read_to_string(&config)
        .unwrap()
        .replace("postgres://postgres@", "postgres://rowhook_scram:wrong@");
    std::fs::write(&wrong, text_with_password).unwrap();
    let (status, log) = Service::spawn(&database, &wrong).wait();
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(
        log.contains("password authentication failed for user \"rowhook_scram\""),
        "{log}"
    );
    assert!(
        !log.contains(":wrong@"),
        "the password is never logged: {log}"
    );
}

#[tokio::test]
async fn a_database_that_is_down_is_retried_with_a_clear_message() {
    let database = TestDatabase::create().await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let config = database.directory.join("down.toml");
    std::fs::write(
        &config,
        format!(
            "[source]\nurl = \"postgres://postgres@127.0.0.1:{port}/shop\"\n\n[store]\npath = \"{}\"\n\n{MODEL}",
            database.directory.join("store").display()
        ),
    )
    .unwrap();
    let service = Service::spawn(&database, &config);
    let expected = format!("cannot connect to 127.0.0.1:{port}");
    support::eventually("the retry message", Duration::from_secs(20), || {
        let seen = service.log_text().contains(&expected);
        async move { seen }
    })
    .await;
    assert!(
        service.log_text().contains("retrying"),
        "{}",
        service.log_text()
    );
    // It keeps running (the database may come up later) and stops cleanly when asked.
    service.stop();
}
