//! `rowhook receive` as a user runs it: a real process on a loopback port, real HTTP
//! requests, and what it prints.

mod support;

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rowhook::signature;
use support::rowhook_binary;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const WAIT: Duration = Duration::from_secs(15);

/// `rowhook receive` in the background, its stdout collected as it comes.
struct Receiving {
    child: Child,
    port: u16,
    stdout: Arc<Mutex<String>>,
}

impl Receiving {
    fn start(extra: &[&str]) -> Receiving {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port())
            .expect("a free port");
        let mut child = Command::new(rowhook_binary())
            .args(["receive", "--listen", &format!("127.0.0.1:{port}")])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rowhook receive");
        let mut pipe = child.stdout.take().expect("stdout");
        let stdout = Arc::new(Mutex::new(String::new()));
        let collected = stdout.clone();
        std::thread::spawn(move || {
            let mut buffer = [0; 4096];
            while let Ok(read) = pipe.read(&mut buffer) {
                if read == 0 {
                    break;
                }
                collected
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buffer[..read]));
            }
        });
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < WAIT, "rowhook receive did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Receiving {
            child,
            port,
            stdout,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Waits until stdout contains `text`; returns all of stdout.
    fn wait_for(&self, text: &str) -> String {
        let started = Instant::now();
        loop {
            let stdout = self.stdout.lock().unwrap().clone();
            if stdout.contains(text) {
                return stdout;
            }
            assert!(started.elapsed() < WAIT, "no {text:?} in:\n{stdout}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, as a user's Ctrl-C would; it must exit 0.
    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().expect("wait for rowhook receive");
        assert!(status.success(), "rowhook receive exited with {status}");
    }
}

impl Drop for Receiving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn send(url: &str, id: &str, body: &str, secret: &str) -> reqwest::StatusCode {
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let signed = signature::sign(secret, id, timestamp, body.as_bytes()).unwrap();
    reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signed)
        .body(body.to_string())
        .send()
        .await
        .expect("rowhook receive answers")
        .status()
}

#[tokio::test]
async fn signatures_are_verified_and_bodies_shown() {
    let receiving = Receiving::start(&["--secret", SECRET]);
    let good = send(
        &receiving.url("/orders?attempt=1"),
        "msg_good",
        r#"{"order":{"id":7,"total":"42.50"}}"#,
        SECRET,
    )
    .await;
    assert_eq!(good, 200);
    let stdout = receiving.wait_for("\"total\": \"42.50\"");
    assert!(stdout.contains("POST /orders?attempt=1 ────"), "{stdout}");
    assert!(stdout.contains("webhook-id: msg_good\n"), "{stdout}");
    assert!(stdout.contains("signature: valid\n"), "{stdout}");

    let other_secret = "whsec_c2VjcmV0LWtleS1vZi10aGUtb3RoZXItc2VuZGVy";
    let forged = send(
        &receiving.url("/orders"),
        "msg_forged",
        r#"{"forged":true}"#,
        other_secret,
    )
    .await;
    // The receiver reports a bad signature; it does not refuse the request.
    assert_eq!(forged, 200);
    let stdout = receiving.wait_for("\"forged\": true");
    assert!(
        stdout.contains("signature: INVALID (no signature matches the secret and this body)\n"),
        "{stdout}"
    );

    let unsigned = reqwest::Client::new()
        .post(receiving.url("/form"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("phone=%2B44+20&note=a+%26+b")
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 200);
    let stdout = receiving.wait_for("note = a & b\n");
    assert!(stdout.contains("phone = +44 20\n"), "{stdout}");
    assert!(
        stdout.contains(
            "signature: INVALID (missing headers webhook-id, webhook-timestamp, webhook-signature)"
        ),
        "{stdout}"
    );
    receiving.stop();
}

#[tokio::test]
async fn status_sets_the_answer() {
    let receiving = Receiving::start(&["--status", "503"]);
    let answered = send(&receiving.url("/busy"), "msg_1", "{}", SECRET).await;
    assert_eq!(answered, 503);
    let stdout = receiving.wait_for("answered: 503\n");
    // Without --secret nothing is verified, and it says so.
    assert!(
        stdout.contains("signature: not checked (no secret given)\n"),
        "{stdout}"
    );
    receiving.stop();
}

#[test]
fn a_bad_secret_or_status_is_a_usage_error() {
    for arguments in [
        &["receive", "--secret", "whsec_***"][..],
        &["receive", "--status", "42"][..],
    ] {
        let output = Command::new(rowhook_binary())
            .args(arguments)
            .stdin(Stdio::null())
            .output()
            .expect("run rowhook receive");
        assert_eq!(output.status.code(), Some(2), "{arguments:?}");
    }
}
