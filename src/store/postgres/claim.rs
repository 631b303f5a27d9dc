//! Claiming due events, recording attempts and redelivering, as transactions that
//! several instances may run at once.

use std::collections::BTreeSet;

use tokio_postgres::{Row, Transaction};

use super::append::lane_code;
use super::read::{RECORD_COLUMNS, record_of};
use super::{PostgresStore, WAKE_CHANNEL, from_sql, sql_error, to_sql};
use crate::event::{Lane, Request, Status};
use crate::rate::{Rate, TokenBucket};
use crate::retry::{self, AfterAttempt, Schedule};
use crate::store::{
    Claim, ClaimedEvent, DueEvents, EventRecord, FinishedAttempt, StoreError, rates,
};

/// Events due again (a retry or a redelivery) go before first attempts, as an admin's
/// redelivery must not wait behind a backlog; each kind has its own index.
const DUE_AGAIN: &str = "(e.attempts > 0 OR e.redelivery_after IS NOT NULL)";
const DUE_FIRST: &str = "e.attempts = 0 AND e.redelivery_after IS NULL";

/// Due events of one lane that may go now: not leased, and for an ordered event, no
/// other pending event of its row before it nor one of its row under way. Taken in due
/// order and leased; their requests come with them. `{kind}` is one of the above.
const CLAIM: &str = "
WITH due AS (
    SELECT e.sequence FROM rowhook.events e
    WHERE e.webhook = $1 AND e.lane = $2 AND e.status = 'pending' AND e.due_at_ms <= $3
      AND {kind}
      AND (e.claimed_until IS NULL OR e.claimed_until < clock_timestamp())
      AND (NOT e.ordered OR NOT EXISTS (
          SELECT 1 FROM rowhook.events earlier
          WHERE earlier.webhook = e.webhook AND earlier.lane = e.lane
            AND earlier.row_key = e.row_key AND earlier.status = 'pending'
            AND earlier.ordered AND earlier.sequence <> e.sequence
            AND (earlier.sequence < e.sequence
                 OR earlier.claimed_until >= clock_timestamp())))
    ORDER BY e.due_at_ms, e.sequence
    LIMIT $4
    FOR UPDATE OF e SKIP LOCKED
), claimed AS (
    UPDATE rowhook.events e
    SET claimed_until = clock_timestamp() + $5 * interval '1 millisecond',
        claim_token = e.claim_token + 1
    FROM due WHERE e.sequence = due.sequence
    RETURNING e.sequence, e.id, e.created_at_ms, e.attempts, e.due_at_ms, e.row_key,
              e.ordered, e.claim_token
)
SELECT claimed.*, r.method, r.url, r.headers, r.body
FROM claimed JOIN rowhook.requests r USING (sequence)
ORDER BY claimed.due_at_ms, claimed.sequence";

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
            group: from_sql(row.get("claim_token")),
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
            .flat_map(|lane| [(lane, DUE_AGAIN), (lane, DUE_FIRST)]);
        for (lane, kind) in passes {
            let room = allowed - due.events.len();
            if room == 0 {
                break;
            }
            let rows = transaction
                .query(
                    &CLAIM.replace("{kind}", kind),
                    &[
                        &webhook,
                        &lane_code(lane),
                        &to_sql(now_ms),
                        &i64::try_from(room).unwrap_or(i64::MAX),
                        &lease_ms,
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
                .query_one(
                    "SELECT min(due_at_ms) FROM rowhook.events \
                     WHERE webhook = $1 AND status = 'pending' AND due_at_ms > $2",
                    &[&webhook, &to_sql(now_ms)],
                )
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
                "SELECT sequence, status, claim_token, redelivery_after FROM rowhook.events \
                 WHERE sequence = ANY($1) ORDER BY sequence FOR UPDATE",
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
            let token = from_sql(row.get("claim_token"));
            if token != done.claim.group {
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
        if !next_in_line.is_empty() {
            transaction
                .execute(
                    "SELECT pg_notify($1, webhook) FROM unnest($2::text[]) AS webhook",
                    &[&WAKE_CHANNEL, &next_in_line],
                )
                .await
                .map_err(sql_error("announcing the next event of a row"))?;
        }
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
                "SELECT sequence, render_error, \
                        attempts + (claimed_until IS NOT NULL \
                                    AND claimed_until >= clock_timestamp())::int AS made \
                 FROM rowhook.events WHERE id = $1 FOR UPDATE",
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
        let record = record_of(&row)?;
        transaction
            .execute(
                "SELECT pg_notify($1, $2)",
                &[&WAKE_CHANNEL, &record.webhook],
            )
            .await
            .map_err(sql_error("announcing a redelivery"))?;
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

/// What recording a batch of attempts writes, as columns.
#[derive(Default)]
struct Changes<'a> {
    sequence: Vec<i64>,
    status: Vec<&'static str>,
    due_at_ms: Vec<Option<i64>>,
    finished_at_ms: Vec<Option<i64>>,
    attempts: Vec<&'a FinishedAttempt>,
    /// Attempts whose claim was taken over: added only where their number is free.
    stale_attempts: Vec<&'a FinishedAttempt>,
}

impl<'a> Changes<'a> {
    fn push(&mut self, done: &'a FinishedAttempt, status: Status, outcome: AfterAttempt) {
        self.sequence.push(to_sql(done.claim.sequence));
        self.status.push(status.as_str());
        self.due_at_ms.push(match outcome {
            AfterAttempt::DueAt(at) => Some(to_sql(at)),
            AfterAttempt::Delivered | AfterAttempt::Failed => None,
        });
        self.finished_at_ms.push(match outcome {
            AfterAttempt::DueAt(_) => None,
            AfterAttempt::Delivered | AfterAttempt::Failed => Some(to_sql(done.finished_at_ms)),
        });
        self.attempts.push(done);
    }

    async fn write(&self, transaction: &Transaction<'_>) -> Result<(), StoreError> {
        if !self.sequence.is_empty() {
            let numbers: Vec<i32> = self.attempts.iter().map(|done| number(done)).collect();
            let codes: Vec<Option<i32>> = self
                .attempts
                .iter()
                .map(|done| done.attempt.status_code.map(i32::from))
                .collect();
            let errors: Vec<Option<&str>> = self
                .attempts
                .iter()
                .map(|done| done.attempt.error.as_deref())
                .collect();
            transaction
                .execute(
                    "UPDATE rowhook.events e SET status = change.status, \
                         due_at_ms = change.due_at_ms, finished_at_ms = change.finished_at_ms, \
                         attempts = greatest(e.attempts, change.number), \
                         last_status_code = change.code, last_error = change.error, \
                         claimed_until = NULL \
                     FROM unnest($1::int8[], $2::text[], $3::int8[], $4::int8[], $5::int4[], \
                                 $6::int4[], $7::text[]) \
                          AS change(sequence, status, due_at_ms, finished_at_ms, number, code, error) \
                     WHERE e.sequence = change.sequence",
                    &[
                        &self.sequence,
                        &self.status,
                        &self.due_at_ms,
                        &self.finished_at_ms,
                        &numbers,
                        &codes,
                        &errors,
                    ],
                )
                .await
                .map_err(sql_error("recording attempts"))?;
        }
        insert_attempts(transaction, &self.attempts, true).await?;
        insert_attempts(transaction, &self.stale_attempts, false).await
    }
}

fn number(done: &FinishedAttempt) -> i32 {
    i32::try_from(done.attempt.number).unwrap_or(i32::MAX)
}

/// Adds attempts; one recorded twice (a claim's record retried) keeps the later entry
/// when `replace`, else the first.
async fn insert_attempts(
    transaction: &Transaction<'_>,
    attempts: &[&FinishedAttempt],
    replace: bool,
) -> Result<(), StoreError> {
    if attempts.is_empty() {
        return Ok(());
    }
    let on_conflict = if replace {
        "DO UPDATE SET started_at_ms = excluded.started_at_ms, \
         duration_ms = excluded.duration_ms, status_code = excluded.status_code, \
         error_kind = excluded.error_kind, error = excluded.error, \
         response_body = excluded.response_body"
    } else {
        "DO NOTHING"
    };
    let sequence: Vec<i64> = attempts
        .iter()
        .map(|done| to_sql(done.claim.sequence))
        .collect();
    let numbers: Vec<i32> = attempts.iter().map(|done| number(done)).collect();
    let started: Vec<i64> = attempts
        .iter()
        .map(|done| to_sql(done.attempt.started_at_ms))
        .collect();
    let duration: Vec<i64> = attempts
        .iter()
        .map(|done| to_sql(done.attempt.duration_ms))
        .collect();
    let codes: Vec<Option<i32>> = attempts
        .iter()
        .map(|done| done.attempt.status_code.map(i32::from))
        .collect();
    let kinds: Vec<Option<&str>> = attempts
        .iter()
        .map(|done| done.attempt.error_kind.map(|kind| kind.as_str()))
        .collect();
    let errors: Vec<Option<&str>> = attempts
        .iter()
        .map(|done| done.attempt.error.as_deref())
        .collect();
    let bodies: Vec<&str> = attempts
        .iter()
        .map(|done| done.attempt.response_body.as_str())
        .collect();
    transaction
        .execute(
            &format!(
                "INSERT INTO rowhook.attempts (sequence, number, started_at_ms, duration_ms, \
                     status_code, error_kind, error, response_body) \
                 SELECT * FROM unnest($1::int8[], $2::int4[], $3::int8[], $4::int8[], \
                                      $5::int4[], $6::text[], $7::text[], $8::text[]) \
                 ON CONFLICT (sequence, number) {on_conflict}"
            ),
            &[
                &sequence, &numbers, &started, &duration, &codes, &kinds, &errors, &bodies,
            ],
        )
        .await
        .map_err(sql_error("storing attempts"))?;
    Ok(())
}
