//! `rowhook run`: capture → ingest (route, store, acknowledge) → deliver, plus retention
//! pruning, until SIGINT or SIGTERM. Shutdown loses nothing: capture stops reading,
//! ingest makes everything received durable, attempts under way finish.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rowhook::admin::server::{self, AdminState};
use rowhook::config::{Config, SourceMode};
use rowhook::deliver::client::DeliveryClient;
use rowhook::deliver::{Dispatcher, now_ms};
use rowhook::ingest::Ingest;
use rowhook::metrics::Metrics;
use rowhook::route::Router;
use rowhook::shutdown::{Shutdown, ShutdownTrigger};
use rowhook::source::capture::Source;
use rowhook::source::notify::NotifySource;
use rowhook::source::replication::{ReplicationSource, SlotKind};
use rowhook::source::stage::{CaptureStatus, acknowledgement_channel};
use rowhook::store::Store;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tracing::{error, info};

use super::{Failure, database_url, load_config, router, shutdown_on_signals};

const PRUNE_INTERVAL: Duration = Duration::from_secs(60);

pub async fn run(path: &Path) -> Result<(), Failure> {
    let config = load_config(path)?;
    let router = router(&config)?;
    let store = Arc::new(Store::open(&config.store.path).map_err(anyhow::Error::from)?);
    let (trigger, shutdown) = shutdown_on_signals();
    serve(&config, router, store, trigger, shutdown).await
}

/// The service on an open store until `shutdown` fires. When capture ends by itself (a
/// failure at start), it pulls `trigger` so that the other stages stop too. `rowhook run`
/// wires both to SIGINT and SIGTERM; `rowhook demo` triggers them itself.
pub async fn serve(
    config: &Config,
    router: Router,
    store: Arc<Store>,
    trigger: ShutdownTrigger,
    shutdown: Shutdown,
) -> Result<(), Failure> {
    let url = database_url(config)?;
    let client = Arc::new(DeliveryClient::new().map_err(anyhow::Error::from)?);
    // Where replication resumes if the slot is further behind; notify mode's outbox
    // keeps its own place (rows are deleted once durable).
    let start = store.checkpoint().map_err(anyhow::Error::from)?;

    let metrics = Arc::new(Metrics::default());
    let (status_sender, capture_status) = watch::channel(CaptureStatus::default());
    let admin_listener =
        match &config.admin {
            Some(admin) => Some(TcpListener::bind(admin.listen).await.with_context(|| {
                format!("cannot listen on {} for the admin server", admin.listen)
            })?),
            None => None,
        };

    let (dispatcher, waker) = Dispatcher::new(config, store.clone(), client, metrics.clone());
    let (acknowledger, acknowledgements) = acknowledgement_channel();
    let (sender, receiver) = mpsc::channel(4096);
    let ingest = Ingest::new(
        config,
        router,
        store.clone(),
        acknowledger,
        waker.clone(),
        metrics.clone(),
    );
    let admin = admin_listener.map(|listener| {
        let state = AdminState {
            config: Arc::new(config.clone()),
            store: store.clone(),
            metrics: metrics.clone(),
            capture: capture_status,
            waker,
        };
        info!(listen = %config.admin.as_ref().map(|admin| admin.listen.to_string()).unwrap_or_default(), "admin server listening");
        tokio::spawn(server::serve(listener, state, shutdown.clone()))
    });

    let delivery = tokio::spawn(dispatcher.run(shutdown.clone()));
    let pruning = tokio::spawn(prune(store.clone(), config.clone(), shutdown.clone()));
    let ingesting = tokio::spawn(ingest.run(receiver));
    info!(
        models = config.models.len(),
        webhooks = config.webhooks.len(),
        "rowhook running"
    );
    let source = match config.source.mode {
        SourceMode::Replication => Source::Replication(ReplicationSource {
            url,
            slot: SlotKind::Persistent {
                name: config.source.slot.clone(),
            },
            publication: config.source.publication.clone(),
            start,
            status: Some(status_sender),
        }),
        SourceMode::Notify => Source::Notify(NotifySource {
            url,
            status: Some(status_sender),
            delete_drained: true,
        }),
    };
    let captured = source.run(sender, acknowledgements, shutdown.clone()).await;
    // Capture has stopped (shutdown, or a failure at start): ingest drains and flushes.
    let ingested = ingesting.await.context("the ingest task failed")?;
    // When capture ended on its own (a failure at start), stop the other stages too.
    trigger.trigger();
    let _ = delivery.await;
    let _ = pruning.await;
    if let Some(admin) = admin
        && let Ok(Err(error)) = admin.await
    {
        error!(%error, "admin server failed");
    }
    store.flush().await.map_err(anyhow::Error::from)?;
    captured.map_err(anyhow::Error::from)?;
    ingested.context("storing events failed")?;
    info!("rowhook stopped");
    Ok(())
}

async fn prune(store: Arc<Store>, config: Config, mut shutdown: Shutdown) {
    let retention = config.store.retention.as_millis() as u64;
    loop {
        match store.prune(now_ms().saturating_sub(retention)) {
            Ok(0) => {}
            Ok(pruned) => info!(pruned, "old events pruned"),
            Err(error) => error!(%error, "pruning failed"),
        }
        tokio::select! {
            _ = shutdown.requested() => return,
            _ = tokio::time::sleep(PRUNE_INTERVAL) => {}
        }
    }
}
