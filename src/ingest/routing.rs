//! From changes to the events to store, relations included: shared by ingest (captured
//! changes) and backfill (rows read as they are).
//!
//! Changes whose webhooks include relations are collected and routed together, so that
//! one query per relation serves the whole batch (CONTRACT §8). While the database cannot
//! be reached for that, routing waits and tries again; the caller acknowledges nothing
//! meanwhile.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::{info, warn};

use crate::change::{Change, OversizedRow};
use crate::config::{Config, Includes, Ordering};
use crate::event::{Content, Lane, NewEvent};
use crate::model::{LookupError, Relations, retain_included, row_key};
use crate::retry;
use crate::route::{Candidate, RenderError, RoutedEvent, Router};
use crate::shutdown::Shutdown;
use crate::time::now_ms;

/// Waits between tries while the database is unreachable for lookups.
const LOOKUP_RETRY_FIRST: Duration = Duration::from_secs(1);
const LOOKUP_RETRY_MOST: Duration = Duration::from_secs(30);

/// A change whose candidates include relations, waiting for its batch's lookups.
pub(crate) struct Waiting {
    pub(crate) change: Change,
    pub(crate) model: String,
    pub(crate) candidates: Vec<Candidate>,
}

/// Turns routed changes into new events of one lane.
pub(crate) struct Routing {
    router: Arc<Router>,
    relations: Arc<Relations>,
    schedules: HashMap<String, Vec<Duration>>,
    /// Webhooks under `ordering = "row"`.
    ordered: HashSet<String>,
    /// Primary key columns by model, read from the catalog once: every event carries
    /// its row's key.
    keys: Mutex<HashMap<String, Arc<[String]>>>,
    lane: Lane,
}

/// What routing a batch came to.
pub(crate) enum Routed {
    Events(Vec<NewEvent>),
    /// Shutdown came while the database was unreachable: nothing was routed.
    Abandoned,
}

impl Routing {
    pub(crate) fn new(
        config: &Config,
        router: Arc<Router>,
        relations: Arc<Relations>,
        lane: Lane,
    ) -> Routing {
        let schedules = config
            .webhooks
            .iter()
            .map(|webhook| (webhook.name.clone(), webhook.delivery.retry.clone()))
            .collect();
        let ordered = config
            .webhooks
            .iter()
            .filter(|webhook| webhook.delivery.ordering == Ordering::Row)
            .map(|webhook| webhook.name.clone())
            .collect();
        Routing {
            router,
            relations,
            schedules,
            ordered,
            keys: Mutex::new(HashMap::new()),
            lane,
        }
    }

    pub(crate) fn router(&self) -> &Router {
        &self.router
    }

    /// Splits `candidates` into those that need no lookup, whose events are made now, and
    /// a [`Waiting`] entry for the others (when there are any): those that include
    /// relations, or all of them while the model's primary key is not known yet.
    pub(crate) fn route_or_wait(
        &self,
        change: Change,
        candidates: Vec<Candidate>,
        events: &mut Vec<NewEvent>,
    ) -> Option<Waiting> {
        let model = self.router.model_for_table(&change.table)?.to_string();
        let with_relations = match self.known_key(&model) {
            Some(key) => {
                let (plain, with_relations): (Vec<Candidate>, Vec<Candidate>) = candidates
                    .into_iter()
                    .partition(|candidate| self.router.includes(*candidate).is_empty());
                let row = row_key(&key, &change.item);
                events.extend(
                    self.router
                        .events(&plain, &change)
                        .into_iter()
                        .map(|routed| self.new_event(routed, row.clone())),
                );
                with_relations
            }
            None => candidates,
        };
        if with_relations.is_empty() {
            return None;
        }
        Some(Waiting {
            change,
            model,
            candidates: with_relations,
        })
    }

    /// Looks up the relations of the waiting changes — one query per relation for all
    /// of them — and makes their events.
    pub(crate) async fn route_waiting(
        &self,
        mut waiting: Vec<Waiting>,
        shutdown: &mut Shutdown,
    ) -> Routed {
        if waiting.is_empty() {
            return Routed::Events(Vec::new());
        }
        let models: BTreeMap<&str, ()> = waiting
            .iter()
            .map(|entry| (entry.model.as_str(), ()))
            .collect();
        for model in models.into_keys() {
            if self.learn_key(model, shutdown).await.is_none() {
                return Routed::Abandoned;
            }
        }
        // What any webhook of a model includes, looked up once for all its changes.
        let mut looked_up: BTreeMap<String, Includes> = BTreeMap::new();
        for entry in &waiting {
            let includes = looked_up.entry(entry.model.clone()).or_default();
            for candidate in &entry.candidates {
                includes.merge(self.router.includes(*candidate));
            }
        }
        let mut failures: HashMap<String, String> = HashMap::new();
        let mut retry_in = LOOKUP_RETRY_FIRST;
        for (model, includes) in &looked_up {
            loop {
                let rows = waiting
                    .iter_mut()
                    .filter(|entry| &entry.model == model)
                    .map(|entry| &mut entry.change.item)
                    .collect();
                match self.relations.enrich(model, includes, rows).await {
                    Ok(()) => break,
                    Err(error @ LookupError::Failed(_)) => {
                        warn!(%model, %error, "relation lookup failed; its events fail");
                        failures.insert(model.clone(), error.to_string());
                        break;
                    }
                    Err(error @ LookupError::Unavailable(_)) => {
                        warn!(%model, %error, ?retry_in, "relation lookup waits for the database; nothing is acknowledged meanwhile");
                        tokio::select! {
                            _ = shutdown.requested() => return Routed::Abandoned,
                            _ = tokio::time::sleep(retry_in) => {}
                        }
                        retry_in = (retry_in * 2).min(LOOKUP_RETRY_MOST);
                    }
                }
            }
        }
        if retry_in > LOOKUP_RETRY_FIRST {
            info!("relation lookups reach the database again");
        }
        let mut events = Vec::new();
        for entry in waiting {
            let union = &looked_up[&entry.model];
            let row = self
                .known_key(&entry.model)
                .and_then(|key| row_key(&key, &entry.change.item));
            for candidate in entry.candidates {
                let routed = match failures.get(&entry.model) {
                    Some(reason) => Some(self.router.unrouted_event(
                        candidate,
                        &entry.change,
                        RenderError::Lookup {
                            reason: reason.clone(),
                        },
                    )),
                    None => {
                        let wanted = self.router.includes(candidate);
                        if wanted == union {
                            self.router.event(candidate, &entry.change)
                        } else {
                            let mut own = entry.change.clone();
                            retain_included(&mut own.item, union, wanted);
                            self.router.event(candidate, &own)
                        }
                    }
                };
                events.extend(routed.map(|routed| self.new_event(routed, row.clone())));
            }
        }
        Routed::Events(events)
    }

    fn known_key(&self, model: &str) -> Option<Arc<[String]>> {
        self.keys
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(model)
            .cloned()
    }

    /// Reads `model`'s primary key from the catalog unless known, waiting while the
    /// database is unreachable; `None` when shutdown came first. A model whose table
    /// cannot be described gets no key: its events have no row identity.
    async fn learn_key(&self, model: &str, shutdown: &mut Shutdown) -> Option<()> {
        if self.known_key(model).is_some() {
            return Some(());
        }
        let mut retry_in = LOOKUP_RETRY_FIRST;
        let columns = loop {
            match self.relations.primary_key(model).await {
                Ok(columns) => break columns,
                Err(error @ LookupError::Failed(_)) => {
                    warn!(%model, %error, "primary key unknown; events of this model have no row key (no history by row, no ordering)");
                    break Vec::new();
                }
                Err(error @ LookupError::Unavailable(_)) => {
                    warn!(%model, %error, ?retry_in, "reading the primary key waits for the database; nothing is acknowledged meanwhile");
                    tokio::select! {
                        _ = shutdown.requested() => return None,
                        _ = tokio::time::sleep(retry_in) => {}
                    }
                    retry_in = (retry_in * 2).min(LOOKUP_RETRY_MOST);
                }
            }
        };
        self.keys
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(model.to_string(), columns.into());
        Some(())
    }

    /// The events of a change whose row was too large to read: one failed event, with
    /// the reason, per webhook its table and action reach (their `when` cannot be asked).
    pub(crate) fn route_oversized(&self, oversized: &OversizedRow, events: &mut Vec<NewEvent>) {
        for candidate in self.router.candidates(&oversized.change) {
            let reason = RenderError::RowTooLarge {
                bytes: oversized.bytes,
                limit: oversized.limit,
            };
            let routed = self
                .router
                .unrouted_event(candidate, &oversized.change, reason);
            events.push(self.new_event(routed, None));
        }
    }

    fn new_event(&self, routed: RoutedEvent, row_key: Option<String>) -> NewEvent {
        let created_at_ms = now_ms();
        let schedule = self
            .schedules
            .get(&routed.webhook)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let content = match routed.request {
            Ok(request) => Content::Rendered {
                request,
                envelope: (!routed.body_is_envelope).then(|| routed.envelope.to_string()),
            },
            Err(error) => {
                warn!(event = %routed.id, webhook = %routed.webhook, %error, "request not rendered");
                Content::Unrendered {
                    reason: error.to_string(),
                    envelope: routed.envelope.to_string(),
                }
            }
        };
        let ordered = row_key.is_some() && self.ordered.contains(&routed.webhook);
        NewEvent {
            id: routed.id,
            webhook: routed.webhook,
            model: routed.model,
            kind: routed.kind,
            created_at_ms,
            first_attempt_at_ms: retry::first_attempt_at(created_at_ms, schedule),
            ordered,
            content,
            lane: self.lane,
            row_key,
        }
    }
}
