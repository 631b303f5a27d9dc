//! The history and the store's small state: listings, one event whole, counts, pruning,
//! backfill jobs, the inbound log and paused webhooks.

use std::collections::{BTreeMap, BTreeSet};

use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::{PostgresStore, from_sql, sql_error, to_sql};
use crate::backfill::BackfillJob;
use crate::event::{Attempt, Request, Status};
use crate::inbound::{InboundQuery, InboundRecord};
use crate::store::{Counts, EventQuery, EventRecord, StoreError, StoredEvent};

/// The columns [`record_of`] reads, of `rowhook.events` as `e`.
pub(super) const RECORD_COLUMNS: &str = "e.id, e.webhook, e.model, e.kind, e.created_at_ms, \
     e.sequence, e.status, e.attempts, e.due_at_ms, e.last_status_code, e.last_error, \
     e.finished_at_ms, e.render_error, e.row_key";

/// Pruning deletes this many events per transaction, so that it never holds locks long.
const PRUNE_BATCH: i64 = 10_000;

pub(super) fn record_of(row: &Row) -> Result<EventRecord, StoreError> {
    let status: String = row.get("status");
    Ok(EventRecord {
        id: row.get("id"),
        webhook: row.get("webhook"),
        model: row.get("model"),
        kind: row.get("kind"),
        created_at_ms: from_sql(row.get("created_at_ms")),
        sequence: from_sql(row.get("sequence")),
        status: status
            .parse()
            .map_err(|reason| StoreError::corrupt("an event's status", reason))?,
        attempts: u32::try_from(row.get::<_, i32>("attempts")).unwrap_or_default(),
        next_attempt_at_ms: row.get::<_, Option<i64>>("due_at_ms").map(from_sql),
        last_status_code: row
            .get::<_, Option<i32>>("last_status_code")
            .and_then(|code| u16::try_from(code).ok()),
        last_error: row.get("last_error"),
        finished_at_ms: row.get::<_, Option<i64>>("finished_at_ms").map(from_sql),
        render_error: row.get("render_error"),
        row_key: row.get("row_key"),
    })
}

pub(super) async fn save_job(
    client: &impl tokio_postgres::GenericClient,
    job: &BackfillJob,
) -> Result<(), StoreError> {
    let value = serde_json::to_value(job).expect("a job serializes");
    client
        .execute(
            // A job's end is final: a runner elsewhere storing its next page after an
            // admin cancelled the job does not bring it back to life.
            "INSERT INTO rowhook.jobs (id, job) VALUES ($1, $2) \
             ON CONFLICT (id) DO UPDATE SET job = excluded.job \
             WHERE rowhook.jobs.job ->> 'state' = 'running'",
            &[&i64::from(job.id), &value],
        )
        .await
        .map_err(sql_error("storing a backfill job"))?;
    Ok(())
}

impl PostgresStore {
    pub(super) async fn list_events(
        &self,
        query: &EventQuery,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let mut conditions = Vec::new();
        let mut parameters: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
        let mut condition = |sql: &str, value: Box<dyn ToSql + Sync + Send>| {
            parameters.push(value);
            conditions.push(sql.replace('?', &format!("${}", parameters.len())));
        };
        if let Some(webhook) = &query.webhook {
            condition("e.webhook = ?", Box::new(webhook.clone()));
        }
        if let Some(status) = query.status {
            condition("e.status = ?", Box::new(status.as_str()));
        }
        if let Some(before) = query.before {
            condition("e.sequence < ?", Box::new(to_sql(before)));
        }
        if let Some(row) = &query.row {
            condition("e.model = ?", Box::new(row.model.clone()));
            condition("e.row_key = ?", Box::new(row.key.clone()));
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let limit = if query.limit == 0 {
            String::new()
        } else {
            format!("LIMIT {}", query.limit)
        };
        let sql = format!(
            "SELECT {RECORD_COLUMNS} FROM rowhook.events e {filter} \
             ORDER BY e.sequence DESC {limit}"
        );
        let parameters: Vec<&(dyn ToSql + Sync)> = parameters
            .iter()
            .map(|value| value.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let rows = self
            .client()
            .await?
            .query(&sql, &parameters)
            .await
            .map_err(sql_error("listing events"))?;
        rows.iter().map(record_of).collect()
    }

    pub(super) async fn find_event(&self, id: &str) -> Result<Option<StoredEvent>, StoreError> {
        let client = self.client().await?;
        let Some(row) = client
            .query_opt(
                &format!(
                    "SELECT {RECORD_COLUMNS}, r.method, r.url, r.headers, r.body, r.envelope \
                     FROM rowhook.events e JOIN rowhook.requests r USING (sequence) \
                     WHERE e.id = $1"
                ),
                &[&id],
            )
            .await
            .map_err(sql_error("reading an event"))?
        else {
            return Ok(None);
        };
        let record = record_of(&row)?;
        let body: Option<String> = row.get("body");
        let request = match row.get::<_, Option<serde_json::Value>>("headers") {
            Some(headers) => Some(Request {
                method: row.get("method"),
                url: row.get("url"),
                headers: serde_json::from_value(headers).map_err(|error| {
                    StoreError::corrupt("an event's headers", error.to_string())
                })?,
                body: body.clone(),
            }),
            None => None,
        };
        // The envelope is kept once: as the body when the body is the envelope.
        let envelope = row
            .get::<_, Option<String>>("envelope")
            .or(body)
            .unwrap_or_default();
        let attempts = client
            .query(
                "SELECT number, started_at_ms, duration_ms, status_code, error_kind, error, \
                        response_body \
                 FROM rowhook.attempts WHERE sequence = $1 ORDER BY number",
                &[&to_sql(record.sequence)],
            )
            .await
            .map_err(sql_error("reading an event's attempts"))?
            .iter()
            .map(attempt_of)
            .collect::<Result<_, _>>()?;
        Ok(Some(StoredEvent {
            record,
            request,
            envelope,
            attempts,
        }))
    }

    pub(super) async fn count_events(&self) -> Result<BTreeMap<String, Counts>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT webhook, status, count(*) FROM rowhook.events GROUP BY webhook, status",
                &[],
            )
            .await
            .map_err(sql_error("counting events"))?;
        let mut counts: BTreeMap<String, Counts> = BTreeMap::new();
        for row in rows {
            let status: String = row.get(1);
            let status: Status = status
                .parse()
                .map_err(|reason| StoreError::corrupt("an event's status", reason))?;
            counts
                .entry(row.get(0))
                .or_default()
                .insert(status, from_sql(row.get(2)));
        }
        Ok(counts)
    }

    pub(super) async fn prune_before(&self, cutoff_ms: u64) -> Result<u64, StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM rowhook.inbound_log WHERE received_at_ms < $1",
                &[&to_sql(cutoff_ms)],
            )
            .await
            .map_err(sql_error("pruning the inbound log"))?;
        let mut pruned = 0;
        loop {
            let deleted = client
                .query_one(
                    "WITH gone AS ( \
                         DELETE FROM rowhook.events WHERE sequence IN ( \
                             SELECT sequence FROM rowhook.events \
                             WHERE created_at_ms < $1 AND status <> 'pending' \
                               AND finished_at_ms < $1 LIMIT $2) \
                         RETURNING sequence), \
                     requests AS (DELETE FROM rowhook.requests \
                         WHERE sequence IN (SELECT sequence FROM gone)), \
                     attempts AS (DELETE FROM rowhook.attempts \
                         WHERE sequence IN (SELECT sequence FROM gone)), \
                     queue AS (DELETE FROM rowhook.queue \
                         WHERE sequence IN (SELECT sequence FROM gone)) \
                     SELECT count(*) FROM gone",
                    &[&to_sql(cutoff_ms), &PRUNE_BATCH],
                )
                .await
                .map_err(sql_error("pruning events"))?
                .get::<_, i64>(0);
            pruned += from_sql(deleted);
            if deleted < PRUNE_BATCH {
                return Ok(pruned);
            }
        }
    }

    pub(super) async fn store_paused(&self, webhook: &str, paused: bool) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "INSERT INTO rowhook.webhooks (name, paused) VALUES ($1, $2) \
                 ON CONFLICT (name) DO UPDATE SET paused = excluded.paused",
                &[&webhook, &paused],
            )
            .await
            .map_err(sql_error("storing a webhook's pause"))?;
        Ok(())
    }

    pub(super) async fn paused_webhooks(&self) -> Result<BTreeSet<String>, StoreError> {
        let rows = self
            .client()
            .await?
            .query("SELECT name FROM rowhook.webhooks WHERE paused", &[])
            .await
            .map_err(sql_error("reading paused webhooks"))?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    pub(super) async fn jobs(&self) -> Result<Vec<BackfillJob>, StoreError> {
        let rows = self
            .client()
            .await?
            .query("SELECT job FROM rowhook.jobs ORDER BY id", &[])
            .await
            .map_err(sql_error("reading backfill jobs"))?;
        rows.iter()
            .map(|row| {
                serde_json::from_value(row.get(0))
                    .map_err(|error| StoreError::corrupt("a backfill job", error.to_string()))
            })
            .collect()
    }

    pub(super) async fn write_inbound(
        &self,
        records: Vec<InboundRecord>,
    ) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut received = Vec::with_capacity(records.len());
        let mut endpoints = Vec::with_capacity(records.len());
        let mut outcomes = Vec::with_capacity(records.len());
        let mut values = Vec::with_capacity(records.len());
        for record in records {
            received.push(to_sql(record.received_at_ms));
            outcomes.push(record.outcome.as_str());
            endpoints.push(record.endpoint.clone());
            values.push(serde_json::to_value(&record).expect("a log entry serializes"));
        }
        self.client()
            .await?
            .execute(
                "INSERT INTO rowhook.inbound_log (received_at_ms, endpoint, outcome, record) \
                 SELECT * FROM unnest($1::int8[], $2::text[], $3::text[], $4::jsonb[])",
                &[&received, &endpoints, &outcomes, &values],
            )
            .await
            .map_err(sql_error("logging inbound requests"))?;
        Ok(())
    }

    pub(super) async fn read_inbound(
        &self,
        query: &InboundQuery,
    ) -> Result<Vec<InboundRecord>, StoreError> {
        let outcome = query.outcome.map(|outcome| outcome.as_str());
        let limit = if query.limit == 0 {
            i64::MAX
        } else {
            i64::try_from(query.limit).unwrap_or(i64::MAX)
        };
        let rows = self
            .client()
            .await?
            .query(
                "SELECT sequence, record FROM rowhook.inbound_log \
                 WHERE ($1::text IS NULL OR endpoint = $1) AND ($2::text IS NULL OR outcome = $2) \
                 ORDER BY sequence DESC LIMIT $3",
                &[&query.endpoint, &outcome, &limit],
            )
            .await
            .map_err(sql_error("reading the inbound log"))?;
        rows.iter()
            .map(|row| {
                let mut record: InboundRecord =
                    serde_json::from_value(row.get(1)).map_err(|error| {
                        StoreError::corrupt("an inbound log entry", error.to_string())
                    })?;
                record.sequence = from_sql(row.get(0));
                Ok(record)
            })
            .collect()
    }

    pub(super) async fn tables_size(&self) -> Result<u64, StoreError> {
        let size: i64 = self
            .client()
            .await?
            .query_one(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::int8 \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = 'rowhook' AND c.relkind = 'r' \
                   AND c.relname IN ('events', 'requests', 'attempts', 'queue', 'webhooks', \
                                     'jobs', 'inbound_log', 'capture_position', 'store_version')",
                &[],
            )
            .await
            .map_err(sql_error("measuring the store"))?
            .get(0);
        Ok(from_sql(size))
    }
}

fn attempt_of(row: &Row) -> Result<Attempt, StoreError> {
    let kind: Option<String> = row.get("error_kind");
    let error_kind = match kind {
        Some(kind) => Some(
            serde_json::from_value(serde_json::Value::String(kind))
                .map_err(|error| StoreError::corrupt("an attempt's kind", error.to_string()))?,
        ),
        None => None,
    };
    Ok(Attempt {
        number: u32::try_from(row.get::<_, i32>("number")).unwrap_or_default(),
        started_at_ms: from_sql(row.get("started_at_ms")),
        duration_ms: from_sql(row.get("duration_ms")),
        status_code: row
            .get::<_, Option<i32>>("status_code")
            .and_then(|code| u16::try_from(code).ok()),
        error_kind,
        error: row.get("error"),
        response_body: row.get("response_body"),
    })
}
