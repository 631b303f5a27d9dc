//! The capture stage for replication mode: reads the slot, decodes changes, hands them on
//! one by one (a transaction is never held whole), answers keepalives, confirms what the
//! next stage has made durable, and reconnects with backoff.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use super::decoder::{ChangeDecoder, Decoded};
use super::error::CaptureError;
use super::frames::{self, Progress, ServerFrame};
use super::slot::SlotKind;
use super::wire::{CopyMessage, ReplicationConnection};
use crate::capture::reconnect::{Next, Reconnect};
use crate::capture::stage::{Acknowledgements, Captured, CommitPosition};
use crate::capture::status::{CaptureState, CaptureStatus};
use crate::change::{Lsn, quote_identifier};
use crate::postgres::{self, DatabaseUrl};
use crate::shutdown::Shutdown;
use crate::time;

const STATUS_INTERVAL: Duration = Duration::from_secs(10);
const TICK: Duration = Duration::from_millis(500);
pub struct ReplicationSource {
    pub url: DatabaseUrl,
    pub slot: SlotKind,
    pub publication: String,
    /// Where to resume from if the slot is further behind (the store's checkpoint).
    pub start: Lsn,
    /// Where to publish how capture is doing, if anyone asks.
    pub status: Option<watch::Sender<CaptureStatus>>,
    /// A change message larger than this is not read (`source.max_row`).
    pub max_row: usize,
}

struct Session<'a> {
    max_row: usize,
    status: Option<&'a watch::Sender<CaptureStatus>>,
    url: &'a DatabaseUrl,
    /// An ordinary connection for catalog questions, opened when first needed.
    catalog: Option<tokio_postgres::Client>,
    connection: ReplicationConnection,
    confirmed: Lsn,
    progress: Progress,
    last_status: Instant,
    /// When the server last sent anything: a quiet server is asked for a keepalive, so
    /// that a dead one is noticed (the connection is `Watched`).
    last_heard: Instant,
    last_status_position: Lsn,
}

impl ReplicationSource {
    /// Streams until shutdown. Transient failures (the server down or restarting, the
    /// slot still held by a connection that just died) reconnect with backoff, resuming
    /// from the last confirmed position; anything an operator must fix (credentials, a
    /// missing slot, `wal_level`) ends the stage with that error. A temporary slot
    /// (`tail`) cannot be resumed, so there every failure ends it.
    pub async fn run(
        self,
        output: mpsc::Sender<Captured>,
        mut acknowledgements: Acknowledgements,
        mut shutdown: Shutdown,
    ) -> Result<(), CaptureError> {
        let mut resume = Resume {
            confirmed: self.start,
            last_backend: None,
        };
        let temporary = matches!(self.slot, SlotKind::Temporary { .. });
        let mut reconnect = Reconnect::new("replication stream", self.status.as_ref());
        // One decoder for every connection: relation descriptions carry over.
        let mut decoder = ChangeDecoder::new();
        let outcome = loop {
            let result = self
                .stream(
                    &output,
                    &mut acknowledgements,
                    &mut shutdown,
                    &mut resume,
                    &mut reconnect,
                    &mut decoder,
                )
                .await;
            match result {
                Ok(()) => break Ok(()),
                Err(error) => match reconnect
                    .after_failure(error, temporary, &mut shutdown)
                    .await
                {
                    Next::Retry => {}
                    Next::Stop(outcome) => break outcome,
                },
            }
            if output.is_closed() {
                break Ok(());
            }
        };
        reconnect.stopped(&outcome);
        outcome
    }

    async fn stream(
        &self,
        output: &mpsc::Sender<Captured>,
        acknowledgements: &mut Acknowledgements,
        shutdown: &mut Shutdown,
        resume: &mut Resume,
        reconnect: &mut Reconnect<'_>,
        decoder: &mut ChangeDecoder,
    ) -> Result<(), CaptureError> {
        let confirmed = &mut resume.confirmed;
        // A transaction the last connection broke off is sent again from its Begin.
        decoder.abandon_transaction();
        reconnect.publish(CaptureState::Connecting);
        let mut connection = ReplicationConnection::connect(&self.url, "rowhook").await?;
        let abandoned = std::mem::replace(&mut resume.last_backend, connection.backend_pid());
        let start = self
            .slot
            .start(&mut connection, *confirmed, abandoned)
            .await?;
        let slot_name = self.slot.name();
        let sql = format!(
            "START_REPLICATION SLOT {} LOGICAL {} (proto_version '1', publication_names '{}')",
            quote_identifier(slot_name),
            start,
            quote_identifier(&self.publication).replace('\'', "''"),
        );
        connection.start_copy_both(&sql).await?;
        info!(slot = %slot_name, position = %start, "replication stream started");
        reconnect.connected();
        if let Some(status) = &self.status {
            status.send_modify(|status| status.confirmed = start);
        }
        *confirmed = start;
        let acknowledged = acknowledged_wal(acknowledgements).max(start);
        connection.limit_copy_data(self.max_row);
        let mut session = Session {
            max_row: self.max_row,
            status: self.status.as_ref(),
            url: &self.url,
            catalog: None,
            connection,
            confirmed: start,
            progress: Progress {
                acknowledged,
                last_commit_end: start,
                in_transaction: false,
                server_sent: start,
            },
            last_status: Instant::now(),
            last_heard: Instant::now(),
            last_status_position: start,
        };
        let result = session
            .pump(output, acknowledgements, shutdown, decoder)
            .await;
        *confirmed = session.confirmed;
        if result.is_ok() {
            session.connection.terminate().await;
        }
        result
    }
}

/// Where a connection resumes, carried from one connection to the next.
struct Resume {
    confirmed: Lsn,
    /// The server process of the last connection. One given up as dead may still hold the
    /// slot: the server only notices after `wal_sender_timeout`, or, behind a proxy that
    /// keeps accepting bytes, never.
    last_backend: Option<i32>,
}

/// The newest acknowledged transaction end, marking it seen.
fn acknowledged_wal(acknowledgements: &mut Acknowledgements) -> Lsn {
    match *acknowledgements.borrow_and_update() {
        CommitPosition::Wal(lsn) => lsn,
        CommitPosition::Start | CommitPosition::OutboxBatch(_) => Lsn(0),
    }
}

impl Session<'_> {
    async fn pump(
        &mut self,
        output: &mpsc::Sender<Captured>,
        acknowledgements: &mut Acknowledgements,
        shutdown: &mut Shutdown,
        decoder: &mut ChangeDecoder,
    ) -> Result<(), CaptureError> {
        let mut ticker = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                _ = shutdown.requested() => {
                    self.take_acknowledgement(acknowledgements);
                    return self.send_status(false).await;
                }
                changed = acknowledgements.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    self.take_acknowledgement(acknowledgements);
                }
                _ = ticker.tick() => self.send_status_if_due().await?,
                message = self.connection.read_copy() => {
                    self.last_heard = Instant::now();
                    let data = match message? {
                        CopyMessage::Data(data) => data,
                        CopyMessage::Oversized { head, length } => {
                            let ServerFrame::XLogData { start, payload } = frames::parse_server_frame(head)? else {
                                continue;
                            };
                            let decoded = decoder.decode_oversized(
                                start,
                                &payload,
                                length as u64,
                                self.max_row as u64,
                            )?;
                            if !self.hand_on(decoded, output, acknowledgements, &mut ticker).await? {
                                return Ok(());
                            }
                            continue;
                        }
                        CopyMessage::Done => return Err(CaptureError::StreamEnded),
                    };
                    match frames::parse_server_frame(data)? {
                        ServerFrame::XLogData { start, payload } => {
                            let decoded = decoder.decode_bytes(start, payload)?;
                            if let Decoded::Described { user_types } = &decoded {
                                self.learn_types(decoder, user_types).await?;
                            }
                            if !self.hand_on(decoded, output, acknowledgements, &mut ticker).await? {
                                return Ok(());
                            }
                        }
                        ServerFrame::Keepalive { wal_end, reply_requested } => {
                            self.progress.server_sent = self.progress.server_sent.max(wal_end);
                            if reply_requested {
                                self.send_status(false).await?;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Reads the shapes of a described relation's user-defined column types, so that its
    /// rows convert as `to_jsonb` would (domains, composites). Relations are described
    /// once per stream and after each change of the table, so this is rare.
    async fn learn_types(
        &mut self,
        decoder: &mut ChangeDecoder,
        user_types: &BTreeSet<u32>,
    ) -> Result<(), CaptureError> {
        if user_types.is_empty() {
            return Ok(());
        }
        if self
            .catalog
            .as_ref()
            .is_none_or(|client| client.is_closed())
        {
            self.catalog = Some(postgres::connect(self.url).await?);
        }
        let client = self.catalog.as_ref().expect("connected above");
        decoder
            .types_mut()
            .load(client, user_types.iter().copied())
            .await
            .map_err(CaptureError::Catalog)
    }

    /// Passes a decoded message on. Returns false when the next stage has gone away.
    async fn hand_on(
        &mut self,
        decoded: Decoded,
        output: &mpsc::Sender<Captured>,
        acknowledgements: &mut Acknowledgements,
        ticker: &mut tokio::time::Interval,
    ) -> Result<bool, CaptureError> {
        let captured = match decoded {
            Decoded::Begin { .. } => {
                self.progress.in_transaction = true;
                return Ok(true);
            }
            Decoded::Change(change) => Captured::Change(Box::new(change)),
            Decoded::Oversized(oversized) => {
                warn!(
                    table = %oversized.change.table,
                    lsn = %oversized.change.lsn,
                    bytes = oversized.bytes,
                    "a row larger than source.max_row was not read; its events fail with the reason"
                );
                Captured::Oversized(Box::new(oversized))
            }
            Decoded::Commit { end_lsn, .. } => {
                self.progress.in_transaction = false;
                self.progress.last_commit_end = end_lsn;
                Captured::Commit(CommitPosition::Wal(end_lsn))
            }
            Decoded::Truncate { tables } => {
                let tables: Vec<String> = tables.iter().map(ToString::to_string).collect();
                warn!(?tables, "truncate captured; it creates no events");
                return Ok(true);
            }
            Decoded::Described { .. } | Decoded::Other => return Ok(true),
        };
        // While the next stage is busy, keep the server answered so it does not time
        // the connection out.
        loop {
            tokio::select! {
                permit = output.reserve() => {
                    let Ok(permit) = permit else { return Ok(false) };
                    permit.send(captured);
                    return Ok(true);
                }
                _ = ticker.tick() => {
                    self.take_acknowledgement(acknowledgements);
                    self.send_status_if_due().await?;
                }
            }
        }
    }

    fn take_acknowledgement(&mut self, acknowledgements: &mut Acknowledgements) {
        let acknowledged = acknowledged_wal(acknowledgements);
        self.progress.acknowledged = self.progress.acknowledged.max(acknowledged);
    }

    async fn send_status_if_due(&mut self) -> Result<(), CaptureError> {
        let position = frames::confirmed_position(self.confirmed, self.progress);
        if position != self.last_status_position || self.last_status.elapsed() >= STATUS_INTERVAL {
            // A server streaming changes speaks anyway; asking only a quiet one keeps the
            // answers to one keepalive per status interval.
            let quiet = self.last_heard.elapsed() >= STATUS_INTERVAL / 2;
            self.send_status(quiet).await?;
        }
        Ok(())
    }

    async fn send_status(&mut self, reply_requested: bool) -> Result<(), CaptureError> {
        self.confirmed = frames::confirmed_position(self.confirmed, self.progress);
        let frame = frames::status_update(self.confirmed, time::now_micros(), reply_requested);
        self.connection.write_copy(&frame).await?;
        debug!(confirmed = %self.confirmed, "standby status sent");
        self.last_status = Instant::now();
        self.last_status_position = self.confirmed;
        if let Some(status) = self.status {
            let (confirmed, server_sent) = (self.confirmed, self.progress.server_sent);
            status.send_modify(|status| {
                status.confirmed = confirmed;
                status.server_sent = server_sent.max(confirmed);
            });
        }
        Ok(())
    }
}
