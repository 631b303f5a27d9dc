//! A local webhook receiver for trying rowhook out: it takes any request on any path,
//! verifies its Standard Webhooks signature when given a secret, answers with the
//! status its owner chooses, and hands every request on as a [`Receipt`].
//! `rowhook receive` prints them; `rowhook demo` tells its story with them.

mod render;
mod verify;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::shutdown::Shutdown;
use crate::time::now_ms;

pub use render::{JsonLayout, body_text, header_lines, render, separator};
pub use verify::{SignatureCheck, TIMESTAMP_TOLERANCE_SECONDS, check_signature};

/// After shutdown is asked for, how long open connections get to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the receiver stopped: {0}")]
    Serve(#[source] std::io::Error),
}

/// One request as it arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedRequest {
    /// Unix time in milliseconds.
    pub received_at_ms: u64,
    pub method: String,
    /// The path and the query string.
    pub target: String,
    /// In the order received; names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl ReceivedRequest {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header == name)
            .map(|(_, value)| value.as_str())
    }
}

/// A request, the verdict on its signature (when the receiver has a secret), and the
/// status it was answered with.
#[derive(Clone, Debug)]
pub struct Receipt {
    pub request: ReceivedRequest,
    pub signature: Option<SignatureCheck>,
    pub status: u16,
}

/// Chooses the status each request is answered with.
pub type Answer = Arc<dyn Fn(&ReceivedRequest) -> StatusCode + Send + Sync>;

/// What the receiver does with each request.
pub struct Receiver {
    /// The `whsec_…` secret signatures are verified with; `None` verifies nothing.
    pub secret: Option<String>,
    pub answer: Answer,
    /// Where every [`Receipt`] goes, in the order requests were answered.
    pub receipts: mpsc::UnboundedSender<Receipt>,
}

impl fmt::Debug for Receiver {
    // By hand, so that the secret never reaches a log line.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Receiver")
            .field("secret", &self.secret.as_ref().map(|_| "••••"))
            .finish_non_exhaustive()
    }
}

/// Binds `address`; a separate step so that a caller can report the port before serving.
pub async fn listen(address: SocketAddr) -> Result<TcpListener, ReceiveError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| ReceiveError::Listen { address, source })
}

/// Answers every request on `listener` until shutdown; connections still open then get
/// a short grace period. The receipts channel closes when this returns.
pub async fn serve(
    listener: TcpListener,
    receiver: Receiver,
    shutdown: Shutdown,
) -> Result<(), ReceiveError> {
    let router = axum::Router::new()
        .fallback(handle)
        .with_state(Arc::new(receiver));
    let mut graceful = shutdown.clone();
    let server = axum::serve(listener, router)
        .with_graceful_shutdown(async move { graceful.requested().await });
    let mut deadline = shutdown;
    tokio::select! {
        served = server => served.map_err(ReceiveError::Serve),
        () = async move {
            deadline.requested().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => Ok(()),
    }
}

async fn handle(
    State(receiver): State<Arc<Receiver>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let request = ReceivedRequest {
        received_at_ms: now_ms(),
        method: method.to_string(),
        target: uri
            .path_and_query()
            .map_or_else(|| uri.path().to_string(), ToString::to_string),
        headers: headers
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_string(), value)
            })
            .collect(),
        body: body.to_vec(),
    };
    let now_seconds = i64::try_from(request.received_at_ms / 1000).unwrap_or(i64::MAX);
    let signature = receiver
        .secret
        .as_deref()
        .map(|secret| check_signature(secret, &request, now_seconds));
    let status = (receiver.answer)(&request);
    // The owner may have stopped listening (e.g. while shutting down); the request is
    // still answered.
    let _ = receiver.receipts.send(Receipt {
        request,
        signature,
        status: status.as_u16(),
    });
    let reason = status.canonical_reason().unwrap_or("");
    (status, format!("{} {reason}\n", status.as_u16()))
}
