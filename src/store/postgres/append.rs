//! Appending a batch: one transaction of a few statements whatever the batch's size —
//! the events and their requests in one multi-row insert, the capture position, a
//! backfill job's cursor, and a wake-up for the other instances.

use std::collections::{BTreeSet, HashSet};

use serde_json::Value;

use super::{PostgresStore, announce, sql_error, to_sql};
use crate::event::{Content, Lane, NewEvent};
use crate::store::{Appended, NewEvents, StoreError};

/// Events, their queue entries (pending ones) and requests from arrays, in the batch's
/// order (so sequences follow it); an id stored already adds nothing.
const INSERT: &str = "
WITH input AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::int2[], $4::text[], $5::text[],
                         $6::text[], $7::bool[], $8::int8[], $9::text[], $10::int8[],
                         $11::int8[], $12::text[], $13::text[], $14::text[], $15::jsonb[],
                         $16::text[], $17::text[])
        WITH ORDINALITY AS input(id, webhook, lane, model, kind, row_key, ordered,
                                 created_at_ms, status, due_at_ms, finished_at_ms,
                                 render_error, method, url, headers, body, envelope, ordinal)
), inserted AS (
    INSERT INTO rowhook.events (id, webhook, lane, model, kind, row_key, ordered,
                                created_at_ms, status, due_at_ms, finished_at_ms,
                                render_error, last_error)
    SELECT id, webhook, lane, model, kind, row_key, ordered, created_at_ms, status,
           due_at_ms, finished_at_ms, render_error, render_error
    FROM input ORDER BY ordinal
    ON CONFLICT (id) DO NOTHING
    RETURNING sequence, id
), queued AS (
    INSERT INTO rowhook.queue (sequence, webhook, lane, again, due_at_ms, ordered, row_key)
    SELECT inserted.sequence, input.webhook, input.lane, false, input.due_at_ms,
           input.ordered, input.row_key
    FROM inserted JOIN input USING (id)
    WHERE input.status = 'pending'
)
INSERT INTO rowhook.requests (sequence, method, url, headers, body, envelope)
SELECT inserted.sequence, input.method, input.url, input.headers, input.body, input.envelope
FROM inserted JOIN input USING (id)";

/// The batch as columns, one array per column.
#[derive(Default)]
struct Columns {
    id: Vec<String>,
    webhook: Vec<String>,
    lane: Vec<i16>,
    model: Vec<String>,
    kind: Vec<String>,
    row_key: Vec<Option<String>>,
    ordered: Vec<bool>,
    created_at_ms: Vec<i64>,
    status: Vec<&'static str>,
    due_at_ms: Vec<Option<i64>>,
    finished_at_ms: Vec<Option<i64>>,
    render_error: Vec<Option<String>>,
    method: Vec<Option<String>>,
    url: Vec<Option<String>>,
    headers: Vec<Option<Value>>,
    body: Vec<Option<String>>,
    envelope: Vec<Option<String>>,
}

pub(super) fn lane_code(lane: Lane) -> i16 {
    match lane {
        Lane::Live => 0,
        Lane::Backfill => 1,
    }
}

impl Columns {
    /// The events of a batch, each id once (the first of its kind, as a second append
    /// of it would leave the first).
    fn of(events: Vec<NewEvent>) -> Columns {
        let mut columns = Columns::default();
        let mut seen = HashSet::new();
        for event in events {
            if !seen.insert(event.id.clone()) {
                continue;
            }
            let status = event.initial_status();
            columns.status.push(status.as_str());
            columns.lane.push(lane_code(event.lane));
            columns.ordered.push(event.ordered);
            columns.created_at_ms.push(to_sql(event.created_at_ms));
            match event.content {
                Content::Rendered { request, envelope } => {
                    columns
                        .due_at_ms
                        .push(Some(to_sql(event.first_attempt_at_ms)));
                    columns.finished_at_ms.push(None);
                    columns.render_error.push(None);
                    columns.method.push(Some(request.method));
                    columns.url.push(Some(request.url));
                    columns.headers.push(Some(
                        serde_json::to_value(&request.headers).expect("headers serialize"),
                    ));
                    columns.body.push(request.body);
                    columns.envelope.push(envelope);
                }
                Content::Unrendered { reason, envelope } => {
                    columns.due_at_ms.push(None);
                    columns
                        .finished_at_ms
                        .push(Some(to_sql(event.created_at_ms)));
                    columns.render_error.push(Some(reason));
                    columns.method.push(None);
                    columns.url.push(None);
                    columns.headers.push(None);
                    columns.body.push(None);
                    columns.envelope.push(Some(envelope));
                }
            }
            columns.id.push(event.id);
            columns.webhook.push(event.webhook);
            columns.model.push(event.model);
            columns.kind.push(event.kind);
            columns.row_key.push(event.row_key);
        }
        columns
    }
}

impl PostgresStore {
    pub(super) async fn write_appended(&self, batch: NewEvents) -> Result<Appended, StoreError> {
        let webhooks: Vec<String> = batch
            .events
            .iter()
            .map(|event| event.webhook.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let columns = Columns::of(batch.events);
        let mut client = self.client().await?;
        let transaction = client
            .transaction()
            .await
            .map_err(sql_error("beginning an append"))?;
        let created = if columns.id.is_empty() {
            0
        } else {
            transaction
                .execute(
                    INSERT,
                    &[
                        &columns.id,
                        &columns.webhook,
                        &columns.lane,
                        &columns.model,
                        &columns.kind,
                        &columns.row_key,
                        &columns.ordered,
                        &columns.created_at_ms,
                        &columns.status,
                        &columns.due_at_ms,
                        &columns.finished_at_ms,
                        &columns.render_error,
                        &columns.method,
                        &columns.url,
                        &columns.headers,
                        &columns.body,
                        &columns.envelope,
                    ],
                )
                .await
                .map_err(sql_error("storing events"))?
        };
        if let Some(position) = batch.resume_after {
            let lsn = i64::try_from(position.0).unwrap_or(i64::MAX);
            transaction
                .execute(
                    "INSERT INTO rowhook.capture_position (lsn) VALUES ($1) \
                     ON CONFLICT (only_row) DO UPDATE \
                     SET lsn = greatest(capture_position.lsn, excluded.lsn)",
                    &[&lsn],
                )
                .await
                .map_err(sql_error("storing the capture position"))?;
        }
        if self.drains_outbox && !batch.drained_outbox.is_empty() {
            // Drained rows and their events change hands in one transaction.
            transaction
                .execute(
                    "DELETE FROM rowhook.outbox WHERE id = ANY($1)",
                    &[&batch.drained_outbox],
                )
                .await
                .map_err(sql_error("deleting drained outbox rows"))?;
        }
        if let Some(job) = &batch.backfill {
            super::read::save_job(&transaction, job).await?;
        }
        if created > 0 {
            announce(&transaction, &webhooks).await?;
        }
        transaction
            .commit()
            .await
            .map_err(sql_error("committing an append"))?;
        if created > 0 {
            for webhook in &webhooks {
                self.wakeups.wake(webhook);
            }
        }
        Ok(Appended {
            created: usize::try_from(created).unwrap_or(usize::MAX),
        })
    }
}
