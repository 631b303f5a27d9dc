//! The admin HTTP server: routes, token auth on all but `/healthz` and `/metrics`, and
//! graceful shutdown.

use std::sync::Arc;

use axum::Router;
use axum::middleware;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::{api, auth, backfills, inbound, pages};
use crate::backfill::Backfills;
use crate::capture::CaptureStatus;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;
use crate::store::EventStore;

/// What every handler reads: the config, the history, counters and the capture status.
#[derive(Clone)]
pub struct AdminState {
    pub config: Arc<Config>,
    pub store: Arc<dyn EventStore>,
    pub metrics: Arc<Metrics>,
    pub capture: watch::Receiver<CaptureStatus>,
    /// The service's backfill jobs; `None` where no service runs them.
    pub backfills: Option<Arc<Backfills>>,
}

/// All routes. Probes (`/healthz`, `/metrics`) are open so monitoring needs no token;
/// everything else requires it.
pub fn router(state: AdminState) -> Router {
    let protected = Router::new()
        .route("/api/webhooks", get(api::webhooks))
        .route("/api/webhooks/{name}/pause", post(api::pause))
        .route("/api/webhooks/{name}/resume", post(api::resume))
        .route("/api/events", get(api::events))
        .route("/api/inbound", get(inbound::list))
        .route("/inbound", get(inbound::page))
        .route("/api/events/{id}", get(api::event))
        .route("/api/events/{id}/redeliver", post(api::redeliver))
        .route("/api/redeliver", post(api::redeliver_matching))
        .route(
            "/api/backfills",
            get(backfills::list).post(backfills::start),
        )
        .route("/api/backfills/{id}", get(backfills::show))
        .route("/api/backfills/{id}/cancel", post(backfills::cancel))
        .route("/", get(pages::home))
        .route("/webhooks/{name}", get(pages::webhook))
        .route("/rows", get(pages::rows))
        .route("/events/{id}", get(pages::event))
        .route("/events/{id}/redeliver", post(pages::redeliver))
        .route("/webhooks/{name}/pause", post(pages::pause))
        .route("/webhooks/{name}/resume", post(pages::resume))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    Router::new()
        .route("/healthz", get(api::healthz))
        .route("/metrics", get(api::metrics))
        .merge(protected)
        .with_state(state)
}

/// Serves until `shutdown` is requested, then lets requests under way finish.
pub async fn serve(
    listener: TcpListener,
    state: AdminState,
    mut shutdown: Shutdown,
) -> std::io::Result<()> {
    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, "admin server listening");
    }
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { shutdown.requested().await })
        .await
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
