//! Backfill jobs, one small JSON value each: written once per page of a job, never on
//! the hot path, and readable by eye when debugging.

use crate::backfill::BackfillJob;
use crate::store::StoreError;

pub(super) fn encode(job: &BackfillJob) -> Vec<u8> {
    serde_json::to_vec(job).expect("a job serializes")
}

pub(super) fn decode(bytes: &[u8]) -> Result<BackfillJob, StoreError> {
    serde_json::from_slice(bytes)
        .map_err(|error| StoreError::corrupt("a backfill job", error.to_string()))
}
