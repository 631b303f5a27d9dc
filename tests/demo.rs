//! `rowhook demo` end to end: on a throwaway cluster of its own, and on a given server.
//! Either way it must show every delivery, a failed attempt and its retry, and leave
//! nothing behind.

mod support;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use support::{connect, rowhook_binary, text};

fn demo(arguments: &[&str]) -> (u32, Output) {
    let mut command = Command::new(rowhook_binary());
    command.arg("demo").args(arguments).stdin(Stdio::null());
    if let Ok(bindir) = std::env::var("ROWHOOK_TEST_PG_BINDIR") {
        command.env("ROWHOOK_PG_BINDIR", bindir);
    }
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rowhook demo");
    let pid = child.id();
    (pid, child.wait_with_output().expect("run rowhook demo"))
}

/// Checks the story: every event listed was delivered to the receiver, a 503 was
/// answered and retried. Returns stdout.
fn assert_told_in_full(output: &Output) -> String {
    let stdout = text(&output.stdout);
    let stderr = text(&output.stderr);
    assert!(
        output.status.success(),
        "exit {}\n{stdout}\n{stderr}",
        output.status
    );
    let listing = stdout
        .split("$ rowhook events list\n")
        .nth(1)
        .expect("the attempt log");
    let ids: Vec<&str> = listing
        .lines()
        .skip(1)
        .take_while(|line| line.starts_with("evt_"))
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert_eq!(ids.len(), 7, "{stdout}");
    for id in &ids {
        assert!(
            stdout.contains(&format!("webhook-id: {id}\n")),
            "{id} was not delivered:\n{stdout}"
        );
    }
    assert!(!stdout.contains("INVALID"), "{stdout}");
    assert!(
        stdout.contains("order-paid-to-billing: POST http://127.0.0.1:"),
        "{stdout}"
    );
    assert!(stdout.contains("answered 503"), "{stdout}");
    assert!(stdout.contains("  #1  "), "{stdout}");
    assert!(stdout.contains("503 status\n"), "{stdout}");
    assert!(stdout.contains("  #2  "), "{stdout}");
    assert!(stdout.contains("200 success\n"), "{stdout}");
    assert!(
        stdout.contains("All 7 events delivered (1 after a retry)."),
        "{stdout}"
    );
    stdout
}

/// The directory the demo said it removed.
fn removed_directory(stdout: &str) -> PathBuf {
    let report = stdout
        .lines()
        .find(|line| line.starts_with("Cleaned up:"))
        .unwrap_or_else(|| panic!("no clean-up report:\n{stdout}"));
    let path = report
        .split("removed ")
        .nth(1)
        .map(|rest| rest.trim_end_matches('.'))
        .unwrap_or_else(|| panic!("no directory removed: {report}"));
    PathBuf::from(path)
}

/// Processes whose command line names `directory` (a server left running in it).
fn processes_in(directory: &std::path::Path) -> Vec<String> {
    let needle = directory.display().to_string();
    std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .filter_map(|entry| {
                    let path = entry.ok()?.path();
                    let command = std::fs::read(path.join("cmdline")).ok()?;
                    let command = String::from_utf8_lossy(&command).replace('\0', " ");
                    command.contains(&needle).then_some(command)
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_demo_runs_on_a_throwaway_cluster_and_leaves_nothing_behind() {
    let (_, output) = demo(&[]);
    let stdout = assert_told_in_full(&output);
    assert!(
        stdout.contains("Starting a throwaway PostgreSQL cluster"),
        "{stdout}"
    );
    assert!(stdout.contains("stopped PostgreSQL"), "{stdout}");
    let directory = removed_directory(&stdout);
    assert!(
        !directory.exists(),
        "{} is still there",
        directory.display()
    );
    let left = processes_in(&directory);
    assert!(left.is_empty(), "left running: {left:?}");
}

#[tokio::test]
async fn the_demo_runs_on_a_given_server_and_drops_its_database() {
    let Ok(server_url) = std::env::var("ROWHOOK_TEST_DATABASE_URL") else {
        eprintln!("skipped: ROWHOOK_TEST_DATABASE_URL is not set (scripts/test.sh sets it)");
        return;
    };
    let (pid, output) = demo(&["--database-url", &server_url]);
    let stdout = assert_told_in_full(&output);
    let name = format!("rowhook_demo_{pid}");
    assert!(
        stdout.contains(&format!(
            "Creating database {name} on the PostgreSQL server"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("dropped database and slot {name}")),
        "{stdout}"
    );
    let directory = removed_directory(&stdout);
    assert!(
        !directory.exists(),
        "{} is still there",
        directory.display()
    );

    let client = connect(&server_url).await;
    let databases = client
        .query("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .unwrap();
    assert!(databases.is_empty(), "database {name} is still there");
    let slots = client
        .query(
            "SELECT 1 FROM pg_replication_slots WHERE slot_name = $1",
            &[&name],
        )
        .await
        .unwrap();
    assert!(slots.is_empty(), "slot {name} is still there");
}
