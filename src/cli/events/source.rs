//! Where the history is read from: the store itself when no process holds it, else the
//! running service's admin API. Both give the same typed views.

use std::sync::Arc;

use anyhow::{Context, anyhow};
use rowhook::config::Config;
use rowhook::event::Status;
use rowhook::history::{self, EventDetail, EventList, EventSummary, Redelivered, WebhookSummary};
use rowhook::inbound::{InboundQuery, InboundRecord};
use rowhook::store::{self, EventQuery, EventStore, RowQuery, StoreError};
use rowhook::time::now_ms;

use super::Filter;
use crate::cli::Failure;
use crate::cli::admin_api::{AdminApi, Answer};

pub(crate) enum History<'a> {
    /// Opened here: no other process holds it.
    Direct {
        store: Arc<dyn EventStore>,
        config: &'a Config,
    },
    /// Held by a running `rowhook run`: asked through its admin API.
    Service(AdminApi),
}

impl<'a> History<'a> {
    pub(crate) async fn open(config: &'a Config) -> Result<History<'a>, Failure> {
        match store::open(&config.store).await {
            Ok(store) => Ok(History::Direct { store, config }),
            Err(StoreError::Locked { path }) => match &config.admin {
                Some(admin) => Ok(History::Service(AdminApi::new(admin)?)),
                None => Err(Failure::Runtime(anyhow!(
                    "the store at {path} is in use by another process (a running `rowhook run`?), \
                     and {} has no [admin] table, so there is no admin API to ask instead",
                    config.file.display()
                ))),
            },
            Err(error) => Err(Failure::Runtime(error.into())),
        }
    }

    pub(super) fn is_direct(&self) -> bool {
        matches!(self, History::Direct { .. })
    }

    /// Makes whatever was changed in a directly opened store durable.
    pub(crate) async fn close(self) -> anyhow::Result<()> {
        if let History::Direct { store, .. } = self {
            store.flush().await.context("cannot flush the store")?;
        }
        Ok(())
    }

    pub(super) async fn list(&self, filter: &Filter) -> anyhow::Result<Vec<EventSummary>> {
        match self {
            History::Direct { store, config } => {
                let query = EventQuery {
                    webhook: filter.webhook.clone(),
                    status: filter.status,
                    limit: filter.limit,
                    before: None,
                    row: filter.row.as_ref().map(|(model, key)| RowQuery {
                        model: model.clone(),
                        key: key.clone(),
                    }),
                };
                Ok(history::list(store.as_ref(), &query, &config.secrets)
                    .await?
                    .events)
            }
            History::Service(api) => {
                let mut query = vec![("limit", filter.limit.to_string())];
                if let Some(webhook) = &filter.webhook {
                    query.push(("webhook", webhook.clone()));
                }
                if let Some(status) = filter.status {
                    query.push(("status", status.as_str().to_string()));
                }
                if let Some((model, key)) = &filter.row {
                    query.push(("model", model.clone()));
                    query.push(("key", key.clone()));
                }
                api.list_all(&query, filter.limit).await
            }
        }
    }

    pub(super) async fn show(&self, id: &str) -> anyhow::Result<EventDetail> {
        match self {
            History::Direct { store, config } => {
                match history::detail(store.as_ref(), config, id).await {
                    Err(StoreError::NotFound(_)) => Err(anyhow!("no event {id}")),
                    other => Ok(other?),
                }
            }
            History::Service(api) => {
                api.call(reqwest::Method::GET, &["api", "events", id], &[], Some(id))
                    .await
            }
        }
    }

    pub(super) async fn redeliver(&self, id: &str) -> anyhow::Result<()> {
        match self {
            History::Direct { store, .. } => match store.redeliver(id, now_ms()).await {
                Ok(_) => Ok(()),
                Err(StoreError::NotFound(_)) => Err(anyhow!("no event {id}")),
                Err(error) => Err(error.into()),
            },
            History::Service(api) => {
                api.call::<serde_json::Value>(
                    reqwest::Method::POST,
                    &["api", "events", id, "redeliver"],
                    &[],
                    Some(id),
                )
                .await?;
                Ok(())
            }
        }
    }

    /// The inbound request log, newest first.
    pub(crate) async fn inbound(&self, query: &InboundQuery) -> anyhow::Result<Vec<InboundRecord>> {
        match self {
            History::Direct { store, .. } => Ok(store.inbound_log(query).await?),
            History::Service(api) => {
                // The API pages at most 500 entries; "all" through it means the newest 500.
                let limit = match query.limit {
                    0 => history::MAX_PAGE,
                    limit => limit.min(history::MAX_PAGE),
                };
                let mut parameters = vec![("limit", limit.to_string())];
                if let Some(endpoint) = &query.endpoint {
                    parameters.push(("endpoint", endpoint.clone()));
                }
                if let Some(outcome) = query.outcome {
                    parameters.push(("outcome", outcome.as_str().to_string()));
                }
                api.call(reqwest::Method::GET, &["api", "inbound"], &parameters, None)
                    .await
            }
        }
    }

    /// Every configured webhook with its counts and whether it is paused.
    pub(crate) async fn webhooks(&self) -> anyhow::Result<Vec<WebhookSummary>> {
        match self {
            History::Direct { store, config } => {
                let counts = store.counts().await?;
                let paused = store.paused().await?;
                Ok(history::webhooks(config, &counts, &paused))
            }
            History::Service(api) => {
                api.call(reqwest::Method::GET, &["api", "webhooks"], &[], None)
                    .await
            }
        }
    }

    /// Pauses or resumes `webhook`'s delivery; `false` when no webhook has that name.
    pub(crate) async fn set_paused(&self, webhook: &str, paused: bool) -> anyhow::Result<bool> {
        match self {
            History::Direct { store, config } => {
                Ok(history::set_paused(store.as_ref(), config, webhook, paused).await?)
            }
            History::Service(api) => {
                let action = if paused { "pause" } else { "resume" };
                let answer = api
                    .send::<WebhookSummary>(
                        reqwest::Method::POST,
                        &["api", "webhooks", webhook, action],
                        &[],
                        None,
                    )
                    .await?;
                match answer {
                    Answer::Success(_) => Ok(true),
                    Answer::Refused { status, .. } if status == reqwest::StatusCode::NOT_FOUND => {
                        Ok(false)
                    }
                    Answer::Refused { status, message } => {
                        Err(anyhow!("the admin API answered {status}: {message}"))
                    }
                }
            }
        }
    }

    /// Queues every event of `webhook` with `status`.
    pub(super) async fn redeliver_matching(
        &self,
        webhook: &str,
        status: Status,
    ) -> anyhow::Result<Redelivered> {
        match self {
            History::Direct { store, .. } => {
                Ok(history::redeliver_matching(store.as_ref(), webhook, Some(status)).await?)
            }
            History::Service(api) => {
                let query = [
                    ("webhook", webhook.to_string()),
                    ("status", status.as_str().to_string()),
                ];
                api.call(reqwest::Method::POST, &["api", "redeliver"], &query, None)
                    .await
            }
        }
    }
}

impl AdminApi {
    /// A listing through the API, which pages at most 500 at a time: follows the pages
    /// until `limit` events (0: all) are read.
    async fn list_all(
        &self,
        query: &[(&str, String)],
        limit: usize,
    ) -> anyhow::Result<Vec<EventSummary>> {
        let mut events = Vec::new();
        let mut before: Option<u64> = None;
        loop {
            let wanted = match limit {
                0 => history::MAX_PAGE,
                limit => (limit - events.len()).min(history::MAX_PAGE),
            };
            let mut page_query: Vec<(&str, String)> = query
                .iter()
                .map(|(name, value)| match *name {
                    "limit" => (*name, wanted.to_string()),
                    _ => (*name, value.clone()),
                })
                .collect();
            if let Some(before) = before {
                page_query.push(("before", before.to_string()));
            }
            let page: EventList = self
                .call(reqwest::Method::GET, &["api", "events"], &page_query, None)
                .await?;
            events.extend(page.events);
            match page.next_before {
                Some(next) if limit == 0 || events.len() < limit => before = Some(next),
                _ => return Ok(events),
            }
        }
    }
}

#[cfg(test)]
#[path = "source_tests.rs"]
mod tests;
