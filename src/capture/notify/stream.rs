//! The capture stage for notify mode: LISTEN first, then drain `rowhook.outbox` in id
//! order, and drain again on every wake-up, every reconnect and on a slow timer (a
//! notification sent while the connection was being replaced is gone). Drained rows are
//! deleted only once the next stage says their events are durable.
//!
//! Outbox ids are taken when a row is written, not when its transaction commits, so a
//! long transaction can commit rows with ids below some already drained. A drain pass
//! therefore walks up from the lowest id, and a new pass starts only after the previous
//! pass's rows are deleted: whatever is left in the table then is exactly what has not
//! been handed on, late commits included. A pass ends after `BATCHES_PER_PASS` batches,
//! so under a lasting backlog such a late row waits for a few batches, not the backlog.
//!
//! One drainer per outbox: the session holds an advisory lock, and a second `rowhook run`
//! on the same database waits (retrying) instead of delivering everything twice.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_postgres::{Client, Row, Statement};
use tracing::{debug, error, info, warn};

use super::drainer_lock::take_drainer_lock;
use super::error::{NotifyError, query_error};
use super::outbox::OutboxRow;
use super::queries::{DELETE, FETCH, REJECT, read_row};
use crate::capture::reconnect::{Next, Reconnect};
use crate::capture::stage::{Acknowledgements, Captured, CommitPosition};
use crate::capture::status::CaptureStatus;
use crate::capture::value::TypeCatalog;
use crate::change::{Lsn, TableName};
use crate::postgres::{self, DatabaseUrl};
use crate::shutdown::Shutdown;

/// The NOTIFY channel the trigger signals.
pub(crate) const CHANNEL: &str = "rowhook";
const BATCH_ROWS: i64 = 1_000;
/// A batch also stops at about this many bytes of row text (at least one row), so a
/// table of large rows does not fill memory.
const BATCH_BYTES: i64 = 16 * 1024 * 1024;
const BATCHES_PER_PASS: usize = 20;
const POLL_INTERVAL: Duration = Duration::from_secs(5);
/// How long shutdown waits for the last batches to be made durable, and then for their
/// rows to be deleted, before leaving them for the next start (which drains them again,
/// harmlessly: same event ids). Short: shutdown must not wait on a silent peer.
const FINAL_ACKNOWLEDGEMENT_WAIT: Duration = Duration::from_secs(5);
const FINAL_DELETE_WAIT: Duration = Duration::from_secs(2);
/// How long a session may take to answer shutdown before it is left behind.
const STOP_WAIT: Duration = Duration::from_secs(2);

pub struct NotifySource {
    pub url: DatabaseUrl,
    /// Where to publish how capture is doing, if anyone asks.
    pub status: Option<watch::Sender<CaptureStatus>>,
    /// `false` for `rowhook tail`: read new rows as they come, delete nothing.
    pub delete_drained: bool,
    /// An outbox row larger than this is not read (`source.max_row`).
    pub max_row: usize,
}

/// A batch handed on whose rows wait for its acknowledgement to be deleted.
struct Drained {
    batch: u64,
    ids: Vec<i64>,
    wal_position: Lsn,
}

struct Progress {
    pending: VecDeque<Drained>,
    next_batch: u64,
    /// Peeking (`tail`) never deletes, so it never walks back: the id it has read up to.
    peek_cursor: Option<i64>,
    /// The user-defined column types met so far, and each table's column list when they
    /// were read: a new list (after ALTER TABLE or ALTER TYPE) reads them again.
    types: TypeCatalog,
    column_lists: HashMap<TableName, String>,
    /// The server process of the last session, which may outlive it (see
    /// `take_drainer_lock`).
    last_backend: Option<i32>,
}

impl NotifySource {
    /// Captures until shutdown or until the next stage goes away. Transient failures
    /// reconnect with backoff; anything an operator must fix ends the stage with its error.
    pub async fn run(
        self,
        output: mpsc::Sender<Captured>,
        mut acknowledgements: Acknowledgements,
        mut shutdown: Shutdown,
    ) -> Result<(), NotifyError> {
        let mut progress = Progress {
            pending: VecDeque::new(),
            next_batch: 1,
            peek_cursor: None,
            types: TypeCatalog::default(),
            column_lists: HashMap::new(),
            last_backend: None,
        };
        let mut reconnect = Reconnect::new("outbox", self.status.as_ref());
        let mut last_client = None;
        let mut watcher = shutdown.clone();
        let outcome = loop {
            // A session answers shutdown between queries; one waiting on a silent peer is
            // left behind (its drained rows are drained again at the next start).
            let given_up = async {
                watcher.requested().await;
                tokio::time::sleep(STOP_WAIT).await;
            };
            let session = tokio::select! {
                session = self.session(
                    &output,
                    &mut acknowledgements,
                    &mut shutdown,
                    &mut progress,
                    &mut reconnect,
                ) => session,
                () = given_up => {
                    warn!(
                        "the database did not answer within {} s of shutdown; stopping without it",
                        STOP_WAIT.as_secs()
                    );
                    break Ok(());
                }
            };
            match session {
                Ok(client) => {
                    last_client = Some(client);
                    break Ok(());
                }
                Err(error) => match reconnect.after_failure(error, false, &mut shutdown).await {
                    Next::Retry => {}
                    Next::Stop(outcome) => break outcome,
                },
            }
        };
        // Closing the channel lets the next stage make the rest durable and acknowledge it.
        drop(output);
        if let Some(client) = last_client {
            self.finish(&client, acknowledgements, &mut progress).await;
        }
        reconnect.stopped(&outcome);
        outcome
    }

    /// One connection's life. Returns the client when asked to stop, so the last
    /// acknowledged rows can still be deleted.
    async fn session(
        &self,
        output: &mpsc::Sender<Captured>,
        acknowledgements: &mut Acknowledgements,
        shutdown: &mut Shutdown,
        progress: &mut Progress,
        reconnect: &mut Reconnect<'_>,
    ) -> Result<Client, NotifyError> {
        let (client, mut notifications) = postgres::connect_listening(&self.url).await?;
        // LISTEN before the first drain: a change committed in between is then either in
        // that drain or announced by a notification.
        client
            .batch_execute(&format!(
                "{} LISTEN {CHANNEL}",
                postgres::SERVER_SIDE_LIVENESS
            ))
            .await
            .map_err(query_error("LISTEN"))?;
        if self.delete_drained {
            take_drainer_lock(&client, &mut progress.last_backend).await?;
        }
        let fetch = client
            .prepare(FETCH)
            .await
            .map_err(query_error("reading the outbox"))?;
        let delete = client
            .prepare(DELETE)
            .await
            .map_err(query_error("deleting from the outbox"))?;
        if !self.delete_drained && progress.peek_cursor.is_none() {
            let newest: Option<i64> = client
                .query_one("SELECT max(id) FROM rowhook.outbox", &[])
                .await
                .map_err(query_error("reading the outbox"))?
                .get(0);
            progress.peek_cursor = Some(newest.unwrap_or(0));
        }
        reconnect.connected();
        info!("listening on channel {CHANNEL}, draining rowhook.outbox");
        let mut wake = true;
        let mut cursor = 0_i64;
        let mut pass_batches = 0_usize;
        loop {
            let acknowledged = acknowledged_batch(acknowledgements);
            self.delete_acknowledged(&client, &delete, acknowledged, progress)
                .await?;
            while let Ok(_notification) = notifications.try_recv() {
                wake = true;
            }
            if shutdown.is_requested() {
                return Ok(client);
            }
            // Peeking never deletes, so nothing is left behind to wait for.
            let start_pass = wake && (self.peeking() || progress.pending.is_empty());
            if cursor > 0 || start_pass {
                if cursor == 0 {
                    // A pass starts here: a wake-up from now on asks for the next one.
                    wake = false;
                    pass_batches = 0;
                }
                let from = progress.peek_cursor.unwrap_or(cursor);
                let max_row = i64::try_from(self.max_row).unwrap_or(i64::MAX);
                let rows = client
                    .query(&fetch, &[&from, &BATCH_ROWS, &BATCH_BYTES, &max_row])
                    .await
                    .map_err(query_error("reading the outbox"))?;
                match self.hand_on(&client, &rows, output, progress).await? {
                    Some(last_id) if self.peeking() => {
                        progress.peek_cursor = Some(last_id);
                        wake = true;
                        continue;
                    }
                    Some(last_id) => {
                        pass_batches += 1;
                        if pass_batches < BATCHES_PER_PASS {
                            cursor = last_id;
                        } else {
                            // Long enough: go back for rows that committed late.
                            cursor = 0;
                            wake = true;
                        }
                        continue;
                    }
                    None if output.is_closed() => return Ok(client),
                    // The pass is over; the next starts from the lowest id again.
                    None => cursor = 0,
                }
            }
            tokio::select! {
                _ = shutdown.requested() => return Ok(client),
                notification = notifications.recv() => match notification {
                    Some(_) => wake = true,
                    None => return Err(NotifyError::Closed),
                },
                changed = acknowledgements.changed() => {
                    if changed.is_err() {
                        // The next stage is gone: nothing more will be acknowledged.
                        return Ok(client);
                    }
                }
                _ = tokio::time::sleep(POLL_INTERVAL) => wake = true,
            }
        }
    }

    fn peeking(&self) -> bool {
        !self.delete_drained
    }

    /// Hands the rows on as one batch; the last id read, or `None` when there were none
    /// (or the next stage is gone). A row that cannot be read is set aside, not handed on.
    async fn hand_on(
        &self,
        client: &Client,
        rows: &[Row],
        output: &mpsc::Sender<Captured>,
        progress: &mut Progress,
    ) -> Result<Option<i64>, NotifyError> {
        let mut ids = Vec::with_capacity(rows.len());
        let mut wal_position = Lsn(0);
        let read: Vec<(i64, Result<OutboxRow, NotifyError>)> =
            rows.iter().map(|row| (row.get(0), read_row(row))).collect();
        learn_types(client, &read, progress).await?;
        let limit = self.max_row as u64;
        for (id, outbox_row) in read {
            let read = outbox_row.and_then(|outbox_row| {
                wal_position = outbox_row.wal_position;
                if u64::try_from(outbox_row.size).is_ok_and(|size| size > limit) {
                    let oversized = outbox_row.to_oversized(limit)?;
                    warn!(
                        id,
                        table = %oversized.change.table,
                        bytes = oversized.bytes,
                        "an outbox row larger than source.max_row was not read; its events fail with the reason"
                    );
                    return Ok(Captured::Oversized(Box::new(oversized)));
                }
                let change = outbox_row.to_change(&progress.types)?;
                Ok(Captured::Change(Box::new(change)))
            });
            let captured = match read {
                Ok(captured) => captured,
                Err(error) => {
                    self.reject(client, id, &error).await?;
                    continue;
                }
            };
            ids.push(id);
            if output.send(captured).await.is_err() {
                return Ok(None);
            }
        }
        let Some(last_read) = rows.last().map(|row| row.get::<_, i64>(0)) else {
            return Ok(None);
        };
        if ids.is_empty() {
            return Ok(Some(last_read));
        }
        let last_id = last_read;
        let batch = progress.next_batch;
        progress.next_batch += 1;
        if self.delete_drained && output.send(Captured::Drained(ids.clone())).await.is_err() {
            return Ok(None);
        }
        if output
            .send(Captured::Commit(CommitPosition::OutboxBatch(batch)))
            .await
            .is_err()
        {
            return Ok(None);
        }
        debug!(rows = ids.len(), last_id, "outbox batch handed on");
        self.publish(|status| status.server_sent = wal_position);
        if self.delete_drained {
            progress.pending.push_back(Drained {
                batch,
                ids,
                wal_position,
            });
        }
        Ok(Some(last_id))
    }

    /// Moves an unreadable row to `rowhook.rejected` with the reason, so that one bad row
    /// neither stops capture nor disappears. Peeking (`tail`) only says so.
    async fn reject(
        &self,
        client: &Client,
        id: i64,
        error: &NotifyError,
    ) -> Result<(), NotifyError> {
        let reason = error.to_string();
        if self.peeking() {
            warn!(id, %reason, "outbox row cannot be read");
            return Ok(());
        }
        client
            .execute(REJECT, &[&id, &reason])
            .await
            .map_err(query_error("setting an unreadable outbox row aside"))?;
        error!(id, %reason, "outbox row cannot be read; moved to rowhook.rejected");
        Ok(())
    }

    /// Deletes the rows of every batch acknowledged so far, in one statement.
    async fn delete_acknowledged(
        &self,
        client: &Client,
        delete: &Statement,
        acknowledged: u64,
        progress: &mut Progress,
    ) -> Result<(), NotifyError> {
        let done = progress
            .pending
            .iter()
            .take_while(|drained| drained.batch <= acknowledged)
            .count();
        if done == 0 {
            return Ok(());
        }
        let ids: Vec<i64> = progress
            .pending
            .iter()
            .take(done)
            .flat_map(|drained| drained.ids.iter().copied())
            .collect();
        client
            .execute(delete, &[&ids])
            .await
            .map_err(query_error("deleting from the outbox"))?;
        // Only now: if the delete failed, the batches stay pending and are deleted later.
        let confirmed = progress
            .pending
            .drain(..done)
            .next_back()
            .map(|drained| drained.wal_position);
        if let Some(confirmed) = confirmed {
            self.publish(|status| status.confirmed = confirmed);
        }
        Ok(())
    }

    /// After the channel closed: waits for the next stage to acknowledge what it got,
    /// then deletes those rows.
    async fn finish(
        &self,
        client: &Client,
        mut acknowledgements: Acknowledgements,
        progress: &mut Progress,
    ) {
        let Some(last) = progress.pending.back().map(|drained| drained.batch) else {
            return;
        };
        let deadline = tokio::time::sleep(FINAL_ACKNOWLEDGEMENT_WAIT);
        tokio::pin!(deadline);
        while acknowledged_batch(&acknowledgements) < last {
            tokio::select! {
                changed = acknowledgements.changed() => if changed.is_err() { break },
                _ = &mut deadline => break,
            }
        }
        let acknowledged = acknowledged_batch(&acknowledgements);
        let deleted = tokio::time::timeout(FINAL_DELETE_WAIT, async {
            let delete = client
                .prepare(DELETE)
                .await
                .map_err(query_error("deleting from the outbox"))?;
            self.delete_acknowledged(client, &delete, acknowledged, progress)
                .await
        })
        .await;
        let failure = match deleted {
            Ok(Ok(())) => return,
            Ok(Err(error)) => error.to_string(),
            Err(_) => format!("no answer within {} s", FINAL_DELETE_WAIT.as_secs()),
        };
        warn!(%failure, "could not delete the last drained outbox rows; the next start drains them again");
    }

    fn publish(&self, update: impl FnOnce(&mut CaptureStatus)) {
        if let Some(status) = &self.status {
            status.send_modify(update);
        }
    }
}

/// The newest acknowledged outbox batch of this run.
fn acknowledged_batch(acknowledgements: &Acknowledgements) -> u64 {
    match *acknowledgements.borrow() {
        CommitPosition::OutboxBatch(batch) => batch,
        CommitPosition::Start | CommitPosition::Wal(_) => 0,
    }
}

/// Reads the user-defined types of tables whose column list is new to this stream, before
/// their rows convert: one catalog query for a batch, none once the lists are known.
async fn learn_types(
    client: &Client,
    read: &[(i64, Result<OutboxRow, NotifyError>)],
    progress: &mut Progress,
) -> Result<(), NotifyError> {
    let mut wanted = BTreeSet::new();
    for outbox_row in read.iter().filter_map(|(_, row)| row.as_ref().ok()) {
        if progress.column_lists.get(&outbox_row.table) == Some(&outbox_row.columns) {
            continue;
        }
        if let Ok(types) = outbox_row.column_types() {
            wanted.extend(types.filter(|oid| TypeCatalog::is_user_defined(*oid)));
        }
        progress
            .column_lists
            .insert(outbox_row.table.clone(), outbox_row.columns.clone());
    }
    progress
        .types
        .load(client, wanted)
        .await
        .map_err(query_error("reading column types from the catalog"))
}
