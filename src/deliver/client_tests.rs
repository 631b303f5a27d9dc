//! Attempts against tiny loopback servers that write raw HTTP, so every answer,
//! including broken ones, is exactly what the test says.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::*;
use crate::deliver::failure::{ERROR_TEXT_LIMIT, duration_text, one_line};
use crate::signature;

const TIMEOUT: Duration = Duration::from_millis(300);
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

async fn listen() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    (listener, address)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Reads one request: the head, and as many body bytes as `content-length` says.
async fn read_request(stream: &mut TcpStream) -> Vec<u8> {
    let mut data = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        if let Some(end) = find(&data, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .map(|value| value.trim().parse::<usize>().unwrap())
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                return data;
            }
        }
        let read = stream.read(&mut buffer).await.unwrap_or(0);
        if read == 0 {
            return data;
        }
        data.extend_from_slice(&buffer[..read]);
    }
}

/// Serves one connection with `response`; the task yields the raw request it read.
async fn answer_once(response: impl Into<Vec<u8>>) -> (String, JoinHandle<Vec<u8>>) {
    let response = response.into();
    let (listener, address) = listen().await;
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let request = read_request(&mut stream).await;
        // The client may hang up early (it reads 4 KiB at most): not an error here.
        let _ = stream.write_all(&response).await;
        let _ = stream.shutdown().await;
        request
    });
    (format!("http://{address}/hook"), server)
}

fn post(url: &str, body: &str) -> Request {
    Request {
        method: "POST".to_owned(),
        url: url.to_owned(),
        headers: vec![("content-type".to_owned(), "application/json".to_owned())],
        body: Some(body.to_owned()),
    }
}

fn options<'a>(secret: Option<&'a str>) -> AttemptOptions<'a> {
    AttemptOptions {
        number: 2,
        outgoing: Outgoing {
            event_id: "evt_0000000016B3748_order-to-warehouse",
            event_id_header: "webhook-id",
            secret,
        },
        timeout: TIMEOUT,
    }
}

async fn attempt(request: &Request) -> Attempt {
    let client = DeliveryClient::new(&DenyList::default()).unwrap();
    client.attempt(request, &options(None)).await
}

fn header_values<'a>(request: &'a str, name: &str) -> Vec<&'a str> {
    request
        .split("\r\n")
        .filter_map(|line| line.split_once(':'))
        .filter(|(header, _)| header.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.trim())
        .collect()
}

#[tokio::test]
async fn ok_is_success_with_body_captured() {
    let (url, server) = answer_once("HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\nreceived").await;
    let before = crate::time::unix_ms(SystemTime::now());
    let record = attempt(&post(&url, "{}")).await;
    assert_eq!(record.number, 2);
    assert_eq!(record.status_code, Some(200));
    assert_eq!(record.error_kind, None);
    assert_eq!(record.error, None);
    assert!(record.succeeded());
    assert_eq!(record.response_body, "received");
    assert!(record.started_at_ms >= before);
    assert!(record.duration_ms < 1_000);
    server.await.unwrap();
}

#[tokio::test]
async fn created_is_success() {
    let (url, _server) = answer_once("HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n").await;
    let record = attempt(&post(&url, "{}")).await;
    assert_eq!(record.status_code, Some(201));
    assert!(record.succeeded());
}

#[tokio::test]
async fn server_error_is_status() {
    let answer = "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 4\r\n\r\noops";
    let (url, _server) = answer_once(answer).await;
    let record = attempt(&post(&url, "{}")).await;
    assert_eq!(record.status_code, Some(500));
    assert_eq!(record.error_kind, Some(ErrorKind::Status));
    assert_eq!(
        record.error.as_deref(),
        Some("HTTP 500 Internal Server Error")
    );
    assert_eq!(record.response_body, "oops");
}

#[tokio::test]
async fn redirect_is_reported_and_not_followed() {
    let (target, target_address) = listen().await;
    let location = format!("http://{target_address}/elsewhere");
    let answer = format!("HTTP/1.1 302 Found\r\nlocation: {location}\r\ncontent-length: 0\r\n\r\n");
    let (url, _server) = answer_once(answer).await;
    let record = attempt(&post(&url, "{}")).await;
    assert_eq!(record.status_code, Some(302));
    assert_eq!(record.error_kind, Some(ErrorKind::Redirect));
    assert_eq!(
        record.error,
        Some(format!(
            "redirect to {location} not followed (HTTP 302 Found)"
        ))
    );
    let visited = tokio::time::timeout(Duration::from_millis(300), target.accept()).await;
    assert!(visited.is_err(), "the redirect target was contacted");
}

#[tokio::test]
async fn silent_server_times_out() {
    let (listener, address) = listen().await;
    let _server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(10)).await;
        drop(stream);
    });
    let clock = Instant::now();
    let record = attempt(&post(&format!("http://{address}/"), "{}")).await;
    let elapsed = clock.elapsed();
    assert_eq!(record.error_kind, Some(ErrorKind::Timeout));
    assert_eq!(record.error.as_deref(), Some("no answer within 300ms"));
    assert_eq!(record.status_code, None);
    assert!(
        elapsed >= TIMEOUT && elapsed < Duration::from_millis(900),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn closed_port_is_connect() {
    let (listener, address) = listen().await;
    drop(listener);
    let record = attempt(&post(&format!("http://{address}/"), "{}")).await;
    assert_eq!(record.error_kind, Some(ErrorKind::Connect));
    assert_eq!(record.error.as_deref(), Some("connection refused"));
    assert_eq!(record.status_code, None);
}

#[tokio::test]
async fn hang_up_before_an_answer_is_connect() {
    let (url, _server) = answer_once("").await;
    let record = attempt(&post(&url, "{}")).await;
    assert_eq!(record.error_kind, Some(ErrorKind::Connect), "{record:?}");
}

#[tokio::test]
async fn garbage_answer_is_body() {
    let (url, _server) = answer_once("garbage\r\n\r\n").await;
    let record = attempt(&post(&url, "{}")).await;
    assert_eq!(record.error_kind, Some(ErrorKind::Body), "{record:?}");
    let error = record.error.unwrap();
    assert!(error.starts_with("the answer is not valid HTTP"), "{error}");
}

#[tokio::test]
async fn https_to_plain_server_is_tls() {
    let answer = "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n";
    let (listener, address) = listen().await;
    let _server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut hello = [0u8; 1024];
        let _ = stream.read(&mut hello).await;
        let _ = stream.write_all(answer.as_bytes()).await;
    });
    let record = attempt(&post(&format!("https://{address}/"), "{}")).await;
    assert_eq!(record.error_kind, Some(ErrorKind::Tls), "{record:?}");
    assert!(record.error.unwrap().starts_with("TLS handshake failed"));
}

#[tokio::test]
async fn https_to_server_that_hangs_up_during_handshake_is_tls() {
    let (listener, address) = listen().await;
    let _server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut hello = [0u8; 1024];
        let _ = stream.read(&mut hello).await;
        let _ = stream.shutdown().await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    });
    let record = attempt(&post(&format!("https://{address}/"), "{}")).await;
    assert_eq!(record.error_kind, Some(ErrorKind::Tls), "{record:?}");
}

/// A self-signed certificate for 127.0.0.1 and its key, generated with openssl for
/// this test only: no client trusts it, which is the point.
const UNTRUSTED_CERTIFICATE: &str = "-----BEGIN CERTIFICATE-----
MIIBmTCCAT6gAwIBAgIUHmRqn891LcijZsT/73JbBqrRAmEwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyMjE1NDE1MVoYDzIxMjYxMDI5
MTU0MTUxWjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAAQBxkui2XE8yxjpe8jnk/bTJci1axkU7TmGV2GOduPtHBwOnc4SF593
w2tRSoX2GCIsU1YIcZWSCOjMfcR0k36Oo2wwajAdBgNVHQ4EFgQUAr/2kxDpMYsh
gCP4TeTW9c4XfUowHwYDVR0jBBgwFoAUAr/2kxDpMYshgCP4TeTW9c4XfUowGgYD
VR0RBBMwEYcEfwAAAYIJbG9jYWxob3N0MAwGA1UdEwEB/wQCMAAwCgYIKoZIzj0E
AwIDSQAwRgIhAJd/Ec6DOjcW/mhThll6w0+mOLVYayAbscBEZFP1IZnxAiEAvlMk
ARe7xAm1Po4FekoP0S3IOlZUm6eBT/36f7Zwvso=
-----END CERTIFICATE-----
";
const UNTRUSTED_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgJbNshVfknqauwW8u
2R5rJl+lB0wOWZHrB1UzcJVSYIOhRANCAAQBxkui2XE8yxjpe8jnk/bTJci1axkU
7TmGV2GOduPtHBwOnc4SF593w2tRSoX2GCIsU1YIcZWSCOjMfcR0k36O
-----END PRIVATE KEY-----
";

#[tokio::test]
async fn untrusted_certificate_is_tls() {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let certificate = CertificateDer::from_pem_slice(UNTRUSTED_CERTIFICATE.as_bytes()).unwrap();
    let key = PrivateKeyDer::from_pem_slice(UNTRUSTED_KEY.as_bytes()).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certificate], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let (listener, address) = listen().await;
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        // The client rejects the certificate, so the handshake fails on this side too.
        acceptor.accept(stream).await.is_err()
    });

    let record = attempt(&post(&format!("https://{address}/"), "{}")).await;
    assert_eq!(record.error_kind, Some(ErrorKind::Tls), "{record:?}");
    let error = record.error.unwrap();
    assert!(error.contains("certificate"), "{error}");
    assert!(server.await.unwrap());
}

#[tokio::test]
async fn large_body_is_cut_at_four_kibibytes() {
    let mut answer = b"HTTP/1.1 200 OK\r\ncontent-length: 10240\r\n\r\n".to_vec();
    answer.extend(std::iter::repeat_n(b'x', 10 * 1024));
    let (url, _server) = answer_once(answer).await;
    let record = attempt(&post(&url, "{}")).await;
    assert!(record.succeeded(), "{record:?}");
    assert_eq!(record.response_body.len(), RESPONSE_BODY_LIMIT);
}

#[tokio::test]
async fn cut_multibyte_character_is_dropped() {
    let mut body = "x".repeat(RESPONSE_BODY_LIMIT - 1);
    body.push('é');
    let answer = format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let (url, _server) = answer_once(answer).await;
    let record = attempt(&post(&url, "{}")).await;
    assert_eq!(record.response_body, "x".repeat(RESPONSE_BODY_LIMIT - 1));
}

/// Writes `head`, then one body byte every 50 ms: never done within the timeout.
async fn drip(head: &'static str) -> String {
    let (listener, address) = listen().await;
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        read_request(&mut stream).await;
        let _ = stream.write_all(head.as_bytes()).await;
        for _ in 0..100 {
            if stream.write_all(b"x").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    format!("http://{address}/")
}

#[tokio::test]
async fn dripping_body_times_out() {
    let url = drip("HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n").await;
    let clock = Instant::now();
    let record = attempt(&post(&url, "{}")).await;
    assert!(clock.elapsed() < Duration::from_millis(900));
    assert_eq!(record.error_kind, Some(ErrorKind::Timeout), "{record:?}");
    assert_eq!(record.status_code, Some(200));
    assert!(!record.response_body.is_empty());
    let error = record.error.unwrap();
    assert!(
        error.starts_with("no complete answer within 300ms (HTTP 200 OK"),
        "{error}"
    );
}

#[tokio::test]
async fn dripping_error_body_is_still_status() {
    let url = drip("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 100\r\n\r\n").await;
    let record = attempt(&post(&url, "{}")).await;
    assert_eq!(record.error_kind, Some(ErrorKind::Status), "{record:?}");
    assert_eq!(
        record.error.as_deref(),
        Some("HTTP 503 Service Unavailable")
    );
}

#[tokio::test]
async fn short_success_body_is_body() {
    let answer = "HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhalf";
    let (url, _server) = answer_once(answer).await;
    let record = attempt(&post(&url, "{}")).await;
    assert_eq!(record.error_kind, Some(ErrorKind::Body), "{record:?}");
    assert_eq!(record.status_code, Some(200));
    assert_eq!(record.response_body, "half");
}

#[tokio::test]
async fn sends_event_id_user_agent_content_type_and_a_valid_signature() {
    let (url, server) = answer_once("HTTP/1.1 204 No Content\r\n\r\n").await;
    let body = r#"{"id":42,"status":"paid"}"#;
    let client = DeliveryClient::new(&DenyList::default()).unwrap();
    let record = client
        .attempt(&post(&url, body), &options(Some(SECRET)))
        .await;
    assert!(record.succeeded(), "{record:?}");

    let raw = String::from_utf8(server.await.unwrap()).unwrap();
    assert!(raw.starts_with("POST /hook HTTP/1.1\r\n"));
    assert!(raw.ends_with(body));
    let event_id = "evt_0000000016B3748_order-to-warehouse";
    assert_eq!(header_values(&raw, "webhook-id"), [event_id]);
    assert_eq!(
        header_values(&raw, "user-agent"),
        [concat!("rowhook/", env!("CARGO_PKG_VERSION"))]
    );
    assert_eq!(header_values(&raw, "content-type"), ["application/json"]);
    let timestamp = header_values(&raw, "webhook-timestamp")[0];
    let signature_header = header_values(&raw, "webhook-signature")[0];
    let sent_at: u64 = timestamp.parse().unwrap();
    assert_eq!(sent_at, record.started_at_ms / 1000);
    assert!(signature::verify(
        SECRET,
        event_id,
        timestamp,
        body.as_bytes(),
        signature_header
    ));
}

#[tokio::test]
async fn get_without_body_sends_no_body() {
    let (url, server) = answer_once("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
    let request = Request {
        method: "GET".to_owned(),
        url: format!("{url}?serial=A1"),
        headers: Vec::new(),
        body: None,
    };
    let record = attempt(&request).await;
    assert!(record.succeeded(), "{record:?}");
    let raw = String::from_utf8(server.await.unwrap()).unwrap();
    assert!(raw.starts_with("GET /hook?serial=A1 HTTP/1.1\r\n"), "{raw}");
    assert!(raw.ends_with("\r\n\r\n"), "{raw}");
    assert!(header_values(&raw, "content-length").is_empty());
    assert!(header_values(&raw, "transfer-encoding").is_empty());
}

#[tokio::test]
async fn invalid_requests_become_attempts() {
    let mut bad_method = post("http://127.0.0.1:9/", "{}");
    bad_method.method = "GE T".to_owned();
    let mut bad_url = post("http://127.0.0.1:9/", "{}");
    bad_url.url = "http://user:password@[::1/".to_owned();
    let mut wrong_scheme = post("http://127.0.0.1:9/", "{}");
    wrong_scheme.url = "ftp://127.0.0.1/".to_owned();
    let mut bad_header = post("http://127.0.0.1:9/", "{}");
    bad_header
        .headers
        .push(("bad name".to_owned(), "x".to_owned()));
    let mut bad_value = post("http://127.0.0.1:9/", "{}");
    bad_value
        .headers
        .push(("authorization".to_owned(), "Bearer s3cret\n".to_owned()));

    for request in [bad_method, bad_url, wrong_scheme, bad_header, bad_value] {
        let record = attempt(&request).await;
        assert_eq!(record.error_kind, Some(ErrorKind::Connect), "{record:?}");
        let error = record.error.unwrap();
        assert!(error.starts_with("invalid request: "), "{error}");
        assert!(
            !error.contains("password") && !error.contains("s3cret"),
            "{error}"
        );
    }

    let client = DeliveryClient::new(&DenyList::default()).unwrap();
    let record = client
        .attempt(
            &post("http://127.0.0.1:9/", "{}"),
            &options(Some("whsec_*")),
        )
        .await;
    assert_eq!(record.error_kind, Some(ErrorKind::Connect));
    assert!(
        record
            .error
            .unwrap()
            .starts_with("invalid request: cannot sign")
    );
}

#[test]
fn error_texts_are_one_line() {
    assert_eq!(one_line("a\r\nb\tc"), "a  b c");
    let long = "x".repeat(1000);
    assert_eq!(one_line(&long).chars().count(), ERROR_TEXT_LIMIT + 1);
    assert_eq!(duration_text(Duration::from_secs(3)), "3s");
    assert_eq!(duration_text(Duration::from_millis(300)), "300ms");
}
