//! The [`EventStore`] interface over the sled backend: each method hands over to the
//! module that owns the work, and flushes where the interface promises durability.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;

use super::{SledStore, backend, jobs, keys, lanes};
use crate::backfill::BackfillJob;
use crate::change::Lsn;
use crate::event::Status;
use crate::inbound::{InboundQuery, InboundRecord};
use crate::rate::{Rate, TokenBucket};
use crate::store::rates;
use crate::store::{
    Appended, Counts, DueEvents, EventQuery, EventRecord, EventStore, FinishedAttempt, NewEvents,
    StoreError, StoredEvent, Wakeups,
};

#[async_trait]
impl EventStore for SledStore {
    async fn append(&self, batch: NewEvents) -> Result<Appended, StoreError> {
        let (appended, touched) = self.write_appended(batch)?;
        self.flush_now().await?;
        for queue in touched {
            self.wakeups.wake(lanes::webhook_of(&queue));
        }
        Ok(appended)
    }

    async fn resume_position(&self) -> Result<Option<Lsn>, StoreError> {
        Ok(self.lock().checkpoint)
    }

    async fn claim_due_at_rate(
        &self,
        webhook: &str,
        now_ms: u64,
        limit: usize,
        rate: Option<Rate>,
    ) -> Result<DueEvents, StoreError> {
        if self.lock().paused.contains(webhook) {
            return Ok(DueEvents::default());
        }
        let Some(rate) = rate else {
            return self.claim_both_lanes(webhook, now_ms, limit);
        };
        let mut buckets = self
            .rates
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let bucket = buckets
            .entry(webhook.to_string())
            .or_insert_with(|| TokenBucket::new(rate));
        let allowed = rates::allowance(bucket, now_ms, limit);
        if allowed == 0 {
            return Ok(rates::exhausted(bucket));
        }
        let mut due = self.claim_both_lanes(webhook, now_ms, allowed)?;
        rates::spend(bucket, now_ms, &mut due);
        Ok(due)
    }

    async fn record_attempts(
        &self,
        finished: Vec<FinishedAttempt>,
    ) -> Result<Vec<Status>, StoreError> {
        self.record(finished)
    }

    async fn redeliver(&self, id: &str, now_ms: u64) -> Result<EventRecord, StoreError> {
        let record = self.write_redelivery(id, now_ms)?;
        self.flush_now().await?;
        self.wakeups.wake(&record.webhook);
        Ok(record)
    }

    async fn list(&self, query: &EventQuery) -> Result<Vec<EventRecord>, StoreError> {
        self.list_events(query)
    }

    async fn event(&self, id: &str) -> Result<Option<StoredEvent>, StoreError> {
        self.find_event(id)
    }

    async fn counts(&self) -> Result<BTreeMap<String, Counts>, StoreError> {
        let mut by_webhook: BTreeMap<String, Counts> = BTreeMap::new();
        for (queue, counts) in &self.lock().counts {
            let total = by_webhook
                .entry(lanes::webhook_of(queue).to_string())
                .or_default();
            for (status, count) in counts {
                *total.entry(*status).or_default() += count;
            }
        }
        Ok(by_webhook)
    }

    async fn prune(&self, cutoff_ms: u64) -> Result<u64, StoreError> {
        self.prune_inbound(cutoff_ms)?;
        self.prune_before(cutoff_ms).await
    }

    async fn log_inbound(&self, records: Vec<InboundRecord>) -> Result<(), StoreError> {
        self.write_inbound(records)
    }

    async fn inbound_log(&self, query: &InboundQuery) -> Result<Vec<InboundRecord>, StoreError> {
        self.read_inbound(query)
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.flush_now().await
    }

    async fn set_paused(&self, webhook: &str, paused: bool) -> Result<(), StoreError> {
        let key = keys::paused(webhook);
        let written = if paused {
            self.tree.insert(key, &[]).map(|_| ())
        } else {
            self.tree.remove(key).map(|_| ())
        };
        written.map_err(backend("storing a webhook's pause"))?;
        self.flush_now().await?;
        let mut inner = self.lock();
        if paused {
            inner.paused.insert(webhook.to_string());
        } else {
            inner.paused.remove(webhook);
        }
        drop(inner);
        if !paused {
            self.wakeups.wake(webhook);
        }
        Ok(())
    }

    async fn paused(&self) -> Result<BTreeSet<String>, StoreError> {
        Ok(self.lock().paused.clone())
    }

    async fn save_backfill(&self, job: &BackfillJob) -> Result<(), StoreError> {
        self.tree
            .insert(keys::backfill(job.id), jobs::encode(job))
            .map_err(backend("storing a backfill job"))?;
        self.flush_now().await
    }

    async fn backfills(&self) -> Result<Vec<BackfillJob>, StoreError> {
        self.tree
            .scan_prefix([keys::BACKFILL])
            .values()
            .map(|value| {
                let value = value.map_err(backend("reading backfill jobs"))?;
                jobs::decode(&value)
            })
            .collect()
    }

    async fn size_on_disk(&self) -> Result<Option<u64>, StoreError> {
        let size = self
            .db
            .size_on_disk()
            .map_err(backend("measuring the store"))?;
        Ok(Some(size + self.value_log.size()))
    }

    fn wakeups(&self) -> &Wakeups {
        &self.wakeups
    }
}

impl SledStore {
    /// Live events first, then a backfill's, up to `limit` in all.
    fn claim_both_lanes(
        &self,
        webhook: &str,
        now_ms: u64,
        limit: usize,
    ) -> Result<DueEvents, StoreError> {
        let [live, backfill] = lanes::queues_of(webhook);
        let mut due = self.claim(&live, now_ms, limit)?;
        if due.events.len() < limit {
            let more = self.claim(&backfill, now_ms, limit - due.events.len())?;
            due.events.extend(more.events);
            due.next_due_at_ms = match (due.next_due_at_ms, more.next_due_at_ms) {
                (Some(live), Some(backfill)) => Some(live.min(backfill)),
                (live, backfill) => live.or(backfill),
            };
        }
        Ok(due)
    }
}
