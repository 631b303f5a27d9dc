//! A local HTTP receiver whose answers the test scripts, recording every request.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinSet;

#[derive(Clone, Debug)]
pub(crate) struct Received {
    pub method: String,
    /// Path and query.
    pub target: String,
    /// Lower-case names.
    pub headers: HashMap<String, String>,
    pub body: String,
    pub at: Instant,
}

impl Received {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|error| panic!("{}: {error}", self.body))
    }
}

/// What the receiver answers.
#[derive(Clone, Debug)]
pub(crate) enum Reply {
    Status(u16),
    Redirect(String),
    /// Never answer (the connection stays open).
    Hang,
    /// Answer with this status and, as the body, what was received (target and body).
    Echo(u16),
}

type Responder = Arc<dyn Fn(&Received) -> Reply + Send + Sync>;

pub(crate) struct Receiver {
    pub address: SocketAddr,
    requests: Arc<Mutex<Vec<Received>>>,
    responder: Arc<Mutex<Responder>>,
    arrived: Arc<Notify>,
    server: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub(crate) async fn start() -> Receiver {
        Self::start_on(0).await
    }

    /// Starts on `port` (0 for any free one).
    pub(crate) async fn start_on(port: u16) -> Receiver {
        Self::start_at(SocketAddr::from(([127, 0, 0, 1], port)))
            .await
            .expect("bind receiver")
    }

    /// Starts on `address`, which may be unavailable (such as `[::1]` without IPv6).
    pub(crate) async fn start_at(address: SocketAddr) -> std::io::Result<Receiver> {
        let listener = TcpListener::bind(address).await?;
        let address = listener.local_addr()?;
        let requests = Arc::new(Mutex::new(Vec::new()));
        let responder: Arc<Mutex<Responder>> =
            Arc::new(Mutex::new(Arc::new(|_: &Received| Reply::Status(200))));
        let arrived = Arc::new(Notify::new());
        let server = tokio::spawn(serve(
            listener,
            requests.clone(),
            responder.clone(),
            arrived.clone(),
        ));
        Ok(Receiver {
            address,
            requests,
            responder,
            arrived,
            server,
        })
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    pub(crate) fn respond_with(
        &self,
        responder: impl Fn(&Received) -> Reply + Send + Sync + 'static,
    ) {
        *self.responder.lock().unwrap() = Arc::new(responder);
    }

    pub(crate) fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    /// When the latest request arrived.
    pub(crate) fn last_arrival(&self) -> Option<Instant> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|request| request.at)
            .max()
    }

    /// How many requests so far `predicate` holds for, without copying them.
    pub(crate) fn count_where(&self, predicate: impl Fn(&Received) -> bool) -> usize {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|request| predicate(request))
            .count()
    }

    pub(crate) fn requests(&self) -> Vec<Received> {
        self.requests.lock().unwrap().clone()
    }

    /// Waits until at least `count` requests arrived; panics after `limit`.
    pub(crate) async fn wait_for(&self, count: usize, limit: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.arrived.notified();
            // Counted, not copied, on every arrival: tens of thousands of requests would
            // otherwise be copied once per request.
            if self.count() >= count {
                return self.requests();
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let requests = self.requests();
                let targets: Vec<&String> = requests.iter().map(|r| &r.target).take(50).collect();
                panic!(
                    "expected {count} requests, got {} (the first to {targets:#?})",
                    requests.len(),
                );
            }
        }
    }

    /// Stops listening and drops every open connection: the endpoint is down.
    pub(crate) fn stop(self) -> u16 {
        self.server.abort();
        self.address.port()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn serve(
    listener: TcpListener,
    requests: Arc<Mutex<Vec<Received>>>,
    responder: Arc<Mutex<Responder>>,
    arrived: Arc<Notify>,
) {
    // Connections live in this set, so aborting the server task closes them all.
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let requests = requests.clone();
        let responder = responder.clone();
        let arrived = arrived.clone();
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let requests = requests.clone();
            let responder = responder.clone();
            let arrived = arrived.clone();
            async move { handle(request, requests, responder, arrived).await }
        });
        connections.spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
        while connections.try_join_next().is_some() {}
    }
}

async fn handle(
    request: Request<Incoming>,
    requests: Arc<Mutex<Vec<Received>>>,
    responder: Arc<Mutex<Responder>>,
    arrived: Arc<Notify>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let method = request.method().to_string();
    let target = request
        .uri()
        .path_and_query()
        .map(ToString::to_string)
        .unwrap_or_default();
    let headers = request
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = request
        .into_body()
        .collect()
        .await
        .map(|body| body.to_bytes())
        .unwrap_or_default();
    let received = Received {
        method,
        target,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        at: Instant::now(),
    };
    let responder = responder.lock().unwrap().clone();
    let reply = responder(&received);
    let echoed = format!("{} {}", received.target, received.body);
    requests.lock().unwrap().push(received);
    arrived.notify_waiters();
    let response = match reply {
        Reply::Status(code) => Response::builder()
            .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
            .body(Full::new(Bytes::from(format!("answered {code}")))),
        Reply::Redirect(location) => Response::builder()
            .status(StatusCode::FOUND)
            .header("location", location)
            .body(Full::new(Bytes::new())),
        Reply::Echo(code) => Response::builder()
            .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
            .body(Full::new(Bytes::from(echoed))),
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Response::builder()
                .status(StatusCode::OK)
                .body(Full::new(Bytes::new()))
        }
    };
    Ok(response.unwrap_or_default())
}
