//! The [`EventStore`] interface over the PostgreSQL backend: each method hands over to
//! the module that owns the work. Every write but claims and attempt records commits
//! synchronously, so "durable when it returns" holds as the interface says.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;

use super::{PostgresStore, announce, from_sql, read, sql_error};
use crate::backfill::BackfillJob;
use crate::change::Lsn;
use crate::event::Status;
use crate::inbound::{InboundQuery, InboundRecord};
use crate::rate::Rate;
use crate::store::{
    Appended, Counts, DueEvents, EventQuery, EventRecord, EventStore, FinishedAttempt, NewEvents,
    StoreError, StoredEvent, Wakeups,
};

#[async_trait]
impl EventStore for PostgresStore {
    async fn append(&self, batch: NewEvents) -> Result<Appended, StoreError> {
        self.write_appended(batch).await
    }

    async fn resume_position(&self) -> Result<Option<Lsn>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt("SELECT lsn FROM rowhook.capture_position", &[])
            .await
            .map_err(sql_error("reading the capture position"))?;
        Ok(row.map(|row| Lsn(from_sql(row.get(0)))))
    }

    async fn claim_due_at_rate(
        &self,
        webhook: &str,
        now_ms: u64,
        limit: usize,
        rate: Option<Rate>,
    ) -> Result<DueEvents, StoreError> {
        self.claim(webhook, now_ms, limit, rate).await
    }

    async fn record_attempts(
        &self,
        finished: Vec<FinishedAttempt>,
    ) -> Result<Vec<Status>, StoreError> {
        self.record(finished).await
    }

    async fn redeliver(&self, id: &str, now_ms: u64) -> Result<EventRecord, StoreError> {
        self.write_redelivery(id, now_ms).await
    }

    async fn list(&self, query: &EventQuery) -> Result<Vec<EventRecord>, StoreError> {
        self.list_events(query).await
    }

    async fn event(&self, id: &str) -> Result<Option<StoredEvent>, StoreError> {
        self.find_event(id).await
    }

    async fn counts(&self) -> Result<BTreeMap<String, Counts>, StoreError> {
        self.count_events().await
    }

    async fn prune(&self, cutoff_ms: u64) -> Result<u64, StoreError> {
        self.prune_before(cutoff_ms).await
    }

    /// A synchronous commit flushes the write-ahead log up to itself, and with it every
    /// claim and attempt record committed before without waiting.
    async fn flush(&self) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let transaction = client
            .transaction()
            .await
            .map_err(sql_error("beginning a flush"))?;
        transaction
            .batch_execute("SET LOCAL synchronous_commit = on; SELECT pg_current_xact_id()")
            .await
            .map_err(sql_error("flushing the store"))?;
        transaction
            .commit()
            .await
            .map_err(sql_error("flushing the store"))
    }

    async fn set_paused(&self, webhook: &str, paused: bool) -> Result<(), StoreError> {
        self.store_paused(webhook, paused).await?;
        if !paused {
            announce(&*self.client().await?, &[webhook.to_string()]).await?;
            self.wakeups.wake(webhook);
        }
        Ok(())
    }

    async fn paused(&self) -> Result<BTreeSet<String>, StoreError> {
        self.paused_webhooks().await
    }

    async fn log_inbound(&self, records: Vec<InboundRecord>) -> Result<(), StoreError> {
        self.write_inbound(records).await
    }

    async fn inbound_log(&self, query: &InboundQuery) -> Result<Vec<InboundRecord>, StoreError> {
        self.read_inbound(query).await
    }

    async fn save_backfill(&self, job: &BackfillJob) -> Result<(), StoreError> {
        read::save_job(&*self.client().await?, job).await
    }

    async fn backfills(&self) -> Result<Vec<BackfillJob>, StoreError> {
        self.jobs().await
    }

    async fn size_on_disk(&self) -> Result<Option<u64>, StoreError> {
        Ok(Some(self.tables_size().await?))
    }

    fn wakeups(&self) -> &Wakeups {
        &self.wakeups
    }
}
