//! `rowhook check`, `setup` and `tail` as a user meets them: one readable line per
//! problem, exit code 2 for configuration problems, never a panic.

mod support;

use std::path::PathBuf;

use support::{PrivateCluster, TestDatabase, rowhook, text};

fn write(name: &str, contents: &str) -> PathBuf {
    let directory = std::env::temp_dir().join(format!("rowhook-config-{}", std::process::id()));
    std::fs::create_dir_all(&directory).unwrap();
    let path = directory.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

const VALID: &str = r#"
[source]
url = "postgres://postgres@127.0.0.1:1/shop"

[models.order]
table = "orders"

[[webhooks]]
name = "order-to-warehouse"
model = "order"
url = "http://127.0.0.1:9/orders"
"#;

#[test]
fn a_valid_config_passes_offline() {
    let path = write("valid.toml", VALID);
    let output = rowhook(&path, &["check", "--offline"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("1 model(s), 1 webhook(s)"));
}

#[test]
fn each_mistake_gets_one_line_and_exit_code_2() {
    let cases = [
        (
            "unknown-key.toml",
            VALID.replace("[models.order]", "[models.order]\ncolour = \"red\""),
            "models.order.colour",
        ),
        (
            "missing-url.toml",
            VALID.replace("url = \"http://127.0.0.1:9/orders\"", ""),
            "webhooks[0].url",
        ),
        (
            "bad-retry.toml",
            format!("{VALID}\n[delivery]\nretry = [\"5 sec\"]\n"),
            "delivery.retry[0]",
        ),
        (
            "unknown-model.toml",
            VALID.replace("model = \"order\"", "model = \"invoice\""),
            "webhooks[0].model",
        ),
        (
            "missing-variable.toml",
            VALID.replace("127.0.0.1:1", "${ROWHOOK_TEST_SURELY_UNSET}"),
            "source.url",
        ),
        (
            "bad-syntax.toml",
            VALID.replace("[models.order]", "[models.order"),
            "line",
        ),
    ];
    for (name, contents, key) in cases {
        let path = write(name, &contents);
        let output = rowhook(&path, &["check", "--offline"]);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{name}: {stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{name}: one line per problem: {stderr}");
        assert!(
            lines[0].starts_with(&path.display().to_string()),
            "{name}: names the file: {stderr}"
        );
        assert!(lines[0].contains(key), "{name}: names {key}: {stderr}");
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
    }
}

#[test]
fn a_missing_file_is_a_configuration_error() {
    let output = rowhook(
        &PathBuf::from("/nonexistent/rowhook.toml"),
        &["check", "--offline"],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("/nonexistent/rowhook.toml"));
}

#[test]
fn a_database_that_is_down() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let path = write(
        "down.toml",
        &VALID.replace("127.0.0.1:1", &format!("127.0.0.1:{port}")),
    );
    let check = rowhook(&path, &["check"]);
    assert_eq!(check.status.code(), Some(2));
    let report = text(&check.stdout);
    assert!(
        report.contains(&format!("error: cannot connect to 127.0.0.1:{port}")),
        "{report}"
    );

    let tail = rowhook(&path, &["tail"]);
    assert_eq!(tail.status.code(), Some(1));
    let stderr = text(&tail.stderr);
    assert!(
        stderr.contains(&format!("cannot connect to 127.0.0.1:{port}")),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test]
async fn check_reports_what_setup_fixes() {
    let database = TestDatabase::create().await;
    database
        .execute("CREATE TABLE orders (id integer PRIMARY KEY, status text)")
        .await;
    let config = database.write_config("[models.order]\ntable = \"orders\"\n");

    let before = rowhook(&config, &["check"]);
    assert_eq!(before.status.code(), Some(2));
    let report = text(&before.stdout);
    assert!(report.contains("ok: wal_level is logical"), "{report}");
    assert!(
        report.contains("publication") && report.contains("run `rowhook setup`"),
        "{report}"
    );

    let setup = rowhook(&config, &["setup"]);
    assert!(setup.status.success(), "{}", text(&setup.stderr));
    assert!(text(&setup.stdout).contains("created logical replication slot"));
    let again = rowhook(&config, &["setup"]);
    assert!(
        again.status.success(),
        "setup is idempotent: {}",
        text(&again.stderr)
    );
    assert!(text(&again.stdout).contains("already exists"));

    let after = rowhook(&config, &["check"]);
    let report = text(&after.stdout);
    assert!(after.status.success(), "{report}{}", text(&after.stderr));
    assert!(!report.contains("error:"), "{report}");
    assert!(report.contains("replication connection works"), "{report}");
}

#[tokio::test]
async fn a_missing_table_and_a_table_without_key() {
    let database = TestDatabase::create().await;
    database.execute("CREATE TABLE notes (body text)").await;
    let missing = database.write_config("[models.order]\ntable = \"orders\"\n");
    let check = rowhook(&missing, &["check"]);
    assert_eq!(check.status.code(), Some(2));
    assert!(text(&check.stdout).contains("table public.orders does not exist"));
    let setup = rowhook(&missing, &["setup"]);
    assert_eq!(setup.status.code(), Some(1));
    assert!(text(&setup.stderr).contains("table public.orders (model \"order\") does not exist"));

    let keyless = database.write_config("[models.note]\ntable = \"notes\"\n");
    let refused = rowhook(&keyless, &["setup"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains("has no primary key"),
        "{}",
        text(&refused.stderr)
    );
    let full = rowhook(&keyless, &["setup", "--replica-identity-full"]);
    assert!(full.status.success(), "{}", text(&full.stderr));
    // Updates still work on the published table.
    database
        .execute("INSERT INTO notes VALUES ('a'); UPDATE notes SET body = 'b'")
        .await;
}

#[tokio::test]
async fn a_wrong_password_and_wal_level_replica() {
    let database = TestDatabase::create().await;
    let url = database.url.replace("postgres@", "rowhook_scram:wrong@");
    let path = write(
        "wrong-password.toml",
        &VALID.replace("postgres://postgres@127.0.0.1:1/shop", &url),
    );
    let check = rowhook(&path, &["check"]);
    assert_eq!(check.status.code(), Some(2));
    assert!(
        text(&check.stdout).contains("password authentication failed for user \"rowhook_scram\""),
        "{}",
        text(&check.stdout)
    );

    let cluster = PrivateCluster::start("wal_level = replica");
    let path = write(
        "replica.toml",
        &VALID.replace("postgres://postgres@127.0.0.1:1/shop", &cluster.url()),
    );
    let check = rowhook(&path, &["check"]);
    assert_eq!(check.status.code(), Some(2));
    assert!(
        text(&check.stdout).contains("error: wal_level is replica"),
        "{}",
        text(&check.stdout)
    );
}

const DENYING: &str = "\n[delivery]\ndeny = [\"loopback\", \"link-local\"]\n\n\
    [[webhooks]]\nname = \"by-name\"\nmodel = \"order\"\nurl = \"http://localhost:9/orders\"\n\n\
    [[webhooks]]\nname = \"templated\"\nmodel = \"order\"\nurl = \"http://127.0.0.1:9/orders/{{ item.id }}\"\n\n\
    [[alerts]]\nname = \"metadata\"\nurl = \"http://169.254.169.254/alerts\"\n";

#[test]
fn denied_literal_targets_are_warned_about_offline() {
    let path = write("deny.toml", &format!("{VALID}{DENYING}"));
    let output = std::process::Command::new(support::rowhook_binary())
        .arg("--config")
        .arg(&path)
        .args(["check", "--offline"])
        .env("HTTPS_PROXY", "http://proxy.invalid:3128")
        .env_remove("https_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy")
        .output()
        .unwrap();
    let report = text(&output.stdout);
    assert!(
        output.status.success(),
        "warnings only: {report}{}",
        text(&output.stderr)
    );
    let warnings: Vec<&str> = report
        .lines()
        .filter(|line| line.starts_with("warning:"))
        .collect();
    assert_eq!(
        warnings,
        [
            "warning: delivery.deny is set, so HTTPS_PROXY is ignored: deliveries connect directly, so that the guard sees the addresses they connect to",
            "warning: webhook \"order-to-warehouse\": address 127.0.0.1, which delivery.deny refuses (range loopback); its attempts will fail as denied",
            "warning: alert target \"metadata\": address 169.254.169.254, which delivery.deny refuses (range link-local); its attempts will fail as denied",
        ],
        "host names are not looked up offline, templated URLs are left to the attempts: {report}"
    );
}

#[tokio::test]
async fn denied_host_names_are_warned_about_online() {
    let database = TestDatabase::create().await;
    database
        .execute("CREATE TABLE orders (id integer PRIMARY KEY)")
        .await;
    let config = database.write_config(&format!("[models.order]\ntable = \"orders\"\n{DENYING}"));
    let setup = rowhook(&config, &["setup"]);
    assert!(setup.status.success(), "{}", text(&setup.stderr));
    let check = rowhook(&config, &["check"]);
    let report = text(&check.stdout);
    assert!(check.status.success(), "{report}{}", text(&check.stderr));
    assert!(
        report.lines().any(|line| line
            .starts_with("warning: webhook \"by-name\": localhost resolves to ")
            && line.contains("which delivery.deny refuses (range loopback)")),
        "{report}"
    );
}
