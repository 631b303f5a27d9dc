//! One delivery attempt: send a stored request once and turn whatever happens into an
//! [`Attempt`]. Every failure becomes a record, never a panic or a lost error.
//!
//! Contract (CONTRACT §2, §3, §6):
//! - only a `2xx` answer, received in full (or up to the 4 KiB we read) within the
//!   timeout, is a success; redirects are never followed;
//! - the timeout covers the whole exchange: connect, TLS, sending, the answer's head and
//!   the body we read;
//! - the first 4 KiB of the response body are kept, and no more is downloaded;
//! - with `delivery.deny` (CONTRACT §12), no connection is made to a denied address.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, LOCATION};
use reqwest::{Method, StatusCode, Url, redirect};

use crate::deliver::failure::{
    Failure, body_failure, cause_text, denied_failure, invalid_request, redirect_failure,
    sending_failure, status_line, timeout_failure,
};
use crate::deliver::guard::{GuardedResolver, denied_literal, ignored_proxy_variables};
use crate::deny::DenyList;
use crate::event::{Attempt, ErrorKind, Request};
use crate::outgoing::Outgoing;
use crate::time::unix_ms;

/// How much of a response body an attempt keeps (CONTRACT §6).
pub const RESPONSE_BODY_LIMIT: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot build the HTTP client: {0}")]
    Build(#[source] reqwest::Error),
}

/// What one attempt needs besides the stored request.
#[derive(Clone, Copy, Debug)]
pub struct AttemptOptions<'a> {
    /// 1 for the first attempt; redeliveries continue the numbering.
    pub number: u32,
    /// The headers delivery adds to the stored ones.
    pub outgoing: Outgoing<'a>,
    pub timeout: Duration,
}

/// One connection pool shared by every webhook; cheap to clone.
#[derive(Clone, Debug)]
pub struct DeliveryClient {
    http: reqwest::Client,
    deny: Arc<DenyList>,
}

impl DeliveryClient {
    /// A client that refuses the addresses `deny` names; an empty list refuses none.
    pub fn new(deny: &DenyList) -> Result<DeliveryClient, ClientError> {
        let deny = Arc::new(deny.clone());
        let mut builder = reqwest::Client::builder().redirect(redirect::Policy::none());
        // Without a deny list, proxy variables (HTTPS_PROXY, NO_PROXY) are honoured, as
        // reqwest does by default: egress from a database host often has to go through one.
        if !deny.is_empty() {
            // Through a proxy, the proxy resolves and dials the target and the guard
            // would see only the proxy's address: with a deny list, connect directly.
            let ignored = ignored_proxy_variables(&|name| std::env::var(name).ok());
            if !ignored.is_empty() {
                tracing::warn!(
                    variables = %ignored.join(", "),
                    "delivery.deny is set, so proxy variables are ignored: the guard must see the addresses delivery connects to"
                );
            }
            builder = builder.no_proxy().dns_resolver(GuardedResolver {
                deny: Arc::clone(&deny),
            });
        }
        let http = builder.build().map_err(ClientError::Build)?;
        Ok(DeliveryClient { http, deny })
    }

    /// Sends `request` once and records the outcome.
    pub async fn attempt(&self, request: &Request, options: &AttemptOptions<'_>) -> Attempt {
        let started_at_ms = unix_ms(SystemTime::now());
        let timestamp = i64::try_from(started_at_ms / 1000).unwrap_or(i64::MAX);
        let clock = Instant::now();
        let mut answer = Answer::default();

        // This timeout bounds the whole exchange, our reading of the body included, and
        // leaves `answer` holding what arrived before the deadline.
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
        Attempt {
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
        request: &Request,
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
        request: &Request,
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
        if let Some(denied) = denied_literal(&self.deny, &url) {
            return Err(denied_failure(&denied));
        }
        let headers = options
            .outgoing
            .headers(request, timestamp)
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

        // No timeout of reqwest's own: the one around the whole exchange in `attempt`
        // bounds everything, and a second timer per request is not free.
        let mut builder = self.http.request(method, url).headers(header_map);
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

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "client_deny_tests.rs"]
mod deny_tests;
