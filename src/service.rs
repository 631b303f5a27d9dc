//! The service `rowhook run` is: capture → ingest → store → deliver, the admin server
//! and retention pruning, wired together until a shutdown signal. Shutdown loses
//! nothing: capture stops reading, ingest makes everything received durable, attempts
//! under way finish and are recorded.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};

use crate::admin::{self, AdminState};
use crate::alert::{self, Alerter};
use crate::backfill::{BackfillParts, Backfills};
use crate::capture::acknowledgement_channel;
use crate::capture::notify::NotifySource;
use crate::capture::replication::{ReplicationSource, SlotKind};
use crate::capture::{CaptureStatus, Source, SourceError};
use crate::config::{Config, SourceMode};
use crate::deliver::Dispatcher;
use crate::deliver::{ClientError, DeliveryClient};
use crate::event::Lane;
use crate::inbound::InboundParts;
use crate::ingest::{Ingest, IngestParts, Routing};
use crate::metrics::Metrics;
use crate::model::Relations;
use crate::postgres::{DatabaseUrl, DatabaseUrlError};
use crate::route::Router;
use crate::shutdown::{Shutdown, ShutdownTrigger};
use crate::store::{EventStore, StoreError};
use crate::time::now_ms;

const PRUNE_INTERVAL: Duration = Duration::from_secs(60);
/// Changes in flight between capture and ingest.
const CAPTURE_QUEUE: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("source.url: {0}")]
    DatabaseUrl(#[source] DatabaseUrlError),
    #[error("cannot listen on {address} for the admin server: {source}")]
    AdminListen {
        address: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on {address} for inbound webhooks: {source}")]
    InboundListen {
        address: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("storing events failed: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Capture(#[from] SourceError),
    #[error("the {0} task failed")]
    Task(&'static str),
}

impl ServiceError {
    /// Whether the configuration is at fault (exit code 2) rather than the run.
    pub fn is_configuration(&self) -> bool {
        matches!(self, ServiceError::DatabaseUrl(_))
    }
}

/// Runs the service on an open store until `shutdown` fires. When capture ends by itself
/// (a failure an operator must fix), it pulls `trigger` so that the other stages stop
/// too. `rowhook run` wires both to SIGINT and SIGTERM; `rowhook demo` triggers them.
pub async fn serve(
    config: &Config,
    router: Router,
    store: Arc<dyn EventStore>,
    trigger: ShutdownTrigger,
    shutdown: Shutdown,
) -> Result<(), ServiceError> {
    let url = DatabaseUrl::parse(&config.source.url).map_err(ServiceError::DatabaseUrl)?;
    let router = Arc::new(router);
    let client = DeliveryClient::new(&config.deny)?;
    // Where replication resumes if the slot is further behind; notify mode's outbox
    // keeps its own place (rows are deleted once durable).
    let start = store.resume_position().await?.unwrap_or_default();
    if crate::store::is_shared(&config.store) {
        warn_about_other_configurations(config, store.as_ref()).await?;
    }

    let metrics = Arc::new(Metrics::default());
    let (status_sender, capture_status) = watch::channel(CaptureStatus::default());
    let admin_listener = match &config.admin {
        Some(admin) => Some(TcpListener::bind(admin.listen).await.map_err(|source| {
            ServiceError::AdminListen {
                address: admin.listen,
                source,
            }
        })?),
        None => None,
    };
    let inbound_listener = match &config.inbound {
        Some(inbound) => Some((
            inbound.clone(),
            TcpListener::bind(inbound.listen).await.map_err(|source| {
                ServiceError::InboundListen {
                    address: inbound.listen,
                    source,
                }
            })?,
        )),
        None => None,
    };

    let (alert_sender, alert_signals) = alert::channel_pair();
    let dispatcher = Dispatcher::new(config, store.clone(), client, metrics.clone(), alert_sender);
    let (acknowledger, acknowledgements) = acknowledgement_channel();
    let (sender, receiver) = mpsc::channel(CAPTURE_QUEUE);
    let relations = Arc::new(Relations::new(config, url.clone(), metrics.clone()));
    let ingest = Ingest::new(
        config,
        IngestParts {
            router: router.clone(),
            store: store.clone(),
            acknowledger,
            metrics: metrics.clone(),
            relations,
            shutdown: shutdown.clone(),
        },
    );
    let shared_config = Arc::new(config.clone());
    // Backfills look relations up on connections of their own, so that a large job
    // never makes live changes wait for a lookup connection.
    let backfill_relations = Arc::new(Relations::new(config, url.clone(), metrics.clone()));
    let backfills = Backfills::open(BackfillParts {
        config: shared_config.clone(),
        store: store.clone(),
        routing: Arc::new(Routing::new(
            config,
            router.clone(),
            backfill_relations.clone(),
            Lane::Backfill,
        )),
        relations: backfill_relations,
        url: url.clone(),
        shutdown: shutdown.clone(),
    })
    .await?;
    // Alerts are raised only where a target hears them.
    let alerting = (!config.alerts.is_empty()).then(|| {
        let alerter = Alerter::new(
            shared_config.clone(),
            router.clone(),
            store.clone(),
            alert_signals,
            capture_status.clone(),
        );
        tokio::spawn(alerter.run(shutdown.clone()))
    });
    let admin = admin_listener.map(|listener| {
        let state = AdminState {
            config: shared_config.clone(),
            store: store.clone(),
            metrics: metrics.clone(),
            capture: capture_status,
            backfills: Some(backfills.clone()),
        };
        tokio::spawn(admin::serve(listener, state, shutdown.clone()))
    });

    let inbound = inbound_listener.map(|(inbound, listener)| {
        let parts = InboundParts {
            config: inbound,
            url: url.clone(),
            store: store.clone(),
            metrics: metrics.clone(),
        };
        tokio::spawn(crate::inbound::serve(listener, parts, shutdown.clone()))
    });
    let delivery = tokio::spawn(dispatcher.run(shutdown.clone()));
    let pruning = tokio::spawn(prune(
        store.clone(),
        config.store.retention,
        shutdown.clone(),
    ));
    let ingesting = tokio::spawn(ingest.run(receiver));
    info!(
        models = config.models.len(),
        webhooks = config.webhooks.len(),
        "rowhook running"
    );
    let source = match config.source.mode {
        SourceMode::Replication => Source::Replication(ReplicationSource {
            max_row: config.source.max_row,
            url,
            slot: SlotKind::Persistent {
                name: config.source.slot.clone(),
            },
            publication: config.source.publication.clone(),
            start,
            status: Some(status_sender),
        }),
        SourceMode::Notify => Source::Notify(NotifySource {
            max_row: config.source.max_row,
            url,
            status: Some(status_sender),
            delete_drained: true,
        }),
    };
    let captured = source.run(sender, acknowledgements, shutdown.clone()).await;
    // Capture has stopped (shutdown, or a failure): ingest drains and appends the rest.
    let ingested = ingesting.await.map_err(|_| ServiceError::Task("ingest"))?;
    // When capture ended on its own, stop the other stages too.
    trigger.trigger();
    let _ = delivery.await;
    if let Some(inbound) = inbound {
        let _ = inbound.await;
    }
    if let Some(alerting) = alerting {
        let _ = alerting.await;
    }
    let _ = pruning.await;
    backfills.stopped().await;
    if let Some(admin) = admin
        && let Ok(Err(error)) = admin.await
    {
        error!(%error, "admin server failed");
    }
    store.flush().await?;
    captured?;
    ingested?;
    info!("rowhook stopped");
    Ok(())
}

/// With a shared store, instances should run one configuration (CONTRACT §10): each
/// delivers the webhooks its own file names, and the capturing one decides which events
/// are made. Pending events of a webhook this file does not name mean another instance
/// runs a different file (or the webhook was removed): they wait for an instance that
/// knows it. Said at start, so that an operator sees it.
async fn warn_about_other_configurations(
    config: &Config,
    store: &dyn EventStore,
) -> Result<(), StoreError> {
    let known: std::collections::BTreeSet<String> = config
        .webhooks
        .iter()
        .map(|webhook| webhook.name.clone())
        .chain(config.alerts.iter().map(|alert| alert.queue_name()))
        .collect();
    for (webhook, counts) in store.counts().await? {
        let pending = counts
            .get(&crate::event::Status::Pending)
            .copied()
            .unwrap_or(0);
        if pending > 0 && !known.contains(&webhook) {
            warn!(
                %webhook,
                pending,
                "the shared store holds pending events of a webhook this configuration does not \
                 name: another instance runs a different configuration, or the webhook was \
                 removed; this instance leaves them to an instance that knows it"
            );
        }
    }
    Ok(())
}

/// Deletes events past retention, every minute.
async fn prune(store: Arc<dyn EventStore>, retention: Duration, mut shutdown: Shutdown) {
    let retention = u64::try_from(retention.as_millis()).unwrap_or(u64::MAX);
    loop {
        match store.prune(now_ms().saturating_sub(retention)).await {
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
