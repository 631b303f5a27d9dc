//! Backfill (CONTRACT §8): jobs of the running service that send a model's existing rows
//! as `read` events, page by page in primary-key order, into each webhook's backfill
//! lane (so live changes never wait behind them). Jobs and their cursors live in the
//! store: a restart resumes every running job from its last stored page.

mod job;
mod page;
mod runner;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::ingest::Routing;
use crate::model::{LookupError, Relations};
use crate::postgres::{self, DatabaseUrl};
use crate::shutdown::Shutdown;
use crate::store::{EventStore, StoreError};
use crate::time::now_ms;
use page::{estimate_query, estimated_rows};
use runner::{Runner, Shared};

pub use job::{BackfillJob, BackfillRequest, JobState};

/// Rows per page unless `--batch` says otherwise, and the most it may say.
pub const DEFAULT_BATCH: u32 = 1_000;
pub const MAX_BATCH: u32 = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    #[error("no model {model:?} (declared: {known})")]
    UnknownModel { model: String, known: String },
    #[error("webhook {webhook:?} does not send model {model:?}'s events")]
    UnknownWebhook { webhook: String, model: String },
    #[error("model {0:?} has no active webhook to send to (name one with --webhook)")]
    NoWebhooks(String),
    #[error("--batch {0}: expected 1 to {MAX_BATCH}")]
    InvalidBatch(u32),
    #[error("{table} has no primary key: a backfill pages by primary key")]
    NoPrimaryKey { table: String },
    #[error("--where is not a valid condition on {table}: {message}")]
    InvalidCondition { table: String, message: String },
    #[error("no backfill job {0}")]
    NotFound(u32),
    #[error("backfill job {id} is {state} already")]
    Finished { id: u32, state: &'static str },
    #[error("cannot start the backfill: {0}")]
    Database(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl BackfillError {
    /// Whether the request was at fault (rather than the service).
    pub fn is_request_error(&self) -> bool {
        !matches!(self, BackfillError::Database(_) | BackfillError::Store(_))
    }
}

/// The running service's backfill jobs.
pub struct Backfills {
    config: Arc<Config>,
    store: Arc<dyn EventStore>,
    routing: Arc<Routing>,
    relations: Arc<Relations>,
    url: DatabaseUrl,
    shutdown: Shutdown,
    jobs: Mutex<BTreeMap<u32, Arc<Shared>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Whether other instances share the store (CONTRACT §10): then jobs started there
    /// are adopted here, and their state is read back from the store.
    store_is_shared: bool,
}

/// How often, with a shared store, jobs of other instances are looked for.
const ADOPT_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// What the jobs work with.
pub(crate) struct BackfillParts {
    pub(crate) config: Arc<Config>,
    pub(crate) store: Arc<dyn EventStore>,
    pub(crate) routing: Arc<Routing>,
    pub(crate) relations: Arc<Relations>,
    pub(crate) url: DatabaseUrl,
    pub(crate) shutdown: Shutdown,
}

impl Backfills {
    /// Loads the stored jobs and resumes those still running.
    pub(crate) async fn open(parts: BackfillParts) -> Result<Arc<Backfills>, StoreError> {
        let stored = parts.store.backfills().await?;
        let store_is_shared = crate::store::is_shared(&parts.config.store);
        let backfills = Arc::new(Backfills {
            config: parts.config,
            store: parts.store,
            routing: parts.routing,
            relations: parts.relations,
            url: parts.url,
            shutdown: parts.shutdown,
            jobs: Mutex::new(BTreeMap::new()),
            tasks: Mutex::new(Vec::new()),
            store_is_shared,
        });
        backfills.adopt(stored);
        if backfills.store_is_shared {
            let adopting = backfills.clone();
            let task = tokio::spawn(async move {
                let mut shutdown = adopting.shutdown.clone();
                loop {
                    tokio::select! {
                        _ = shutdown.requested() => return,
                        _ = tokio::time::sleep(ADOPT_EVERY) => {}
                    }
                    if let Ok(stored) = adopting.store.backfills().await {
                        adopting.adopt(stored);
                    }
                }
            });
            backfills.tasks.lock().expect("not poisoned").push(task);
        }
        Ok(backfills)
    }

    /// Registers stored jobs not known here (resuming those still running) and, for
    /// those this instance does not run, takes the stored state as theirs.
    fn adopt(&self, stored: Vec<BackfillJob>) {
        for job in stored {
            let known = self.lock_jobs().get(&job.id).cloned();
            match known {
                Some(shared) => {
                    if !shared.active.load(std::sync::atomic::Ordering::Relaxed) {
                        *shared.job.lock().expect("not poisoned") = job;
                    }
                }
                None => {
                    let running = job.state == JobState::Running;
                    let shared = self.register(job);
                    if running {
                        self.spawn(shared);
                    }
                }
            }
        }
    }

    /// Every job, oldest first.
    pub fn list(&self) -> Vec<BackfillJob> {
        self.lock_jobs()
            .values()
            .map(|shared| shared.job.lock().expect("not poisoned").clone())
            .collect()
    }

    pub fn get(&self, id: u32) -> Option<BackfillJob> {
        self.lock_jobs()
            .get(&id)
            .map(|shared| shared.job.lock().expect("not poisoned").clone())
    }

    /// Checks the request (model, webhooks, `--where` planned by the server), stores the
    /// new job and starts it.
    pub async fn start(&self, request: BackfillRequest) -> Result<BackfillJob, BackfillError> {
        let model =
            self.config
                .models
                .get(&request.model)
                .ok_or_else(|| BackfillError::UnknownModel {
                    model: request.model.clone(),
                    known: self
                        .config
                        .models
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", "),
                })?;
        for webhook in &request.webhooks {
            let sends = self
                .config
                .webhook(webhook)
                .is_some_and(|config| config.model == model.name);
            if !sends {
                return Err(BackfillError::UnknownWebhook {
                    webhook: webhook.clone(),
                    model: model.name.clone(),
                });
            }
        }
        let router = self.routing.router();
        let webhooks: Vec<String> = router
            .backfill_candidates(&model.name, &request.webhooks)
            .into_iter()
            .map(|candidate| router.webhook_name(candidate).to_string())
            .collect();
        if webhooks.is_empty() {
            return Err(BackfillError::NoWebhooks(model.name.clone()));
        }
        let batch = request.batch.unwrap_or(DEFAULT_BATCH);
        if !(1..=MAX_BATCH).contains(&batch) {
            return Err(BackfillError::InvalidBatch(batch));
        }
        let condition = request
            .condition
            .filter(|condition| !condition.trim().is_empty());
        let rows_estimated = self.estimate(&model.name, condition.as_deref()).await?;

        let now = now_ms();
        // Ids come from the store: other instances may have started jobs too.
        let stored_last = self.store.backfills().await?.last().map_or(0, |job| job.id);
        let local_last = self.lock_jobs().keys().next_back().copied().unwrap_or(0);
        let id = stored_last.max(local_last) + 1;
        let job = BackfillJob {
            id,
            model: model.name.clone(),
            webhooks,
            condition,
            batch,
            state: JobState::Running,
            error: None,
            cursor: None,
            rows_done: 0,
            rows_estimated,
            events_created: 0,
            started_at_ms: now,
            updated_at_ms: now,
            finished_at_ms: None,
        };
        self.store.save_backfill(&job).await?;
        let shared = self.register(job.clone());
        self.spawn(shared);
        Ok(job)
    }

    /// Asks a running job to stop after its current page.
    pub async fn cancel(&self, id: u32) -> Result<BackfillJob, BackfillError> {
        let shared = self
            .lock_jobs()
            .get(&id)
            .cloned()
            .ok_or(BackfillError::NotFound(id))?;
        let job = shared.job.lock().expect("not poisoned").clone();
        if job.state.is_finished() {
            return Err(BackfillError::Finished {
                id,
                state: job.state.as_str(),
            });
        }
        if self.store_is_shared && !shared.active.load(std::sync::atomic::Ordering::Relaxed) {
            // Another instance runs it: the stored end is final, and its runner sees it
            // before its next page.
            let mut ended = job.clone();
            ended.state = JobState::Cancelled;
            ended.updated_at_ms = now_ms();
            ended.finished_at_ms = Some(ended.updated_at_ms);
            self.store.save_backfill(&ended).await?;
            *shared.job.lock().expect("not poisoned") = ended;
        }
        shared.cancel.send_replace(true);
        Ok(job)
    }

    /// Waits for the job tasks, which stop at shutdown after their current page.
    pub async fn stopped(&self) {
        let tasks = std::mem::take(&mut *self.tasks.lock().expect("not poisoned"));
        for task in tasks {
            let _ = task.await;
        }
    }

    /// The planner's row estimate for the job; the server's message when `--where` does
    /// not parse or names what the table lacks.
    async fn estimate(&self, model: &str, condition: Option<&str>) -> Result<u64, BackfillError> {
        let (shape, _) = self
            .relations
            .shape_of(model)
            .await
            .map_err(|error| match error {
                LookupError::Unavailable(reason) | LookupError::Failed(reason) => {
                    BackfillError::Database(reason)
                }
            })?;
        if shape.primary_key.is_empty() {
            return Err(BackfillError::NoPrimaryKey {
                table: shape.table.to_string(),
            });
        }
        let client = postgres::connect(&self.url)
            .await
            .map_err(|error| BackfillError::Database(error.to_string()))?;
        // A prepared statement holds one command: a `;` in the condition cannot add one.
        let plan = client
            .query_one(estimate_query(&shape, condition).as_str(), &[])
            .await
            .map_err(|error| BackfillError::InvalidCondition {
                table: shape.table.to_string(),
                message: postgres::describe(&error),
            })?;
        let plan: serde_json::Value = plan.get(0);
        Ok(estimated_rows(&plan).unwrap_or(0))
    }

    fn register(&self, job: BackfillJob) -> Arc<Shared> {
        let id = job.id;
        let shared = Arc::new(Shared {
            job: Mutex::new(job),
            cancel: watch::channel(false).0,
            active: AtomicBool::new(false),
        });
        self.lock_jobs().insert(id, shared.clone());
        shared
    }

    fn spawn(&self, shared: Arc<Shared>) {
        let runner = Runner {
            store: self.store.clone(),
            routing: self.routing.clone(),
            relations: self.relations.clone(),
            url: self.url.clone(),
            shared,
            shutdown: self.shutdown.clone(),
            store_is_shared: self.store_is_shared,
            turn_key: format!("rowhook backfill {}", self.config.source.slot),
        };
        let task = tokio::spawn(runner.run());
        self.tasks.lock().expect("not poisoned").push(task);
    }

    fn lock_jobs(&self) -> std::sync::MutexGuard<'_, BTreeMap<u32, Arc<Shared>>> {
        self.jobs.lock().expect("not poisoned")
    }
}
