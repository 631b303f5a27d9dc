//! What recording a batch of attempts writes: the events' new states, the queue moved on
//! (finished events leave it, the others wait for their retry), and the attempts.

use tokio_postgres::Transaction;

use super::{sql_error, to_sql};
use crate::event::Status;
use crate::retry::AfterAttempt;
use crate::store::{FinishedAttempt, StoreError};

/// What recording a batch of attempts writes, as columns.
#[derive(Default)]
pub(super) struct Changes<'a> {
    sequence: Vec<i64>,
    status: Vec<&'static str>,
    due_at_ms: Vec<Option<i64>>,
    finished_at_ms: Vec<Option<i64>>,
    attempts: Vec<&'a FinishedAttempt>,
    /// Attempts whose claim was taken over: added only where their number is free.
    pub(super) stale_attempts: Vec<&'a FinishedAttempt>,
}

impl<'a> Changes<'a> {
    pub(super) fn push(
        &mut self,
        done: &'a FinishedAttempt,
        status: Status,
        outcome: AfterAttempt,
    ) {
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

    pub(super) async fn write(&self, transaction: &Transaction<'_>) -> Result<(), StoreError> {
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
                         last_status_code = change.code, last_error = change.error \
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
            // Finished events leave the queue; the others wait there for their retry.
            transaction
                .execute(
                    "WITH change AS ( \
                         SELECT * FROM unnest($1::int8[], $2::int8[]) \
                             AS change(sequence, due_at_ms)), \
                     finished AS ( \
                         DELETE FROM rowhook.queue q USING change \
                         WHERE q.sequence = change.sequence AND change.due_at_ms IS NULL) \
                     UPDATE rowhook.queue q SET due_at_ms = change.due_at_ms, again = true, \
                         claimed_until = NULL \
                     FROM change \
                     WHERE q.sequence = change.sequence AND change.due_at_ms IS NOT NULL",
                    &[&self.sequence, &self.due_at_ms],
                )
                .await
                .map_err(sql_error("moving the queue on"))?;
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
