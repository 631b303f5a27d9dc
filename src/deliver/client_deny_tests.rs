//! `delivery.deny` at the client: denied targets fail as `denied` without a connection,
//! checked on the resolved address. Only loopback is ever connected to.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

/// A server that answers every connection with `200 OK` and counts the connections.
struct Counting {
    address: SocketAddr,
    connections: Arc<AtomicUsize>,
}

impl Counting {
    async fn start(bind: &str) -> std::io::Result<Counting> {
        let listener = TcpListener::bind(bind).await?;
        let address = listener.local_addr()?;
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&connections);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                // The whole head first (requests here have no body): an answer sent
                // before the request is not HTTP to the client.
                let mut head = Vec::new();
                let mut buffer = [0u8; 1024];
                while !head.ends_with(b"\r\n\r\n") {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => break,
                        Ok(read) => head.extend_from_slice(&buffer[..read]),
                    }
                }
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await;
            }
        });
        Ok(Counting {
            address,
            connections,
        })
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

fn client(entries: &[&str]) -> DeliveryClient {
    DeliveryClient::new(&DenyList::of(entries)).unwrap()
}

fn get(url: String) -> Request {
    Request {
        method: "GET".to_owned(),
        url,
        headers: Vec::new(),
        body: None,
    }
}

fn options() -> AttemptOptions<'static> {
    AttemptOptions {
        number: 1,
        outgoing: Outgoing {
            event_id: "evt_deny",
            event_id_header: "webhook-id",
            secret: None,
        },
        timeout: Duration::from_secs(2),
    }
}

#[tokio::test]
async fn loopback_targets_in_every_spelling_are_denied_without_a_connection() {
    let server = Counting::start("127.0.0.1:0").await.unwrap();
    let port = server.address.port();
    let client = client(&["loopback"]);
    let cases = [
        (format!("http://127.0.0.1:{port}/hook"), "address 127.0.0.1"),
        (
            format!("http://[::ffff:127.0.0.1]:{port}/hook"),
            "address ::ffff:127.0.0.1",
        ),
        (
            format!("http://localhost:{port}/hook"),
            "localhost resolves to ",
        ),
    ];
    for (url, expected) in cases {
        let record = client.attempt(&get(url.clone()), &options()).await;
        assert_eq!(
            record.error_kind,
            Some(ErrorKind::Denied),
            "{url}: {record:?}"
        );
        assert_eq!(record.status_code, None, "{url}");
        let error = record.error.unwrap_or_default();
        assert!(error.starts_with(expected), "{url}: {error}");
        assert!(
            error.ends_with("(range loopback)") || error.contains("(range loopback);"),
            "{url}: {error}"
        );
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        server.connections(),
        0,
        "a denied target is never contacted"
    );
}

#[tokio::test]
async fn ipv6_loopback_is_denied_without_a_connection() {
    // Without IPv6 on this host nothing listens on [::1]; the refusal is still checked.
    let server = Counting::start("[::1]:0").await.ok();
    let port = server.as_ref().map_or(9, |server| server.address.port());
    let record = client(&["loopback"])
        .attempt(&get(format!("http://[::1]:{port}/hook")), &options())
        .await;
    assert_eq!(record.error_kind, Some(ErrorKind::Denied), "{record:?}");
    assert_eq!(
        record.error.as_deref(),
        Some("address ::1, which delivery.deny refuses (range loopback)")
    );
    if let Some(server) = server {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(server.connections(), 0);
    }
}

#[tokio::test]
async fn targets_outside_the_denied_ranges_are_delivered() {
    let server = Counting::start("127.0.0.1:0").await.unwrap();
    let port = server.address.port();
    let client = client(&["private", "link-local", "10.1.0.0/16"]);
    for url in [
        format!("http://127.0.0.1:{port}/hook"),
        format!("http://localhost:{port}/hook"),
    ] {
        let record = client.attempt(&get(url.clone()), &options()).await;
        assert!(record.succeeded(), "{url}: {record:?}");
        assert_eq!(record.response_body, "ok");
    }
    assert!(server.connections() >= 1);
}
