//! Claiming due events, recording attempts and redelivering, as transactions that
//! several instances may run at once.

use std::collections::BTreeSet;

use tokio_postgres::{Row, Transaction};

use super::append::lane_code;
use super::read::{RECORD_COLUMNS, record_of};
use super::record::Changes;
use super::{PostgresStore, announce, from_sql, sql_error, to_sql};
use crate::event::{Lane, Request, Status};
use crate::rate::{Rate, TokenBucket};
use crate::retry::{self, AfterAttempt, Schedule};
use crate::store::{
    Claim, ClaimedEvent, DueEvents, EventRecord, FinishedAttempt, StoreError, rates,
};

/// Events due again (a retry or a redelivery) go before first attempts, as an admin's
/// redelivery must not wait behind a backlog.
const KINDS: [bool; 2] = [true, false];

/// Due events of one lane and kind (`$6`: due again) that may go now: not leased, and
/// for an ordered event, no other pending event of its row before it nor one of its row
/// under way. Taken in due order and leased (a heap-only update of their queue rows);
/// their facts and requests come with them.
const CLAIM: &str = "
WITH due AS (
    SELECT q.sequence FROM rowhook.queue q
    WHERE q.webhook = $1 AND q.lane = $2 AND q.again = $6 AND q.due_at_ms <= $3
      AND (q.claimed_until IS NULL OR q.claimed_until < clock_timestamp())
      AND (NOT q.ordered OR NOT EXISTS (
          SELECT 1 FROM rowhook.queue earlier
          WHERE earlier.webhook = q.webhook AND earlier.lane = q.lane
            AND earlier.row_key = q.row_key AND earlier.ordered
            AND earlier.sequence <> q.sequence
            AND (earlier.sequence < q.sequence
                 OR earlier.claimed_until >= clock_timestamp())))
    ORDER BY q.due_at_ms, q.sequence
    LIMIT $4
    FOR UPDATE OF q SKIP LOCKED
), claimed AS (
    UPDATE rowhook.queue q
    SET claimed_until = clock_timestamp() + $5 * interval '1 millisecond',
        token = nextval('rowhook.claim_tokens')
    FROM due WHERE q.sequence = due.sequence
    RETURNING q.sequence, q.due_at_ms, q.row_key, q.ordered, q.token
)
SELECT claimed.*, e.id, e.created_at_ms, e.attempts, r.method, r.url, r.headers, r.body
FROM claimed JOIN rowhook.events e USING (sequence) JOIN rowhook.requests r USING (sequence)
ORDER BY claimed.due_at_ms, claimed.sequence";

/// When a webhook's next event is due after `$2`: the least of each lane's and kind's
/// first entry, so that every part is one probe of the queue's index.
static NEXT_DUE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let parts: Vec<String> = [0, 1]
        .into_iter()
        .flat_map(|lane| {
            KINDS.map(|again| {
                format!(
                    "(SELECT q.due_at_ms FROM rowhook.queue q \
                      WHERE q.webhook = $1 AND q.lane = {lane} AND q.again = {again} \
                        AND q.due_at_ms > $2 \
                      ORDER BY q.due_at_ms LIMIT 1)"
                )
            })
        })
        .collect();
    format!("SELECT least({})", parts.join(", "))
});

/// Serialises claims of one webhook across instances, for the row order and the rate.
const CLAIM_LOCK: &str = "SELECT pg_advisory_xact_lock(hashtext('rowhook.claim'), hashtext($1))";

fn claimed_event(webhook: &str, lane: Lane, row: &Row) -> Result<ClaimedEvent, StoreError> {
    let headers: serde_json::Value = row.get("headers");
    let headers = serde_json::from_value(headers)
        .map_err(|error| StoreError::corrupt("an event's headers", error.to_string()))?;
    let ordered: bool = row.get("ordered");
    Ok(ClaimedEvent {
        id: row.get("id"),
        webhook: webhook.to_string(),
        created_at_ms: from_sql(row.get("created_at_ms")),
        request: Request {
            method: row.get("method"),
            url: row.get("url"),
            headers,
            body: row.get("body"),
        },
        attempts: u32::try_from(row.get::<_, i32>("attempts")).unwrap_or_default(),
        claim: Claim {
            sequence: from_sql(row.get("sequence")),
            group: from_sql(row.get("token")),
            due_at_ms: from_sql(row.get("due_at_ms")),
            lane,
            row_key: if ordered { row.get("row_key") } else { None },
        },
    })
}

impl PostgresStore {
    pub(super) async fn claim(
        &self,
        webhook: &str,
        now_ms: u64,
        limit: usize,
        rate: Option<Rate>,
    ) -> Result<DueEvents, StoreError> {
        let mut client = self.client().await?;
        let transaction = client
            .transaction()
            .await
            .map_err(sql_error("beginning a claim"))?;
        asynchronous_commit(&transaction).await?;
        transaction
            .execute(CLAIM_LOCK, &[&webhook])
            .await
            .map_err(sql_error("locking a webhook's claims"))?;
        let state = transaction
            .query_opt(
                "SELECT paused, rate_next_micros FROM rowhook.webhooks WHERE name = $1",
                &[&webhook],
            )
            .await
            .map_err(sql_error("reading a webhook's state"))?;
        let (paused, next_micros) = state.map_or((false, 0), |row| {
            (row.get::<_, bool>(0), from_sql(row.get::<_, i64>(1)))
        });
        if paused {
            return Ok(DueEvents::default());
        }
        let mut bucket = rate.map(|rate| TokenBucket::resume(rate, next_micros));
        let allowed = bucket
            .as_ref()
            .map_or(limit, |bucket| rates::allowance(bucket, now_ms, limit));
        if allowed == 0 {
            let bucket = bucket.as_ref().expect("only a rate allows nothing");
            return Ok(rates::exhausted(bucket));
        }
        let lease_ms = i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX) as f64;
        let mut due = DueEvents::default();
        let passes = [Lane::Live, Lane::Backfill]
            .into_iter()
            .flat_map(|lane| KINDS.map(|again| (lane, again)));
        for (lane, again) in passes {
            let room = allowed - due.events.len();
            if room == 0 {
                break;
            }
            let rows = transaction
                .query(
                    CLAIM,
                    &[
                        &webhook,
                        &lane_code(lane),
                        &to_sql(now_ms),
                        &i64::try_from(room).unwrap_or(i64::MAX),
                        &lease_ms,
                        &again,
                    ],
                )
                .await
                .map_err(sql_error("claiming due events"))?;
            for row in &rows {
                due.events.push(claimed_event(webhook, lane, row)?);
            }
        }
        due.next_due_at_ms = if due.events.len() == allowed {
            // More may be due now.
            Some(now_ms)
        } else {
            transaction
                .query_one(NEXT_DUE.as_str(), &[&webhook, &to_sql(now_ms)])
                .await
                .map_err(sql_error("finding the next due event"))?
                .get::<_, Option<i64>>(0)
                .map(from_sql)
        };
        if let Some(bucket) = &mut bucket {
            rates::spend(bucket, now_ms, &mut due);
            transaction
                .execute(
                    "INSERT INTO rowhook.webhooks (name, rate_next_micros) VALUES ($1, $2) \
                     ON CONFLICT (name) DO UPDATE SET rate_next_micros = excluded.rate_next_micros",
                    &[&webhook, &to_sql(bucket.next_micros())],
                )
                .await
                .map_err(sql_error("storing a webhook's rate"))?;
        }
        transaction
            .commit()
            .await
            .map_err(sql_error("committing a claim"))?;
        Ok(due)
    }

    pub(super) async fn record(
        &self,
        finished: Vec<FinishedAttempt>,
    ) -> Result<Vec<Status>, StoreError> {
        let mut client = self.client().await?;
        let transaction = client
            .transaction()
            .await
            .map_err(sql_error("beginning to record attempts"))?;
        asynchronous_commit(&transaction).await?;
        let sequences: Vec<i64> = finished
            .iter()
            .map(|done| to_sql(done.claim.sequence))
            .collect();
        // Locked in one order, so that two instances' records never wait on each other
        // in a circle.
        let rows = transaction
            .query(
                "SELECT e.sequence, e.status, q.token, e.redelivery_after \
                 FROM rowhook.events e LEFT JOIN rowhook.queue q USING (sequence) \
                 WHERE e.sequence = ANY($1) ORDER BY e.sequence FOR UPDATE OF e",
                &[&sequences],
            )
            .await
            .map_err(sql_error("reading events to record attempts"))?;
        let current: std::collections::HashMap<i64, &Row> = rows
            .iter()
            .map(|row| (row.get::<_, i64>("sequence"), row))
            .collect();
        let mut statuses = Vec::with_capacity(finished.len());
        let mut changes = Changes::default();
        let mut next_in_line = BTreeSet::new();
        for done in &finished {
            let sequence = to_sql(done.claim.sequence);
            let Some(row) = current.get(&sequence) else {
                // Pruned meanwhile: nothing is left to record it on.
                statuses.push(Status::Delivered);
                continue;
            };
            let stored: String = row.get("status");
            let stored = stored
                .parse::<Status>()
                .map_err(|reason| StoreError::corrupt("an event's status", reason))?;
            let token = row.get::<_, Option<i64>>("token").map(from_sql);
            if token != Some(done.claim.group) {
                // Its lease ran out and another instance claimed it: that claim decides
                // the event's state; this attempt is kept if its number is free.
                changes.stale_attempts.push(done);
                statuses.push(stored);
                continue;
            }
            let schedule = match row.get::<_, Option<i32>>("redelivery_after") {
                Some(after) => Schedule::Redelivery {
                    after_attempts: u32::try_from(after).unwrap_or_default(),
                },
                None => Schedule::Regular,
            };
            let outcome = retry::after_attempt(
                &done.retry,
                schedule,
                done.attempt.number,
                done.attempt.succeeded(),
                done.finished_at_ms,
            );
            let status = match outcome {
                AfterAttempt::Delivered => Status::Delivered,
                AfterAttempt::DueAt(_) => Status::Pending,
                AfterAttempt::Failed => Status::Failed,
            };
            if status != Status::Pending && done.claim.row_key.is_some() {
                next_in_line.insert(done.webhook.clone());
            }
            changes.push(done, status, outcome);
            statuses.push(status);
        }
        changes.write(&transaction).await?;
        let next_in_line: Vec<String> = next_in_line.into_iter().collect();
        announce(&transaction, &next_in_line).await?;
        transaction
            .commit()
            .await
            .map_err(sql_error("committing attempt records"))?;
        for webhook in &next_in_line {
            self.wakeups.wake(webhook);
        }
        Ok(statuses)
    }

    pub(super) async fn write_redelivery(
        &self,
        id: &str,
        now_ms: u64,
    ) -> Result<EventRecord, StoreError> {
        let mut client = self.client().await?;
        let transaction = client
            .transaction()
            .await
            .map_err(sql_error("beginning a redelivery"))?;
        let found = transaction
            .query_opt(
                "SELECT sequence, render_error, webhook, lane, ordered, row_key, \
                        attempts + EXISTS (SELECT 1 FROM rowhook.queue q \
                                           WHERE q.sequence = e.sequence \
                                             AND q.claimed_until >= clock_timestamp())::int \
                        AS made \
                 FROM rowhook.events e WHERE id = $1 FOR UPDATE OF e",
                &[&id],
            )
            .await
            .map_err(sql_error("reading an event to redeliver"))?
            .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        if let Some(reason) = found.get::<_, Option<String>>("render_error") {
            return Err(StoreError::NotRedeliverable {
                id: id.to_string(),
                reason,
            });
        }
        // An attempt under way counts as made: the redelivery is one more after it.
        let made: i32 = found.get("made");
        let sequence: i64 = found.get("sequence");
        let row = transaction
            .query_one(
                &format!(
                    "UPDATE rowhook.events e SET status = 'pending', due_at_ms = $2, \
                     redelivery_after = $3, finished_at_ms = NULL \
                     WHERE sequence = $1 RETURNING {RECORD_COLUMNS}"
                ),
                &[&sequence, &to_sql(now_ms), &made],
            )
            .await
            .map_err(sql_error("queueing a redelivery"))?;
        // Queued again (or still, when under way: its lease stays, so it is not handed
        // out twice), as a retry: before first attempts.
        transaction
            .execute(
                "INSERT INTO rowhook.queue (sequence, webhook, lane, again, due_at_ms, ordered, \
                                            row_key) \
                 VALUES ($1, $2, $3, true, $4, $5, $6) \
                 ON CONFLICT (sequence) DO UPDATE SET again = true, due_at_ms = excluded.due_at_ms",
                &[
                    &sequence,
                    &found.get::<_, String>("webhook"),
                    &found.get::<_, i16>("lane"),
                    &to_sql(now_ms),
                    &found.get::<_, bool>("ordered"),
                    &found.get::<_, Option<String>>("row_key"),
                ],
            )
            .await
            .map_err(sql_error("queueing a redelivery"))?;
        let record = record_of(&row)?;
        announce(&transaction, std::slice::from_ref(&record.webhook)).await?;
        transaction
            .commit()
            .await
            .map_err(sql_error("committing a redelivery"))?;
        self.wakeups.wake(&record.webhook);
        Ok(record)
    }
}

/// Claims and attempt records need not wait for the disk (see the module's notes).
async fn asynchronous_commit(transaction: &Transaction<'_>) -> Result<(), StoreError> {
    transaction
        .batch_execute("SET LOCAL synchronous_commit = off")
        .await
        .map_err(sql_error("preparing a transaction"))
}
