//! The history: typed views of events and attempts, and the operations on them, shared
//! by the admin API, the pages and the CLI so that each is written once.

mod view;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::event::Status;
use crate::model::key_query_forms;
use crate::secret::Secrets;
use crate::store::{Counts, EventQuery, EventStore, RowQuery, StoreError};
use crate::time::now_ms;

pub use view::{
    AttemptView, EventDetail, EventList, EventSummary, StatusCounts, WebhookSummary, masked_request,
};

/// Listings page at most this many events at a time.
pub const MAX_PAGE: usize = 500;

/// What a bulk redelivery did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redelivered {
    pub queued: u64,
    /// Events whose request never rendered, which cannot be sent.
    pub skipped: u64,
}

/// Every configured webhook with its counts by status.
pub fn webhooks(
    config: &Config,
    counts: &BTreeMap<String, Counts>,
    paused: &BTreeSet<String>,
) -> Vec<WebhookSummary> {
    config
        .webhooks
        .iter()
        .map(|webhook| {
            WebhookSummary::of(
                webhook,
                counts.get(&webhook.name),
                paused.contains(&webhook.name),
                &config.secrets,
            )
        })
        .collect()
}

/// Pauses or resumes a configured webhook's delivery; `false` (and nothing changed) for
/// a name the configuration does not have.
pub async fn set_paused(
    store: &dyn EventStore,
    config: &Config,
    webhook: &str,
    paused: bool,
) -> Result<bool, StoreError> {
    if config.webhook(webhook).is_none() {
        return Ok(false);
    }
    store.set_paused(webhook, paused).await?;
    let done = if paused { "paused" } else { "resumed" };
    tracing::info!(webhook, "webhook delivery {done}");
    Ok(true)
}

/// One page of events, newest first. A row's key is tried as typed, then in the form
/// events store it (`id=42` as `42`, composite pairs sorted).
pub async fn list(
    store: &dyn EventStore,
    query: &EventQuery,
    secrets: &Secrets,
) -> Result<EventList, StoreError> {
    let Some(row) = &query.row else {
        let records = store.list(query).await?;
        return Ok(EventList::page(&records, query.limit, secrets));
    };
    let mut records = Vec::new();
    for key in key_query_forms(&row.key) {
        let mut form = query.clone();
        form.row = Some(RowQuery {
            model: row.model.clone(),
            key,
        });
        records = store.list(&form).await?;
        if !records.is_empty() {
            break;
        }
    }
    Ok(EventList::page(&records, query.limit, secrets))
}

/// One event in detail; [`StoreError::NotFound`] when there is none.
pub async fn detail(
    store: &dyn EventStore,
    config: &Config,
    id: &str,
) -> Result<EventDetail, StoreError> {
    let event = store
        .event(id)
        .await?
        .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
    Ok(EventDetail::of(&event, config))
}

/// Queues every event of `webhook` with `status` (any status when `None`) for an
/// immediate attempt. Paging by sequence is stable while statuses change: redelivered
/// events keep their sequence and lie behind the cursor.
pub async fn redeliver_matching(
    store: &dyn EventStore,
    webhook: &str,
    status: Option<Status>,
) -> Result<Redelivered, StoreError> {
    let mut query = EventQuery {
        webhook: Some(webhook.to_string()),
        status,
        limit: MAX_PAGE,
        before: None,
        row: None,
    };
    let mut done = Redelivered::default();
    let now = now_ms();
    loop {
        let page = store.list(&query).await?;
        for event in &page {
            match store.redeliver(&event.id, now).await {
                Ok(_) => done.queued += 1,
                Err(StoreError::NotRedeliverable { .. } | StoreError::NotFound(_)) => {
                    done.skipped += 1
                }
                Err(error) => return Err(error),
            }
        }
        match EventList::page(&page, query.limit, &Secrets::default()).next_before {
            Some(before) => query.before = Some(before),
            None => break,
        }
    }
    tracing::info!(%webhook, queued = done.queued, skipped = done.skipped, "events redelivered");
    Ok(done)
}
