//! An event's mutable state, kept once it has been attempted or redelivered: status,
//! schedule, next due time and every attempt, in one value, so that recording an attempt
//! is one write. An event without one is as its chunk says: pending, due for attempt 1
//! (or failed from the start when its request could not be rendered).

use super::codec::{Reader, Truncated, Writer};
use crate::event::{Attempt, ErrorKind, Status};
use crate::retry::{self, AfterAttempt, Schedule};

const VERSION: u8 = 1;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct EventState {
    pub(super) status: Status,
    pub(super) schedule: Schedule,
    pub(super) next_attempt_at_ms: Option<u64>,
    pub(super) finished_at_ms: Option<u64>,
    pub(super) attempts: Vec<Attempt>,
}

/// What recording an attempt changed, for the indexes around the state.
pub(super) struct Transition {
    pub(super) from: Status,
    pub(super) previous_due_at_ms: Option<u64>,
}

impl EventState {
    /// The state of a rendered event that has had no attempt: due at `due_at_ms`.
    pub(super) fn initial(due_at_ms: u64) -> EventState {
        EventState {
            status: Status::Pending,
            schedule: Schedule::Regular,
            next_attempt_at_ms: Some(due_at_ms),
            finished_at_ms: None,
            attempts: Vec::new(),
        }
    }

    /// How many attempts have been made: the highest number recorded.
    pub(super) fn attempt_count(&self) -> u32 {
        self.attempts
            .iter()
            .map(|attempt| attempt.number)
            .max()
            .unwrap_or(0)
    }

    /// Adds `attempt` and moves the event on: delivered on success, else due again as the
    /// retry schedule (or a pending redelivery) says, else failed.
    pub(super) fn record(
        &mut self,
        attempt: Attempt,
        retry_schedule: &[std::time::Duration],
        finished_at_ms: u64,
    ) -> Transition {
        let transition = Transition {
            from: self.status,
            previous_due_at_ms: self.next_attempt_at_ms,
        };
        let number = attempt.number;
        let succeeded = attempt.succeeded();
        // An attempt recorded twice (its claim outlived by a crash of the recorder) keeps
        // one entry.
        self.attempts.retain(|kept| kept.number != number);
        self.attempts.push(attempt);
        self.attempts.sort_by_key(|kept| kept.number);
        match retry::after_attempt(
            retry_schedule,
            self.schedule,
            number,
            succeeded,
            finished_at_ms,
        ) {
            AfterAttempt::Delivered => self.finish(Status::Delivered, finished_at_ms),
            AfterAttempt::DueAt(at) => {
                self.status = Status::Pending;
                self.next_attempt_at_ms = Some(at);
                self.finished_at_ms = None;
            }
            AfterAttempt::Failed => self.finish(Status::Failed, finished_at_ms),
        }
        transition
    }

    /// Queues one immediate attempt beyond the `made` attempts made or under way.
    pub(super) fn redeliver(&mut self, made: u32, now_ms: u64) -> Transition {
        let transition = Transition {
            from: self.status,
            previous_due_at_ms: self.next_attempt_at_ms,
        };
        self.schedule = Schedule::Redelivery {
            after_attempts: made,
        };
        self.status = Status::Pending;
        self.next_attempt_at_ms = Some(now_ms);
        self.finished_at_ms = None;
        transition
    }

    fn finish(&mut self, status: Status, at_ms: u64) {
        self.status = status;
        self.next_attempt_at_ms = None;
        self.finished_at_ms = Some(at_ms);
    }

    pub(super) fn encode(&self) -> Vec<u8> {
        let mut writer = Writer::with_capacity(64);
        writer.byte(status_code(self.status));
        writer.byte(VERSION);
        match self.schedule {
            Schedule::Regular => writer.byte(0),
            Schedule::Redelivery { after_attempts } => {
                writer.byte(1);
                writer.varint(u64::from(after_attempts));
            }
        }
        writer.optional_varint(self.next_attempt_at_ms);
        writer.optional_varint(self.finished_at_ms);
        writer.varint(self.attempts.len() as u64);
        for attempt in &self.attempts {
            writer.varint(u64::from(attempt.number));
            writer.varint(attempt.started_at_ms);
            writer.varint(attempt.duration_ms);
            writer.optional_varint(attempt.status_code.map(u64::from));
            writer.byte(attempt.error_kind.map_or(0, error_kind_code));
            writer.optional_text(attempt.error.as_deref());
            writer.text(&attempt.response_body);
        }
        writer.bytes
    }

    pub(super) fn decode(bytes: &[u8]) -> Result<EventState, Truncated> {
        let mut reader = Reader::new(bytes);
        let status = status_from(reader.byte()?)?;
        if reader.byte()? != VERSION {
            return Err(Truncated);
        }
        let schedule = match reader.byte()? {
            0 => Schedule::Regular,
            _ => Schedule::Redelivery {
                after_attempts: small(reader.varint()?)?,
            },
        };
        let next_attempt_at_ms = reader.optional_varint()?;
        let finished_at_ms = reader.optional_varint()?;
        let count = reader.length()?;
        let mut attempts = Vec::with_capacity(count);
        for _ in 0..count {
            attempts.push(Attempt {
                number: small(reader.varint()?)?,
                started_at_ms: reader.varint()?,
                duration_ms: reader.varint()?,
                status_code: reader
                    .optional_varint()?
                    .map(|code| u16::try_from(code).map_err(|_| Truncated))
                    .transpose()?,
                error_kind: error_kind_from(reader.byte()?)?,
                error: reader.optional_text()?.map(str::to_string),
                response_body: reader.text()?.to_string(),
            });
        }
        Ok(EventState {
            status,
            schedule,
            next_attempt_at_ms,
            finished_at_ms,
            attempts,
        })
    }
}

fn small(value: u64) -> Result<u32, Truncated> {
    u32::try_from(value).map_err(|_| Truncated)
}

pub(super) fn status_code(status: Status) -> u8 {
    match status {
        Status::Pending => 0,
        Status::Delivered => 1,
        Status::Failed => 2,
    }
}

pub(super) fn status_from(code: u8) -> Result<Status, Truncated> {
    match code {
        0 => Ok(Status::Pending),
        1 => Ok(Status::Delivered),
        2 => Ok(Status::Failed),
        _ => Err(Truncated),
    }
}

fn error_kind_code(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::Timeout => 1,
        ErrorKind::Connect => 2,
        ErrorKind::Tls => 3,
        ErrorKind::Redirect => 4,
        ErrorKind::Status => 5,
        ErrorKind::Body => 6,
        ErrorKind::Denied => 7,
    }
}

fn error_kind_from(code: u8) -> Result<Option<ErrorKind>, Truncated> {
    match code {
        0 => Ok(None),
        code => ErrorKind::ALL
            .into_iter()
            .find(|kind| error_kind_code(*kind) == code)
            .map(Some)
            .ok_or(Truncated),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn attempt(number: u32, error_kind: Option<ErrorKind>) -> Attempt {
        Attempt {
            number,
            started_at_ms: 1_000 * u64::from(number),
            duration_ms: 12,
            status_code: Some(if error_kind.is_some() { 503 } else { 200 }),
            error_kind,
            error: error_kind.map(|kind| format!("{} went wrong", kind.as_str())),
            response_body: "é ok".into(),
        }
    }

    #[test]
    fn every_error_kind_has_its_own_code() {
        for kind in ErrorKind::ALL {
            assert_eq!(error_kind_from(error_kind_code(kind)), Ok(Some(kind)));
        }
        assert_eq!(error_kind_from(0), Ok(None));
    }

    #[test]
    fn states_round_trip() {
        let mut state = EventState::initial(5);
        let schedule = [Duration::ZERO, Duration::from_secs(2)];
        state.record(attempt(1, Some(ErrorKind::Status)), &schedule, 100);
        assert_eq!(state.status, Status::Pending);
        assert_eq!(state.next_attempt_at_ms, Some(2_100));
        let bytes = state.encode();
        assert_eq!(EventState::decode(&bytes), Ok(state.clone()));
        state.redeliver(1, 50);
        assert_eq!(EventState::decode(&state.encode()), Ok(state));
        for end in 0..bytes.len() {
            assert!(EventState::decode(&bytes[..end]).is_err(), "cut at {end}");
        }
    }

    #[test]
    fn attempts_move_the_event_on() {
        let schedule = [Duration::ZERO, Duration::from_secs(2)];
        let mut state = EventState::initial(5);
        let first = state.record(attempt(1, Some(ErrorKind::Timeout)), &schedule, 10);
        assert_eq!(
            (first.from, first.previous_due_at_ms),
            (Status::Pending, Some(5))
        );
        state.record(attempt(2, Some(ErrorKind::Timeout)), &schedule, 3_000);
        assert_eq!(state.status, Status::Failed);
        assert_eq!(state.finished_at_ms, Some(3_000));
        assert_eq!(state.next_attempt_at_ms, None);
        // A redelivery is one more attempt, whatever the schedule says.
        state.redeliver(state.attempt_count(), 4_000);
        assert_eq!(state.status, Status::Pending);
        state.record(attempt(3, None), &schedule, 4_010);
        assert_eq!(state.status, Status::Delivered);
        assert_eq!(state.attempt_count(), 3);
        assert_eq!(state.attempts.len(), 3);
    }

    #[test]
    fn a_redelivery_asked_for_during_an_attempt_is_still_owed() {
        let schedule = [Duration::ZERO];
        let mut state = EventState::initial(5);
        // Attempt 1 is under way when the admin asks: it counts as made.
        state.redeliver(1, 20);
        state.record(attempt(1, Some(ErrorKind::Connect)), &schedule, 30);
        assert_eq!(state.status, Status::Pending);
        assert_eq!(state.next_attempt_at_ms, Some(30));
        state.record(attempt(2, Some(ErrorKind::Connect)), &schedule, 40);
        assert_eq!(state.status, Status::Failed);
    }
}
