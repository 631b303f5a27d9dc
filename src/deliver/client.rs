//! One delivery attempt: send a stored request once and turn whatever happens into an
//! [`AttemptRecord`]. Every failure becomes a record, never a panic or a lost error.
//!
//! Contract (CONTRACT §2, §3, §6):
//! - only a `2xx` answer, received in full (or up to the 4 KiB we read) within the
//!   timeout, is a success; redirects are never followed;
//! - the timeout covers the whole exchange: connect, TLS, sending, the answer's head and
//!   the body we read;
//! - the first 4 KiB of the response body are kept, and no more is downloaded.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, LOCATION};
use reqwest::{Method, StatusCode, Url, redirect};

use crate::deliver::signature::{self, SignatureError};
use crate::store::records::{AttemptRecord, ErrorKind, StoredRequest};

/// How much of a response body an attempt keeps (CONTRACT §6).
pub const RESPONSE_BODY_LIMIT: usize = 4096;

const USER_AGENT: &str = concat!("rowhook/", env!("CARGO_PKG_VERSION"));
const WEBHOOK_ID: &str = "webhook-id";
const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
const WEBHOOK_SIGNATURE: &str = "webhook-signature";
/// Error texts are shown on one line in tables; longer causes are cut here.
const ERROR_TEXT_LIMIT: usize = 300;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot build the HTTP client: {0}")]
    Build(#[source] reqwest::Error),
}

/// What one attempt needs besides the stored request.
#[derive(Clone, Copy)]
pub struct AttemptOptions<'a> {
    /// 1 for the first attempt; redeliveries continue the numbering.
    pub number: u32,
    pub event_id: &'a str,
    /// The header that carries the event id (`[delivery] event_id_header`).
    pub event_id_header: &'a str,
    /// The Standard Webhooks `whsec_…` secret, when the webhook signs its requests.
    pub secret: Option<&'a str>,
    pub timeout: Duration,
}

impl fmt::Debug for AttemptOptions<'_> {
    // Written by hand so that the secret never reaches a log line.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("AttemptOptions")
            .field("number", &self.number)
            .field("event_id", &self.event_id)
            .field("event_id_header", &self.event_id_header)
            .field("secret", &self.secret.map(|_| "••••"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The headers an attempt sends, in order: the stored headers, `user-agent` unless the
/// stored headers set one, the event-id header, and with a secret the three Standard
/// Webhooks headers signed over the stored body (empty when there is none).
///
/// The headers rowhook owns (the event-id header, and the signing headers when signing)
/// replace stored headers of the same name, compared case-insensitively, so the receiver
/// sees exactly one value and it is the one that verifies. `webhook-id` is sent once when
/// it is also the event-id header.
///
/// Fails only when the secret cannot be used, which configuration validation prevents.
pub fn outgoing_headers(
    request: &StoredRequest,
    options: &AttemptOptions,
    timestamp: i64,
) -> Result<Vec<(String, String)>, SignatureError> {
    let body = request.body.as_deref().unwrap_or_default().as_bytes();
    let signature = options
        .secret
        .map(|secret| signature::sign(secret, options.event_id, timestamp, body))
        .transpose()?;

    let mut owned = vec![options.event_id_header];
    if signature.is_some() {
        owned.extend([WEBHOOK_ID, WEBHOOK_TIMESTAMP, WEBHOOK_SIGNATURE]);
    }
    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .filter(|(name, _)| !owned.iter().any(|own| own.eq_ignore_ascii_case(name)))
        .cloned()
        .collect();

    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("user-agent"))
    {
        headers.push(("user-agent".to_owned(), USER_AGENT.to_owned()));
    }
    headers.push((
        options.event_id_header.to_owned(),
        options.event_id.to_owned(),
    ));
    if let Some(signature) = signature {
        if !options.event_id_header.eq_ignore_ascii_case(WEBHOOK_ID) {
            headers.push((WEBHOOK_ID.to_owned(), options.event_id.to_owned()));
        }
        headers.push((WEBHOOK_TIMESTAMP.to_owned(), timestamp.to_string()));
        headers.push((WEBHOOK_SIGNATURE.to_owned(), signature));
    }
    Ok(headers)
}

/// One connection pool shared by every webhook; cheap to clone.
#[derive(Clone, Debug)]
pub struct DeliveryClient {
    http: reqwest::Client,
}

impl DeliveryClient {
    pub fn new() -> Result<DeliveryClient, ClientError> {
        // Proxy variables (HTTPS_PROXY, NO_PROXY) are honoured, as reqwest does by
        // default: egress from a database host often has to go through one.
        let http = reqwest::Client::builder()
            .redirect(redirect::Policy::none())
            .build()
            .map_err(ClientError::Build)?;
        Ok(DeliveryClient { http })
    }

    /// Sends `request` once and records the outcome.
    pub async fn attempt(
        &self,
        request: &StoredRequest,
        options: &AttemptOptions<'_>,
    ) -> AttemptRecord {
        let started_at_ms = unix_milliseconds(SystemTime::now());
        let timestamp = i64::try_from(started_at_ms / 1000).unwrap_or(i64::MAX);
        let clock = Instant::now();
        let mut answer = Answer::default();

        // reqwest enforces the same timeout on its side; this outer one bounds the whole
        // exchange whatever reqwest does, our reading of the body included, and leaves
        // `answer` holding what arrived before the deadline.
        let exchange = self.exchange(request, options, timestamp, &mut answer);
        let outcome = match tokio::time::timeout(options.timeout, exchange).await {
            Ok(outcome) => outcome,
            // A non-2xx head fails the attempt whatever the body does; say what it was.
            Err(_elapsed) => match answer.failure.take() {
                Some(failure) => Err(failure),
                None => Err(timeout_failure(options.timeout, answer.status)),
            },
        };

        let (error_kind, error) = match outcome {
            Ok(()) => (None, None),
            Err(failure) => (Some(failure.kind), Some(failure.text)),
        };
        AttemptRecord {
            number: options.number,
            started_at_ms,
            duration_ms: u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX),
            status_code: answer.status.map(|status| status.as_u16()),
            error_kind,
            error,
            response_body: body_text(&answer.body),
        }
    }

    /// Everything `answer` learns is written as soon as it is known, so that a timeout
    /// that drops this future still leaves the status and the body read so far.
    async fn exchange(
        &self,
        request: &StoredRequest,
        options: &AttemptOptions<'_>,
        timestamp: i64,
        answer: &mut Answer,
    ) -> Result<(), Failure> {
        let prepared = self.prepare(request, options, timestamp)?;
        let mut response = self
            .http
            .execute(prepared)
            .await
            .map_err(|error| sending_failure(&error, options.timeout))?;

        let status = response.status();
        answer.status = Some(status);
        if status.is_redirection() {
            let location = response
                .headers()
                .get(LOCATION)
                .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
            answer.failure = Some(redirect_failure(status, location));
        } else if !status.is_success() {
            answer.failure = Some(Failure::new(ErrorKind::Status, status_line(status)));
        }

        let read = read_limited(&mut response, &mut answer.body).await;
        if let Some(failure) = answer.failure.take() {
            return Err(failure);
        }
        read.map_err(|error| body_failure(&error, status, options.timeout))
    }

    /// Builds the HTTP request. A stored request that HTTP cannot carry fails as
    /// `connect`: it never reached the receiver, which is what that kind tells an admin,
    /// and the text says why. Configuration validation keeps this from happening.
    fn prepare(
        &self,
        request: &StoredRequest,
        options: &AttemptOptions<'_>,
        timestamp: i64,
    ) -> Result<reqwest::Request, Failure> {
        let method = Method::from_bytes(request.method.as_bytes())
            .map_err(|_| invalid_request(format!("{:?} is not an HTTP method", request.method)))?;
        // The URL itself is left out of these texts: it may hold a password.
        let url = Url::parse(&request.url)
            .map_err(|error| invalid_request(format!("the URL is not valid: {error}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid_request(format!(
                "URL scheme {:?} is not http or https",
                url.scheme()
            )));
        }
        let headers = outgoing_headers(request, options, timestamp)
            .map_err(|error| invalid_request(format!("cannot sign: {error}")))?;

        let mut header_map = HeaderMap::with_capacity(headers.len());
        for (name, value) in headers {
            let header_name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| invalid_request(format!("{name:?} is not a valid header name")))?;
            // Header values can be secrets: name the header, never show the value.
            let header_value = HeaderValue::from_bytes(value.as_bytes()).map_err(|_| {
                invalid_request(format!("header {name:?} has a value HTTP cannot carry"))
            })?;
            header_map.append(header_name, header_value);
        }

        let mut builder = self
            .http
            .request(method, url)
            .headers(header_map)
            .timeout(options.timeout);
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        builder
            .build()
            .map_err(|error| invalid_request(cause_text(&error)))
    }
}

/// What the receiver has said so far.
#[derive(Default)]
struct Answer {
    status: Option<StatusCode>,
    body: Vec<u8>,
    /// Set once the head shows the attempt failed, before the body is read.
    failure: Option<Failure>,
}

struct Failure {
    kind: ErrorKind,
    /// One line, for the attempt log.
    text: String,
}

impl Failure {
    fn new(kind: ErrorKind, text: String) -> Failure {
        Failure {
            kind,
            text: one_line(&text),
        }
    }
}

fn invalid_request(reason: String) -> Failure {
    Failure::new(ErrorKind::Connect, format!("invalid request: {reason}"))
}

/// Reads up to [`RESPONSE_BODY_LIMIT`] bytes and stops: the rest is never downloaded,
/// and the connection is dropped rather than reused.
async fn read_limited(
    response: &mut reqwest::Response,
    body: &mut Vec<u8>,
) -> Result<(), reqwest::Error> {
    while body.len() < RESPONSE_BODY_LIMIT {
        let Some(chunk) = response.chunk().await? else {
            break;
        };
        let room = RESPONSE_BODY_LIMIT - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }
    Ok(())
}

/// The kept body as text. A multi-byte character cut by the 4 KiB limit is dropped
/// rather than shown as a replacement character; other invalid UTF-8 is replaced.
fn body_text(body: &[u8]) -> String {
    let complete = match std::str::from_utf8(body) {
        Err(error) if error.error_len().is_none() => &body[..error.valid_up_to()],
        _ => body,
    };
    String::from_utf8_lossy(complete).into_owned()
}

fn sending_failure(error: &reqwest::Error, timeout: Duration) -> Failure {
    if error.is_timeout() {
        return timeout_failure(timeout, None);
    }
    if let Some(tls) = tls_cause(error) {
        return Failure::new(ErrorKind::Tls, format!("TLS handshake failed: {tls}"));
    }
    if error.is_connect() {
        return Failure::new(ErrorKind::Connect, connect_text(error));
    }
    if is_malformed_answer(error) {
        return Failure::new(
            ErrorKind::Body,
            format!("the answer is not valid HTTP: {}", cause_text(error)),
        );
    }
    // The connection was made but closed or reset before a full answer head arrived.
    Failure::new(ErrorKind::Connect, connect_text(error))
}

fn body_failure(error: &reqwest::Error, status: StatusCode, timeout: Duration) -> Failure {
    if error.is_timeout() {
        return timeout_failure(timeout, Some(status));
    }
    Failure::new(
        ErrorKind::Body,
        format!(
            "{} but the body could not be read: {}",
            status_line(status),
            cause_text(error)
        ),
    )
}

fn timeout_failure(timeout: Duration, status: Option<StatusCode>) -> Failure {
    let within = duration_text(timeout);
    let text = match status {
        None => format!("no answer within {within}"),
        Some(status) => format!(
            "no complete answer within {within} ({} received, body unfinished)",
            status_line(status)
        ),
    };
    Failure::new(ErrorKind::Timeout, text)
}

fn redirect_failure(status: StatusCode, location: Option<String>) -> Failure {
    let text = match location {
        Some(location) => format!(
            "redirect to {location} not followed ({})",
            status_line(status)
        ),
        None => format!("{} without a location, not followed", status_line(status)),
    };
    Failure::new(ErrorKind::Redirect, text)
}

fn status_line(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("HTTP {} {reason}", status.as_u16()),
        None => format!("HTTP {}", status.as_u16()),
    }
}

fn connect_text(error: &reqwest::Error) -> String {
    let plain = causes(error).find_map(|cause| {
        let io_error = cause.downcast_ref::<io::Error>()?;
        match io_error.kind() {
            io::ErrorKind::ConnectionRefused => Some("connection refused"),
            io::ErrorKind::ConnectionReset => Some("connection reset before an answer"),
            io::ErrorKind::ConnectionAborted => Some("connection aborted before an answer"),
            io::ErrorKind::BrokenPipe => Some("connection closed while sending the request"),
            _ => None,
        }
    });
    match plain {
        Some(text) => text.to_owned(),
        None if error.is_dns() => format!("DNS lookup failed: {}", cause_text(error)),
        None => cause_text(error),
    }
}

/// The rustls error, or another TLS-marked cause, behind a failed send.
fn tls_cause(error: &reqwest::Error) -> Option<String> {
    if let Some(rustls_error) =
        causes(error).find_map(|cause| cause.downcast_ref::<rustls::Error>())
    {
        return Some(rustls_error.to_string());
    }
    // tokio-rustls reports some handshake failures (an early EOF) as plain io errors.
    causes(error).skip(1).find_map(|cause| {
        let text = cause.to_string();
        let lower = text.to_ascii_lowercase();
        ["tls", "ssl", "certificate", "handshake"]
            .iter()
            .any(|marker| lower.contains(marker))
            .then_some(text)
    })
}

/// hyper's parse errors: the peer answered, but not with HTTP.
fn is_malformed_answer(error: &reqwest::Error) -> bool {
    const MARKERS: [&str; 6] = [
        "invalid HTTP",
        "message head is too large",
        "invalid URI",
        "URI too long",
        "received unexpected message",
        "invalid chunk",
    ];
    causes(error).skip(1).any(|cause| {
        let text = cause.to_string();
        MARKERS.iter().any(|marker| text.contains(marker))
    })
}

/// The error and its causes, outermost first. `io::Error` hides a wrapped error from
/// `source()` (it returns the wrapped error's own source), so it is unwrapped by hand:
/// that is where rustls and hyper errors sit.
fn causes<'a>(
    error: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(error), |&current| {
        match current
            .downcast_ref::<io::Error>()
            .and_then(|io_error| io_error.get_ref())
        {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => current.source(),
        }
    })
}

/// The innermost cause: the one that says what went wrong ("connection refused", "end
/// of file before message length reached") without the wrappers' repeats. reqwest's
/// own message is used only when there is nothing below it, cut before the URL, which
/// may hold a password.
fn cause_text(error: &reqwest::Error) -> String {
    match causes(error).skip(1).last() {
        Some(innermost) => innermost.to_string(),
        None => {
            let whole = error.to_string();
            match whole.split_once(" for url (") {
                Some((message, _url)) => message.to_owned(),
                None => whole,
            }
        }
    }
}

fn duration_text(duration: Duration) -> String {
    let milliseconds = duration.as_millis();
    if milliseconds.is_multiple_of(1000) {
        format!("{}s", milliseconds / 1000)
    } else {
        format!("{milliseconds}ms")
    }
}

/// Control characters become spaces and long texts are cut, so that one error is one
/// line in every listing.
fn one_line(text: &str) -> String {
    let mut line: String = text
        .chars()
        .map(|character| {
            if character.is_control() {
                ' '
            } else {
                character
            }
        })
        .take(ERROR_TEXT_LIMIT)
        .collect();
    if text.chars().count() > ERROR_TEXT_LIMIT {
        line.push('…');
    }
    line
}

fn unix_milliseconds(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH)
        .map(|since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
