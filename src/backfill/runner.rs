//! One job at work: read a page after the cursor, route its rows as `read` events (with
//! their relations), and store them together with the job's new cursor — so that after a
//! restart or a kill -9 the job goes on from the last stored page, and a page read twice
//! makes the same ids (stored once).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio_postgres::Client;
use tokio_postgres::types::ToSql;
use tracing::{info, warn};

use super::job::{BackfillJob, JobState};
use super::page::page_query;
use crate::change::{Action, Change, Lsn, Position};
use crate::ingest::{Routed, Routing};
use crate::model::{
    LookupError, Relations, RowReader, TableShape, VALUE_SETTINGS, is_connection_problem,
};
use crate::postgres::{self, DatabaseUrl};
use crate::shutdown::Shutdown;
use crate::store::{EventStore, NewEvents};
use crate::time::{now_micros, now_ms};

/// A page query (with the caller's `--where`) may take this long.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(60);
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MOST: Duration = Duration::from_secs(30);

/// What a job task shares with the service: its state as last stored, and whether an
/// admin asked it to stop.
pub(super) struct Shared {
    pub(super) job: Mutex<BackfillJob>,
    pub(super) cancel: watch::Sender<bool>,
    /// Whether this instance's runner holds the job's turn (see [`Runner::take_turn`]).
    pub(super) active: AtomicBool,
}

pub(super) struct Runner {
    pub(super) store: Arc<dyn EventStore>,
    pub(super) routing: Arc<Routing>,
    pub(super) relations: Arc<Relations>,
    pub(super) url: DatabaseUrl,
    pub(super) shared: Arc<Shared>,
    pub(super) shutdown: Shutdown,
    /// Whether other instances share the store, and so may run or end the job too.
    pub(super) store_is_shared: bool,
    /// Names this deployment's jobs among others on the same database (its slot):
    /// `pg_try_advisory_lock(hashtext(turn_key), job id)` is a job's turn, held by one
    /// page connection in the whole cluster.
    pub(super) turn_key: String,
}

/// How often an instance whose job runs elsewhere looks whether it can take it over.
const TURN_RETRY: Duration = Duration::from_secs(5);

enum Page {
    More,
    Last,
    /// Shutdown came while the database was unreachable: nothing of the page was stored.
    Abandoned,
}

#[derive(Debug)]
enum PageError {
    Unavailable(String),
    Failed(String),
    /// Another instance runs the job.
    Elsewhere,
    /// Another instance ended the job (done, cancelled, failed): nothing is left to do.
    Ended(BackfillJob),
}

impl From<LookupError> for PageError {
    fn from(error: LookupError) -> Self {
        match error {
            LookupError::Unavailable(reason) => PageError::Unavailable(reason),
            LookupError::Failed(reason) => PageError::Failed(reason),
        }
    }
}

impl Runner {
    pub(super) async fn run(mut self) {
        let mut job = self.shared.job.lock().expect("not poisoned").clone();
        let mut cancel = self.shared.cancel.subscribe();
        let mut client: Option<Client> = None;
        let mut prefetched = None;
        let mut retry_in = RETRY_FIRST;
        info!(job = job.id, model = %job.model, "backfill running");
        loop {
            if *cancel.borrow_and_update() {
                self.finish(&mut job, JobState::Cancelled, None).await;
                return;
            }
            if self.shutdown.is_requested() {
                return;
            }
            match self.page(&mut job, &mut client, &mut prefetched).await {
                Ok(Page::More) => retry_in = RETRY_FIRST,
                Ok(Page::Last) => {
                    self.finish(&mut job, JobState::Done, None).await;
                    return;
                }
                Ok(Page::Abandoned) => return,
                Err(PageError::Failed(reason)) => {
                    self.finish(&mut job, JobState::Failed, Some(reason)).await;
                    return;
                }
                Err(PageError::Ended(ended)) => {
                    info!(
                        job = ended.id,
                        state = ended.state.as_str(),
                        "backfill ended by another instance"
                    );
                    self.shared.active.store(false, Ordering::Relaxed);
                    *self.shared.job.lock().expect("not poisoned") = ended;
                    return;
                }
                Err(PageError::Elsewhere) => {
                    client = None;
                    prefetched = None;
                    tokio::select! {
                        _ = self.shutdown.requested() => return,
                        _ = cancel.changed() => {}
                        _ = tokio::time::sleep(TURN_RETRY) => {}
                    }
                }
                Err(PageError::Unavailable(reason)) => {
                    warn!(job = job.id, %reason, ?retry_in, "backfill waits for the database");
                    client = None;
                    prefetched = None;
                    tokio::select! {
                        _ = self.shutdown.requested() => return,
                        _ = cancel.changed() => {}
                        _ = tokio::time::sleep(retry_in) => {}
                    }
                    retry_in = (retry_in * 2).min(RETRY_MOST);
                }
            }
        }
    }

    /// Reads, routes and stores one page; the job's cursor moves with the stored events.
    /// While a page is stored, the next is already read (`prefetched`), so that the
    /// database's query and the store's write overlap.
    async fn page(
        &mut self,
        job: &mut BackfillJob,
        client: &mut Option<Client>,
        prefetched: &mut Option<Vec<tokio_postgres::Row>>,
    ) -> Result<Page, PageError> {
        if client.as_ref().is_none_or(Client::is_closed) {
            *prefetched = None;
            self.shared.active.store(false, Ordering::Relaxed);
            let connection = connect(&self.url).await?;
            self.take_turn(&connection, job).await?;
            *client = Some(connection);
        } else if self.store_is_shared {
            // An admin may have cancelled it through another instance.
            self.check_not_ended(job).await?;
        }
        let connection = client.as_ref().expect("connected above");
        let (shape, types) = self.relations.shape_of(&job.model).await?;
        if shape.primary_key.is_empty() {
            return Err(PageError::Failed(format!(
                "{} has no primary key to page by",
                shape.table
            )));
        }
        let rows = match prefetched.take() {
            Some(rows) => rows,
            None => read_page(connection, &shape, job, job.cursor.as_deref()).await?,
        };

        let reader = RowReader::new(&shape, &types);
        let keys = shape.primary_key.len();
        let router = self.routing.router();
        let candidates = router.backfill_candidates(&job.model, &job.webhooks);
        let read_at = now_micros();
        let mut events = Vec::new();
        let mut waiting = Vec::new();
        let mut last_key = None;
        for (index, row) in rows.iter().enumerate() {
            let lsn: Option<&str> = row.get(0);
            let key: Vec<String> = (1..=keys).map(|column| row.get(column)).collect();
            let change = Change {
                action: Action::Read,
                table: shape.table.clone(),
                item: reader.read(row, 1 + keys),
                old: None,
                changed: None,
                lsn: lsn.and_then(|text| text.parse().ok()).unwrap_or(Lsn(0)),
                position: Position {
                    transaction: job.rows_done + index as u64,
                    sequence: job.id,
                },
                commit_time_micros: read_at,
            };
            waiting.extend(
                self.routing
                    .route_or_wait(change, candidates.clone(), &mut events),
            );
            last_key = Some(key);
        }
        match self
            .routing
            .route_waiting(waiting, &mut self.shutdown)
            .await
        {
            Routed::Events(more) => events.extend(more),
            Routed::Abandoned => return Ok(Page::Abandoned),
        }
        let last = rows.len() < job.batch as usize;
        let mut advanced = job.clone();
        advanced.rows_done += rows.len() as u64;
        if let Some(key) = &last_key {
            advanced.cursor = Some(key.clone());
        }
        advanced.updated_at_ms = now_ms();
        let storing = self.store.append(NewEvents {
            events,
            resume_after: None,
            backfill: Some(advanced.clone()),
            drained_outbox: Vec::new(),
        });
        let (appended, next) = match (last, &last_key) {
            (false, Some(key)) => {
                let reading = read_page(connection, &shape, &advanced, Some(key));
                let (appended, next) = tokio::join!(storing, reading);
                (appended, Some(next))
            }
            _ => (storing.await, None),
        };
        let appended = appended
            .map_err(|error| PageError::Failed(format!("cannot store the events: {error}")))?;
        advanced.events_created += appended.created as u64;
        *job = advanced;
        *self.shared.job.lock().expect("not poisoned") = job.clone();
        // The stored page counts even when reading the next one failed.
        *prefetched = next.transpose()?;
        Ok(if last { Page::Last } else { Page::More })
    }

    /// Takes the job's turn on the page connection: with several instances on one store,
    /// each running job is resumed by all of them and run by the one that holds it — so
    /// when that instance dies, another takes the job over from its last stored page.
    async fn take_turn(&self, connection: &Client, job: &mut BackfillJob) -> Result<(), PageError> {
        let id = i32::try_from(job.id).unwrap_or(i32::MAX);
        let taken: bool = connection
            .query_one(
                "SELECT pg_try_advisory_lock(hashtext($1), $2)",
                &[&self.turn_key, &id],
            )
            .await
            .map_err(|error| query_error(&error))?
            .get(0);
        if !taken {
            return Err(PageError::Elsewhere);
        }
        if self.store_is_shared {
            // Go on from the page the last holder stored, not from what this one saw.
            *job = self.check_not_ended(job).await?;
            *self.shared.job.lock().expect("not poisoned") = job.clone();
        }
        self.shared.active.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// The job as stored; [`PageError::Ended`] when it has ended.
    async fn check_not_ended(&self, job: &BackfillJob) -> Result<BackfillJob, PageError> {
        let stored = self
            .store
            .backfills()
            .await
            .map_err(|error| PageError::Unavailable(format!("cannot read the job: {error}")))?
            .into_iter()
            .find(|stored| stored.id == job.id)
            .unwrap_or_else(|| job.clone());
        if stored.state.is_finished() {
            return Err(PageError::Ended(stored));
        }
        Ok(stored)
    }

    async fn finish(&self, job: &mut BackfillJob, state: JobState, error: Option<String>) {
        job.state = state;
        job.error = error;
        job.updated_at_ms = now_ms();
        job.finished_at_ms = Some(job.updated_at_ms);
        match &job.error {
            Some(reason) => warn!(job = job.id, %reason, "backfill failed"),
            None => info!(
                job = job.id,
                state = state.as_str(),
                rows = job.rows_done,
                "backfill finished"
            ),
        }
        if let Err(error) = self.store.save_backfill(job).await {
            warn!(job = job.id, %error, "cannot store the backfill's end; it resumes at the next start");
        }
        *self.shared.job.lock().expect("not poisoned") = job.clone();
    }
}

/// The page after `cursor` (from the start without one).
async fn read_page(
    connection: &Client,
    shape: &TableShape,
    job: &BackfillJob,
    cursor: Option<&[String]>,
) -> Result<Vec<tokio_postgres::Row>, PageError> {
    let sql = page_query(shape, job.condition.as_deref(), cursor.is_some(), job.batch);
    let parameters: Vec<&(dyn ToSql + Sync)> = cursor
        .into_iter()
        .flatten()
        .map(|value| value as &(dyn ToSql + Sync))
        .collect();
    connection
        .query(sql.as_str(), &parameters)
        .await
        .map_err(|error| query_error(&error))
}

/// A connection for pages: the value settings of capture, read-only (a `--where` runs
/// with rowhook's rights, so it must not write), with a statement timeout.
async fn connect(url: &DatabaseUrl) -> Result<Client, PageError> {
    let client =
        postgres::connect_answering_within(url, STATEMENT_TIMEOUT + postgres::ANSWER_MARGIN)
            .await
            .map_err(|error| PageError::Unavailable(error.to_string()))?;
    client
        .batch_execute(&format!(
            "{VALUE_SETTINGS} SET statement_timeout = {}; SET default_transaction_read_only = on",
            STATEMENT_TIMEOUT.as_millis()
        ))
        .await
        .map_err(|error| query_error(&error))?;
    Ok(client)
}

fn query_error(error: &tokio_postgres::Error) -> PageError {
    if is_connection_problem(error) {
        PageError::Unavailable(postgres::describe(error))
    } else {
        PageError::Failed(postgres::describe(error))
    }
}
